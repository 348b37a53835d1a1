"""HTTP/1.1 for ``modelport serve``: uvicorn's httptools protocol, which hands a prediction request
of any protocol to the one serving path as soon as its body is complete, without an ASGI task.

For such a request (``POST`` to a prediction endpoint, a body of at most ``INLINE_MAX_BYTES``, no
``Expect: 100-continue``) the ASGI task is held back until the body is complete; then
:meth:`ModelportApp.handle` answers it (at once, with the other requests that arrived in the same
turn of the loop, or from the thread pool) and the status line, headers and body go out in one write:
no task, no ASGI messages. A larger body, or a connection whose writes are paused, takes the held
ASGI task as uvicorn would have, which reaches the same :meth:`ModelportApp.handle` through
:meth:`ModelportApp.predict`; answers are the same either way. Every other request is uvicorn's,
unchanged, and so is every request when the app is wrapped in middleware other than uvicorn's proxy
headers (that middleware must see every request) unless the wrapper passes ``prediction_target`` and
``handle`` on (:class:`Answerer`).

uvicorn has no public hook for answering from the protocol, so this subclasses its httptools protocol
(``_start_asgi_task``, the cycle's fields): docs/architecture.md says why and what to check on an
upgrade; tests/integration/test_http_protocol.py covers keep-alive, pipelining and disconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol, cast, runtime_checkable

from starlette.types import Scope
from uvicorn.config import Config
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from modelport.serving.lanes import INLINE_MAX_BYTES

log = logging.getLogger(__name__)
_CLOSE = b"connection: close\r\n"
SHED_HOLD_MAX = 0.25  # seconds: long enough to calm a closed loop, short of an open loop's client timeouts


@runtime_checkable
class Answerer(Protocol):
    """What the protocol needs of the app (:class:`~modelport.serving.asgi.ModelportApp` has it)."""

    def prediction_target(self, scope: Scope) -> tuple[Any, dict[str, str]] | None: ...

    def shed_pause(self) -> float: ...

    def handle(
        self, codec: Any, params: dict[str, str], scope: Scope, body: bytes, respond: Callable[[Any], None]
    ) -> None: ...


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's ``httptools`` protocol with the native prediction fast path (see module doc)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        app: Any = self.app
        if isinstance(app, ProxyHeadersMiddleware):  # uvicorn's own
            app = app.app
        # ModelportApp, or a wrapper that passes the fast path on; any other wrapper sees every request
        self._answerer: Answerer | None = app if isinstance(app, Answerer) else None
        self._held: RequestResponseCycle | None = None
        self._target: tuple[Any, dict[str, str]] | None = None
        self._sheds = 0  # 503s in a row on this connection

    def on_message_begin(self) -> None:
        # a response written from the parser's callbacks armed the keep-alive timer; a pipelined
        # request parsed after it in the same read must not be cut off by that timer
        self._unset_keepalive_if_required()
        super().on_message_begin()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        answerer = self._answerer
        if answerer is not None and app is self.app and not cycle.waiting_for_100_continue:
            # (not uvicorn's "concurrency limit" 503 app)
            target = answerer.prediction_target(cast(Scope, cycle.scope))
            if target is not None:
                if cycle.more_body:  # hold the task until the body is here (on_message_complete)
                    self._held, self._target = cycle, target
                    return
                if self._answer(cycle, target):  # a pipelined request, body complete
                    return
        super()._start_asgi_task(cycle, app)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        held = self._held
        if held is not None and len(held.body) > INLINE_MAX_BYTES:  # too big to hold: the app reads on
            self._held = self._target = None
            super()._start_asgi_task(held, self.app)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        held, target = self._held, self._target
        if held is not None and target is not None:
            self._held = self._target = None
            if not self._answer(held, target):
                super()._start_asgi_task(held, self.app)

    def connection_lost(self, exc: Exception | None) -> None:
        self._held = self._target = None
        super().connection_lost(exc)

    def _answer(self, cycle: RequestResponseCycle, target: tuple[Any, dict[str, str]]) -> bool:
        """Hand ``cycle``'s request to the app's serving path; False: the ASGI task must take it."""
        answerer = self._answerer
        if answerer is None or cycle.disconnected or self.flow.write_paused:
            return False
        codec, params = target
        answerer.handle(
            codec,
            params,
            cast(Scope, cycle.scope),
            bytes(cycle.body),
            lambda answer: self._respond(cycle, *answer),
        )
        return True

    def _respond(
        self, cycle: RequestResponseCycle, status: int, headers: list[tuple[bytes, bytes]], content: bytes
    ) -> None:
        """Write the whole response in one go, then finish the cycle as uvicorn does."""
        cycle.response_started = cycle.response_complete = True
        cycle.message_event.set()
        if cycle.disconnected or self.transport.is_closing():
            return
        parts = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            parts += (name, b": ", value, b"\r\n")
        for name, value in headers:
            parts += (name, b": ", value, b"\r\n")
        if not cycle.keep_alive:
            parts.append(_CLOSE)
        parts += (b"\r\n", content)
        self.transport.write(b"".join(parts))
        if not cycle.keep_alive:
            self.transport.close()
        self.on_response_complete()
        if status != 503:
            self._sheds = 0
        elif self._answerer is not None and not self.transport.is_closing():
            self._sheds += 1
            self._hold_reading(self._answerer.shed_pause() * 2 ** min(self._sheds - 1, 8))

    def _hold_reading(self, seconds: float) -> None:
        """Read this connection's next request only after ``seconds`` (its 503 is already out):
        the service's pause after a shed, doubled for each further 503 in a row on the connection
        (at most SHED_HOLD_MAX), so that clients that retry at once cannot keep the event loop
        answering 503s instead of the requests it admitted."""
        seconds = min(seconds, SHED_HOLD_MAX)
        if seconds <= 0:
            return
        self.flow.pause_reading()
        self.loop.call_later(seconds, self._resume_reading)

    def _resume_reading(self) -> None:
        if not self.transport.is_closing():
            self.flow.resume_reading()
