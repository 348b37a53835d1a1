"""scikit-learn -> ONNX twins: each conversion is saved and loaded through the onnx flavor and must
match scikit-learn (|Δ| <= 1e-5 relative to max(1, |y|), identical labels) on held-out rows,
including rows with missing numbers, missing text and unseen categories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from modelport.flavors import onnx as onnx_flavor
from modelport.flavors import sklearn as sk_flavor
from modelport.flavors.base import ConversionUnsupported, Converted
from modelport.flavors.sklearn_onnx import _float32_switch
from modelport.schema import Signature, infer_signature, prepare
from tests.conftest import loan_frame

pytest.importorskip("skl2onnx")
pytest.importorskip("onnxruntime")

NUMERIC, CATEGORICAL = ["income", "debt_ratio", "age"], ["home", "purpose"]


def twin(model: Any, X_train: Any, tmp_path: Path) -> tuple[Any, Signature, Converted]:
    """Convert as `modelport compile` does: info from the sklearn flavor's save, run by the onnx flavor."""
    sig = infer_signature(X_train)
    sample = prepare(X_train, sig)
    (tmp_path / "native").mkdir(parents=True)
    info = sk_flavor.save(model, tmp_path / "native", sample).info
    converted = sk_flavor.to_onnx(model, sig, sample, info)
    (tmp_path / "onnx").mkdir()
    saved = onnx_flavor.save(
        converted.model, tmp_path / "onnx", None, task=converted.task, classes=converted.classes
    )
    return onnx_flavor.load(tmp_path / "onnx", saved.info), sig, converted


def assert_parity(model: Any, X_train: Any, X_test: Any, tmp_path: Path) -> Converted:
    loaded, sig, converted = twin(model, X_train, tmp_path)
    batch = prepare(X_test, sig)
    if converted.task == "classifier":
        np.testing.assert_allclose(
            loaded.predict_proba(batch), model.predict_proba(X_test), rtol=0, atol=1e-5
        )
        np.testing.assert_array_equal(loaded.predict(batch), model.predict(X_test))
    else:
        want, got = model.predict(X_test), loaded.predict(batch)
        assert got.shape == want.shape
        assert np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))) <= 1e-5
    return converted


def numeric(n: int = 500, nan: float = 0.08, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    full = X.copy()
    X[rng.uniform(size=X.shape) < nan] = np.nan
    targets = {
        "binary": (full[:, 0] + full[:, 1] ** 2 > 0.5).astype(np.int64),
        "multiclass": np.digitize(full[:, 0] + full[:, 2], [-0.5, 0.5]),
        "regression": 3 * full[:, 0] + 100 * full[:, 1] ** 2 + 1000 * full[:, 3],
        "counts": rng.poisson(np.exp(1 + full[:, 0])).astype(np.float64),
    }
    return X, targets


def messy(X: pd.DataFrame) -> pd.DataFrame:
    """Held-out rows with missing text (NaN and None), an unseen category and missing income."""
    X = X.copy()
    X.loc[X.index[:6], "home"] = np.nan
    X.loc[X.index[6:9], "purpose"] = None
    X.loc[X.index[9:12], "home"] = "HOUSEBOAT"
    X.loc[X.index[12:15], "income"] = np.nan
    return X


def preprocessor(text_imputer: Any = None) -> ColumnTransformer:
    text = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
    return ColumnTransformer(
        [
            (
                "num",
                make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()),
                NUMERIC,
            ),
            ("cat", make_pipeline(text_imputer, text) if text_imputer else text, CATEGORICAL),
        ]
    )


TREES = [
    (RandomForestClassifier(n_estimators=25, random_state=0), "binary"),
    (ExtraTreesClassifier(n_estimators=25, random_state=0), "multiclass"),
    (DecisionTreeClassifier(random_state=0), "multiclass"),
    (RandomForestRegressor(n_estimators=25, random_state=0), "regression"),
    (ExtraTreesRegressor(n_estimators=25, random_state=0), "regression"),
    (DecisionTreeRegressor(random_state=0), "regression"),
    (HistGradientBoostingClassifier(max_iter=40, random_state=0), "binary"),
    (HistGradientBoostingClassifier(max_iter=20, random_state=0), "multiclass"),
    (HistGradientBoostingRegressor(max_iter=40, random_state=0), "regression"),
    (HistGradientBoostingRegressor(loss="poisson", max_iter=40, random_state=0), "counts"),  # exp link
]


