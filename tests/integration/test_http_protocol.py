"""The HTTP protocol (serving.protocol): predictions of every protocol answered from the protocol
itself give the same answers as the app's ASGI path, over real sockets on loopback, with
keep-alive, pipelining, ``Connection: close``, ``Expect: 100-continue``, large bodies and errors."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import modelport as mp
from modelport.client import Client
from modelport.config import Settings
from modelport.serving import create_app
from modelport.serving.background import BackgroundServer
from modelport.serving.lanes import INLINE_MAX_BYTES
from tests.integration.answering import CountsAnswers


class Counting(CountsAnswers):
    """The app, counting what the protocol's fast path answered (it passes the fast path on)."""


class Plain:
    """The app behind a wrapper that does not pass the fast path on: every request takes ASGI."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Counting, int, int]]:
    with pytest.MonkeyPatch.context() as mpatch:
        mpatch.setenv("MODELPORT_HOME", str(tmp_path_factory.mktemp("proto") / "mphome"))
        mpatch.delenv("MODELPORT_DB_URL", raising=False)
        mpatch.delenv("MODELPORT_ARTIFACTS", raising=False)
        rng = np.random.default_rng(3)
        P = pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})
        mp.register(LinearRegression().fit(P, P.a * 2 + P.b), "price", sample=P)
        client = Client(Settings.from_env())
        counting = Counting(create_app(client, ["price"], log_sample_rate=0.0))
        plain = Plain(create_app(client, ["price"], log_sample_rate=0.0))
        with BackgroundServer(counting) as fast, BackgroundServer(plain) as slow:
            yield counting, fast.port, slow.port


def _request(path: str, body: bytes, *extra: str, method: str = "POST") -> bytes:
    head = [f"{method} {path} HTTP/1.1", "Host: t", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def _responses(sock: socket.socket, n: int) -> list[tuple[int, dict[str, str], bytes]]:
    """Read ``n`` responses (Content-Length framed) from ``sock``."""
    buf = b""
    out = []
    while len(out) < n:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            assert chunk, f"connection closed after {len(out)} responses"
            buf += chunk
        head, buf = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        size = int(headers["content-length"])
        while len(buf) < size:
            chunk = sock.recv(65536)
            assert chunk
            buf += chunk
        out.append((status, headers, buf[:size]))
        buf = buf[size:]
    return out


def _exchange(port: int, data: bytes, n: int = 1) -> list[tuple[int, dict[str, str], bytes]]:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(data)
        return _responses(sock, n)


def _warm(port: int, counting: Counting | None = None) -> None:
    """A few calls, so the lane has timed the version and scores it on the event loop; with
    ``counting``, until the fast path answers one (on a busy machine the first calls can look slow,
    and a probe on the loop is tried once a second)."""
    body = json.dumps({"inputs": [{"a": 0.5, "b": 1.0}]}).encode()
    before = counting.fast if counting is not None else 0
    deadline = time.monotonic() + 15
    while True:
        _exchange(port, _request("/models/price/predict", body) * 5, 5)
        if counting is None or counting.fast > before or time.monotonic() > deadline:
            return
        time.sleep(0.25)


def _comparable(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], Any]:
    keep = {k: v for k, v in headers.items() if k not in ("date", "x-request-id")}
    answer = json.loads(body)
    answer.pop("request_id", None)
    return keep, answer


def test_fast_answers_equal_the_apps_answers(servers: tuple[Counting, int, int]) -> None:
    counting, fast_port, slow_port = servers
    _warm(fast_port, counting)
    _warm(slow_port)
    bodies = [
        json.dumps({"inputs": [{"a": 1.5, "b": -2.0}]}).encode(),
        json.dumps({"inputs": {"columns": ["a", "b"], "data": [[1, 2], [3, 4]]}}).encode(),
        json.dumps({"inputs": [[0.1, 0.2]]}).encode(),
        b'{"inputs": [{"a": "x", "b": 1}]}',  # wrong type: 422
        b'{"inputs": [{"a": 1}]}',  # missing column: 422
        b'{"inputs": ',  # malformed JSON: 400
        b'{"inputs": [{"a": 1e400, "b": 1}]}',  # out of range
    ]
    for body in bodies:
        before = counting.fast
        ((fs, fh, fb),) = _exchange(fast_port, _request("/models/price/predict", body, "X-Request-ID: r-1"))
        ((ss, sh, sb),) = _exchange(slow_port, _request("/models/price/predict", body, "X-Request-ID: r-1"))
        assert fs == ss, (body, fb, sb)
        assert _comparable(fh, fb) == _comparable(sh, sb), body
        assert fh["x-request-id"] == "r-1"
        assert counting.fast == before + 1, body  # answered by the protocol itself, errors too
        assert "date" in fh and "server" in fh
        if fs == 200:
            assert fh["x-model-version"] == "price:1"
        else:
            assert "error" in json.loads(fb)
    # the unknown model: the app's 404, with the same body
    ((fs, _, fb),) = _exchange(fast_port, _request("/models/nope/predict", bodies[0]))
    ((ss, _, sb),) = _exchange(slow_port, _request("/models/nope/predict", bodies[0]))
    assert fs == ss == 404 and fb == sb


def test_keep_alive_pipelining_and_close(servers: tuple[Counting, int, int]) -> None:
    counting, port, _ = servers
    _warm(port, counting)
    one = json.dumps({"inputs": [{"a": 1.0, "b": 2.0}]}).encode()
    two = json.dumps({"inputs": [{"a": 3.0, "b": 4.0}]}).encode()
    pipelined = (
        _request("/models/price/predict", one, "X-Request-ID: p-1")
        + _request("/healthz", b"", method="GET")
        + _request("/models/price/predict", two, "X-Request-ID: p-2")
        + _request("/models/price/predict", b"{bad", "X-Request-ID: p-3")
        + _request("/models/price/predict", one, "X-Request-ID: p-4")
    )
    before = counting.fast
    answers = _exchange(port, pipelined, 5)
    assert [a[0] for a in answers] == [200, 200, 200, 400, 200]
    assert [a[1].get("x-request-id") for a in answers] == ["p-1", None, "p-2", "p-3", "p-4"]
    assert json.loads(answers[0][2])["predictions"] != json.loads(answers[2][2])["predictions"]
    assert counting.fast >= before + 2
    # Connection: close is honoured: the answer says so and the server closes the connection
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(_request("/models/price/predict", one, "Connection: close"))
        ((status, headers, _),) = _responses(sock, 1)
        assert status == 200 and headers["connection"] == "close"
        assert sock.recv(1) == b""
    # HTTP/1.0 without keep-alive too
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(_request("/models/price/predict", one).replace(b"HTTP/1.1", b"HTTP/1.0", 1))
        ((status, _, _),) = _responses(sock, 1)
        assert status == 200 and sock.recv(1) == b""


def test_bodies_the_fast_path_leaves_to_the_app(servers: tuple[Counting, int, int]) -> None:
    counting, port, _ = servers
    _warm(port, counting)
    before = counting.fast
    # a body larger than the loop takes: read by the app, answered as usual
    rows = [{"a": float(i), "b": 1.0} for i in range(INLINE_MAX_BYTES // 20)]
    big = json.dumps({"inputs": rows}).encode()
    assert len(big) > INLINE_MAX_BYTES
    ((status, _, body),) = _exchange(port, _request("/models/price/predict", big))
    assert status == 200 and len(json.loads(body)["predictions"]) == len(rows)
    # Expect: 100-continue: the app sends the interim response, then reads the body
    one = json.dumps({"inputs": [{"a": 1.0, "b": 2.0}]}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(
            _request("/models/price/predict", b"", "Expect: 100-continue").replace(
                b"Content-Length: 0", f"Content-Length: {len(one)}".encode()
            )
        )
        assert sock.recv(64).startswith(b"HTTP/1.1 100")
        sock.sendall(one)
        ((status, _, _),) = _responses(sock, 1)
        assert status == 200
    # a body that arrives in pieces is held until complete, then answered at once
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        data = _request("/models/price/predict", one)
        sock.sendall(data[:-10])
        sock.sendall(data[-10:])
        ((status, _, _),) = _responses(sock, 1)
        assert status == 200
    assert counting.fast == before + 1  # only the last one
