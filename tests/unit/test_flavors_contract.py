"""One contract for every flavor: register -> load -> the same predictions as the original model.

The cases (``flavor_cases.CASES``) cover each framework with numpy, pandas (categorical, NaN) and
tensor inputs; every one must detect its own flavor, record its framework's version, predict and
predict_proba exactly like the object the user trained, and read back its own model file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import modelport as mp
from modelport import flavors
from modelport.errors import FlavorError, RegistrationError
from tests.unit.flavor_cases import (
    CASES,
    Case,
    lgb_classifier,
    onnx_columns_regressor,
    onnx_outputs,
    onnx_regressor,
    torch_regressor,
)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Build each case's model once per session: several tests reuse it (builds are deterministic)."""
    cache: dict[str, tuple[Any, Any]] = {}

    def get(case: Case) -> tuple[Any, Any]:
        if case.id not in cache:
            cache[case.id] = case.build(tmp_path_factory.mktemp(case.id))
        return cache[case.id]

    return get


def _params() -> list[Any]:
    out = []
    for case in CASES:
        marks = []
        if "torchscript" in case.id:  # torch.jit is deprecated in torch 2.13; still supported
            marks.append(pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning"))
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out


def _assert_same(p: mp.Predictor, X: Any, pred: np.ndarray, proba: np.ndarray | None) -> None:
    got = p.predict(X)
    if pred.dtype.kind in "fc":
        np.testing.assert_allclose(got, pred, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(got, pred)
    if proba is not None:
        np.testing.assert_allclose(p.predict_proba(X), proba, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", _params())
def test_registered_model_predicts_like_the_original(
    case: Case, home: Path, built: Any, tmp_path: Path
) -> None:
    model, X = built(case)
    pred, proba = case.expected(model, X)
    mv = mp.register(model, "m", sample=X, flavor_options=case.options or None)
    assert (mv.flavor, mv.task) == (case.flavor, case.task)
    assert case.package in mv.environment["packages"]
    assert mv.flavor_info["format_version"] == flavors.get(case.flavor).FORMAT_VERSION
    # auto: the ONNX twin built at registration where it passed; threads: every flavor takes them
    for runtime, threads in (("auto", None), ("native", None), ("native", 1)):
        p = mp.load("m", runtime=runtime, threads=threads)
        _assert_same(p, X, pred, proba)
        if case.classes is not None:
            assert p.classes == case.classes
    if getattr(model, "training", False):
        assert model.training, "registering must not leave a torch module in eval mode"

    if case.write_file is None:
        return
    file = case.write_file(model, tmp_path)
    flavor = flavors.for_file(file)
    assert case.flavor == flavor.NAME
    mv = mp.register(
        flavor.read_file(file), "from-file", sample=X, flavor_options=case.options or None, compile=False
    )
    assert mv.flavor == case.flavor
    from_file = mp.load("from-file", runtime="native")
    if proba is not None:  # labels may be lost with the wrapper (a Booster file): compare probabilities
        np.testing.assert_allclose(from_file.predict_proba(X), proba, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(from_file.predict(X), pred, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", _params())
def test_each_flavor_is_detected(case: Case, built: Any) -> None:
    model, _ = built(case)
    assert case.flavor == flavors.detect(model).NAME


@pytest.mark.parametrize("obj", [object(), {"weights": [1, 2]}, "model.txt", np.zeros((2, 2))])
def test_unsupported_object_is_a_clear_flavor_error(obj: Any, home: Path) -> None:
    with pytest.raises(FlavorError, match=r"Cannot tell which framework .* Supported: scikit-learn"):
        flavors.detect(obj)
    with pytest.raises(FlavorError, match="Cannot tell which framework"):
        mp.register(obj, "m", sample=np.zeros((2, 2)))
    assert mp.list_models() == []


_ONE_PER_FLAVOR = {c.flavor: c for c in CASES if c.id != "onnx-classifier-zipmap-path"}


@pytest.mark.parametrize("case", list(_ONE_PER_FLAVOR.values()), ids=list(_ONE_PER_FLAVOR))
def test_unknown_flavor_option_is_a_registration_error(case: Case, home: Path, built: Any) -> None:
    model, X = built(case)
    with pytest.raises(RegistrationError, match=re.escape(f"option(s) for {case.flavor}: bogus")):
        mp.register(model, "m", sample=X, flavor_options={**case.options, "bogus": 1})
    assert mp.list_models() == []


def test_lightgbm_category_model_accepts_text_columns(home: Path, tmp_path: Path) -> None:
    model, X = lgb_classifier(tmp_path)
    as_text = X.astype({"home": str, "purpose": str})
    mp.register(model, "m", sample=as_text)
    got = mp.load("m").predict_proba(as_text.iloc[::-1].head(20))
    np.testing.assert_allclose(got, model.predict_proba(X.iloc[::-1].head(20)), rtol=1e-6)


def test_onnx_signature_comes_from_the_graph(home: Path, tmp_path: Path) -> None:
    model, X = onnx_regressor(tmp_path)
    mv = mp.register(model, "m")  # no sample: the graph input (n, 4) float gives the columns
    assert mv.signature.names == ["x0", "x1", "x2", "x3"]
    assert {c.type for c in mv.signature.columns or ()} == {"float32"}
    expected, _ = onnx_outputs(model, X)
    np.testing.assert_allclose(mp.load("m").predict(X.astype(np.float64)), expected, rtol=1e-6)

    model, X = onnx_columns_regressor(tmp_path)  # one (n, 1) input per column -> named columns
    mv = mp.register(model, "columns")
    assert [(c.name, c.type) for c in mv.signature.columns or ()] == [
        ("income", "float32"),
        ("debt_ratio", "float32"),
        ("age", "int64"),
    ]
    np.testing.assert_allclose(mp.load("columns").predict(X), onnx_outputs(model, X)[0], rtol=1e-6)


def test_torch_state_dict_without_init_kwargs_names_the_fix(home: Path, tmp_path: Path) -> None:
    model, X = torch_regressor(tmp_path)
    with pytest.raises(FlavorError, match="init_kwargs"):
        mp.register(model, "m", sample=X, flavor_options={"format": "state_dict", "task": "regressor"})
    assert mp.list_models() == []


def test_torch_state_dict_rejects_a_class_that_cannot_be_imported(home: Path) -> None:
    torch = pytest.importorskip("torch")

    class Local(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(2, 1)

        def forward(self, x: Any) -> Any:
            return self.lin(x)

    with pytest.raises(FlavorError, match=r"importable by its module path.*defined in a function"):
        mp.register(
            Local(), "m", sample=np.zeros((2, 2), np.float32), flavor_options={"format": "state_dict"}
        )
    assert mp.list_models() == []


def test_torch_export_needs_a_sample(home: Path, tmp_path: Path) -> None:
    model, _ = torch_regressor(tmp_path)
    with pytest.raises(FlavorError, match="needs sample="):
        mp.register(model, "m", signature={f"x{i}": "float32" for i in range(10)})
