"""REST serving under load: every protocol of ``modelport serve`` × runtime, beside Seldon MLServer,
``mlflow models serve`` and a hand-written Starlette + onnxruntime app, on loopback with ``wrk``;
then batching on/off and overload (closed and open loop, with and without ``--sla-ms``).

Run with ``make bench`` (or ``cd benchmarks && ../.venv/bin/python bench_serving.py``).

What runs: three models registered in a fresh MODELPORT_HOME (``_serving_models.py``: ``credit``,
the text-heavy credit pipeline; ``wide``, a 30-feature HistGradientBoosting classifier; ``mlp``, a
small torch network), each served on its own by ``modelport serve MODEL --workers 1 --runtime R``
(R = native, onnx; every other setting its default) and asked with 1-row requests at c = 1, 16, 64
through each protocol it has a form for: native ``/models/{name}/predict``, v2 REST with one input
per column, v2 with one 2-d tensor ``[N, F]`` input named ``input``, and MLflow ``/invocations``.
Peers run from their own virtual environments, never the project's: MLServer (``_mlserver.py``,
benchmarks/.venv-mlserver) and MLflow (benchmarks/.venv-mlflow), both created on first use from
their requirements file (a stamp keyed by its hash keeps later runs from reinstalling).

Environment: ``BENCH_QUICK=1`` (smoke run: 1 s per line, MLflow only in its best configuration, no rematch),
``BENCH_SECONDS`` (seconds per line, default 4; 1 when quick), ``BENCH_WARMUP_SECONDS`` (once per
server and protocol, default 1), ``BENCH_WRK_THREADS`` (default 1), ``BENCH_SLA_MS`` (the overload
runs' ``--sla-ms``, default 20), ``BENCH_REMATCH_ROUNDS`` (default 1), ``BENCH_MODELS``
(comma-separated subset of credit,wide,mlp), ``BENCH_SKIP_MLFLOW=1``, ``BENCH_SKIP_MLSERVER=1``.

Load generator and servers share the machine's cores: numbers are for this whole box, not a
server alone. Goals are reported as PASS / below goal; the benchmark never fails on them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _mlserver import MLSERVER_CONFIG, MLSERVER_ENV, mlserver_cmd, mlserver_env
from _rematch import ROUNDS, rematch
from _serving_models import MODELS, PROTOCOLS, build_models, mlflow_env, save_mlflow_models
from _serving_procs import WRK_THREADS, bare_cmd, free_port, post, server, wrk

HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
QUICK = os.environ.get("BENCH_QUICK") == "1"
SECONDS = int(os.environ.get("BENCH_SECONDS", "1" if QUICK else "4"))  # wrk takes whole seconds
WARMUP = int(os.environ.get("BENCH_WARMUP_SECONDS", "1"))
CONCURRENCY = (1, 16, 64)
OVERLOAD_CONCURRENCY = (1, 16, 64, 256, 1024)
SLA_MS = float(os.environ.get("BENCH_SLA_MS", "20"))
RUNTIMES = ("native", "onnx")
SELECTED = [m for m in os.environ.get("BENCH_MODELS", ",".join(MODELS)).split(",") if m in MODELS]
MLFLOW_CONFIGS = ((2, {"OMP_NUM_THREADS": "1"}),) if QUICK else ((1, {}), (2, {"OMP_NUM_THREADS": "1"}))


@dataclass
class Result:
    system: str  # modelport, bare, mlflow, mlserver
    config: str  # modelport: its runtime; peers: their configuration
    model: str
    protocol: str
    rows: int
    conc: int
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    timeouts: int
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Target:
    """One running server and how to ask it for predictions of one model."""

    port: int
    path: str
    bodies: dict[int, Path]  # rows -> request body file


RESULTS: list[Result] = []
NOTES: list[str] = []


def measure(
    system: str, config: str, model: str, protocol: str, target: Target, rows: int, conc: int
) -> Result:
    w = wrk(target.port, target.path, target.bodies[rows], conc, SECONDS)
    res = Result(
        system,
        config,
        model,
        protocol,
        rows,
        conc,
        w["requests"] / (w["duration_us"] / 1e6),
        w["p50_us"] / 1e3,
        w["p99_us"] / 1e3,
        w["status"],
        w["connect"] + w["read"] + w["write"],
        w["timeout"],
    )
    RESULTS.append(res)
    print(_row(res), flush=True)
    return res


def warm(target: Target, conc: int = 16) -> None:
    if WARMUP > 0:
        wrk(target.port, target.path, target.bodies[1], conc, WARMUP)


def sweep(system: str, config: str, model: str, protocol: str, target: Target) -> None:
    warm(target)
    for c in CONCURRENCY:
        measure(system, config, model, protocol, target, 1, c)


HEADER = (
    f"{'system':<9} {'config':<25} {'model':<6} {'protocol':<11} {'rows':>4} {'c':>4} {'req/s':>9} "
    f"{'p50 ms':>8} {'p99 ms':>8} {'non2xx':>7} {'sockerr':>7} {'timeout':>7}"
)


def _row(r: Result) -> str:
    return (
        f"{r.system:<9} {r.config:<25} {r.model:<6} {r.protocol:<11} {r.rows:>4} {r.conc:>4} "
        f"{r.rps:>9,.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.non2xx:>7} {r.socket_errors:>7} "
        f"{r.timeouts:>7}"
    )


def best(
    system: str, model: str, protocol: str, conc: int, config: str | None = None, rows: int = 1
) -> Result | None:
    pool = [
        r
        for r in RESULTS
        if r.system == system
        and r.model == model
        and r.protocol == protocol
        and r.rows == rows
        and r.conc == conc
        and (config is None or r.config == config)
    ]
    return max(pool, key=lambda r: r.rps) if pool else None


def _div(a: float, b: float) -> float:
    """a / b; infinite where b is 0 (a peer that answered nothing in its line)."""
    return a / b if b else float("inf")


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "below goal"


# --- checks --------------------------------------------------------------------------------------


def _probs(answer: Any) -> np.ndarray:
    """Positive-class probabilities (or labels, where a protocol answers only those) from any answer."""
    if isinstance(answer, dict) and "outputs" in answer:  # v2 (modelport, MLServer)
        outs = {o["name"]: o for o in answer["outputs"]}
        o = outs.get("probabilities") or outs.get("predict_proba") or answer["outputs"][-1]
        return _last_column(np.asarray(o["data"], dtype=float).reshape(o["shape"]))
    if isinstance(answer, dict) and "probabilities" in answer:  # native, bare
        return _last_column(np.asarray(answer["probabilities"], dtype=float))
    preds = answer["predictions"] if isinstance(answer, dict) and "predictions" in answer else answer
    if isinstance(preds, dict):
        preds = next(iter(preds.values()))
    if preds and isinstance(preds[0], dict):
        preds = [list(r.values()) for r in preds]
    p = np.asarray(preds, dtype=float)
    if p.ndim == 2 and not np.allclose(p.sum(1), 1.0, atol=1e-3):  # logits (mlflow.pytorch)
        e = np.exp(p - p.max(1, keepdims=True))
        p = e / e.sum(1, keepdims=True)
    return _last_column(p)


def _last_column(p: np.ndarray) -> np.ndarray:
    return p[:, -1] if p.ndim == 2 else p


def check(target: Target, reference: dict[str, np.ndarray], model: str) -> str:
    """Ask once with 100 rows; raise unless it answers 100 predictions; compare with the reference."""
    status, answer = post(target.port, target.path, target.bodies[100].read_bytes())
    if status != 200:
        raise RuntimeError(f"answered {status}: {str(answer)[:300]}")
    p = _probs(answer)
    if len(p) != 100:
        raise RuntimeError(f"returned {len(p)} predictions for 100 rows")
    ref = reference.setdefault(model, p)
    if ref is p:
        return "reference"
    labels_only = np.isin(p, (0.0, 1.0)).all() and not np.isin(ref, (0.0, 1.0)).all()
    if labels_only:
        return f"labels agree {np.mean(p == (ref >= 0.5)):.1%} (answers labels only)"
    return f"max |Δp| {np.abs(p - ref).max():.1e}"


# --- the systems ---------------------------------------------------------------------------------


def serve_help() -> str:
    out = subprocess.run([str(VENV_BIN / "modelport"), "serve", "--help"], capture_output=True, text=True)
    return out.stdout + out.stderr


def modelport_cmd(refs: list[str], port: int, *extra: str) -> list[str]:
    return [str(VENV_BIN / "modelport"), "serve", *refs, "--port", str(port), "--workers", "1", *extra]


def runtime_of(port: int, model: str) -> str:
    """The runtime the server says it uses (v2 model metadata), or '?'."""
    try:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/{model}", timeout=5) as r:
            return str(json.loads(r.read()).get("parameters", {}).get("runtime", "?"))
    except (OSError, ValueError):
        return "?"


def run_modelport(
    models: dict[str, Any], logdir: Path, reference: dict[str, np.ndarray], help_text: str
) -> None:
    has_runtime = "--runtime" in help_text
    if not has_runtime:
        NOTES.append("modelport serve has no --runtime: each model served once, with its default runtime")
    for model in SELECTED:
        for runtime in RUNTIMES:
            if runtime == "onnx" and models[model]["onnx"] is None:
                NOTES.append(f"modelport {model} --runtime onnx: no ONNX twin ({models[model]['parity']})")
                continue
            if not has_runtime and runtime != ("onnx" if models[model]["onnx"] is not None else "native"):
                continue
            port = free_port()
            cmd = modelport_cmd([model], port, *(["--runtime", runtime] if has_runtime else []))
            try:
                with server(f"modelport-{model}-{runtime}", cmd, "/readyz", port, {}, logdir):
                    NOTES.append(
                        f"modelport {model} --runtime {runtime}: serves with {runtime_of(port, model)}"
                    )
                    for protocol, template in PROTOCOLS.items():
                        bodies = models[model]["bodies"].get(protocol)
                        if bodies is None:
                            continue
                        target = Target(port, template.format(name=model), bodies)
                        try:
                            note = check(target, reference, model)
                        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
                            NOTES.append(f"modelport {model} {runtime} {protocol}: not measured, {exc}")
                            continue
                        if note != "reference":
                            NOTES.append(f"modelport {model} {runtime} {protocol}: {note}")
                        sweep("modelport", runtime, model, protocol, target)
                        if protocol == "native":
                            measure("modelport", runtime, model, protocol, target, 100, 16)
            except RuntimeError as exc:
                NOTES.append(f"modelport {model} --runtime {runtime}: failed: {str(exc)[:300]}")


def run_bare(models: dict[str, Any], logdir: Path, reference: dict[str, np.ndarray]) -> None:
    for model in SELECTED:
        onnx_file = models[model]["onnx"]
        if onnx_file is None:
            continue
        port = free_port()
        cmd = bare_cmd(str(VENV_BIN / "python"), port, 1)
        try:
            with server(f"bare-{model}", cmd, "/health", port, {"BARE_ONNX": str(onnx_file)}, logdir):
                target = Target(port, "/predict", models[model]["bodies"]["bare"])
                NOTES.append(f"bare {model}: {check(target, reference, model)}")
                sweep("bare", "1w, ort 1 thread", model, "native", target)
                measure("bare", "1w, ort 1 thread", model, "native", target, 100, 16)
        except RuntimeError as exc:
            NOTES.append(f"bare {model}: failed: {str(exc)[:300]}")


def run_mlflow(models: dict[str, Any], logdir: Path, reference: dict[str, np.ndarray], tmp: Path) -> None:
    mlflow_bin, note = mlflow_env()
    NOTES.append(f"mlflow: {note}")
    if mlflow_bin is None:
        return
    mlflow_dir = save_mlflow_models(mlflow_bin, tmp, models)
    if mlflow_dir is None:
        return
    for workers, env in MLFLOW_CONFIGS:
        for model in SELECTED:
            path = mlflow_dir / model
            if not path.exists():
                continue
            port = free_port()
            cmd = [str(mlflow_bin / "mlflow"), "models", "serve", "-m", str(path), "--env-manager", "local"]
            cmd += ["-h", "127.0.0.1", "-p", str(port), "--workers", str(workers)]
            penv = {**env, "PATH": f"{mlflow_bin}:{os.environ.get('PATH', '')}"}
            config = f"{workers}w" + (", OMP=1" if env.get("OMP_NUM_THREADS") else "")
            target = Target(port, "/invocations", models[model]["bodies"]["mlflow"])
            _sweep_peer(
                "mlflow", config, model, "invocations", (cmd, "/ping", port, penv), target, logdir, reference
            )


def run_mlserver(models: dict[str, Any], logdir: Path, reference: dict[str, np.ndarray], tmp: Path) -> None:
    mls_bin, note = mlserver_env()
    NOTES.append(f"mlserver: {note}")
    if mls_bin is None:
        return
    for model in SELECTED:
        joblib_file = models[model]["joblib"]
        if joblib_file is None:
            continue
        port = free_port()
        cmd = mlserver_cmd(mls_bin, tmp / "mlserver" / model, model, joblib_file, port)
        target = Target(port, f"/v2/models/{model}/infer", models[model]["bodies"]["mlserver"])
        process = (cmd, "/v2/health/ready", port, MLSERVER_ENV)
        _sweep_peer("mlserver", MLSERVER_CONFIG, model, "v2-columns", process, target, logdir, reference)


def _sweep_peer(
    system: str,
    config: str,
    model: str,
    protocol: str,
    process: tuple[list[str], str, int, dict[str, str]],
    target: Target,
    logdir: Path,
    reference: dict[str, np.ndarray],
) -> None:
    """Start a peer's server (command, health path, port, environment), check its answers, sweep it."""
    cmd, health, port, env = process
    try:
        with server(f"{system}-{model}", cmd, health, port, env, logdir):
            NOTES.append(f"{system} {model} {config}: {check(target, reference, model)}")
            sweep(system, config, model, protocol, target)
    except RuntimeError as exc:
        NOTES.append(f"{system} {model} {config}: failed: {str(exc)[:300]}")


