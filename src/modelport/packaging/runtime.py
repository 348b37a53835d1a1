"""What a serverless package runs at start: the serving app over its baked store, loaded at init.

The generated ``handler.py`` (AWS Lambda, through Mangum) and ``main.py`` (Google Cloud Functions,
through :class:`AsgiBridge`) are a few lines over these, so both answer exactly what
``modelport serve`` answers: the same routes, validation and error bodies.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from modelport.packaging.store import open_baked


def baked_app(store: Path, ref: str, *, runtime: str = "auto", home: Path | None = None) -> Starlette:
    """The serving app for ``ref`` over the baked store at ``store``, with the model already loaded.

    Loaded here rather than in the ASGI lifespan, so that it happens once per process (a Lambda
    init) and not per invocation. No alias watching (a baked store never changes) and no prediction
    log (a serverless file system is thrown away).
    """
    from modelport.serving import create_app

    client = open_baked(store, home)
    app = create_app(client, [ref], runtime=runtime, watch_interval=0.0, log_sample_rate=0.0)
    app.state.service.manager.load_all()
    return app


class AsgiBridge:
    """Call an ASGI app from synchronous code (a Flask view), on one event loop in its own thread.

    One loop for the process keeps the app's queues and locks on the loop they were made on; the
    app's lifespan starts once, when the bridge is made.
    """

    def __init__(self, app: Any, timeout: float = 60.0) -> None:
        self.app = app
        self.timeout = timeout
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._lifespan_in: asyncio.Queue[dict[str, Any]] | None = None
        self._ensure_started()

    def _ensure_started(self) -> None:
        # Servers such as gunicorn (functions-framework's) import the module, then fork workers:
        # a thread does not survive a fork, so each process starts its own loop on first use.
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self.loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self.loop.run_forever, name="asgi-bridge", daemon=True)
            self._thread.start()
            self._pid = os.getpid()
            self._run(self._startup())

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(self.timeout)

    async def _startup(self) -> None:
        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._lifespan_in = inbox
        self._lifespan_out = outbox
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._lifespan_task: Any = asyncio.ensure_future(self.app(scope, inbox.get, outbox.put))
        await inbox.put({"type": "lifespan.startup"})
        message = await outbox.get()
        if message["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"The app failed to start: {message.get('message', message['type'])}")

    def call(
        self,
        method: str,
        path: str,
        query: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One HTTP request through the app: ``(status, headers, body)``."""
        self._ensure_started()
        return self._run(self._request(method, path, query, list(headers), body))

    async def _request(
        self, method: str, path: str, query: bytes, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method.upper(),
            "scheme": "https",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query,
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            "client": None,
            "server": None,
        }
        sent = False
        status = 500
        out_headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()  # no disconnect while the app runs; it never waits here
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                out_headers.extend((k.decode("latin-1"), v.decode("latin-1")) for k, v in message["headers"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, out_headers, b"".join(chunks)

    def close(self) -> None:
        """Run the app's shutdown and stop the loop."""
        if self._lifespan_in is not None:

            async def shutdown() -> None:
                assert self._lifespan_in is not None
                await self._lifespan_in.put({"type": "lifespan.shutdown"})
                await self._lifespan_out.get()

            self._run(shutdown())
            self._lifespan_in = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(self.timeout)
