"""The models bench_serving.py serves (the credit pipeline and a small MLP, registered and compiled
in a fresh MODELPORT_HOME), their request bodies, and MLflow's own environment and saved models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from _peer_venv import peer_venv

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MLFLOW_VENV = HERE / ".venv-mlflow"
MLFLOW_REQS = HERE / "requirements-mlflow.txt"
ROWS = (1, 100)


def _write_bodies(tmp: Path, tag: str, key: str, rows: list[Any]) -> dict[int, Path]:
    out = {}
    for n in ROWS:
        p = tmp / f"{tag}-{n}.json"
        p.write_bytes(json.dumps({key: rows[:n]}).encode())
        out[n] = p
    return out


def _records(frame: Any) -> list[dict[str, Any]]:
    recs = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()} for r in recs]


def build_models(tmp: Path) -> dict[str, Any]:
    """Register + compile the credit pipeline and the MLP in a fresh MODELPORT_HOME; write bodies."""
    import torch
    from bench_compiled import _mlp

    import modelport as mp
    from modelport.registry import MODEL_DIR
    from modelport_examples.credit import FEATURES, NUMERIC, generate_applications, train_credit_model

    df = generate_applications(20_000, seed=1)
    credit, _auc = train_credit_model(df)
    X = df[FEATURES]
    Xn = X[NUMERIC].fillna(0.0).to_numpy(dtype=np.float32)
    mlp = _mlp(Xn, df["default"].to_numpy())
    torch.save(mlp.state_dict(), tmp / "mlp_state.pt")
    reg = mp.default_client().registry
    info: dict[str, Any] = {}
    for name, model, sample, kwargs in (
        ("credit", credit, X, {}),
        ("mlp", mlp, Xn, {"flavor_options": {"task": "classifier", "classes": [0, 1]}}),
    ):
        mv = mp.register(model, name, sample=sample, **kwargs)
        report = mp.compile(mv.ref)
        twin = reg.meta.get_compiled(mv.name, mv.version, "onnx")
        onnx_file = None
        if twin is not None:
            src = reg.artifacts.local_copy(twin["artifact_uri"], twin["files"], "twin")
            onnx_file = tmp / f"{name}.onnx"
            shutil.copyfile(src / MODEL_DIR / twin["info"]["file"], onnx_file)
        info[name] = {"ref": mv.ref, "parity": report.summary(), "passed": report.passed, "onnx": onnx_file}
    credit_rows = _records(X.head(max(ROWS)))
    mlp_rows = Xn[: max(ROWS)].round(4).tolist()
    info["credit"]["bodies"] = {
        "native": _write_bodies(tmp, "credit-native", "inputs", credit_rows),
        "mlflow": _write_bodies(tmp, "credit-mlflow", "dataframe_records", credit_rows),
    }
    info["mlp"]["bodies"] = {
        "native": _write_bodies(tmp, "mlp-native", "inputs", mlp_rows),
        "mlflow": _write_bodies(tmp, "mlp-mlflow", "inputs", mlp_rows),
    }
    return info


# --- the MLflow environment ----------------------------------------------------------------------


def mlflow_env() -> tuple[Path | None, str]:
    """benchmarks/.venv-mlflow, created once per requirements-mlflow.txt content; (bin, note)."""
    if os.environ.get("BENCH_SKIP_MLFLOW") == "1":
        return None, "skipped (BENCH_SKIP_MLFLOW=1)"
    bin_dir, note = peer_venv(MLFLOW_VENV, MLFLOW_REQS)
    if bin_dir is None:
        return None, note
    out = subprocess.run(
        [str(bin_dir / "python"), "-c", "import importlib.metadata as m; print(m.version('mlflow'))"],
        capture_output=True,
        text=True,
    )
    return bin_dir, out.stdout.strip() or "unknown"


def save_mlflow_models(bin_dir: Path, tmp: Path) -> Path | None:
    out = tmp / "mlflow-models"
    proc = subprocess.run(
        [str(bin_dir / "python"), str(HERE / "_mlflow_models.py"), str(out), str(tmp / "mlp_state.pt")],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        print(f"MLflow models not saved: {proc.stderr[-800:]}")
        return None
    return out