@pytest.mark.parametrize(
    ("model", "target"), TREES, ids=lambda v: type(v).__name__ if not isinstance(v, str) else v
)
def test_tree_models_with_missing_values(model: Any, target: str, tmp_path: Path) -> None:
    X, y = numeric()
    model.fit(X[:350], y[target][:350])
    converted = assert_parity(model, X[:350], X[350:], tmp_path)
    assert "tree thresholds, leaf values and base values kept in double" in converted.notes


@pytest.mark.parametrize(
    ("model", "target"),
    [
        (GradientBoostingClassifier(n_estimators=30, random_state=0), "binary"),
        (GradientBoostingClassifier(n_estimators=15, random_state=0), "multiclass"),
        (GradientBoostingClassifier(loss="exponential", n_estimators=15, random_state=0), "binary"),
        (GradientBoostingRegressor(n_estimators=30, random_state=0), "regression"),
        (LogisticRegression(max_iter=500), "binary"),
        (LogisticRegression(max_iter=500), "multiclass"),
        (LinearRegression(), "regression"),
        (Ridge(alpha=0.5), "regression"),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, str) else v,
)
def test_models_on_complete_numeric_data(model: Any, target: str, tmp_path: Path) -> None:
    X, y = numeric(nan=0.0)
    model.fit(X[:350], y[target][:350])
    assert_parity(model, X[:350], X[350:], tmp_path)


