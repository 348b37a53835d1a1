"""ONNX twins of XGBoost, LightGBM, PyTorch and ONNX models: conversion and parity on held-out rows.

Each model is registered (without the automatic twin), loaded as a native Predictor, converted
with its flavor's ``to_onnx``, stored and loaded through the onnx flavor (as the compile step
does), and compared with the native Predictor.
The parity gate is |Δ| ≤ 1e-5 relative to max(1, |y|) and ≥ 99.99 % identical labels.

Observed max relative |Δ| (this machine): XGBoost 1.2e-7 (probabilities) / 5e-7 (regression),
LightGBM ~1e-7, torch float32 MLPs ~9e-8 (the float64 one ~1e-16), ONNX pass-through 0. Every
converted case here meets the strict gate. Tree splits are exact (XGBoost compares in float32 like
XGBoost; LightGBM keeps double thresholds), so what remains is float32 summation order and float32
links. The cases that cannot meet the gate are the ones refused with ``ConversionUnsupported``:
models that split on pandas category columns (XGBoost ``enable_categorical``, LightGBM
``pandas_categorical``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

import modelport as mp
from modelport import flavors
from modelport.flavors.base import ConversionUnsupported, Converted
from modelport.flavors.onnx import load as onnx_load
from modelport.flavors.onnx import save as onnx_save
from modelport.predictor import Predictor
from modelport.schema import prepare
from tests.unit import flavor_cases as fc

pytest.importorskip("onnxruntime")
GATE = 1e-5


def _iris_holdout() -> np.ndarray:
    X = load_iris().data
    return np.delete(X, np.s_[::3], axis=0)  # the rows the fixtures did not train on


def _diabetes_holdout(frame: bool = False) -> Any:
    data = load_diabetes(as_frame=frame)
    return data.data.drop(index=data.data.index[::4]) if frame else np.delete(data.data, np.s_[::4], axis=0)


def _cancer() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Binary data with 5 % NaN (missing-value branches get used); train / held-out rows."""
    X, y = load_breast_cancer(return_X_y=True)
    X = X.copy()
    X[np.random.default_rng(0).uniform(size=X.shape) < 0.05] = np.nan
    return X[:400], y[:400], X[400:]


def xgb_binary(_: Path) -> tuple[Any, Any, Any]:
    import xgboost as xgb

    X, y, held = _cancer()
    return xgb.XGBClassifier(n_estimators=40, max_depth=4, n_jobs=1).fit(X, y), X, held


def xgb_booster_margin(_: Path) -> tuple[Any, Any, Any]:
    """A raw Booster whose probabilities the flavor rebuilds from the margin (binary:logitraw)."""
    import xgboost as xgb

    X, y, held = _cancer()
    params = {"objective": "binary:logitraw", "max_depth": 3, "nthread": 1}
    return xgb.train(params, xgb.DMatrix(X, label=y), num_boost_round=20), X, held


def xgb_booster_multiclass(_: Path) -> tuple[Any, Any, Any]:
    import xgboost as xgb

    X, y = fc._iris()
    params = {"objective": "multi:softmax", "num_class": 3, "max_depth": 2, "nthread": 1}
    return xgb.train(params, xgb.DMatrix(X, label=y), num_boost_round=10), X, _iris_holdout()


def lgb_classifier_numeric(_: Path) -> tuple[Any, Any, Any]:
    import lightgbm as lgb

    X, y, held = _cancer()
    labels = np.array(["benign", "malignant"])[y]
    model = lgb.LGBMClassifier(n_estimators=30, num_leaves=7, verbose=-1, n_jobs=1)
    return model.fit(X, labels), X, held


def torch_one_logit_float64(_: Path) -> tuple[Any, Any, Any]:
    """A binary head with one logit (sigmoid -> [1-p, p]) in float64."""
    import torch

    from tests.unit.torch_models import TabularNet

    torch.manual_seed(3)
    X, _y = fc._iris()
    return TabularNet(4, 1).double(), X, _iris_holdout()


def _fixture(build: Callable[[Path], tuple[Any, Any]], held: Callable[[], Any]) -> Callable[[Path], Any]:
    def make(workdir: Path) -> tuple[Any, Any, Any]:
        model, X = build(workdir)
        return model, X, held()

    return make


def _float32(held: Callable[[], Any]) -> Callable[[], Any]:
    return lambda: np.asarray(held(), dtype=np.float32)


@dataclass(frozen=True)
class Spec:
    id: str
    build: Callable[[Path], tuple[Any, Any, Any]]  # workdir -> (model, training sample, held-out rows)
    atol: float  # what this case is held to (probabilities / values relative to max(1, |y|))
    options: dict[str, Any] = field(default_factory=dict)


