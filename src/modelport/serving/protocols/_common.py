"""What the protocol handlers share beyond :mod:`modelport.serving.http`: parsing refs, predicting."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from modelport.errors import ModelNotFound, SchemaMismatch
from modelport.refs import ModelRef
from modelport.schema import Signature
from modelport.serving.http import service

if TYPE_CHECKING:
    from modelport.predictor import Prediction

# Versions are stored as 64-bit integers; a larger one cannot exist (and SQLite cannot even be asked).
MAX_VERSION = 2**63 - 1


def parse_ref(ref: str | ModelRef) -> ModelRef:
    """``ref`` parsed; :class:`ModelNotFound` (404) for a version number no store can hold."""
    parsed = ModelRef.parse(ref)
    if parsed.version is not None and parsed.version > MAX_VERSION:
        raise ModelNotFound(f"Model '{parsed.name}' has no such version (versions are below 2**63).")
    return parsed


async def predict_with(
    request: Request,
    ref: ModelRef,
    data: Any,
    protocol: str,
    decode: Callable[[Any, Signature], Any],
) -> Prediction:
    """The service's predict; a number too large for its column (a JSON integer past 64 bits) is a 422."""
    try:
        return await service(request).predict(request, ref, data, protocol, decode)
    except OverflowError:
        raise SchemaMismatch(
            "A number in the input is out of range for its column's type (integers must fit in 64 bits)."
        ) from None