def test_vote_ties_go_to_the_first_class_as_in_sklearn(tmp_path: Path) -> None:
    """30 trees vote 13/13/4: scikit-learn picks the first tied class; TreeEnsembleClassifier's own
    label (summing 1/30 weights in another order) picked the other one before labels became
    argmax(probabilities)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5))
    X[rng.uniform(size=X.shape) < 0.08] = np.nan
    full = np.nan_to_num(X)
    y = np.digitize(full[:, 0] + full[:, 2], [-0.5, 0.5])
    model = ExtraTreesClassifier(n_estimators=30, random_state=0).fit(X[:400], y[:400])
    top = np.sort(model.predict_proba(X[400:]), axis=1)
    assert np.any(top[:, -1] == top[:, -2]), "the data must contain tied votes"
    assert_parity(model, X[:400], X[400:], tmp_path)


def test_tree_decisions_at_float32_rounding_boundaries(tmp_path: Path) -> None:
    """scikit-learn compares float32(x) with double thresholds; inputs next to every threshold
    (the threshold itself and its double / float32 neighbours) must take the same branch."""
    rng = np.random.default_rng(3)
    X = np.round(rng.normal(size=(300, 2)) * 1000, 3)
    model = DecisionTreeRegressor(random_state=0).fit(X, X[:, 0] + rng.normal(size=300))
    t = model.tree_.threshold[model.tree_.children_left >= 0]
    f = t.astype(np.float32)
    near = [t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf), f, np.nextafter(f, np.float32(np.inf))]
    probe = np.concatenate(near).astype(np.float64)
    X_test = np.column_stack([probe, np.resize(X[:, 1], probe.size)])
    assert_parity(model, X, X_test, tmp_path)


def test_float32_switch_matches_float32_comparison() -> None:
    rng = np.random.default_rng(1)
    t = np.concatenate([rng.normal(size=500) * 10.0 ** rng.integers(-8, 8, 500), [0.0, 1.0, -1.0, 0.1]])
    w = _float32_switch(t)
    for x in (w, np.nextafter(w, np.inf), np.nextafter(w, -np.inf), t, np.nextafter(t, np.inf)):
        np.testing.assert_array_equal(x <= w, x.astype(np.float32).astype(np.float64) <= t)
    assert _float32_switch(np.array([np.inf]))[0] == np.inf


@pytest.mark.parametrize(
    "final",
    [
        LogisticRegression(max_iter=500),
        RandomForestClassifier(n_estimators=25, random_state=0),
        HistGradientBoostingClassifier(max_iter=30, random_state=0),
    ],
    ids=lambda m: type(m).__name__,
)
def test_mixed_pipelines_with_missing_and_unseen_categories(final: Any, tmp_path: Path) -> None:
    X, y = loan_frame(400)
    model = Pipeline([("prep", preprocessor()), ("model", final)]).fit(X, y)
    test, _ = loan_frame(120, seed=5)
    assert_parity(model, X, messy(test), tmp_path)


def test_regression_pipeline(tmp_path: Path) -> None:
    X, _ = loan_frame(400)
    y = X["age"] * 1000.0 + np.nan_to_num(X["income"]) / 3
    model = Pipeline([("prep", preprocessor()), ("model", Ridge())]).fit(X, y)
    test, _ = loan_frame(120, seed=6)
    assert_parity(model, X, messy(test), tmp_path)


@pytest.mark.parametrize(
    "text_imputer",
    [None, SimpleImputer(strategy="most_frequent"), SimpleImputer(strategy="constant", fill_value="missing")],
    ids=["nan-as-category", "most-frequent", "constant"],
)
def test_text_missing_at_training_time(text_imputer: Any, tmp_path: Path) -> None:
    """Missing text seen in training: imputed (imputers look for ''), or one-hot as its own column."""
    X, y = loan_frame(400)
    X = messy(X)
    model = Pipeline([("prep", preprocessor(text_imputer)), ("model", LogisticRegression(max_iter=500))])
    model.fit(X, y)
    test, _ = loan_frame(120, seed=7)
    assert_parity(model, X, messy(test), tmp_path)


def test_missing_text_fed_as_empty_string(tmp_path: Path) -> None:
    """The rule for loaders: a missing string may be fed as '' (or left as NaN/None/pd.NA)."""
    X, y = loan_frame(300)
    model = Pipeline(
        [
            ("prep", preprocessor(SimpleImputer(strategy="constant", fill_value="missing"))),
            ("model", LogisticRegression()),
        ]
    ).fit(X, y)
    loaded, sig, _ = twin(model, X, tmp_path)
    test = messy(loan_frame(60, seed=8)[0])
    feeds = {}
    for spec in sig.columns or ():
        col = test[spec.name].to_numpy().reshape(-1, 1)
        if spec.type == "string":
            feeds[spec.name] = np.array([["" if pd.isna(v) else v] for v in col[:, 0]], dtype=object)
        else:
            feeds[spec.name] = col.astype(np.float64)
    label, proba = loaded.raw.run(None, feeds)
    np.testing.assert_allclose(proba, model.predict_proba(test), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(label, model.predict(test))
    with_na = test.astype({"home": "string"})  # pandas' own NA in a string column
    np.testing.assert_array_equal(loaded.predict(prepare(with_na, sig)), model.predict(test))


def test_credit_demo_pipeline(tmp_path: Path) -> None:
    from modelport_examples.credit import generate_applications, split_applications, train_credit_model

    df = generate_applications(1500, seed=3)
    model, _ = train_credit_model(df, seed=3)
    X_train, X_test, _, _ = split_applications(df, seed=3)
    X_test = X_test.copy()
    X_test.iloc[:10, X_test.columns.get_loc("purpose")] = np.nan
    X_test.iloc[10:20, X_test.columns.get_loc("home_ownership")] = "CARAVAN"
    converted = assert_parity(model, X_train, X_test, tmp_path)
    assert converted.task == "classifier" and converted.classes == [0, 1]


def test_graph_inputs_and_outputs_follow_the_onnx_flavor(tmp_path: Path) -> None:
    from onnx import TensorProto

    X, y = loan_frame(200)
    model = Pipeline([("prep", preprocessor()), ("model", LogisticRegression())]).fit(X, y)
    _, sig, converted = twin(model, X, tmp_path / "frame")
    graph = converted.model.graph
    kinds = {i.name: i.type.tensor_type.elem_type for i in graph.input}
    assert list(kinds) == sig.names
    assert kinds == {n: TensorProto.STRING if n in CATEGORICAL else TensorProto.DOUBLE for n in sig.names}
    assert all([d.dim_value for d in i.type.tensor_type.shape.dim] == [0, 1] for i in graph.input)
    assert [o.name for o in graph.output] == ["label", "probabilities"]
    assert [d.dim_value for d in graph.output[1].type.tensor_type.shape.dim][1:] == [2]
    assert not any(n.op_type == "ZipMap" for n in graph.node)

    Xn, yn = numeric(nan=0.0)
    forest = RandomForestRegressor(n_estimators=5, random_state=0).fit(Xn, yn["regression"])
    _, _, converted = twin(forest, Xn, tmp_path / "matrix")
    (only,) = converted.model.graph.input
    assert [d.dim_value for d in only.type.tensor_type.shape.dim] == [0, 5]
    assert converted.task == "regressor" and converted.classes is None


def test_frame_models_without_column_transformer_get_one_input_per_column(tmp_path: Path) -> None:
    X, y = numeric(nan=0.05)
    frame = pd.DataFrame(X, columns=["label", "input", "c", "d", "e"])  # names used inside the graph
    frame["k"] = np.arange(len(frame)) % 4
    model = make_pipeline(StandardScaler(), HistGradientBoostingClassifier(max_iter=20)).fit(
        frame[:350], y["binary"][:350]
    )
    converted = assert_parity(model, frame[:350], frame[350:], tmp_path)
    assert [i.name for i in converted.model.graph.input] == list(frame.columns)


def test_string_class_labels(tmp_path: Path) -> None:
    X, y = numeric(nan=0.0)
    labels = np.array(["approve", "decline", "review"])[y["multiclass"]]
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X[:350], labels[:350])
    converted = assert_parity(model, X[:350], X[350:], tmp_path)
    assert converted.classes == ["approve", "decline", "review"]


class MajorityClass(ClassifierMixin, BaseEstimator):
    """A custom estimator no ONNX converter knows."""

    def fit(self, X: Any, y: Any) -> MajorityClass:
        self.classes_ = np.unique(y)
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.full(len(X), self.classes_[0])


def test_unsupported_parts_are_named() -> None:
    X, y = loan_frame(100)
    sig = infer_signature(X)
    custom = Pipeline([("prep", preprocessor()), ("model", MajorityClass())]).fit(X, y)
    with pytest.raises(
        ConversionUnsupported, match=r"step 'model' \(tests\.unit\.test_sklearn_onnx\.MajorityClass\)"
    ):
        sk_flavor.to_onnx(custom, sig, None, {"input": "pandas"})
    cats = X.astype({"home": "category", "purpose": "category"})
    native_cats = HistGradientBoostingClassifier(max_iter=5, categorical_features="from_dtype").fit(cats, y)
    with pytest.raises(ConversionUnsupported, match="native categorical splits"):
        sk_flavor.to_onnx(native_cats, infer_signature(cats), None, {"input": "pandas"})
    images = infer_signature(np.zeros((2, 3, 4)))
    with pytest.raises(ConversionUnsupported, match="tabular"):
        sk_flavor.to_onnx(LinearRegression(), images, None, {"input": "numpy"})


def test_conversion_leaves_no_trace(tmp_path: Path) -> None:
    """Per-call converters only: the fitted model and skl2onnx's registry are unchanged."""
    from skl2onnx.common._container import ModelComponentContainer
    from skl2onnx.common._registration import get_converter

    before, add_node = get_converter("SklearnRandomForestClassifier"), ModelComponentContainer.add_node
    X, y = loan_frame(300)
    model = Pipeline(
        [
            ("prep", preprocessor(SimpleImputer(strategy="most_frequent"))),
            ("model", RandomForestClassifier(n_estimators=5)),
        ]
    ).fit(messy(X), y)
    twin(model, messy(X), tmp_path)
    imputer = model.named_steps["prep"].named_transformers_["cat"].steps[0][1]
    assert imputer.missing_values is np.nan or np.isnan(imputer.missing_values)
    assert get_converter("SklearnRandomForestClassifier") is before
    assert ModelComponentContainer.add_node is add_node
