"""Process and load-generator helpers of bench_serving.py: start and stop servers, POST once, run wrk."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WRK_THREADS = int(os.environ.get("BENCH_WRK_THREADS", "1"))


# --- processes -----------------------------------------------------------------------------------


def bare_cmd(python: str, port: int, workers: int) -> list[str]:
    """The bare Starlette + onnxruntime peer (``BARE_ONNX`` names its model) under uvicorn."""
    cmd = [python, "-m", "uvicorn", "_bare_onnx_app:app", "--port", str(port), "--workers", str(workers)]
    return [*cmd, "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(
    name: str, cmd: list[str], health: str, port: int, env: dict[str, str], logdir: Path, cwd: Path = HERE
) -> Iterator[None]:
    """Start ``cmd`` in its own process group, wait for ``health`` to answer 200, stop it after."""
    log = (logdir / f"{name}-{port}.log").open("wb")
    proc = subprocess.Popen(
        cmd, cwd=cwd, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}: {_tail(log.name)}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{health}", timeout=2) as r:
                    if r.status == 200:
                        break
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready after 180 s: {_tail(log.name)}")
            time.sleep(0.25)
        yield
    finally:
        _stop(proc)
        log.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the group we started: the server and its workers
        except ProcessLookupError:
            return
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    with contextlib.suppress(ProcessLookupError, PermissionError):  # workers that outlived their parent
        os.killpg(proc.pid, signal.SIGKILL)
    time.sleep(0.5)


def _tail(path: str, n: int = 1500) -> str:
    try:
        return Path(path).read_bytes()[-n:].decode(errors="replace")
    except OSError:
        return ""


def post(port: int, path: str, body: bytes) -> tuple[int, Any]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", body, {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:300].decode(errors="replace")


# --- wrk -----------------------------------------------------------------------------------------


def wrk(
    port: int, path: str, body: Path, conc: int, seconds: float, count_status: bool = False
) -> dict[str, Any]:
    """One wrk run: POST ``body`` on ``conc`` connections for ``seconds``; its WRKJSON line.
    ``count_status`` counts every status (``codes``) and estimates the 200s' own p99 (``ok_p99_us``)."""
    cmd = [
        "wrk",
        f"-t{max(1, min(WRK_THREADS, conc))}",
        f"-c{conc}",
        f"-d{seconds}s",
        "--timeout",
        "5s",
        "-s",
        str(HERE / "wrk_post.lua"),
        f"http://127.0.0.1:{port}{path}",
    ]
    out = subprocess.run(
        cmd,
        env={**os.environ, "WRK_BODY_FILE": str(body), "WRK_COUNT_STATUS": "1" if count_status else "0"},
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout[-500:]} {out.stderr[-500:]}")
    return dict(json.loads(line[8:]))
