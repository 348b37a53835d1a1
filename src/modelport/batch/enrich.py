"""Features joined to each chunk of new rows before scoring (a feature store lookup).

A job's ``features:`` block names the store; :func:`make_enricher` builds the matching
:class:`Enricher`. The source then only has to supply the enricher's ``needs()`` (entity keys and
event timestamps) besides the key, watermark and any model inputs the store does not provide.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import pandas as pd

from modelport.errors import InvalidInput


class Enricher(Protocol):
    def needs(self) -> list[str]:
        """Source columns the lookup needs (entity keys, event timestamp)."""

    def provides(self) -> list[str]:
        """Columns the lookup adds (as the model's signature names them)."""

    def enrich(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` with the feature columns added: same rows, same order, same index."""


def make_enricher(spec: Mapping[str, Any]) -> Enricher:
    kind = spec.get("kind")
    if kind == "feast":
        from modelport.batch.feast import FeastEnricher

        return FeastEnricher(spec)
    raise InvalidInput(f"Unknown features kind '{kind}'; use 'feast'.")
