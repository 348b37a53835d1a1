"""MLflow-compatible scoring (as mlflow models serve): ``/invocations``, ``/ping``, ``/health``, ``/version``.

Bodies are JSON with exactly one of ``dataframe_split``, ``dataframe_records``, ``instances``,
``inputs`` (``params`` is accepted and ignored), or ``text/csv``. Errors take MLflow's shape:
``{"error_code": "BAD_REQUEST", "message": ...}`` with status 400 for any bad input.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from modelport.errors import InvalidInput
from modelport.refs import ModelRef
from modelport.schema import Signature
from modelport.serving.codecs import Answer, Codec, Incoming, Parsed, json_answer, tabular
from modelport.serving.errors import UnsupportedMediaType
from modelport.serving.wire import jsonable, parse_json
from modelport.version import __version__

if TYPE_CHECKING:
    from modelport.predictor import Prediction

PROTOCOL = "mlflow"
INPUT_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")
CONTENT_TYPES = ("application/json", "text/csv")


def error_status(status: int) -> tuple[int, str]:
    """MLflow's status and error code for an error: every input problem is a 400 BAD_REQUEST."""
    if status in (400, 422):
        return 400, "BAD_REQUEST"
    if status == 404:
        return 404, "RESOURCE_DOES_NOT_EXIST"
    if status == 413:
        return 413, "REQUEST_LIMIT_EXCEEDED"
    return status, "INTERNAL_ERROR"


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


class MlflowCodec(Codec):
    name = PROTOCOL

    def ref(self, incoming: Incoming, first_ref: Callable[[], ModelRef]) -> str:
        if incoming.query:
            given = parse_qs(incoming.query.decode("latin-1")).get("model")
            if given and given[0]:
                return given[0]
        return str(first_ref())

    def parse(self, incoming: Incoming) -> Parsed:
        content_type = (incoming.header("content-type") or "application/json").split(";")[0].strip().lower()
        if content_type not in CONTENT_TYPES:
            raise UnsupportedMediaType(
                f"This predictor only supports the following content types: {list(CONTENT_TYPES)}. "
                f"Got '{content_type[:100]}'."
            )
        if content_type == "text/csv":
            return Parsed((True, incoming.body))
        return Parsed((False, parse_json(incoming.body)))

    def decode(self, payload: Any, signature: Signature) -> Any:
        csv, data = payload
        return decode_csv(data, signature) if csv else decode_json(data, signature)

    def encode(self, result: Prediction, parsed: Parsed, request_id: str) -> Answer:
        content = orjson.dumps(
            {"predictions": jsonable(result.predictions)}, option=orjson.OPT_SERIALIZE_NUMPY
        )
        return json_answer(200, content, [(b"x-request-id", request_id.encode("latin-1"))])

    def error_body(
        self, status: int, message: str, details: list[dict[str, object]]
    ) -> tuple[int, bytes, bytes]:
        if status == 415:  # MLflow answers an unknown content type in plain text
            return 415, b"text/plain; charset=utf-8", message.encode()
        code, error_code = error_status(status)
        return code, b"application/json", orjson.dumps({"error_code": error_code, "message": message})


CODEC = MlflowCodec()


async def ping(request: Request) -> Response:
    return Response("\n", media_type="application/json")


async def version(request: Request) -> Response:
    return PlainTextResponse(__version__)


def routes() -> list[Route]:
    return [
        Route("/ping", ping, methods=["GET"]),
        Route("/health", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
    ]
