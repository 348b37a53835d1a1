"""HTTP/1.1 for ``modelport serve``: uvicorn's httptools protocol, where a small native prediction
that its version scores on the event loop is answered from the protocol itself.

For such a request (``POST /models/{ref}/predict``, a body of at most ``INLINE_MAX_BYTES``, no
``Expect: 100-continue``) the ASGI task is held back until the body is complete; then
:meth:`ModelportApp.answer` scores it (at once, or with the other requests that arrived in the same
turn of the loop when the policy coalesces them) and the status line, headers and body go out in
one write: no task, no ASGI messages, one send instead of two. Whatever it does not take (a version
not loaded yet, a slow model, a shed) and any request that fails there start the held ASGI task as
uvicorn would have, with what was already done in the scope; answers are the same either way.
Every other request is uvicorn's, unchanged, and so is every request when the app is wrapped in
middleware other than uvicorn's proxy headers (that middleware must see every request) unless the
wrapper passes ``native_ref`` and ``answer`` on (:class:`Answerer`).
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


@runtime_checkable
class Answerer(Protocol):
    """What the protocol needs of the app (:class:`~modelport.serving.asgi.ModelportApp` has it)."""

    def native_ref(self, scope: Scope) -> str | None: ...

    def answer(
        self,
        scope: Scope,
        body: bytes,
        respond: Callable[[int, list[tuple[bytes, bytes]], bytes], None],
        fallback: Callable[[], None],
    ) -> bool: ...


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

    def on_message_begin(self) -> None:
        # a response written from the parser's callbacks armed the keep-alive timer; a pipelined
        # request parsed after it in the same read must not be cut off by that timer
        self._unset_keepalive_if_required()
        super().on_message_begin()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        answerer = self._answerer
        if (
            answerer is not None
            and app is self.app  # not uvicorn's "concurrency limit" 503 app
            and not cycle.waiting_for_100_continue
            and answerer.native_ref(cast(Scope, cycle.scope)) is not None
        ):
            if cycle.more_body:  # hold the task until the body is here (on_message_complete)
                self._held = cycle
                return
            if self._answer(cycle):  # a pipelined request, body complete
                return
        super()._start_asgi_task(cycle, app)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        held = self._held
        if held is not None and len(held.body) > INLINE_MAX_BYTES:  # too big for the loop: the app reads on
            self._held = None
            super()._start_asgi_task(held, self.app)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        held = self._held
        if held is not None:
            self._held = None
            if not self._answer(held):
                super()._start_asgi_task(held, self.app)

    def connection_lost(self, exc: Exception | None) -> None:
        self._held = None
        super().connection_lost(exc)

    def _answer(self, cycle: RequestResponseCycle) -> bool:
        """Hand ``cycle``'s request to the app's fast path; False if it does not take it."""
        answerer = self._answerer
        if answerer is None or cycle.disconnected or self.flow.write_paused:
            return False
        try:
            return answerer.answer(
                cast(Scope, cycle.scope),
                bytes(cycle.body),
                lambda status, headers, content: self._respond(cycle, status, headers, content),
                lambda: self._fallback(cycle),
            )
        except Exception:  # pragma: no cover - answer() hands its errors to the app
            log.exception("the fast path failed; the app answers instead")
            return False

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

    def _fallback(self, cycle: RequestResponseCycle) -> None:
        """The app answers this request (its error is in the scope) through ASGI."""
        super()._start_asgi_task(cycle, self.app)
