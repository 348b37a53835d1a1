"""Tiny models, one per flavor and input style, for the flavor contract tests.

Each :class:`Case` builds a fitted model and its sample, computes the ORIGINAL model's outputs
with the framework's own API, and (where the framework has a model file format) writes the
model to a file the way a user would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_diabetes, load_digits, load_iris

from tests.conftest import loan_frame

Outputs = tuple[np.ndarray, np.ndarray | None]  # (predict, predict_proba or None)


@dataclass(frozen=True)
class Case:
    id: str
    flavor: str
    package: str  # distribution whose version must be recorded
    task: str | None
    build: Callable[[Path], tuple[Any, Any]]  # workdir -> (model, sample)
    expected: Callable[[Any, Any], Outputs]
    options: dict[str, Any] = field(default_factory=dict)
    classes: list[Any] | None = None
    write_file: Callable[[Any, Path], Path] | None = None  # (model, folder) -> model file


def _iris() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return X[::3], y[::3]  # 50 rows, all three classes


def _diabetes(frame: bool = False) -> tuple[Any, np.ndarray]:
    data = load_diabetes(as_frame=frame)
    return data.data.iloc[::4] if frame else data.data[::4], np.asarray(data.target)[::4]


def _loan_categorical() -> tuple[pd.DataFrame, np.ndarray]:
    X, y = loan_frame(300)
    return X.astype({"home": "category", "purpose": "category"}), y


def _sk(model: Any, X: Any) -> Outputs:
    return model.predict(X), model.predict_proba(X) if hasattr(model, "predict_proba") else None


# --- scikit-learn ---------------------------------------------------------------------------


def sk_logreg(_: Path) -> tuple[Any, Any]:
    from sklearn.linear_model import LogisticRegression

    X, y = _iris()
    return LogisticRegression(max_iter=500).fit(X, y), X


def sk_pipeline(_: Path) -> tuple[Any, Any]:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = loan_frame(300)
    pre = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["home", "purpose"]),
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["income", "debt_ratio", "age"]),
        ]
    )
    return make_pipeline(pre, HistGradientBoostingClassifier(max_iter=15)).fit(X, y), X


def sk_forest(_: Path) -> tuple[Any, Any]:
    from sklearn.ensemble import RandomForestRegressor

    X, y = _diabetes()
    return RandomForestRegressor(n_estimators=8, max_depth=4, random_state=0).fit(X, y), X


def _joblib_file(model: Any, folder: Path) -> Path:
    import joblib

    joblib.dump(model, folder / "model.joblib")
    return folder / "model.joblib"


# --- XGBoost --------------------------------------------------------------------------------


def xgb_classifier(_: Path) -> tuple[Any, Any]:
    import xgboost as xgb

    X, y = _iris()
    return xgb.XGBClassifier(n_estimators=8, max_depth=2, n_jobs=1).fit(X, y), X


def xgb_regressor(_: Path) -> tuple[Any, Any]:
    import xgboost as xgb

    X, y = _diabetes(frame=True)  # a DataFrame: XGBoost records and checks the feature names
    return xgb.XGBRegressor(n_estimators=8, max_depth=3, n_jobs=1).fit(X, y), X


def xgb_booster(_: Path) -> tuple[Any, Any]:
    import xgboost as xgb

    X, y = _loan_categorical()
    dtrain = xgb.DMatrix(X, label=y, enable_categorical=True)
    params = {"objective": "binary:logistic", "max_depth": 3, "nthread": 1}
    return xgb.train(params, dtrain, num_boost_round=8), X


def xgb_booster_outputs(booster: Any, X: Any) -> Outputs:
    import xgboost as xgb

    p = booster.predict(xgb.DMatrix(X, enable_categorical=True))
    return (p > 0.5).astype(int), np.column_stack([1 - p, p])


def _xgb_file(suffix: str) -> Callable[[Any, Path], Path]:
    def write(model: Any, folder: Path) -> Path:
        model.save_model(folder / f"model{suffix}")
        return folder / f"model{suffix}"

    return write


# --- LightGBM -------------------------------------------------------------------------------


def lgb_classifier(_: Path) -> tuple[Any, Any]:
    import lightgbm as lgb

    X, y = _loan_categorical()
    labels = np.array(["repaid", "default"])[y]
    model = lgb.LGBMClassifier(n_estimators=10, num_leaves=7, min_child_samples=5, verbose=-1, n_jobs=1)
    return model.fit(X, labels), X


def lgb_regressor(_: Path) -> tuple[Any, Any]:
    import lightgbm as lgb

    X, y = _diabetes()
    return lgb.LGBMRegressor(n_estimators=10, num_leaves=7, verbose=-1, n_jobs=1).fit(X, y), X


def lgb_booster(_: Path) -> tuple[Any, Any]:
    import lightgbm as lgb

    X, y = _iris()
    params = {"objective": "multiclass", "num_class": 3, "num_leaves": 5, "min_data_in_leaf": 3}
    return lgb.train({**params, "verbose": -1, "num_threads": 1}, lgb.Dataset(X, y), 8), X


def lgb_booster_outputs(booster: Any, X: Any) -> Outputs:
    proba = booster.predict(X)
    return proba.argmax(axis=1), proba


def _lgb_file(model: Any, folder: Path) -> Path:
    booster = getattr(model, "booster_", model)
    booster.save_model(str(folder / "model.txt"))
    return folder / "model.txt"


# --- PyTorch --------------------------------------------------------------------------------


def torch_classifier(_: Path) -> tuple[Any, Any]:
    import torch

    from tests.unit.torch_models import TabularNet

    torch.manual_seed(0)
    X, _y = _iris()
    return TabularNet(4, 3), X.astype(np.float32)  # left in train mode, as users often do


def torch_regressor(_: Path) -> tuple[Any, Any]:
    import torch

    from tests.unit.torch_models import TabularNet

    torch.manual_seed(1)
    X, _y = _diabetes()
    return TabularNet(10, 1, hidden=6), X.astype(np.float32)


def torch_images(_: Path) -> tuple[Any, Any]:
    import torch

    from tests.unit.torch_models import TinyConvNet

    torch.manual_seed(2)
    images = load_digits().images[:40].reshape(-1, 1, 8, 8).astype(np.float32) / 16
    model = TinyConvNet()
    with torch.no_grad():
        model(torch.from_numpy(images))  # move the BatchNorm running statistics off their defaults
    return model, images


def torch_outputs(classes: list[Any] | None = None, classifier: bool = True) -> Callable[[Any, Any], Outputs]:
    def outputs(model: Any, X: Any) -> Outputs:
        import torch

        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                out = model(torch.from_numpy(np.asarray(X, dtype=np.float32)))
        finally:
            model.train(was_training)
        if not classifier:
            return out.numpy().reshape(len(X)), None
        proba = torch.softmax(out, dim=1).numpy()
        idx = proba.argmax(axis=1)
        return (idx if classes is None else np.asarray(classes)[idx]), proba

    return outputs


def _torch_export_file(model: Any, folder: Path) -> Path:
    import torch

    model.eval()
    x = torch.zeros(2, 4)
    program = torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim.DYNAMIC},))
    model.train()
    torch.export.save(program, folder / "model.pt2")
    return folder / "model.pt2"


def _torchscript_file(model: Any, folder: Path) -> Path:
    import torch

    was_training = model.training
    model.eval()
    torch.jit.save(torch.jit.script(model), folder / "model.pt")
    model.train(was_training)
    return folder / "model.pt"


# --- ONNX -----------------------------------------------------------------------------------


def _onnx_model(nodes: list[Any], inputs: list[Any], outputs: list[Any], weights: dict[str, Any]) -> Any:
    import onnx
    from onnx import helper, numpy_helper

    graph = helper.make_graph(
        nodes, "g", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in weights.items()]
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=8)
    onnx.checker.check_model(model)
    return model


def _linear_weights(n_in: int, n_out: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "W": rng.normal(size=(n_in, n_out)).astype(np.float32),
        "B": rng.normal(size=n_out).astype(np.float32),
    }


def onnx_regressor(_: Path) -> tuple[Any, Any]:
    from onnx import TensorProto, helper

    nodes = [helper.make_node("MatMul", ["X", "W"], ["Z"]), helper.make_node("Add", ["Z", "B"], ["y"])]
    model = _onnx_model(
        nodes,
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        _linear_weights(4, 1, 0),
    )
    return model, _iris()[0].astype(np.float32)


def onnx_columns_regressor(_: Path) -> tuple[Any, Any]:
    """One (n, 1) input per column, as skl2onnx writes pipelines over DataFrames."""
    from onnx import TensorProto, helper

    names = ["income", "debt_ratio", "age"]
    nodes = [
        helper.make_node("Cast", ["age"], ["age_f"], to=TensorProto.FLOAT),
        helper.make_node("Concat", ["income", "debt_ratio", "age_f"], ["X"], axis=1),
        helper.make_node("MatMul", ["X", "W"], ["Z"]),
        helper.make_node("Add", ["Z", "B"], ["y"]),
    ]
    inputs = [
        helper.make_tensor_value_info("income", TensorProto.FLOAT, [None, 1]),
        helper.make_tensor_value_info("debt_ratio", TensorProto.FLOAT, [None, 1]),
        helper.make_tensor_value_info("age", TensorProto.INT64, [None, 1]),
    ]
    weights = _linear_weights(3, 1, 1)
    weights["W"][0] /= 50000
    model = _onnx_model(
        nodes, inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])], weights
    )
    X = loan_frame(100)[0][names].fillna({"income": 50000.0})
    return model, X.astype({"income": np.float32, "debt_ratio": np.float32})


def _onnx_classifier(zipmap: bool) -> Any:
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["Z0"]),
        helper.make_node("Add", ["Z0", "B"], ["Z"]),
        helper.make_node("Softmax", ["Z"], ["P"], axis=1),
        helper.make_node("ArgMax", ["P"], ["label"], axis=1, keepdims=0),
    ]
    if zipmap:
        nodes.append(
            helper.make_node(
                "ZipMap", ["P"], ["probabilities"], domain="ai.onnx.ml", classlabels_int64s=[0, 1, 2]
            )
        )
        proba_type = helper.make_sequence_type_proto(
            helper.make_map_type_proto(
                TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, [])
            )
        )
        proba = helper.make_value_info("probabilities", proba_type)
    else:
        nodes.append(helper.make_node("Identity", ["P"], ["probabilities"]))
        proba = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 3])
    return _onnx_model(
        nodes,
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, [None]), proba],
        _linear_weights(4, 3, 2),
    )


def onnx_classifier(_: Path) -> tuple[Any, Any]:
    return _onnx_classifier(zipmap=False), _iris()[0]


def onnx_classifier_path(workdir: Path) -> tuple[Any, Any]:
    import onnx

    path = workdir / "zipmap_classifier.onnx"
    onnx.save_model(_onnx_classifier(zipmap=True), str(path))
    return path, _iris()[0]


def onnx_outputs(model: Any, X: Any) -> Outputs:
    """What onnxruntime itself returns for the model, ZipMap dicts turned into a matrix."""
    import onnxruntime as ort

    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    if len(names) == 1:
        feeds = {names[0]: np.asarray(X, dtype=np.float32)}
    else:
        feeds = {n: X[n].to_numpy().reshape(-1, 1) for n in names}
    out = session.run(None, feeds)
    if len(out) == 1:
        return np.asarray(out[0]).reshape(-1), None
    label, proba = out
    if isinstance(proba, list):
        proba = np.array([[row[k] for k in sorted(row)] for row in proba], dtype=np.float32)
    return np.asarray(label), np.asarray(proba)


def _onnx_file(model: Any, folder: Path) -> Path:
    import onnx

    onnx.save_model(model, str(folder / "model.onnx"))
    return folder / "model.onnx"


IRIS_NAMES = ["setosa", "versicolor", "virginica"]

CASES = [
    Case("sklearn-logreg-numpy", "sklearn", "scikit-learn", "classifier", sk_logreg, _sk, classes=[0, 1, 2]),
    Case(
        "sklearn-pipeline-pandas",
        "sklearn",
        "scikit-learn",
        "classifier",
        sk_pipeline,
        _sk,
        classes=[0, 1],
        write_file=_joblib_file,
    ),
    Case("sklearn-forest-regressor", "sklearn", "scikit-learn", "regressor", sk_forest, _sk),
    Case(
        "xgboost-classifier",
        "xgboost",
        "xgboost-cpu",
        "classifier",
        xgb_classifier,
        _sk,
        classes=[0, 1, 2],
        write_file=_xgb_file(".ubj"),
    ),
    Case(
        "xgboost-regressor-pandas",
        "xgboost",
        "xgboost-cpu",
        "regressor",
        xgb_regressor,
        _sk,
        write_file=_xgb_file(".json"),
    ),
    Case(
        "xgboost-booster-categorical",
        "xgboost",
        "xgboost-cpu",
        "classifier",
        xgb_booster,
        xgb_booster_outputs,
        classes=[0, 1],
        write_file=_xgb_file(".ubj"),
    ),
    Case(
        "lightgbm-classifier-categorical",
        "lightgbm",
        "lightgbm",
        "classifier",
        lgb_classifier,
        _sk,
        classes=["default", "repaid"],
        write_file=_lgb_file,
    ),
    Case("lightgbm-regressor", "lightgbm", "lightgbm", "regressor", lgb_regressor, _sk),
    Case(
        "lightgbm-booster-multiclass",
        "lightgbm",
        "lightgbm",
        "classifier",
        lgb_booster,
        lgb_booster_outputs,
        classes=[0, 1, 2],
        write_file=_lgb_file,
    ),
    Case(
        "torch-classifier-export",
        "torch",
        "torch",
        "classifier",
        torch_classifier,
        torch_outputs(IRIS_NAMES),
        options={"classes": IRIS_NAMES},
        classes=IRIS_NAMES,
        write_file=_torch_export_file,
    ),
    Case(
        "torch-regressor-state-dict",
        "torch",
        "torch",
        "regressor",
        torch_regressor,
        torch_outputs(classifier=False),
        options={
            "format": "state_dict",
            "task": "regressor",
            "init_kwargs": {"n_in": 10, "n_out": 1, "hidden": 6},
        },
    ),
    Case(
        "torch-image-tensor",
        "torch",
        "torch",
        "classifier",
        torch_images,
        torch_outputs(),
        options={"task": "classifier"},
    ),
    Case(
        "torch-classifier-torchscript",
        "torch",
        "torch",
        "classifier",
        torch_classifier,
        torch_outputs(),
        options={"format": "torchscript", "task": "classifier"},
        write_file=_torchscript_file,
    ),
    Case(
        "onnx-regressor-proto",
        "onnx",
        "onnxruntime",
        "regressor",
        onnx_regressor,
        onnx_outputs,
        write_file=_onnx_file,
    ),
    Case(
        "onnx-regressor-column-inputs",
        "onnx",
        "onnxruntime",
        "regressor",
        onnx_columns_regressor,
        onnx_outputs,
    ),
    Case(
        "onnx-classifier-proto",
        "onnx",
        "onnxruntime",
        "classifier",
        onnx_classifier,
        onnx_outputs,
        classes=[0, 1, 2],
        write_file=_onnx_file,
    ),
    Case(
        "onnx-classifier-zipmap-path",
        "onnx",
        "onnxruntime",
        "classifier",
        onnx_classifier_path,
        onnx_outputs,
        classes=[0, 1, 2],
    ),
]
