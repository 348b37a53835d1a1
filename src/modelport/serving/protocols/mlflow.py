"""MLflow-compatible scoring (as mlflow models serve): ``/invocations``, ``/ping``, ``/health``, ``/version``.

Bodies are JSON with exactly one of ``dataframe_split``, ``dataframe_records``, ``instances``,
``inputs`` (``params`` is accepted and ignored), or ``text/csv``. Errors take MLflow's shape:
``{"error_code": "BAD_REQUEST", "message": ...}`` with status 400 for any bad input.
"""

from __future__ import annotations

import io
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from modelport.errors import InvalidInput, ModelportError
from modelport.schema import Signature
from modelport.serving.errors import UnsupportedMediaType
from modelport.serving.http import json_response, jsonable, parse_json, read_body, request_id, service
from modelport.serving.protocols import tabular
from modelport.serving.protocols._common import parse_ref, predict_with
from modelport.version import __version__

PROTOCOL = "mlflow"
INPUT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
CONTENT_TYPES = ("application/json", "text/csv")


def error_body(exc: ModelportError, message: str) -> tuple[int, dict[str, Any]]:
    """MLflow's status and body for an error: every input problem is a 400 BAD_REQUEST."""
    if exc.status in (400, 422):
        return 400, {"error_code": "BAD_REQUEST", "message": message}
    if exc.status == 404:
        return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": message}
    if exc.status == 413:
        return 413, {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": message}
    return exc.status, {"error_code": "INTERNAL_ERROR", "message": message}


def decode_json(payload: Any, signature: Signature) -> Any:
    keys = [k for k in INPUT_KEYS if isinstance(payload, dict) and k in payload]
    if len(keys) != 1:
        got = sorted(payload) if isinstance(payload, dict) else f"a JSON {type(payload).__name__}"
        raise InvalidInput(
            "Invalid input. The input must be a JSON dictionary with exactly one of the input fields "
            f"{set(INPUT_KEYS)}. Received: {got}."
        )
    key = keys[0]
    value = payload[key]
    if key == "dataframe_split":
        if not isinstance(value, dict):
            raise InvalidInput("'dataframe_split' must be an object with 'columns' and 'data'.")
        return tabular.split(value, signature, key)
    if key == "dataframe_records" and not (
        isinstance(value, list) and all(isinstance(r, dict) for r in value)
    ):
        raise InvalidInput("'dataframe_records' must be a list of row objects.")
    return tabular.rows(value, signature, key)


def decode_csv(body: Any, signature: Signature) -> Any:
    import pandas as pd

    try:
        return pd.read_csv(io.BytesIO(body))
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"The CSV body could not be parsed ({type(exc).__name__}).") from None


async def invocations(request: Request) -> Response:
    request.state.protocol = PROTOCOL
    svc = service(request)
    given = request.query_params.get("model")
    request.state.ref = given or str(svc.manager.first_ref())
    ref = parse_ref(request.state.ref)
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in CONTENT_TYPES:
        raise UnsupportedMediaType(
            f"This predictor only supports the following content types: {list(CONTENT_TYPES)}. "
            f"Got '{content_type[:100]}'."
        )
    body = await read_body(request, svc.max_body_bytes)
    if content_type == "text/csv":
        result = await predict_with(request, ref, body, PROTOCOL, decode_csv)
    else:
        result = await predict_with(request, ref, parse_json(body), PROTOCOL, decode_json)
    return json_response(
        {"predictions": jsonable(result.predictions)}, headers={"X-Request-ID": request_id(request)}
    )


async def ping(request: Request) -> Response:
    return Response("\n", media_type="application/json")


async def version(request: Request) -> Response:
    return PlainTextResponse(__version__)


def routes() -> list[Route]:
    return [
        Route("/invocations", invocations, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
    ]
