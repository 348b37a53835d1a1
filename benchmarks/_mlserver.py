"""Seldon MLServer, bench_serving.py's v2 peer: its own venv (benchmarks/.venv-mlserver, from
requirements-mlserver.txt) and one model folder per served estimator.

Each folder holds ``settings.json`` (server: ``parallel_workers: 0``, the fastest configuration
found on these 2-core boxes in shared/NOTES.md, so inference runs in the server's own process; debug
off: no per-request log line) and ``model-settings.json`` (the scikit-learn runtime,
``mlserver_sklearn.SKLearnModel``, loading ``model.joblib``); ``mlserver start FOLDER`` serves it,
with ``OMP_NUM_THREADS=1`` (``MLSERVER_ENV``): with scikit-learn's default OpenMP team per
HistGradientBoosting call it fell to a few requests per second, and to none in some 1-second
lines, on a busy 2-core box, where one thread held ~40-80.
Requests are v2 REST with one input per column and ``"parameters": {"content_type": "pd"}``, so the
runtime hands the estimator the DataFrame it was fitted on, and ask for ``predict_proba`` alone
(one estimator call per request; asking for ``predict`` too would make it two).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from _peer_venv import peer_env
from _serving_procs import free_port

HERE = Path(__file__).resolve().parent
MLSERVER_VENV = HERE / ".venv-mlserver"
MLSERVER_REQS = HERE / "requirements-mlserver.txt"
MLSERVER_ENV = {"OMP_NUM_THREADS": "1"}
MLSERVER_CONFIG = "parallel_workers 0, OMP=1"


def mlserver_env() -> tuple[Path | None, str]:
    """benchmarks/.venv-mlserver, created once per requirements file content; (bin, note)."""
    return peer_env(MLSERVER_VENV, MLSERVER_REQS, "mlserver", "BENCH_SKIP_MLSERVER")


def mlserver_cmd(bin_dir: Path, folder: Path, name: str, joblib_file: Path, port: int) -> list[str]:
    """Write ``folder`` (settings + the model) for ``name`` on HTTP ``port``; the command serving it."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(joblib_file, folder / "model.joblib")
    settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "parallel_workers": 0,
        "debug": False,
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    model = {
        "name": name,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.joblib", "version": "v1"},
    }
    (folder / "model-settings.json").write_text(json.dumps(model))
    return [str(bin_dir / "mlserver"), "start", str(folder)]
