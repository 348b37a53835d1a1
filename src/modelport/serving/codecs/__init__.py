"""Protocol codecs: each protocol is a small codec over the one serving path (:mod:`.service`).

A codec turns one wire request into what the service scores (:meth:`Codec.parse`, then
:meth:`Codec.decode` into rows for the predictor's ``prepare``) and one result, or one error, into the
bytes of the answer (:meth:`Codec.encode`, :meth:`Codec.error_body`). It does no admission, queueing,
predicting, logging or metrics: the service does those the same way for every protocol. Adding a
protocol is adding a module here and a line in :func:`match` (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from modelport.refs import ModelRef
from modelport.schema import Signature

if TYPE_CHECKING:
    from modelport.predictor import Prediction

# status, headers (lower-case names), body: one answer, ready for any transport
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
JSON = b"application/json"


@dataclass(slots=True)
class Incoming:
    """One prediction request as a codec sees it: the path's parameters, the query string, the
    headers (lower-case names, decoded as latin-1) and the whole body."""

    params: dict[str, str]
    query: bytes
    headers: dict[str, str]
    body: bytes

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


@dataclass(slots=True)
class Parsed:
    """What :meth:`Codec.parse` read from the body: the payload :meth:`Codec.decode` takes, what
    :meth:`Codec.encode` needs later (``context``), and the request's own id if its protocol has one."""

    payload: Any
    context: Any = None
    request_id: str | None = None


class Codec:
    """The interface of a protocol codec (one module each: native, v2, mlflow)."""

    name: str = ""

    def ref(self, incoming: Incoming, first_ref: Callable[[], ModelRef]) -> str:
        """The model reference the request names (``first_ref()``: the server's first served ref)."""
        raise NotImplementedError

    def parse(self, incoming: Incoming) -> Parsed:
        """Read the body (raises a 4xx :class:`~modelport.errors.ModelportError` on a bad one)."""
        raise NotImplementedError

    def decode(self, payload: Any, signature: Signature) -> Any:
        """The payload as rows ``Predictor.prepare`` reads (runs in the lane, maybe on a thread)."""
        raise NotImplementedError

    def encode(self, result: Prediction, parsed: Parsed, request_id: str) -> Answer:
        raise NotImplementedError

    def error_body(
        self, status: int, message: str, details: list[dict[str, object]]
    ) -> tuple[int, bytes, bytes]:
        """An error's status, content type and body in this protocol's shape."""
        raise NotImplementedError


def json_answer(status: int, content: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> Answer:
    headers = [(b"content-length", str(len(content)).encode()), (b"content-type", JSON)]
    if extra:
        headers += extra
    return status, headers, content


_MODELS, _PREDICT = "/models/", "/predict"
_V2, _INFER = "/v2/models/", "/infer"


def match(path: str) -> tuple[Codec, dict[str, str]] | None:
    """The codec and path parameters of a ``POST`` prediction endpoint, or None for any other path.

    ``/models/{ref}/predict`` (native), ``/v2/models/{name}[/versions/{version}]/infer`` (v2),
    ``/invocations`` (MLflow).
    """
    from modelport.serving.codecs import mlflow, native, v2

    if path.startswith(_MODELS) and path.endswith(_PREDICT):
        ref = path[len(_MODELS) : -len(_PREDICT)]
        if ref and "/" not in ref:
            return native.CODEC, {"ref": ref}
        return None
    if path.startswith(_V2) and path.endswith(_INFER):
        parts = path[len(_V2) : -len(_INFER)].split("/")
        if len(parts) == 1 and parts[0]:
            return v2.CODEC, {"name": parts[0]}
        if len(parts) == 3 and parts[0] and parts[1] == "versions" and parts[2]:
            return v2.CODEC, {"name": parts[0], "version": parts[2]}
        return None
    if path == "/invocations":
        return mlflow.CODEC, {}
    return None


def by_name(name: str | None) -> Codec:
    """The codec of a protocol name (``native`` for None or an unknown one)."""
    from modelport.serving.codecs import mlflow, native, v2

    return {"v2": v2.CODEC, "mlflow": mlflow.CODEC}.get(name or "", native.CODEC)