_MLP_CLASSIFIER = {"n_in": 4, "n_out": 3, "hidden": 8}
_MLP_REGRESSOR = {"n_in": 10, "n_out": 1, "hidden": 6}
SPECS = [
    # XGBoost: splits exact in float32; float32 leaf sums in another order -> ~1e-7.
    Spec("xgboost-classifier-binary", xgb_binary, 1e-6),
    Spec("xgboost-classifier-multiclass", _fixture(fc.xgb_classifier, _iris_holdout), 1e-6),
    Spec("xgboost-regressor-pandas", _fixture(fc.xgb_regressor, lambda: _diabetes_holdout(True)), 1e-6),
    Spec("xgboost-booster-logitraw", xgb_booster_margin, 1e-6),
    Spec("xgboost-booster-softmax", xgb_booster_multiclass, 1e-6),
    # LightGBM: double thresholds and leaves; float32 only after the sum -> ~1e-7.
    Spec("lightgbm-classifier-string-labels", lgb_classifier_numeric, 1e-6),
    Spec("lightgbm-regressor", _fixture(fc.lgb_regressor, _diabetes_holdout), 1e-6),
    Spec("lightgbm-booster-multiclass", _fixture(fc.lgb_booster, _iris_holdout), 1e-6),
    # PyTorch MLPs: the same float32 ops in another kernel -> ~1e-7 (float64: ~1e-16).
    Spec(
        "torch-classifier-export",
        _fixture(fc.torch_classifier, _float32(_iris_holdout)),
        1e-6,
        {"classes": fc.IRIS_NAMES},
    ),
    Spec(
        "torch-classifier-state-dict",
        _fixture(fc.torch_classifier, _float32(_iris_holdout)),
        1e-6,
        {"format": "state_dict", "task": "classifier", "init_kwargs": _MLP_CLASSIFIER},
    ),
    Spec("torch-binary-one-logit-float64", torch_one_logit_float64, 1e-12, {"classes": ["no", "yes"]}),
    Spec(
        "torch-regressor-export",
        _fixture(fc.torch_regressor, _float32(_diabetes_holdout)),
        1e-6,
        {"task": "regressor"},
    ),
    Spec(
        "torch-regressor-state-dict",
        _fixture(fc.torch_regressor, _float32(_diabetes_holdout)),
        1e-6,
        {"format": "state_dict", "task": "regressor", "init_kwargs": _MLP_REGRESSOR},
    ),
    # ONNX: the registered graph itself -> identical outputs.
    Spec("onnx-classifier-zipmap", _fixture(fc.onnx_classifier_path, _iris_holdout), 0.0),
    Spec("onnx-regressor", _fixture(fc.onnx_regressor, _float32(_iris_holdout)), 0.0),
]


def _convert(p: Predictor, sample: Any) -> Converted:
    flavor = flavors.get(p.model_version.flavor)
    batch = prepare(sample, p.signature)
    converted: Converted = flavor.to_onnx(p.raw, p.signature, batch, p.model_version.flavor_info)
    return converted


def _twin(converted: Converted, folder: Path) -> Any:
    folder.mkdir()
    saved = onnx_save(converted.model, folder, None, task=converted.task, classes=converted.classes)
    return onnx_load(folder, saved.info)


def _kind(labels: Any) -> str:
    """'text' for numpy str and the object arrays of str onnxruntime returns, else the dtype kind."""
    kind = np.asarray(labels).dtype.kind
    return "text" if kind in "OUS" else kind


def _rel_diff(expected: Any, got: Any) -> float:
    a = np.asarray(expected, dtype=np.float64)
    b = np.asarray(got, dtype=np.float64).reshape(a.shape)
    return float((np.abs(a - b) / np.maximum(1.0, np.abs(a))).max())


@pytest.mark.parametrize("spec", SPECS, ids=[s.id for s in SPECS])
def test_twin_matches_native_on_held_out_rows(spec: Spec, home: Path, tmp_path: Path) -> None:
    model, X, held = spec.build(tmp_path)
    mv = mp.register(model, "m", sample=X, flavor_options=spec.options or None, compile=False)
    p = mp.load(mv.ref, runtime="native")
    converted = _convert(p, X)
    assert converted.task == p.task and converted.notes
    graph = converted.model.graph
    if mv.flavor != "onnx":  # the flavor's feeding convention: one 2-d input (or the tensor)
        assert len(graph.input) == 1 and len(graph.input[0].type.tensor_type.shape.dim) == 2
    twin = _twin(converted, tmp_path / "twin")
    batch = prepare(held, p.signature)
    assert batch.n_rows >= 40
    if p.task == "classifier":
        assert [o.type.WhichOneof("value") for o in graph.output] == ["tensor_type"] * len(graph.output)
        proba = p.predict_proba(held)
        # Without classes the onnx flavor names the columns 0..k-1, which is what predict returns.
        assert twin.classes == (p.classes if p.classes is not None else list(range(proba.shape[1])))
        rel = _rel_diff(proba, twin.predict_proba(batch))
        labels, native_labels = twin.predict(batch), p.predict(held)
        np.testing.assert_array_equal(labels, native_labels)
        assert _kind(labels) == _kind(native_labels)
    else:
        rel = _rel_diff(p.predict(held), twin.predict(batch))
    assert rel <= spec.atol <= GATE, f"{spec.id}: max relative |Δ| {rel:.3g}"


