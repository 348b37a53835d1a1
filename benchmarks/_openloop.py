"""Open-loop (fixed-rate) HTTP load for bench_serving.py's overload test; wrk cannot hold a rate.

``python _openloop.py HOST PORT PATH BODY_FILE RATE SECONDS [TIMEOUT_S [POOL]]`` sends POSTs at RATE
per second on keep-alive connections, whatever the server answers, and prints one JSON line: status
counts, latency percentiles of the 200s measured from each request's *scheduled* time (so queueing
in the client counts too), timeouts, socket errors, requests it could not send because every
connection was busy (``unsent``), and how far the generator itself fell behind its schedule.

It opens POOL connections (default MAX_CONNS) before the clock starts, as a load balancer or a
pooled client keeps them, and a new one only when none is idle. Connections opened *during* an
overload wait in the kernel's accept queue while the server's event loop is saturated: seen here
with uvicorn + uvloop (any app, the bare Starlette peer too) as seconds before the first byte is
read; that is connection set-up, not the server's queueing, so the pool is opened first.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter, deque
from time import perf_counter as clock  # the loop's clock ticks in whole ms under uvloop
from typing import Any

MAX_CONNS = 1024


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: Any = None  # uvloop's transports are not asyncio.Transport subclasses
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False
        self.keep = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line.startswith(b"content-length:"):
                length = int(line[15:])
            elif line.startswith(b"connection:") and b"close" in line:
                self.keep = False
        if len(self.buf) < end + 4 + length:
            return
        status = int(self.buf[9:12])
        del self.buf[: end + 4 + length]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(str(exc or "closed by the server")))


async def main(
    host: str, port: int, path: str, body: bytes, rate: float, seconds: float, timeout: float, pool: int
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    idle: deque[_Conn] = deque()
    open_conns = 0
    codes: Counter[int] = Counter()
    ok_latencies: list[float] = []
    errors: Counter[str] = Counter()
    lags: list[float] = []

    async def connect() -> _Conn:
        nonlocal open_conns
        open_conns += 1
        try:
            _t, conn = await loop.create_connection(_Conn, host, port)
        except BaseException:
            open_conns -= 1
            raise
        return conn

    for start_at in range(0, pool, 64):  # in steps, so that the server's accept queue never overflows
        for conn in await asyncio.gather(*(connect() for _ in range(start_at, min(pool, start_at + 64)))):
            idle.append(conn)

    async def one(scheduled: float) -> None:
        nonlocal open_conns
        conn = None
        while idle and conn is None:
            c = idle.popleft()
            if c.closed:
                open_conns -= 1
            else:
                conn = c
        try:
            if conn is None:
                if open_conns >= MAX_CONNS:
                    errors["client_conn_limit"] += 1
                    return
                conn = await connect()
            lags.append(clock() - scheduled)
            conn.waiter = loop.create_future()
            conn.transport.write(request)
            status = await asyncio.wait_for(conn.waiter, timeout)
        except TimeoutError:
            errors["timeout"] += 1
            if conn is not None and conn.transport is not None:
                conn.transport.close()
                open_conns -= 1
            return
        except OSError as exc:
            errors["socket"] += 1
            errors[f"socket:{type(exc).__name__}"] += 1
            if conn is not None:
                open_conns -= 1
            return
        except Exception as exc:  # noqa: BLE001 - a bug here must show in the result, not vanish in a task
            errors[f"client:{type(exc).__name__}"] += 1
            return
        codes[status] += 1
        if status == 200:
            ok_latencies.append(clock() - scheduled)
        if conn.keep and not conn.closed:
            idle.append(conn)
        else:
            if conn.transport is not None:
                conn.transport.close()
            open_conns -= 1

    tasks: set[asyncio.Task[None]] = set()
    start = clock() + 0.05
    total = int(rate * seconds)
    sent = 0
    while sent < total:
        now = clock()
        due = min(total, int((now - start) * rate) + 1)
        while sent < due:
            t = loop.create_task(one(start + sent / rate))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            sent += 1
        await asyncio.sleep(max(0.0, start + sent / rate - clock()))
    elapsed = clock() - start
    if tasks:
        await asyncio.wait(set(tasks), timeout=timeout + 1)
    ok_latencies.sort()
    lags.sort()

    def pct(xs: list[float], q: float) -> float | None:
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3 if xs else None

    return {
        "target_rate": rate,
        "sent": sent,
        "offered_rate": sent / elapsed,
        "codes": {str(k): v for k, v in sorted(codes.items())},
        "ok_p50_ms": pct(ok_latencies, 0.50),
        "ok_p99_ms": pct(ok_latencies, 0.99),
        "timeouts": errors["timeout"],
        "socket_errors": errors["socket"],
        "unsent": errors["client_conn_limit"],
        "errors": dict(errors),
        "client_lag_p99_ms": pct(lags, 0.99),
        "connections": open_conns,
    }


if __name__ == "__main__":
    host, port, path, body_file, rate, seconds = sys.argv[1:7]
    timeout = float(sys.argv[7]) if len(sys.argv) > 7 else 2.0
    pool = int(sys.argv[8]) if len(sys.argv) > 8 else MAX_CONNS
    with open(body_file, "rb") as f:
        payload = f.read()
    coro = main(host, int(port), path, payload, float(rate), float(seconds), timeout, pool)
    try:
        import uvloop

        result = uvloop.run(coro)
    except ImportError:
        result = asyncio.run(coro)
    print("OPENLOOP " + json.dumps(result), flush=True)
