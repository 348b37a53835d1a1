"""The models bench_serving.py serves, their request bodies for every protocol, and the peers' copies.

Three models, registered and compiled in a fresh MODELPORT_HOME:

- ``credit``: the text-heavy credit pipeline (ColumnTransformer: imputers, scaler, one-hot of two
  string columns, HistGradientBoosting), 13 mixed columns;
- ``wide``: a HistGradientBoosting classifier on scikit-learn's breast-cancer data, 30 float64
  columns (all numeric: the one model a v2 ``[N, 30]`` FP64 tensor fits);
- ``mlp``: a small torch network (256-256) on the credit data's numeric columns, one float32 tensor
  input (so no per-column v2 form).

Each model's ``bodies`` maps a protocol to {rows: body file}; a protocol a model has no form for is
absent. ``joblib`` is the estimator for MLServer's scikit-learn runtime (and MLflow's ``wide``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from _peer_venv import peer_env

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MLFLOW_VENV = HERE / ".venv-mlflow"
MLFLOW_REQS = HERE / "requirements-mlflow.txt"
ROWS = (1, 100)
MODELS = ("credit", "wide", "mlp")
# protocol -> path template on modelport
PROTOCOLS = {
    "native": "/models/{name}/predict",
    "v2-columns": "/v2/models/{name}/infer",
    "v2-tensor": "/v2/models/{name}/infer",
    "invocations": "/invocations",
}


def _write(tmp: Path, tag: str, make: Any, rows: list[Any] | Any) -> dict[int, Path]:
    out = {}
    for n in ROWS:
        p = tmp / f"{tag}-{n}.json"
        p.write_bytes(json.dumps(make(rows[:n])).encode())
        out[n] = p
    return out


def _records(frame: Any) -> list[dict[str, Any]]:
    recs = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in r.items()} for r in recs]


def _v2_type(dtype: Any) -> str:
    kind = np.dtype(dtype).kind if not str(dtype).startswith(("str", "string")) else "O"
    if kind == "f":
        return "FP64" if np.dtype(dtype).itemsize == 8 else "FP32"
    if kind in "iu":
        return ("INT" if kind == "i" else "UINT") + str(np.dtype(dtype).itemsize * 8)
    if kind == "b":
        return "BOOL"
    return "BYTES"


def _v2_columns(frame: Any, extra: dict[str, Any] | None = None) -> Any:
    """One v2 input per column (MLServer's pandas codec form); ``extra`` is merged into the body."""
    types = {c: _v2_type(frame[c].dtype) for c in frame.columns}

    def make(recs: list[dict[str, Any]]) -> dict[str, Any]:
        inputs = [
            {"name": c, "shape": [len(recs), 1], "datatype": t, "data": [r[c] for r in recs]}
            for c, t in types.items()
        ]
        return {"inputs": inputs, "parameters": {"content_type": "pd"}, **(extra or {})}

    return make


def _v2_tensor(datatype: str) -> Any:
    def make(matrix: list[list[Any]]) -> dict[str, Any]:
        width = len(matrix[0])
        return {
            "inputs": [{"name": "input", "shape": [len(matrix), width], "datatype": datatype, "data": matrix}]
        }

    return make


def _wide_data() -> tuple[Any, np.ndarray]:
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer(as_frame=True)
    X = pd.DataFrame(d.data).rename(columns=lambda c: str(c).replace(" ", "_"))
    return X, d.target.to_numpy()


def build_models(tmp: Path) -> dict[str, Any]:
    """Register credit, wide and mlp in a fresh MODELPORT_HOME as a new user would (registration
    builds each ONNX twin); write every body."""
    import joblib
    import torch
    from bench_compiled import _mlp
    from sklearn.ensemble import HistGradientBoostingClassifier

    import modelport as mp
    from modelport.registry import MODEL_DIR
    from modelport_examples.credit import FEATURES, NUMERIC, generate_applications, train_credit_model

    df = generate_applications(20_000, seed=1)
    credit, _auc = train_credit_model(df)
    X = df[FEATURES]
    Xn = X[NUMERIC].fillna(0.0).to_numpy(dtype=np.float32)
    mlp = _mlp(Xn, df["default"].to_numpy())
    torch.save(mlp.state_dict(), tmp / "mlp_state.pt")
    Xw, yw = _wide_data()
    wide = HistGradientBoostingClassifier(random_state=0).fit(Xw, yw)
    reg = mp.default_client().registry
    info: dict[str, Any] = {}
    for name, model, sample, kwargs in (
        ("credit", credit, X, {}),
        ("wide", wide, Xw, {}),
        ("mlp", mlp, Xn, {"flavor_options": {"task": "classifier", "classes": [0, 1]}}),
    ):
        mv = mp.register(model, name, sample=sample, **kwargs)  # builds and gates the twin (the default)
        report = reg.parity_report(mv)
        assert report is not None, f"{name}: registration stored no ONNX twin"
        twin = reg.meta.get_compiled(mv.name, mv.version, "onnx")
        onnx_file = None
        if twin is not None:
            src = reg.artifacts.local_copy(twin["artifact_uri"], twin["files"], "twin")
            onnx_file = tmp / f"{name}.onnx"
            shutil.copyfile(src / MODEL_DIR / twin["info"]["file"], onnx_file)
        joblib_file = None
        if name != "mlp":
            joblib_file = tmp / f"{name}.joblib"
            joblib.dump(model, joblib_file)
        info[name] = {
            "ref": mv.ref,
            "parity": report.summary(),
            "passed": report.passed,
            "onnx": onnx_file,
            "joblib": joblib_file,
        }
    n = max(ROWS)
    credit_rows = _records(X.head(n))
    mlp_rows = Xn[:n].round(4).tolist()
    mlserver_outputs = {"outputs": [{"name": "predict_proba"}]}  # one estimator call, as modelport
    # credit's mixed-type row as one BYTES tensor: JSON numbers stay numbers, strings stay strings
    for name, frame, rows, matrix, datatype in (
        ("credit", X, credit_rows, [list(r.values()) for r in credit_rows], "BYTES"),
        ("wide", Xw, _records(Xw.head(n)), Xw.head(n).to_numpy().tolist(), "FP64"),
    ):
        info[name]["bodies"] = {
            "native": _write(tmp, f"{name}-native", lambda r: {"inputs": r}, rows),
            "v2-columns": _write(tmp, f"{name}-v2c", _v2_columns(frame), rows),
            "v2-tensor": _write(tmp, f"{name}-v2t", _v2_tensor(datatype), matrix),
            "invocations": _write(tmp, f"{name}-inv", lambda r: {"dataframe_records": r}, rows),
            "mlserver": _write(tmp, f"{name}-mls", _v2_columns(frame, mlserver_outputs), rows),
        }
    info["mlp"]["bodies"] = {
        "native": _write(tmp, "mlp-native", lambda r: {"inputs": r}, mlp_rows),
        "v2-tensor": _write(tmp, "mlp-v2t", _v2_tensor("FP32"), mlp_rows),
        "invocations": _write(tmp, "mlp-inv", lambda r: {"inputs": r}, mlp_rows),
    }
    for name in MODELS:  # the bare app and MLflow take the native / invocations bodies
        bodies = info[name]["bodies"]
        bodies["bare"] = bodies["native"]
        bodies["mlflow"] = bodies["invocations"]
    return info


# --- the MLflow environment ----------------------------------------------------------------------


def mlflow_env() -> tuple[Path | None, str]:
    """benchmarks/.venv-mlflow, created once per requirements-mlflow.txt content; (bin, note)."""
    return peer_env(MLFLOW_VENV, MLFLOW_REQS, "mlflow", "BENCH_SKIP_MLFLOW")


def save_mlflow_models(bin_dir: Path, tmp: Path, models: dict[str, Any]) -> Path | None:
    out = tmp / "mlflow-models"
    wide = models["wide"]["joblib"]
    proc = subprocess.run(
        [
            str(bin_dir / "python"),
            str(HERE / "_mlflow_models.py"),
            str(out),
            str(tmp / "mlp_state.pt"),
            str(wide) if wide else "",
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        print(f"MLflow models not saved: {proc.stderr[-800:]}")
        return None
    return out
