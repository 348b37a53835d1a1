"""A server in a background thread on a free loopback port: for demos, notebooks and tests.

>>> with BackgroundServer(create_app(client, ["credit@production"])) as srv:   # doctest: +SKIP
...     httpx.post(f"{srv.url}/models/credit/predict", json={"inputs": rows})
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

HTTP_PROTOCOL = "modelport.serving.protocol:HttpProtocol"  # uvicorn's httptools + the fast path


class BackgroundServer:
    """uvicorn (uvloop + modelport's httptools protocol, as `modelport serve` runs it) in a daemon thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        if port == 0:
            with socket.socket() as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
        self.host, self.port = host, port
        config = uvicorn.Config(
            app, host=host, port=port, loop="uvloop", http=HTTP_PROTOCOL, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"
