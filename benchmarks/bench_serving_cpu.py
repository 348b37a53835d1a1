"""Server CPU per request: modelport vs the bare Starlette + onnxruntime app, read from /proc.

On a shared 2-core box requests/s swing by ±15% from run to run; the CPU time each server process
spends per answered request is steadier, and says where a gap comes from. Each system serves the
same ONNX model with 2 workers (``BENCH_WORKERS``) while wrk loads it; the output is one line per
system:

    modelport  c=16: 12,021 req/s  p50 1.15 ms  p99 4.3 ms  server CPU 150 µs/request  wrk 17 µs

``cd benchmarks && ../.venv/bin/python bench_serving_cpu.py [CONCURRENCY ...]`` (default 1 16);
``BENCH_MODEL`` (credit, wide or mlp), ``BENCH_ROWS`` (1 or 100), ``BENCH_SECONDS`` (default 5),
``BENCH_PROTOCOL`` (modelport's: native, v2-columns, v2-tensor or invocations; default native),
``BENCH_SYSTEMS`` (comma-separated, default all, in this order).
``modelport-nolog`` is modelport with ``--log-sample-rate 0``; ``modelport-nomerge`` with
``--no-coalesce``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _serving_models import PROTOCOLS, build_models
from _serving_procs import bare_cmd, free_port, server, wrk

VENV_BIN = Path(sys.executable).parent
MODEL = os.environ.get("BENCH_MODEL", "credit")
ROWS = int(os.environ.get("BENCH_ROWS", "1"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "5"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
PROTOCOL = os.environ.get("BENCH_PROTOCOL", "native")
_TICK = os.sysconf("SC_CLK_TCK")
VARIANTS = {
    "modelport": [],
    "modelport-nolog": ["--log-sample-rate", "0"],
    "modelport-nomerge": ["--no-coalesce"],
}


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def _process_tree(port: int) -> list[int]:
    """The server started with ``--port PORT`` and its worker processes."""
    found = subprocess.run(["pgrep", "-f", "--", f"--port {port}"], capture_output=True, text=True)
    pids = [int(p) for p in found.stdout.split()]
    for parent in list(pids):
        kids = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True)
        pids += [int(p) for p in kids.stdout.split()]
    return sorted(set(pids))


def _command(system: str, port: int) -> tuple[list[str], str, str, dict[str, str]]:
    """(command, predict path, health path, environment) of one system."""
    if system in VARIANTS:
        cmd = [str(VENV_BIN / "modelport"), "serve", MODEL, "--port", str(port), "--workers", str(WORKERS)]
        return [*cmd, *VARIANTS[system]], PROTOCOLS[PROTOCOL].format(name=MODEL), "/readyz", {}
    return bare_cmd(str(VENV_BIN / "python"), port, WORKERS), "/predict", "/health", {}


def main() -> None:
    concurrency = [int(c) for c in sys.argv[1:]] or [1, 16]
    tmp = Path(tempfile.mkdtemp(prefix="mp-bench-cpu-"))
    os.environ["MODELPORT_HOME"] = str(tmp / "home")
    logdir = tmp / "logs"
    logdir.mkdir()
    models = build_models(tmp)
    bodies = models[MODEL]["bodies"]
    print(
        f"{MODEL}, {ROWS}-row requests, modelport's {PROTOCOL} protocol, {WORKERS} worker(s) each, "
        f"wrk {SECONDS} s per line; CPU from /proc"
    )
    systems = os.environ.get("BENCH_SYSTEMS", ",".join([*VARIANTS, "bare"])).split(",")
    for system in systems:
        port = free_port()
        cmd, path, health, env = _command(system, port)
        body = bodies["bare" if system == "bare" else PROTOCOL][ROWS]
        if system == "bare":
            env = {"BARE_ONNX": str(models[MODEL]["onnx"])}
        with server(system, cmd, health, port, env, logdir):
            for conc in concurrency:
                wrk(port, path, body, conc, 1)  # warm-up
                pids = _process_tree(port)
                before = sum(_cpu_seconds(p) for p in pids)
                client = os.times()
                w = wrk(port, path, body, conc, SECONDS)
                client_after = os.times()
                used = sum(_cpu_seconds(p) for p in pids) - before
                n = max(w["requests"], 1)
                wrk_cpu = (client_after.children_user + client_after.children_system) - (
                    client.children_user + client.children_system
                )
                print(
                    f"{system:<18} c={conc:<3} {n / (w['duration_us'] / 1e6):>9,.0f} req/s  "
                    f"p50 {w['p50_us'] / 1e3:6.2f} ms  p99 {w['p99_us'] / 1e3:7.2f} ms  "
                    f"server CPU {used / n * 1e6:6.0f} µs/request  wrk {wrk_cpu / n * 1e6:4.0f} µs",
                    flush=True,
                )
        time.sleep(0.5)


if __name__ == "__main__":
    main()
