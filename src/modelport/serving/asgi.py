"""The raw ASGI fast path for the prediction endpoints: no router, middleware or Request object.

``POST /models/{ref}/predict`` (the native protocol) is answered here end to end: the headers are
read once from the scope, the body straight from ``receive``, and the answer sent as two ASGI
messages. ``POST /v2/models/{name}[/versions/{v}]/infer`` and ``POST /invocations`` call their
protocol's handler directly, skipping Starlette's routing and middleware. Every other request, and
every request under a ``root_path``, goes through Starlette as usual.

Errors take the app's exception handlers (the same status codes, headers and bodies as the routed
endpoints); the handler sees a Starlette ``Request`` built only then.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from modelport.errors import SchemaMismatch
from modelport.predictor import Prediction
from modelport.refs import ModelRef
from modelport.schema import Signature
from modelport.serving.http import (
    REQUEST_ID,
    ROUTING_KEY,
    Service,
    client_request_id,
    new_request_id,
    parse_json,
    too_large,
)
from modelport.serving.protocols import mlflow, native, v2
from modelport.serving.protocols._common import parse_ref

_JSON = b"application/json"
_REF_CACHE_SIZE = 1024
_DRAIN_FACTOR = 8  # as http.read_body: read (and drop) this many limits of an oversized body
_MODELS, _PREDICT = "/models/", "/predict"
_V2, _INFER = "/v2/models/", "/infer"
Handler = Callable[[Request], Awaitable[Response]]


class ModelportApp(Starlette):
    """Starlette, with the prediction endpoints answered before its middleware and router."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refs: dict[str, ModelRef] = {}
        self._sla: dict[str, float | None] = {}  # per model name: its policy's SLA (ms)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and not scope.get("root_path"):
            path: str = scope["path"]
            ref = self.native_ref(scope)
            if ref is not None:
                scope["app"] = self
                await self._native(scope, receive, send, ref)
                return
            if path.startswith(_V2) and path.endswith(_INFER):
                params = _v2_params(path[len(_V2) : -len(_INFER)])
                if params is not None:
                    await self._routed(scope, receive, send, v2.infer, params)
                    return
            elif path == "/invocations":
                await self._routed(scope, receive, send, mlflow.invocations, {})
                return
        await super().__call__(scope, receive, send)

    # --- the native protocol, end to end ---------------------------------------------------------

    def native_ref(self, scope: Scope) -> str | None:
        """The ref in a ``POST /models/{ref}/predict`` scope this app answers itself, else None."""
        if scope["method"] != "POST" or scope.get("root_path"):
            return None
        path: str = scope["path"]
        if path.startswith(_MODELS) and path.endswith(_PREDICT):
            ref = path[len(_MODELS) : -len(_PREDICT)]
            if ref and "/" not in ref:
                return ref
        return None

    def answer(
        self,
        scope: Scope,
        body: bytes,
        respond: Callable[[int, list[tuple[bytes, bytes]], bytes], None],
        fallback: Callable[[], None],
    ) -> bool:
        """Answer a native prediction that its version scores on the event loop without the ASGI
        machinery (for the HTTP protocol, serving.protocol): ``respond(status, headers, body)`` is
        called with the answer (or a shed's 503), now or once this turn's arrivals are scored; or,
        if the request fails there, ``fallback()`` after its error was put in the scope. False: not
        taken; the request goes through the app as usual, with what was done here (parsed body or
        error) in the scope."""
        svc: Service = self.state.service
        rid, routing_key, _ = _native_headers(scope)
        ref_text = self.native_ref(scope)
        if ref_text is None or len(body) > svc.max_body_bytes:
            return False
        try:
            ref = self._ref(ref_text)
            if self._late(svc, ref):  # shed before parsing: the cheapest 503 there is
                respond(503, *self._shed_answer(svc, ref, rid))
                return True
            payload = parse_json(body)
            request_id = _request_id(rid)
            scope[_EARLY] = (payload, request_id)

            def ok(result: Prediction) -> None:
                respond(200, *_native_answer(result, request_id))

            def failed(exc: BaseException) -> None:
                scope[_EARLY] = _as_error(exc)
                fallback()

            return svc.predict_soon(
                ref, payload, native.PROTOCOL, _decode_native, request_id, routing_key, len(body), ok, failed
            )
        except Exception as exc:  # noqa: BLE001 - answered by the app's handlers
            scope[_EARLY] = _as_error(exc)
            return False

    async def _native(self, scope: Scope, receive: Receive, send: Send, ref_text: str) -> None:
        svc: Service = self.state.service
        early = scope.pop(_EARLY, None)  # what answer() did before handing the request over
        rid, routing_key, size = _native_headers(scope)
        started = False
        try:
            if isinstance(early, Exception):
                raise early
            ref = self._ref(ref_text)
            if early is not None:
                payload, request_id = early
            elif self._late(svc, ref):  # shed before reading the body: the cheapest 503 there is
                await self._shed(svc, ref, rid, send)
                return
            else:
                payload = parse_json(await _body(receive, svc.max_body_bytes, size))
                request_id = _request_id(rid)
            try:
                result = await svc.predict_raw(
                    ref, payload, native.PROTOCOL, _decode_native, request_id, routing_key, size
                )
            except OverflowError:
                raise _out_of_range() from None
            headers, content = _native_answer(result, request_id)
            started = True
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": content})
        except Exception as exc:
            if started:
                raise
            request = Request(scope, receive)
            request.state.protocol = native.PROTOCOL
            request.state.ref = ref_text
            await self._error(request, exc, send)

    def _late(self, svc: Service, ref: ModelRef) -> bool:
        """Does this worker's event loop already run later than the model's SLA?"""
        if ref.name in self._sla:
            sla = self._sla[ref.name]
        else:  # unknown names get their 404 from the usual path
            served = not svc.manager.refs or ref.name in svc.manager.names
            if len(self._sla) >= _REF_CACHE_SIZE:
                self._sla.clear()
            sla = self._sla[ref.name] = self.state.config.policy(ref.name).sla_ms if served else None
        if sla is None:
            return False
        lag = svc.dispatcher.loop_lag
        lag.ensure_started()
        return bool(lag.current() * 1000.0 > sla)

    async def _shed(self, svc: Service, ref: ModelRef, rid: bytes | None, send: Send) -> None:
        headers, content = self._shed_answer(svc, ref, rid)
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    def _shed_answer(
        self, svc: Service, ref: ModelRef, rid: bytes | None
    ) -> tuple[list[tuple[bytes, bytes]], bytes]:
        """503 + Retry-After at once, in the shape of the native protocol's errors."""
        lag = svc.dispatcher.loop_lag.current()
        sla = self._sla[ref.name]
        svc.metrics.observe_shed(ref.name, "sla", native.PROTOCOL)
        message = (
            f"Model '{ref.name}' is at capacity: requests wait {lag * 1000:.0f} ms in this worker, "
            f"over the {sla:g} ms SLA; retry later."
        )
        content = orjson.dumps({"error": message, "details": []})
        headers = [
            (b"content-length", str(len(content)).encode()),
            (b"content-type", _JSON),
            (b"retry-after", str(max(1, math.ceil(lag))).encode()),
        ]
        if rid is not None and client_request_id(rid.decode("latin-1")):
            headers.append((b"x-request-id", rid))
        return headers, content

    def _ref(self, text: str) -> ModelRef:
        """``text`` parsed, from a small cache (the same few refs arrive again and again)."""
        cache = self._refs
        ref = cache.get(text)
        if ref is None:
            ref = parse_ref(text)
            if len(cache) >= _REF_CACHE_SIZE:
                cache.clear()
            cache[text] = ref
        return ref

    # --- the other protocols' prediction endpoints, without router and middleware -----------------

    async def _routed(
        self, scope: Scope, receive: Receive, send: Send, handler: Handler, params: dict[str, str]
    ) -> None:
        scope["app"] = self
        scope["path_params"] = params
        request = Request(scope, receive, send)
        response_started = False

        async def sender(message: Any) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            response = await handler(request)
            await response(scope, receive, sender)
        except Exception as exc:
            if response_started:
                raise
            await self._error(request, exc, send)

    async def _error(self, request: Request, exc: Exception, send: Send) -> None:
        """Answer with the app's handler for ``exc`` (by its class, as Starlette looks them up)."""
        handler = next(
            (self.exception_handlers[c] for c in type(exc).__mro__ if c in self.exception_handlers), None
        )
        if handler is None:  # pragma: no cover - create_app registers one for Exception
            raise exc
        response = await handler(request, exc)
        await response(request.scope, request.receive, send)
        exc.__traceback__ = None


