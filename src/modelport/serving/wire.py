"""What every codec and transport shares: request ids, the one body reader, JSON in and out, and
error messages that never echo input values."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive

from modelport.errors import InvalidInput, ModelportError
from modelport.serving.errors import PayloadTooLarge

REQUEST_ID = "x-request-id"
ROUTING_KEY = "x-routing-key"  # sticky canary routing: the same key always reaches the same version
_DRAIN_FACTOR = 8  # read (and drop) at most this many limits of an oversized body so the client sees 413
_ECHOED_VALUE = re.compile(r"(got \w+) value .*$")


def client_request_id(rid: str | None) -> str | None:
    """The client's request id when it is sane to echo and log (printable, at most 200 characters)."""
    return rid if rid and len(rid) <= 200 and rid.isprintable() else None


# A request id is 32 hex digits, like a uuid4's: a random 64-bit prefix per process (drawn again
# in a forked child) and a counter. As unique as uuid4 for joining labels later, without an
# os.urandom call and a UUID object per request.
_ids: list[Any] = []


def _new_id_source() -> None:
    _ids[:] = [os.urandom(8).hex(), itertools.count(int.from_bytes(os.urandom(4), "big"))]


_new_id_source()
os.register_at_fork(after_in_child=_new_id_source)


def new_request_id() -> str:
    prefix, counter = _ids
    return f"{prefix}{next(counter) & 0xFFFFFFFFFFFFFFFF:016x}"


async def read_body(receive: Receive, limit: int, declared: int | None = None) -> bytes:
    """The request body from ASGI ``receive``, or :class:`PayloadTooLarge` once it passes ``limit``
    bytes (then up to a few more limits are read and dropped, so that the client sees the 413)."""
    if declared is not None and declared > limit:
        await _drain(receive, limit)
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            if message.get("more_body", False):
                await _drain(receive, limit)
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _drain(receive: Receive, limit: int) -> None:
    seen = 0
    try:
        while seen <= _DRAIN_FACTOR * limit:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return
    except Exception:  # noqa: BLE001 - the client may already have gone; the 413 stands
        pass


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Request body is larger than the server's limit of {limit} bytes. "
        "Send fewer rows per request or start the server with a larger --max-body-mb."
    )


def parse_json(body: bytes) -> Any:
    if not body:
        raise InvalidInput("The request body is empty; send a JSON document.")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(
            f"The request body is not valid JSON (line {exc.lineno}, column {exc.colno})."
        ) from None


def json_response(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


def jsonable(arr: np.ndarray) -> Any:
    """An array orjson can write directly, or a list where it cannot (object/strings)."""
    if arr.dtype.kind in "biuf" and arr.flags.c_contiguous:
        return arr
    if arr.dtype.kind in "US":
        return arr.tolist()
    return [_plain(v) for v in arr.reshape(-1).tolist()] if arr.ndim == 1 else [jsonable(r) for r in arr]


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def classes_list(classes: Sequence[Any] | None) -> list[Any] | None:
    return None if classes is None else [_plain(c) for c in classes]


def safe_message(exc: ModelportError) -> tuple[str, list[dict[str, object]]]:
    """The error's message and details without any input value they might quote."""
    details = [{k: _redact(v) if isinstance(v, str) else v for k, v in d.items()} for d in exc.details if d]
    message = exc.message
    for d in exc.details:
        err = d.get("error")
        if isinstance(err, str) and err != _redact(err):
            message = message.replace(err, _redact(err))
    return message, details


def _redact(text: str) -> str:
    return _ECHOED_VALUE.sub(r"\1 value", text)