def run_rematch(models: dict[str, Any], logdir: Path) -> None:
    def one(system: str, model: str, port: int, path: str, conc: int) -> None:
        body = models[model]["bodies"]["native"]
        config = "onnx" if system == "modelport" else "1w, ort 1 thread"
        measure(system, config, model, "native", Target(port, path, body), 1, conc)

    rematch(
        models,
        SELECTED,
        logdir,
        lambda model, port: modelport_cmd([model], port, "--runtime", "onnx"),
        lambda port: bare_cmd(str(VENV_BIN / "python"), port, 1),
        one,
    )


def run_batching(models: dict[str, Any], logdir: Path, help_text: str) -> list[str]:
    """c=64, 1-row: the defaults (coalescing), --no-coalesce (one call per request), --batching."""
    if "--batching" not in help_text:
        return ["batching: not available in this build (modelport serve has no --batching)"]
    names: list[str] = [m for m in ("credit", "mlp") if m in SELECTED]
    if not names:
        return []
    for config, flags in (
        ("defaults", []),
        ("no merging", ["--no-coalesce"]),
        ("--batching", ["--batching"]),
    ):
        port = free_port()
        with server(f"modelport-{config}", modelport_cmd(names, port, *flags), "/readyz", port, {}, logdir):
            for model in names:
                target = Target(port, f"/models/{model}/predict", models[model]["bodies"]["native"])
                warm(target, 64)
                measure("modelport", f"auto, {config}", model, "native", target, 1, 64)
    lines = []
    for model in names:
        on = best("modelport", model, "native", 64, "auto, --batching")
        off = best("modelport", model, "native", 64, "auto, no merging")
        default = best("modelport", model, "native", 64, "auto, defaults")
        if on is None or off is None or default is None:
            continue
        ratio = _div(on.rps, off.rps)
        goal = 1.5 if model == "mlp" else 0.95
        lines.append(
            f"batching {model} c=64 1-row: {on.rps:,.0f} vs {off.rps:,.0f} req/s (no merging) = {ratio:.2f}× "
            f"(goal ≥ {goal}×) {_verdict(ratio >= goal)}; p99 {on.p99_ms:.1f} vs {off.p99_ms:.1f} ms; "
            f"defaults (coalescing) {default.rps:,.0f} = {_div(default.rps, off.rps):.2f}× no merging"
        )
    return lines


