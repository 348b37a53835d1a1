"""`modelport serve` as a real process: serve.yaml with worker processes, and a graceful drain on
SIGTERM (requests in flight and queued all finish; the process exits cleanly)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.integration.slow_model import SlowDoubler, frame

import modelport as mp

ROOT = Path(__file__).resolve().parents[2]
MODELPORT = Path(sys.executable).parent / "modelport"


@pytest.fixture
def slow_home(home: Path) -> Path:
    mp.register(SlowDoubler(0.6).fit(frame()), "slow", sample=frame())
    return home


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def start_server(slow_home: Path) -> Iterator[Any]:
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> tuple[subprocess.Popen[str], str]:
        port = _port()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}  # the slow model's class must import in the server
        proc = subprocess.Popen(
            [str(MODELPORT), "serve", *args, "--port", str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    return proc, url
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        pytest.fail("server did not become ready")

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _in_flight(url: str, n: int, started: threading.Event) -> list[Any]:
    def post(i: int) -> Any:
        with httpx.Client(timeout=60) as client:
            if i == n - 1:
                started.set()
            try:
                r = client.post(f"{url}/models/slow/predict", json={"inputs": [{"x": float(i)}]})
                return r.status_code, r.json()
            except httpx.HTTPError as exc:
                return -1, repr(exc)

    pool = ThreadPoolExecutor(n)
    return [pool.submit(post, i) for i in range(n)]


def test_sigterm_drains_requests_in_flight(start_server: Any) -> None:
    proc, url = start_server("slow", "--batching", "--watch-interval", "0")
    started = threading.Event()
    futures = _in_flight(url, 6, started)
    started.wait(10)
    time.sleep(0.3)  # the requests reach the server, the first predict call (0.6 s) is running
    proc.send_signal(signal.SIGTERM)
    results = [f.result(timeout=60) for f in futures]
    assert [status for status, _ in results] == [200] * 6, results
    assert [body["predictions"] for _, body in results] == [[2.0 * i] for i in range(6)]
    _stopped_cleanly(proc)


def _stopped_cleanly(proc: subprocess.Popen[str]) -> None:
    """uvicorn re-raises SIGTERM after its graceful shutdown, so -15 is a clean exit too."""
    assert proc.wait(30) in (0, -signal.SIGTERM)
    log = proc.stdout.read() if proc.stdout else ""
    assert "Application shutdown complete" in log, log
    assert "Traceback" not in log, log


def test_serve_yaml_with_two_workers(start_server: Any, tmp_path: Path) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text(
        "models:\n  - ref: slow\n    batching: {max_batch_size: 8, max_wait_ms: 5}\nworkers: 2\n"
    )
    proc, url = start_server("--config", str(config), "--sla-ms", "30000")
    started = threading.Event()
    futures = _in_flight(url, 4, started)
    results = [f.result(timeout=60) for f in futures]
    assert [status for status, _ in results] == [200] * 4, results
    assert httpx.get(f"{url}/v2/models/slow/ready").json()["ready"] is True
    proc.send_signal(signal.SIGTERM)
    _stopped_cleanly(proc)


def test_serve_rejects_a_bad_config(slow_home: Path, tmp_path: Path) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text("models: [slow]\nbatchng: true\n")
    out = subprocess.run(
        [str(MODELPORT), "serve", "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0
    assert "Unknown serve setting(s): batchng" in out.stdout + out.stderr
    out = subprocess.run([str(MODELPORT), "serve"], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "Name a model to serve" in out.stdout + out.stderr
