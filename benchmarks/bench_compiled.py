"""Compiled runtime: ``mp.load(ref, runtime="onnx")`` versus the native framework, both through
modelport's Predictor (validation included), plus edge-bundle sizes fp32 vs int8.

Run with ``make bench``. Ratio = native time / onnx time (higher is better for onnx).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _timing import compare, fmt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    os.environ["MODELPORT_HOME"] = tempfile.mkdtemp(prefix="mp-bench-compiled-")
    import lightgbm as lgb
    import xgboost as xgb
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    import modelport as mp
    from modelport_examples.credit import CATEGORICAL, NUMERIC, generate_applications, train_credit_model

    df = generate_applications(20_000, seed=1)
    y = df["default"].to_numpy()
    cases: list[tuple[str, Any, Any, dict[str, Any]]] = []
    hgb, _auc = train_credit_model(df)
    X = df[list(hgb.feature_names_in_)]
    cases.append(("HistGB pipeline", hgb, X, {}))
    pre = ColumnTransformer(
        [("num", SimpleImputer(), NUMERIC), ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL)]
    )
    rf = make_pipeline(pre, RandomForestClassifier(n_estimators=100, max_depth=10, n_jobs=1)).fit(X, y)
    cases.append(("RandomForest pipeline", rf, X, {}))
    Xn = X[NUMERIC].fillna(0.0).to_numpy(dtype=np.float32)
    cases.append(("XGBoost", xgb.XGBClassifier(n_estimators=100, max_depth=5).fit(Xn, y), Xn, {}))
    cases.append(("LightGBM", lgb.LGBMClassifier(n_estimators=100, verbose=-1).fit(Xn, y), Xn, {}))
    mlp = _mlp(Xn, y)
    cases.append(("PyTorch MLP", mlp, Xn, {"flavor_options": {"task": "classifier", "classes": [0, 1]}}))

    print(f"modelport {mp.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    print(f"{'model':<22} {'rows':>6} {'native':>12} {'onnx':>12} {'speed-up':>9}  parity")
    for name, model, data, kwargs in cases:
        ref = mp.register(model, name.lower().replace(" ", "-"), sample=data, **kwargs).ref
        try:
            report = mp.compile(ref)
        except mp.ModelportError as exc:
            print(f"{name:<22} not compiled: {exc.message}")
            continue
        native = mp.load(ref, runtime="native")
        if not report.passed:
            print(f"{name:<22} gate failed: {report.summary()}")
            continue
        onnx = mp.load(ref, runtime="onnx")
        one, many = data[:1], data[:10_000]
        for label, batch, t in (("1", one, 2.0), ("10k", many, 3.0)):
            a, b = compare(
                lambda n=native, x=batch: n.predict_proba(x),
                lambda o=onnx, x=batch: o.predict_proba(x),
                t,
                5,
                alternate=False,
            )
            print(f"{name:<22} {label:>6} {fmt(a):>12} {fmt(b):>12} {a / b:8.1f}×  {report.summary()}")
    _bundle_sizes(mp, cases[-1][0].lower().replace(" ", "-"))


def _mlp(X: np.ndarray, y: np.ndarray) -> Any:
    import torch
    from torch import nn

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(X.shape[1], 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 2)
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    xt = torch.tensor((X - X.mean(0)) / (X.std(0) + 1e-6), dtype=torch.float32)
    yt = torch.tensor(y)
    for _ in range(30):
        opt.zero_grad()
        nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    return net.eval()


def _bundle_sizes(mp: Any, ref: str) -> None:
    from modelport.edge.export import export_bundle

    out = Path(tempfile.mkdtemp(prefix="mp-bundles-"))
    reg = mp.default_client().registry
    try:
        fp32 = export_bundle(reg, ref, out / "fp32")
        int8 = export_bundle(reg, ref, out / "int8", quantize="int8")
    except mp.ModelportError as exc:
        print(f"bundle sizes: {exc.message}")
        return
    q = int8.quantization or {}
    print(
        f"MLP bundle model.onnx: fp32 {fp32.model_bytes / 1024:,.0f} KiB, "
        f"int8 {int8.model_bytes / 1024:,.0f} KiB "
        f"({int8.model_bytes / fp32.model_bytes:.2f}×); {q.get('reason', '')}"
    )


if __name__ == "__main__":
    main()