# --- overload ------------------------------------------------------------------------------------


def unloaded(model: str, runtime: str) -> dict[int, float]:
    """The native protocol's unloaded req/s of ``model`` and ``runtime`` from the matrix, per overload
    concurrency: its own line at c=1 and c=16; from c=64 up, the capacity (best of c=16 and c=64)."""
    rps = {c: r.rps for c in CONCURRENCY if (r := best("modelport", model, "native", c, runtime))}
    cap = max((rps[c] for c in (16, 64) if c in rps), default=0.0)
    return {c: (rps.get(c, cap) if c < 64 else cap) for c in OVERLOAD_CONCURRENCY}


def _settle(port: int, path: str, body: Path, deadline_s: float = 15.0) -> None:
    """Wait until the server answers one request within 100 ms (a closed loop's queue has drained)."""
    t_end = time.monotonic() + deadline_s
    time.sleep(1.0)
    while time.monotonic() < t_end:
        t0 = time.monotonic()
        post(port, path, body.read_bytes())
        if time.monotonic() - t0 < 0.1:
            return


def overload(models: dict[str, Any], logdir: Path, help_text: str) -> list[str]:
    model = "credit" if "credit" in SELECTED else SELECTED[0]
    body = models[model]["bodies"]["native"][1]
    path = f"/models/{model}/predict"
    settings: list[tuple[str, list[str]]] = [("no --sla-ms", [])]
    lines = []
    if "--sla-ms" in help_text:
        settings.append((f"--sla-ms {SLA_MS:g}", ["--sla-ms", f"{SLA_MS:g}"]))
    else:
        lines.append("  --sla-ms: not available in this build")
    print(f"\noverload ({model}; goodput = 200s per second; p99 of the 200s, wrk: 503s taken as the fastest)")
    for label, flags in settings:
        port = free_port()
        with server("modelport-overload", modelport_cmd([model], port, *flags), "/readyz", port, {}, logdir):
            runtime = runtime_of(port, model)
            if runtime not in RUNTIMES:
                runtime = "onnx" if models[model]["onnx"] is not None else "native"
            ref = unloaded(model, runtime)
            cap = ref[OVERLOAD_CONCURRENCY[-1]]
            if cap <= 0:
                return ["overload: no unloaded measurement to compare with"]
            if label == settings[0][0]:
                lines.insert(
                    0,
                    f"overload: {model}, native protocol, 1 worker, defaults (runtime {runtime}); unloaded "
                    f"req/s {', '.join(f'c={c} {v:,.0f}' for c, v in ref.items() if c <= 64)} (from c=64 "
                    f"up: capacity {cap:,.0f}); goal per line: goodput ≥ 0.8× that and 0 timeouts",
                )
            warm(Target(port, path, {1: body}), 64)
            for c in OVERLOAD_CONCURRENCY:
                w = wrk(port, path, body, c, SECONDS, count_status=True)
                secs = w["duration_us"] / 1e6
                ok = int(w["codes"].get("200", 0))
                good = ok / secs
                shed = int(w["codes"].get("503", 0))
                other = w["requests"] - ok - shed
                errors = w["connect"] + w["read"] + w["write"]
                p99 = w["ok_p99_us"] / 1e3
                passed = good >= 0.8 * ref[c] and w["timeout"] == 0
                line = (
                    f"  closed loop c={c:<4} {label:<13}: goodput {good:>7,.0f} req/s "
                    f"= {_div(good, ref[c]):.2f}× unloaded, p99 of 200s "
                    f"{f'{p99:7.1f} ms' if ok else '      -   '}, 503s {shed}, other non-200 {other}, "
                    f"timeouts {w['timeout']}, socket errors {errors} {_verdict(passed)}"
                )
                print(line, flush=True)
                lines.append(line)
                RESULTS.append(
                    Result(
                        "modelport",
                        f"overload {label}",
                        model,
                        "native",
                        1,
                        c,
                        good,
                        w["p50_us"] / 1e3,
                        p99,
                        w["status"],
                        errors,
                        w["timeout"],
                    )
                )
            _settle(port, path, body)
            lines += _open_loop(port, path, body, 2 * cap, cap, label)
            print(lines[-1], flush=True)
    return lines


