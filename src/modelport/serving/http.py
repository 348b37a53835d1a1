"""What every protocol's route handlers share: body limits, JSON in and out, errors, request ids."""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import orjson
from starlette.requests import Request
from starlette.responses import Response

from modelport.errors import InvalidInput, ModelportError
from modelport.predlog.writer import PredictionLogger
from modelport.refs import ModelRef
from modelport.schema import Signature
from modelport.serving.dispatch import Dispatcher
from modelport.serving.errors import PayloadTooLarge
from modelport.serving.manager import ModelManager, Prediction
from modelport.serving.metrics import Metrics
from modelport.serving.settings import ServeConfig

REQUEST_ID = "x-request-id"
ROUTING_KEY = "x-routing-key"  # sticky canary routing: the same key always reaches the same version
_DRAIN_FACTOR = 8  # read (and drop) at most this many limits of an oversized body so the client sees 413
_ECHOED_VALUE = re.compile(r"(got \w+) value .*$")


class Service:
    """The per-app service the route handlers call: the dispatcher, the model manager, metrics, limits."""

    def __init__(
        self,
        manager: ModelManager,
        metrics: Metrics,
        max_body_bytes: int,
        prediction_log: PredictionLogger | None = None,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self.manager = manager
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.prediction_log = prediction_log
        self.dispatcher = dispatcher or Dispatcher(manager, ServeConfig(), metrics)

    async def predict(
        self,
        request: Request,
        ref: str | ModelRef,
        data: Any,
        protocol: str,
        decode: Callable[[Any, Signature], Any] | None = None,
    ) -> Prediction:
        """Route, decode and predict off the event loop; record metrics; queue the request for the log."""
        headers = request.headers
        declared = headers.get("content-length", "")
        result = await self.predict_raw(
            ref,
            data,
            protocol,
            decode,
            request_id(request),
            headers.get(ROUTING_KEY),
            int(declared) if declared.isdigit() else None,
        )
        request.state.model_version = result.model_version
        return result

    async def predict_raw(
        self,
        ref: str | ModelRef,
        data: Any,
        protocol: str,
        decode: Callable[[Any, Signature], Any] | None,
        rid: str,
        routing_key: str | None,
        size: int | None,
    ) -> Prediction:
        """:meth:`predict` for a request already taken apart (the raw ASGI fast path's entry)."""
        started = time.perf_counter()
        metrics = self.metrics
        metrics.requests_in_flight += 1
        try:
            result = await self.dispatcher.predict(
                ref, data, decode, routing_key, self._shadow_logger(rid, protocol), size
            )
        finally:
            metrics.requests_in_flight -= 1
        return self._answered(result, rid, protocol, started)

    def predict_soon(
        self,
        ref: str | ModelRef,
        data: Any,
        protocol: str,
        decode: Callable[[Any, Signature], Any] | None,
        rid: str,
        routing_key: str | None,
        size: int | None,
        ok: Callable[[Prediction], None],
        failed: Callable[[BaseException], None],
    ) -> bool:
        """:meth:`predict_raw` with callbacks instead of a coroutine (see
        :meth:`Dispatcher.predict_soon`), called from the HTTP protocol; False: use predict_raw."""
        started = time.perf_counter()

        def answered(result: Prediction) -> None:
            elapsed = time.perf_counter() - started
            try:
                ok(result)  # the answer goes out first; counting and logging it can follow
            finally:
                self._record(result, rid, protocol, elapsed)

        return self.dispatcher.predict_soon(
            ref, data, decode, routing_key, self._shadow_logger(rid, protocol), size, answered, failed
        )

    def _shadow_logger(self, rid: str, protocol: str) -> Callable[[Prediction], None] | None:
        logger = self.prediction_log
        return None if logger is None else lambda res: logger.log(res, rid, protocol, 0.0)

    def _answered(self, result: Prediction, rid: str, protocol: str, started: float) -> Prediction:
        self._record(result, rid, protocol, time.perf_counter() - started)
        return result

    def _record(self, result: Prediction, rid: str, protocol: str, elapsed: float) -> None:
        self.metrics.observe_success(result.model_version, protocol, elapsed, result.role)
        if self.prediction_log is not None:  # enqueue only: never blocks, never raises
            self.prediction_log.log(result, rid, protocol, elapsed)


def service(request: Request) -> Service:
    svc: Service = request.app.state.service
    return svc


def request_id(request: Request) -> str:
    """The client's X-Request-ID (when sane) or a new one; the same for the whole request."""
    rid: str | None = getattr(request.state, "request_id", None)
    if rid is None:
        rid = client_request_id(request.headers.get(REQUEST_ID)) or new_request_id()
        request.state.request_id = rid
    return rid


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


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or :class:`PayloadTooLarge` once it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        await _drain(request, limit)
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            await _drain(request, limit)
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _drain(request: Request, limit: int) -> None:
    seen = 0
    try:
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > _DRAIN_FACTOR * limit:
                break
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
