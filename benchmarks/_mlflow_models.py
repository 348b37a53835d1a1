"""Save the benchmark's models as MLflow models; run by benchmarks/.venv-mlflow's python.

``python _mlflow_models.py OUT_DIR MLP_STATE [WIDE_JOBLIB]`` writes ``OUT_DIR/credit``
(mlflow.sklearn: the same credit pipeline as bench_serving.py, trained here from the same data and
seed so it unpickles with this environment's libraries), when ``WIDE_JOBLIB`` is given
``OUT_DIR/wide`` (mlflow.sklearn: that very estimator, loaded with joblib; scikit-learn and numpy
are pinned to the project's), and, when ``MLP_STATE`` (a torch state_dict) exists, ``OUT_DIR/mlp``
(mlflow.pytorch). Needs ``PYTHONPATH`` to hold the repository's ``src``.
"""

from __future__ import annotations

import sys
from pathlib import Path

TRUSTED = ["numpy.dtype", "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"]


def main() -> None:
    out, mlp_state = Path(sys.argv[1]), Path(sys.argv[2])
    wide = sys.argv[3] if len(sys.argv) > 3 else ""
    import mlflow
    from mlflow.models import infer_signature

    from modelport_examples.credit import FEATURES, generate_applications, train_credit_model

    df = generate_applications(20_000, seed=1)
    model, _auc = train_credit_model(df)
    X = df[FEATURES]
    mlflow.sklearn.save_model(
        model,
        str(out / "credit"),
        signature=infer_signature(X.head(100), model.predict_proba(X.head(100))),
        pyfunc_predict_fn="predict_proba",
        # MLflow 3.17 saves with skops; these types are ours (see shared NOTES.md)
        skops_trusted_types=TRUSTED,
    )
    print(f"saved {out / 'credit'}", flush=True)
    if wide:
        import joblib

        est = joblib.load(wide)
        sample = _wide_sample()
        mlflow.sklearn.save_model(
            est,
            str(out / "wide"),
            signature=infer_signature(sample, est.predict_proba(sample)),
            pyfunc_predict_fn="predict_proba",
            skops_trusted_types=TRUSTED,
        )
        print(f"saved {out / 'wide'}", flush=True)
    if not mlp_state.exists():
        return
    import numpy as np
    import torch
    from torch import nn

    state = torch.load(mlp_state)
    n_in = state["0.weight"].shape[1]
    net = nn.Sequential(nn.Linear(n_in, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 2))
    net.load_state_dict(state)
    net.eval()
    x = np.zeros((2, n_in), dtype=np.float32)
    mlflow.pytorch.save_model(
        net,
        str(out / "mlp"),
        signature=infer_signature(x, net(torch.from_numpy(x)).detach().numpy()),
        input_example=x,
    )
    print(f"saved {out / 'mlp'}", flush=True)


def _wide_sample() -> object:
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    X = load_breast_cancer(as_frame=True).data.head(100)
    return pd.DataFrame(X).rename(columns=lambda c: str(c).replace(" ", "_"))


if __name__ == "__main__":
    main()