REQUEST_ID_B = REQUEST_ID.encode()
ROUTING_KEY_B = ROUTING_KEY.encode()


_EARLY = "modelport.native"  # scope key: answer()'s parsed (payload, request id), or its error


def _native_headers(scope: Scope) -> tuple[bytes | None, str | None, int | None]:
    """The client's request id, routing key and declared body size, from one pass over the headers."""
    declared = rid = routing_key = None
    for key, value in scope["headers"]:
        if key == b"content-length":
            declared = value
        elif key == REQUEST_ID_B:
            rid = value
        elif key == ROUTING_KEY_B:
            routing_key = value.decode("latin-1")
    size = int(declared) if declared is not None and declared.isdigit() else None
    return rid, routing_key, size


def _request_id(rid: bytes | None) -> str:
    return (client_request_id(rid.decode("latin-1")) if rid else None) or new_request_id()


def _as_error(exc: BaseException) -> Exception:
    """The error the app answers for ``exc`` raised on the fast path."""
    if isinstance(exc, OverflowError):
        return _out_of_range()
    return exc if isinstance(exc, Exception) else RuntimeError("the request was cancelled")


def _out_of_range() -> SchemaMismatch:
    return SchemaMismatch(
        "A number in the input is out of range for its column's type (integers must fit in 64 bits)."
    )


