"""An ASGI app wrapper that passes the HTTP protocol's answering path on (serving.protocol.Answerer)
and counts the prediction answers that took it, for the tests that check which path a request took."""

from __future__ import annotations

from typing import Any


class CountsAnswers:
    """Wraps ``app``; ``fast`` counts the answers the HTTP protocol wrote itself (``answered`` is
    called with each, before it is written)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.fast = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    def prediction_target(self, scope: Any) -> Any:
        return self.app.prediction_target(scope)

    def shed_pause(self) -> float:
        pause: float = self.app.shed_pause()
        return pause

    def handle(self, codec: Any, params: Any, scope: Any, body: bytes, respond: Any) -> None:
        def counted(answer: Any) -> None:
            self.fast += 1
            self.answered(scope, answer)
            respond(answer)

        self.app.handle(codec, params, scope, body, counted)

    def answered(self, scope: Any, answer: Any) -> None:
        """Called with each answer the protocol writes itself."""
