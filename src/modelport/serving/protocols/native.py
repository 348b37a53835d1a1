"""modelport's own JSON protocol: ``POST /models/{ref}/predict``.

Request ``{"inputs": [{"income": 52000, ...}, ...]}`` or ``{"inputs": {"columns": [...], "data": [[...]]}}``;
response ``{"model", "version", "request_id", "predictions", "probabilities", "classes"}``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from modelport.errors import InvalidInput
from modelport.schema import Signature
from modelport.serving.http import (
    classes_list,
    json_response,
    jsonable,
    parse_json,
    read_body,
    request_id,
    service,
)
from modelport.serving.protocols import tabular
from modelport.serving.protocols._common import parse_ref, predict_with

PROTOCOL = "native"


def decode(payload: Any, signature: Signature) -> Any:
    if not isinstance(payload, dict) or "inputs" not in payload:
        raise InvalidInput(f"The body must be a JSON object with 'inputs': {tabular.LAYOUTS}.")
    return tabular.rows(payload["inputs"], signature)


async def predict(request: Request) -> Response:
    request.state.protocol = PROTOCOL
    request.state.ref = request.path_params["ref"]
    ref = parse_ref(request.state.ref)
    svc = service(request)
    payload = parse_json(await read_body(request, svc.max_body_bytes))
    rid = request_id(request)
    result = await predict_with(request, ref, payload, PROTOCOL, decode)
    body = answer(result, rid)
    return json_response(body, headers={"X-Request-ID": rid, "X-Model-Version": result.model_version.ref})


def answer(result: Any, request_id: str) -> dict[str, Any]:
    """The native response body: model, version, request id, predictions (+ probabilities, classes)."""
    mv = result.model_version
    body: dict[str, Any] = {
        "model": mv.name,
        "version": mv.version,
        "request_id": request_id,
        "predictions": jsonable(result.predictions),
    }
    if result.probabilities is not None:
        body["probabilities"] = jsonable(result.probabilities)
        body["classes"] = classes_list(result.classes)
    return body


def routes() -> list[Route]:
    return [Route("/models/{ref}/predict", predict, methods=["POST"])]
