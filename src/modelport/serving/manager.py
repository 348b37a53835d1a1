"""The service layer of the server: which models are served, loading them, predicting.

Every protocol (native JSON, Open Inference Protocol v2, MLflow) calls :meth:`ModelManager.predict`;
none of them loads or validates anything itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelport.errors import ModelNotFound, ModelportError
from modelport.model_version import ModelVersion
from modelport.predictor import Predictor
from modelport.refs import ModelRef
from modelport.registry import Registry
from modelport.schema import Signature
from modelport.serving.errors import PredictionFailed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    """What one predict call produced, and which version produced it."""

    model_version: ModelVersion
    predictions: np.ndarray
    probabilities: np.ndarray | None
    classes: list[Any] | None
    rows: int


class ModelManager:
    """Resolves references, loads each version once (lazily or eagerly) and predicts. Thread-safe.

    ``refs`` are the models this server serves; a request may name one of them by its bare name
    (``credit`` means the ref given, e.g. ``credit@production``) or pin another version or alias of
    the same model (``credit:3``). An empty ``refs`` serves every model in the registry.
    Moving aliases are re-resolved at most every ``resolve_ttl`` seconds. With ``eager``, :attr:`ready`
    stays false until :meth:`load_all` has run.

    >>> manager = ModelManager(client.registry, ["credit@production"])   # doctest: +SKIP
    >>> manager.predict("credit", [{"income": 52000, ...}]).predictions  # doctest: +SKIP
    """

    def __init__(
        self,
        registry: Registry,
        refs: Sequence[str] = (),
        *,
        runtime: str = "auto",
        resolve_ttl: float = 5.0,
        eager: bool = False,
        on_load: Callable[[ModelVersion, float], None] | None = None,
    ) -> None:
        self.registry = registry
        self.runtime = runtime
        self.resolve_ttl = resolve_ttl
        self.refs = [ModelRef.parse(r) for r in refs]
        self._default = {r.name: r for r in reversed(self.refs)}  # the first ref of a name wins
        self._on_load = on_load
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, int], threading.Lock] = {}
        self._predictors: dict[tuple[str, int], Predictor] = {}
        self._resolved: dict[ModelRef, tuple[float, ModelVersion]] = {}
        self._eager_done = not (eager and self.refs)

    @property
    def names(self) -> list[str]:
        return list(self._default)

    def ref_for(self, ref: str | ModelRef) -> ModelRef:
        """The served reference a request's ``name``, ``name:V`` or ``name@ALIAS`` stands for."""
        parsed = ModelRef.parse(ref)
        if not self.refs:
            return parsed
        default = self._default.get(parsed.name)
        if default is None:
            raise ModelNotFound(
                f"Model '{parsed.name}' is not served here. Served: {', '.join(self.names)}. "
                "See GET /v2/models or /openapi.json."
            )
        return default if parsed.version is None and parsed.alias is None else parsed

    def first_ref(self) -> ModelRef:
        if not self.refs:
            raise ModelNotFound("This server was started without a model; name one with ?model=NAME.")
        return self.refs[0]

    def resolve(self, ref: str | ModelRef) -> ModelVersion:
        """The version a reference points at now (pinned versions are cached for good)."""
        r = self.ref_for(ref)
        now = time.monotonic()
        hit = self._resolved.get(r)
        if hit is not None and (r.version is not None or now - hit[0] < self.resolve_ttl):
            return hit[1]
        mv = self.registry.get(r)
        self._resolved[r] = (now, mv)
        return mv

    def get(self, ref: str | ModelRef) -> Predictor:
        """The loaded predictor for a reference, loading it on first use."""
        mv = self.resolve(ref)
        key = (mv.name, mv.version)
        predictor = self._predictors.get(key)
        if predictor is not None:
            return predictor
        with self._lock:
            load_lock = self._loading.setdefault(key, threading.Lock())
        with load_lock:  # one load per version, even when many requests arrive at once
            predictor = self._predictors.get(key)
            if predictor is None:
                started = time.perf_counter()
                predictor = self.registry.load(mv, runtime=self.runtime)
                elapsed = time.perf_counter() - started
                log.info("loaded %s (%s runtime) in %.2fs", mv.ref, predictor.runtime, elapsed)
                self._predictors[key] = predictor
                if self._on_load is not None:
                    self._on_load(mv, elapsed)
        return predictor

    def load_all(self) -> None:
        """Load every served ref now (eager mode); raises the first failure."""
        for r in self.refs:
            self.get(r)
        self._eager_done = True

    @property
    def ready(self) -> bool:
        """True once the eager load finished (always true for a lazy server)."""
        return self._eager_done

    def is_loaded(self, mv: ModelVersion) -> bool:
        return (mv.name, mv.version) in self._predictors

    def loaded(self) -> list[ModelVersion]:
        return [p.model_version for p in list(self._predictors.values())]

    def predict(
        self, ref: str | ModelRef, data: Any, decode: Callable[[Any, Signature], Any] | None = None
    ) -> Prediction:
        """Validate ``data`` against the signature and predict (labels + probabilities).

        ``decode(data, signature)`` turns a wire payload into rows first, off the event loop.
        """
        predictor = self.get(ref)
        if decode is not None:
            data = decode(data, predictor.signature)
        batch = predictor.prepare(data)
        try:
            labels, proba = predictor.predict_with_proba(batch)
        except ModelportError:
            raise
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            # The library message may quote input values, which error bodies must never echo.
            log.warning("%s rejected an input: %s", predictor.model_version.ref, exc)
            raise PredictionFailed(
                f"Model '{predictor.model_version.ref}' could not score this input "
                f"({type(exc).__name__}); check the values against GET /openapi.json."
            ) from exc
        return Prediction(predictor.model_version, labels, proba, predictor.classes, batch.n_rows)
