"""modelport's own JSON protocol: ``POST /models/{ref}/predict``.

Request ``{"inputs": [{"income": 52000, ...}, ...]}`` or ``{"inputs": {"columns": [...], "data": [[...]]}}``;
response ``{"model", "version", "request_id", "predictions", "probabilities", "classes"}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from modelport.errors import InvalidInput
from modelport.refs import ModelRef
from modelport.schema import Signature
from modelport.serving.codecs import Answer, Codec, Incoming, Parsed, json_answer, tabular
from modelport.serving.wire import classes_list, jsonable, parse_json

if TYPE_CHECKING:
    from modelport.predictor import Prediction

PROTOCOL = "native"


def decode(payload: Any, signature: Signature) -> Any:
    if not isinstance(payload, dict) or "inputs" not in payload:
        raise InvalidInput(f"The body must be a JSON object with 'inputs': {tabular.LAYOUTS}.")
    return tabular.rows(payload["inputs"], signature)


def body(result: Prediction, request_id: str) -> dict[str, Any]:
    """The native response body: model, version, request id, predictions (+ probabilities, classes)."""
    mv = result.model_version
    out: dict[str, Any] = {
        "model": mv.name,
        "version": mv.version,
        "request_id": request_id,
        "predictions": jsonable(result.predictions),
    }
    if result.probabilities is not None:
        out["probabilities"] = jsonable(result.probabilities)
        out["classes"] = classes_list(result.classes)
    return out


class NativeCodec(Codec):
    name = PROTOCOL

    def ref(self, incoming: Incoming, first_ref: Callable[[], ModelRef]) -> str:
        return incoming.params["ref"]

    def parse(self, incoming: Incoming) -> Parsed:
        return Parsed(parse_json(incoming.body))

    def decode(self, payload: Any, signature: Signature) -> Any:
        """Positional rows of numbers for a model whose columns are all floats become one 2-d array
        at once (the same values: every number and boolean widens to a float) instead of a list per
        column; anything else takes :func:`decode`."""
        if signature.tensor is None and type(payload) is dict:
            rows = payload.get("inputs")
            if type(rows) is list and rows and type(rows[0]) is list:
                arr = tabular.float_matrix(rows, signature)
                if arr is not None:
                    return arr
        return decode(payload, signature)

    def encode(self, result: Prediction, parsed: Parsed, request_id: str) -> Answer:
        content = orjson.dumps(body(result, request_id), option=orjson.OPT_SERIALIZE_NUMPY)
        return json_answer(
            200,
            content,
            [
                (b"x-request-id", request_id.encode("latin-1")),
                (b"x-model-version", result.model_version.ref.encode()),
            ],
        )

    def error_body(
        self, status: int, message: str, details: list[dict[str, object]]
    ) -> tuple[int, bytes, bytes]:
        return status, b"application/json", orjson.dumps({"error": message, "details": details})


CODEC = NativeCodec()