def _native_answer(result: Prediction, request_id: str) -> tuple[list[tuple[bytes, bytes]], bytes]:
    content = orjson.dumps(native.answer(result, request_id), option=orjson.OPT_SERIALIZE_NUMPY)
    return [
        (b"content-length", str(len(content)).encode()),
        (b"content-type", _JSON),
        (b"x-request-id", request_id.encode("latin-1")),
        (b"x-model-version", result.model_version.ref.encode()),
    ], content


_FLOATS = frozenset({"float32", "float64"})


def _decode_native(payload: Any, signature: Signature) -> Any:
    """:func:`native.decode`, but positional rows of numbers for a model whose columns are all
    floats become one 2-d array at once (the same values: every number and boolean widens to a
    float) instead of a list per column; anything else takes the protocol's own decoder."""
    if signature.tensor is None and type(payload) is dict:
        rows = payload.get("inputs")
        columns = signature.columns or ()
        if type(rows) is list and rows and type(rows[0]) is list and all(c.type in _FLOATS for c in columns):
            try:
                arr = np.array(rows)
            except (ValueError, TypeError, OverflowError):
                arr = None
            if (
                arr is not None
                and arr.ndim == 2
                and arr.shape[1] == len(columns)
                and arr.dtype.kind in "fiub"
            ):
                return arr
    return native.decode(payload, signature)


def _v2_params(middle: str) -> dict[str, str] | None:
    """``name`` or ``name/versions/v`` (as the routes ``/v2/models/{name}[/versions/{version}]``)."""
    parts = middle.split("/")
    if len(parts) == 1 and parts[0]:
        return {"name": parts[0]}
    if len(parts) == 3 and parts[0] and parts[1] == "versions" and parts[2]:
        return {"name": parts[0], "version": parts[2]}
    return None


async def _body(receive: Receive, limit: int, declared: int | None) -> bytes:
    """The request body, or :class:`PayloadTooLarge` once it passes ``limit`` bytes."""
    if declared is not None and declared > limit:
        await _drain(receive, limit)
        raise too_large(limit)
    message = await receive()
    if message["type"] != "http.request":
        raise ClientDisconnect()
    body: bytes = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise too_large(limit)
        return body
    chunks = [body]
    size = len(body)
    while True:
        if size > limit:
            await _drain(receive, limit)
            raise too_large(limit)
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            if size > limit:
                raise too_large(limit)
            return b"".join(chunks)


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
