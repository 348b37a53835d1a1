"""The ASGI entry of the prediction endpoints: Starlette for everything else.

A ``POST`` to a prediction endpoint of any protocol (see :func:`modelport.serving.codecs.match`) is
answered before Starlette's middleware and router: the body is read with the one body reader and the
request handed to :meth:`Service.handle`, whose answer goes out as two ASGI messages. The HTTP protocol
(:mod:`.protocol`) hands the same requests to the same :meth:`ModelportApp.handle` once their body is
complete, without ASGI messages; both reach the one serving path. Under a ``root_path`` (the app
mounted in another) the same endpoints are Starlette routes that do the same.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from modelport.serving.codecs import Codec, match, mlflow, native, v2
from modelport.serving.service import Respond, Service
from modelport.serving.wire import read_body


class ModelportApp(Starlette):
    """Starlette, with the prediction endpoints answered before its middleware and router."""

    @property
    def service(self) -> Service:
        svc: Service = self.state.service
        return svc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self.prediction_target(scope)
        if target is not None:
            scope["app"] = self
            await self.predict(scope, receive, send, *target)
            return
        await super().__call__(scope, receive, send)

    def prediction_target(self, scope: Scope) -> tuple[Codec, dict[str, str]] | None:
        """The codec and path parameters of a prediction request this app answers itself, else None."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return None
        return match(scope["path"])

    def shed_pause(self) -> float:
        """Seconds to hold back the next request of a connection that was just answered 503."""
        return self.service.shed_pause

    def handle(
        self, codec: Codec, params: dict[str, str], scope: Scope, body: bytes, respond: Respond
    ) -> None:
        """Answer a prediction request whose whole body is here (see :meth:`Service.handle`)."""
        self.service.handle(codec, params, scope, body, respond)

    async def predict(
        self, scope: Scope, receive: Receive, send: Send, codec: Codec, params: dict[str, str]
    ) -> None:
        """Read the body, hand the request to the service, send its answer."""
        svc = self.service
        answered: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def respond(answer: Any) -> None:
            if not answered.done():
                answered.set_result(answer)

        try:
            body = await read_body(receive, svc.max_body_bytes, _declared(scope))
        except ClientDisconnect:
            return
        except Exception as exc:  # noqa: BLE001 - e.g. 413: the codec answers it
            svc.refuse(codec, scope, exc, respond)
        else:
            svc.handle(codec, params, scope, body, respond)
        status, headers, content = await answered
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def _declared(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class _Endpoint:
    """A prediction endpoint as a Starlette route (for an app mounted under a ``root_path``)."""

    def __init__(self, codec: Codec) -> None:
        self.codec = codec

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app: ModelportApp = scope["app"]
        await app.predict(scope, receive, send, self.codec, dict(scope.get("path_params", {})))


def routes() -> list[Route]:
    """The prediction endpoints of every protocol, as routes (Starlette answers 405 for other methods)."""
    return [
        Route("/models/{ref}/predict", _Endpoint(native.CODEC), methods=["POST"]),
        Route("/v2/models/{name}/infer", _Endpoint(v2.CODEC), methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}/infer", _Endpoint(v2.CODEC), methods=["POST"]),
        Route("/invocations", _Endpoint(mlflow.CODEC), methods=["POST"]),
    ]