def test_split_values_themselves_take_the_native_branch(home: Path, tmp_path: Path) -> None:
    """Rows placed exactly on every split value, and one ulp either side (double and float32).

    A float32 copy of a LightGBM threshold would send some of these rows the other way; XGBoost
    rounds the features to float32 itself, which the graph does too.
    """
    import lightgbm as lgb
    import xgboost as xgb
    from onnx import numpy_helper

    X, y = load_diabetes(return_X_y=True)
    for model in (
        lgb.LGBMRegressor(n_estimators=30, num_leaves=8, verbose=-1, n_jobs=1).fit(X, y),
        xgb.XGBRegressor(n_estimators=30, max_depth=3, n_jobs=1).fit(X, y),
    ):
        name = type(model).__name__.lower()
        p = mp.load(mp.register(model, name, sample=X, compile=False).ref, runtime="native")
        converted = _convert(p, X)
        twin = _twin(converted, tmp_path / name)
        node = next(n for n in converted.model.graph.node if n.op_type == "TreeEnsembleRegressor")
        attrs = {a.name: a for a in node.attribute}
        if "nodes_values_as_tensor" in attrs:
            values = numpy_helper.to_array(attrs["nodes_values_as_tensor"].t)
        else:
            values = np.asarray(attrs["nodes_values"].floats, dtype=np.float64)
        modes = [m.decode() for m in attrs["nodes_modes"].strings]
        splits = [
            (f, v)
            for f, v, m in zip(attrs["nodes_featureids"].ints, values, modes, strict=True)
            if m != "LEAF"
        ]
        rows = []
        for feature, value in splits:
            for v in (
                value,
                np.nextafter(value, -np.inf),
                np.nextafter(value, np.inf),
                float(np.float32(value)),
            ):
                row = X.mean(axis=0)
                row[feature] = v
                rows.append(row)
        held = np.asarray(rows)
        assert _rel_diff(p.predict(held), twin.predict(prepare(held, p.signature))) <= 1e-6, name


@pytest.mark.parametrize(
    ("build", "reason"),
    [(fc.xgb_booster, "categorical"), (fc.lgb_classifier, "pandas_categorical")],
    ids=["xgboost-enable-categorical", "lightgbm-pandas-categorical"],
)
def test_category_models_are_refused_and_keep_the_native_runtime(
    build: Callable[[Path], tuple[Any, Any]], reason: str, home: Path, tmp_path: Path
) -> None:
    model, X = build(tmp_path)
    p = mp.load(mp.register(model, "cat", sample=X, compile=False).ref, runtime="native")
    with pytest.raises(ConversionUnsupported, match=reason) as err:
        _convert(p, X)
    assert "native runtime keeps working" in str(err.value)
    assert len(p.predict(X)) == len(X)


def test_unsupported_objectives_are_refused(home: Path, tmp_path: Path) -> None:
    import lightgbm as lgb
    import xgboost as xgb

    X, y = fc._iris()
    hinge = xgb.train({"objective": "binary:hinge", "nthread": 1}, xgb.DMatrix(X, label=y > 0), 3)
    p = mp.load(mp.register(hinge, "hinge", sample=X, compile=False).ref, runtime="native")
    with pytest.raises(ConversionUnsupported, match="binary:hinge"):
        _convert(p, X)
    zeros = np.where(X > 2, X, 0.0)
    params = {"objective": "regression", "zero_as_missing": True, "verbose": -1, "num_threads": 1}
    booster = lgb.train({**params, "min_data_in_leaf": 3}, lgb.Dataset(zeros, y), 5)
    p = mp.load(mp.register(booster, "zeros", sample=zeros, compile=False).ref, runtime="native")
    try:
        converted = _convert(p, zeros)
    except ConversionUnsupported as exc:  # only where zero-as-missing changes a branch
        assert "zero_as_missing" in str(exc)
    else:
        assert _rel_diff(p.predict(zeros), _twin(converted, tmp_path / "z").predict(p.prepare(zeros))) <= 1e-6


def test_onnx_pass_through_reads_the_session_file_or_the_model_folder(home: Path, tmp_path: Path) -> None:
    from modelport.flavors.onnx import to_onnx

    model, X = fc.onnx_regressor(tmp_path)
    mv = mp.register(model, "o", sample=X, compile=False)
    p = mp.load(mv.ref, runtime="native")
    assert to_onnx(p.raw, p.signature, None, mv.flavor_info).model.graph == model.graph
    saved = onnx_save(model, tmp_path, None)
    assert to_onnx(None, p.signature, None, saved.info, path=tmp_path).model.graph == model.graph

    class Session:  # a session built from bytes by someone else: nothing to read back
        def get_inputs(self) -> list[Any]:
            return []

    with pytest.raises(ConversionUnsupported, match="path="):
        to_onnx(Session(), p.signature, None, mv.flavor_info)