def _open_loop(port: int, path: str, body: Path, rate: float, cap: float, label: str) -> list[str]:
    seconds = max(SECONDS, 2)
    proc = subprocess.run(
        [
            *(str(VENV_BIN / "python"), str(HERE / "_openloop.py"), "127.0.0.1", str(port), path),
            *(str(body), f"{rate:.0f}", str(seconds), "2"),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    line = next((x for x in proc.stdout.splitlines() if x.startswith("OPENLOOP ")), None)
    if line is None:
        return [f"  open loop {label}: generator failed: {proc.stderr[-600:]}"]
    r = json.loads(line[9:])
    ok = r["codes"].get("200", 0)
    good = ok / seconds
    timeouts = r["timeouts"]
    errors = r["socket_errors"]
    ok_p99 = r["ok_p99_ms"]
    passed = good >= 0.8 * cap and timeouts == 0
    out = [
        f"  open loop 2× capacity {label:<13}: offered {r['offered_rate']:,.0f} req/s (target {rate:,.0f}) "
        f"for {seconds} s; goodput {good:,.0f} req/s = {_div(good, cap):.2f}× capacity, p99 of 200s "
        f"{'-' if ok_p99 is None else f'{ok_p99:.1f} ms'} (from scheduled send), statuses {r['codes']}, "
        f"timeouts {timeouts}, socket errors {errors}, unsent {r.get('unsent', 0)} {_verdict(passed)}"
    ]
    if r["offered_rate"] < 0.9 * rate:
        out[0] += " (the generator could not hold the rate on these cores)"
    return out


# --- goals and the summary table -----------------------------------------------------------------


def goal_lines() -> list[str]:
    lines: list[str] = []
    # 1. every protocol ≥ 0.8× the native protocol, same model and runtime, at every c
    for model in SELECTED:
        for runtime in RUNTIMES:
            for protocol in PROTOCOLS:
                if protocol == "native" or best("modelport", model, protocol, 16, runtime) is None:
                    continue
                parts, ok = [], True
                for c in CONCURRENCY:
                    m, n = (
                        best("modelport", model, protocol, c, runtime),
                        best("modelport", model, "native", c, runtime),
                    )
                    if m and n:
                        ratio = _div(m.rps, n.rps)
                        ok &= ratio >= 0.8
                        parts.append(f"c={c} {ratio:.2f}×")
                lines.append(
                    f"{protocol} / native, {model}, {runtime} runtime: {', '.join(parts)} (goal ≥ 0.8×) "
                    f"{_verdict(ok)}"
                )
    # 2. v2 ≥ 10× MLServer, /invocations ≥ 20× MLflow; p99 ≤ 1/10 of the peer's (c=16)
    for peer, protocols, goal in (
        ("mlserver", ("v2-columns", "v2-tensor"), 10),
        ("mlflow", ("invocations",), 20),
    ):
        for model in SELECTED:
            p = best(peer, model, "v2-columns" if peer == "mlserver" else "invocations", 16)
            if p is None:
                continue
            for runtime in RUNTIMES:
                for protocol in protocols:
                    m = best("modelport", model, protocol, 16, runtime)
                    if m is None:
                        continue
                    ratio, p99 = _div(m.rps, p.rps), _div(m.p99_ms, p.p99_ms)
                    lines.append(
                        f"{protocol} ({runtime}) / {peer} ({p.config}), {model} c=16: req/s {ratio:,.1f}× "
                        f"(goal ≥ {goal}×) {_verdict(ratio >= goal)}; p99 {m.p99_ms:.2f} vs "
                        f"{p.p99_ms:.1f} ms = {p99:.3f} (goal ≤ 0.1) {_verdict(p99 <= 0.1)}"
                    )
    for peer in ("mlserver", "mlflow"):
        if not any(r.system == peer for r in RESULTS):
            lines.append(f"{peer}: did not run (see notes)")
    # 3. native protocol ≥ 1.0× the bare app at c=1 and c=16, every feature on (onnx runtime)
    for model in SELECTED:
        for c in (1, 16):
            m, b = best("modelport", model, "native", c, "onnx"), best("bare", model, "native", c)
            if m and b:
                ratio = _div(m.rps, b.rps)
                lines.append(
                    f"native (onnx, every default on) / bare starlette+onnxruntime, {model} c={c}: "
                    f"{m.rps:,.0f} / {b.rps:,.0f} req/s = {ratio:.2f}× (goal ≥ 1.0×) {_verdict(ratio >= 1.0)}"
                )
    for model in SELECTED:
        m = best("modelport", model, "native", 16, "onnx", rows=100) or best(
            "modelport", model, "native", 16, rows=100
        )
        b = best("bare", model, "native", 16, rows=100)
        if m:
            tail = f", bare {b.rps:,.0f} ({_div(m.rps, b.rps):.2f}×)" if b else ""
            lines.append(f"{model} 100-row req/s at c=16: modelport ({m.config}) {m.rps:,.0f}{tail}")
    return lines


def summary_table() -> list[str]:
    """Markdown: every 1-row line of the matrix and the peers; × = req/s over modelport's native
    protocol on the same model, runtime (peers: the onnx runtime's) and concurrency."""
    out = [
        "| model | system | protocol | runtime / config | c | req/s | p50 ms | p99 ms | × native |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    keys: dict[tuple[str, str, str, str, int], Result] = {}
    for r in RESULTS:
        if r.rows != 1 or r.config.startswith(("overload", "auto,")):
            continue
        k = (r.model, r.system, r.protocol, r.config, r.conc)
        if k not in keys or r.rps > keys[k].rps:
            keys[k] = r
    order = {"modelport": 0, "bare": 1, "mlserver": 2, "mlflow": 3}
    proto = {p: i for i, p in enumerate(PROTOCOLS)}
    for k in sorted(keys, key=lambda k: (MODELS.index(k[0]), order[k[1]], proto[k[2]], k[3], k[4])):
        r = keys[k]
        base = best("modelport", r.model, "native", r.conc, r.config if r.system == "modelport" else "onnx")
        ratio = f"{_div(r.rps, base.rps):.2f}" if base else "-"
        out.append(
            f"| {r.model} | {r.system} | {r.protocol} | {r.config} | {r.conc} | {r.rps:,.0f} | "
            f"{r.p50_ms:.2f} | {r.p99_ms:.2f} | {ratio} |"
        )
    return out


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mp-bench-serving-"))
    os.environ["MODELPORT_HOME"] = str(tmp / "home")
    logdir = tmp / "logs"
    logdir.mkdir()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk); serving benchmark skipped.")
        return
    t_start = time.monotonic()
    import onnxruntime

    import modelport as mp

    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    print(
        f"modelport {mp.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {wrk_version.strip()}"
        + (", QUICK" if QUICK else "")
    )
    print(
        f"loopback 127.0.0.1; wrk -t{WRK_THREADS} for {SECONDS} s per line ({WARMUP} s warm-up per server "
        "and protocol); client and server share the CPUs. Latencies in ms."
    )
    models = build_models(tmp)
    for name in SELECTED:
        print(f"{name}: {models[name]['ref']}, ONNX twin {models[name]['parity']}")
    help_text = serve_help()
    reference: dict[str, np.ndarray] = {}
    print(
        "\nmodelport: `modelport serve MODEL --workers 1 --runtime R`, every other setting its default; "
        "bare: _bare_onnx_app.py (Starlette + onnxruntime, 1 thread, no validation) under uvicorn "
        "uvloop + httptools; mlserver: MLServer's scikit-learn runtime, parallel_workers 0, "
        "OMP_NUM_THREADS=1; mlflow: "
        "`mlflow models serve --env-manager local` (2w: OMP_NUM_THREADS=1, its best in shared/NOTES.md)\n"
    )
    print(HEADER)
    sections: list[str] = []

    def took(name: str, since: float) -> float:
        now = time.monotonic()
        sections.append(f"{name} {now - since:.0f} s")
        return now

    t = took("models", t_start)
    run_modelport(models, logdir, reference, help_text)
    t = took("modelport matrix", t)
    run_bare(models, logdir, reference)
    t = took("bare", t)
    run_mlserver(models, logdir, reference, tmp)
    t = took("mlserver", t)
    run_mlflow(models, logdir, reference, tmp)
    t = took("mlflow", t)
    if ROUNDS > 0:
        print(f"\nrematch: native (onnx) and bare alternating at c=1/16, {ROUNDS} round(s)")
    run_rematch(models, logdir)
    t = took("rematch", t)
    print("\nbatching (both models on one server, runtime auto)")
    batching = run_batching(models, logdir, help_text)
    t = took("batching", t)
    overload_lines = overload(models, logdir, help_text)
    t = took("overload", t)

    print("\nNotes:")
    for line in NOTES:
        print(f"  {line}")
    print("\nGoals (1-row requests; modelport: 1 worker, defaults, freshly registered models):")
    for line in goal_lines() + batching + overload_lines:
        print(line)
    print("\nSummary (1-row requests; × native = req/s / modelport's native protocol, same model, c and")
    print("runtime; peers against the onnx runtime):\n")
    for line in summary_table():
        print(line)
    print(f"\ntotal {time.monotonic() - t_start:.0f} s ({', '.join(sections)}); server logs in {logdir}")


if __name__ == "__main__":
    main()
