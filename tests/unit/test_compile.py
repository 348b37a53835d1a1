"""Compiled ONNX twins: conversion, the parity gate, storage, and runtime selection at load."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

import modelport as mp
from modelport import compiled
from modelport.cli import app
from modelport.flavors.base import ConversionUnsupported
from modelport.parity import Tolerance
from tests.conftest import loan_frame
from tests.unit.test_registry import credit_pipeline

NUMERIC = ["income", "debt_ratio", "age"]


class MajorityClass(ClassifierMixin, BaseEstimator):
    """A custom estimator no ONNX converter knows."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.majority_ = np.bincount(y).argmax()
        return self

    def predict(self, X):
        return np.full(len(X), self.majority_)

    def predict_proba(self, X):
        out = np.zeros((len(X), len(self.classes_)))
        out[:, self.majority_] = 1.0
        return out


def test_registration_builds_the_twin_and_auto_runs_it(home: Path) -> None:
    model, X, _ = credit_pipeline()
    mv = mp.register(model, "credit", sample=X, alias="production")
    assert mv.compiled["onnx"]["passed"] is True and mv.aliases == ("production",)
    report = mp.default_client().registry.parity_report("credit:1")
    assert report is not None and report.passed, report
    assert report.rows == len(X) and report.label_agreement == 1.0 and report.model_bytes > 0

    p = mp.load("credit@production")
    assert p.runtime == "onnx"
    new, _ = loan_frame(60, seed=9)
    np.testing.assert_allclose(p.predict_proba(new), model.predict_proba(new), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(p.predict(new), model.predict(new))
    np.testing.assert_array_equal(p.predict(new.to_dict("records")), model.predict(new))
    assert mp.load("credit:1", runtime="native").runtime == "native"
    with pytest.raises(mp.SchemaMismatch, match="Missing 1 input column"):
        p.predict(new.drop(columns=["income"]))


def test_compile_rebuilds_and_replaces_the_stored_twin(home: Path) -> None:
    model, X, _ = credit_pipeline()
    mp.register(model, "credit", sample=X)
    old = mp.default_client().meta.get_compiled("credit", 1, "onnx")["artifact_uri"]
    report = mp.compile("credit:1")
    assert report.passed and mp.default_client().registry.parity_report("credit:1") == report
    assert not Path(old).exists()
    assert mp.load("credit:1").runtime == "onnx"


def test_failed_gate_is_kept_but_never_used(home: Path) -> None:
    X, y = loan_frame(300)
    model = HistGradientBoostingClassifier(max_iter=20).fit(X[NUMERIC], y)
    mp.register(model, "hgb", sample=X[NUMERIC], compile=False)
    assert mp.get("hgb:1").compiled == {}
    with pytest.raises(mp.ModelNotFound, match=r"no ONNX twin\. Run `modelport compile hgb:1`"):
        mp.load("hgb", runtime="onnx")
    strict = mp.compile("hgb", rtol=0.0)  # any difference at all fails: the gate must say so
    assert not strict.passed and any("relative difference" in r for r in strict.reasons)
    assert mp.get("hgb:1").compiled["onnx"]["passed"] is False
    assert mp.load("hgb").runtime == "native"  # a stored failed twin is not rebuilt by a load
    with pytest.raises(mp.ModelNotFound, match="failed the parity gate"):
        mp.load("hgb", runtime="onnx")
    old = mp.default_client().meta.get_compiled("hgb", 1, "onnx")["artifact_uri"]
    assert mp.compile("hgb").passed  # recompiling with the default gate replaces the twin
    assert not Path(old).exists()
    assert mp.load("hgb").runtime == "onnx"


def test_a_failing_gate_at_registration_keeps_native_and_says_why(home: Path) -> None:
    model, X, _ = credit_pipeline()
    signature = mp.Signature.from_dict(mp.get(mp.register(model, "seed", sample=X).ref).signature.to_dict())
    with pytest.warns(
        mp.CompileWarning, match=r"'credit:1' runs natively: its ONNX twin failed the parity gate"
    ):
        mv = mp.register(model, "credit", signature=signature)  # no rows to gate on
    assert mv.compiled["onnx"]["passed"] is False
    report = mp.default_client().registry.parity_report(mv.ref)
    assert report is not None and report.rows == 0 and "no held-out rows" in report.reasons[0]
    twin = mp.default_client().meta.get_compiled("credit", 1, "onnx")
    assert (Path(twin["artifact_uri"]) / "model" / "model.onnx").is_file()  # kept for inspection
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second try (and no second warning) at load
        assert mp.load("credit").runtime == "native"


def test_unsupported_estimator_names_it_and_native_keeps_working(home: Path) -> None:
    X, y = loan_frame(100)
    model = make_pipeline(StandardScaler(), MajorityClass()).fit(X[NUMERIC], y)
    with pytest.warns(mp.CompileWarning, match=r"'custom:1' runs natively: .*MajorityClass"):
        mv = mp.register(model, "custom", sample=X[NUMERIC])
    assert mv.compiled["onnx"]["passed"] is False  # recorded, so that loads don't try again
    assert mp.default_client().meta.get_compiled("custom", 1, "onnx")["files"] == {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mp.load("custom").predict(X[NUMERIC].head(3)).shape == (3,)
    with pytest.raises(mp.ModelNotFound, match="MajorityClass"):
        mp.load("custom", runtime="onnx")
    with pytest.raises(ConversionUnsupported, match=r"MajorityClass.*native runtime keeps working"):
        mp.compile("custom")


def test_first_auto_load_builds_and_stores_the_missing_twin(home: Path) -> None:
    model, X, _ = credit_pipeline()
    mp.register(model, "credit", sample=X, compile=False)
    assert mp.get("credit:1").compiled == {}
    assert mp.load("credit:1", runtime="native").runtime == "native"  # native loads never build
    assert mp.get("credit:1").compiled == {}
    p = mp.load("credit:1")
    assert p.runtime == "onnx" and mp.get("credit:1").compiled["onnx"]["passed"] is True
    stored = mp.default_client().meta.get_compiled("credit", 1, "onnx")
    assert mp.load("credit:1").runtime == "onnx"
    assert mp.default_client().meta.get_compiled("credit", 1, "onnx") == stored  # built once
    np.testing.assert_allclose(p.predict_proba(X), model.predict_proba(X), rtol=0, atol=1e-5)


def test_two_builders_of_one_twin_keep_the_first(home: Path) -> None:
    model, X, _ = credit_pipeline()
    mv = mp.register(model, "credit", sample=X, compile=False)
    registry = mp.default_client().registry
    native = registry.load(mv, runtime="native")
    batch = native.prepare(X)
    first = compiled.build(registry.artifacts, mv, native, batch, Tolerance())
    second = compiled.build(registry.artifacts, mv, native, batch, Tolerance())
    assert compiled.store(registry.meta, registry.artifacts, mv, first, replace=False) == first
    kept = compiled.store(registry.meta, registry.artifacts, mv, second, replace=False)
    assert kept["artifact_uri"] == first["artifact_uri"]
    assert not Path(second["artifact_uri"]).exists() and Path(first["artifact_uri"]).exists()


def test_auto_compile_can_be_turned_off(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, X, _ = credit_pipeline()
    settings = mp.Settings.from_env()
    off = mp.Client(dataclasses.replace(settings, auto_compile=False))
    mv = off.registry.register(model, "credit", sample=X)
    assert mv.compiled == {} and off.registry.load(mv).runtime == "native"
    assert off.registry.get(mv.ref).compiled == {}
    monkeypatch.setenv("MODELPORT_AUTO_COMPILE", "off")
    assert mp.Settings.from_env().auto_compile is False
    monkeypatch.setenv("MODELPORT_AUTO_COMPILE", "maybe")
    with pytest.raises(mp.InvalidInput, match="MODELPORT_AUTO_COMPILE='maybe'"):
        mp.Settings.from_env()


def test_tampered_twin_falls_back_under_auto_and_fails_under_onnx(home: Path) -> None:
    model, X, _ = credit_pipeline()
    mp.register(model, "credit", sample=X)
    twin = mp.default_client().meta.get_compiled("credit", 1, "onnx")
    onnx_file = Path(twin["artifact_uri"]) / "model" / "model.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes()[:-10])
    with pytest.warns(RuntimeWarning, match="Using the native runtime.*modified after registration"):
        assert mp.load("credit").runtime == "native"
    with warnings.catch_warnings(), pytest.raises(mp.ArtifactTampered):
        mp.load("credit", runtime="onnx")


def test_cli_compile_prints_the_report_and_fails_on_a_failed_gate(home: Path) -> None:
    model, X, _ = credit_pipeline()
    mp.register(model, "credit", sample=X)
    runner = CliRunner()
    ok = runner.invoke(app, ["compile", "credit"])
    assert ok.exit_code == 0, ok.output
    assert "Parity of credit:1: native vs onnx" in ok.output and "parity PASSED on 300 rows" in ok.output
    as_json = runner.invoke(app, ["compile", "credit", "--json"])
    assert json.loads(as_json.stdout)["passed"] is True
    Xn, y = loan_frame(300)
    mp.register(HistGradientBoostingClassifier(max_iter=20).fit(Xn[NUMERIC], y), "hgb", sample=Xn[NUMERIC])
    failed = runner.invoke(app, ["compile", "hgb", "--rtol", "0"])
    assert failed.exit_code == 1 and "parity FAILED" in failed.output
    shown = runner.invoke(app, ["models", "show", "hgb"])
    assert "onnx twin, parity FAILED (not used)" in " ".join(shown.output.split())
    assert runner.invoke(app, ["compile", "nope"]).exit_code == 1
    bad = runner.invoke(app, ["compile", "credit", "--min-label-agreement", "1.5"])
    assert bad.exit_code == 1 and "between 0 and 1" in bad.output


def test_cli_register_builds_the_twin_unless_told_not_to(home: Path, tmp_path: Path) -> None:
    import joblib

    model, X, _ = credit_pipeline()
    joblib.dump(model, tmp_path / "model.joblib")
    X.to_parquet(tmp_path / "train.parquet")
    runner = CliRunner()
    args = [
        "register",
        str(tmp_path / "model.joblib"),
        "--name",
        "credit",
        "--sample",
        str(tmp_path / "train.parquet"),
    ]
    on = runner.invoke(app, args)
    assert on.exit_code == 0, on.output
    assert "runtime: onnx (its twin passed the parity gate)" in on.output
    off = runner.invoke(app, [*args, "--no-compile", "--json"])
    assert off.exit_code == 0, off.output
    assert json.loads(off.stdout)["compiled"] == {} and mp.get("credit:2").compiled == {}


def test_an_all_float_model_gets_one_2d_input(home: Path) -> None:
    X, y = loan_frame(300)
    floats = X[["income", "debt_ratio"]].assign(age=X["age"].astype("float64"))
    model = HistGradientBoostingClassifier(max_iter=20).fit(floats, y)
    mp.register(model, "hgb", sample=floats)
    report = mp.default_client().registry.parity_report("hgb")
    assert report is not None and report.passed and any("one 2-d input" in n for n in report.notes)
    p = mp.load("hgb")
    (graph_input,) = p.raw.get_inputs()
    assert p.runtime == "onnx" and graph_input.shape[1] == 3
    new, _ = loan_frame(50, seed=4)
    new = new[["income", "debt_ratio"]].assign(age=new["age"])  # an int column widens to the float type
    expected = model.predict_proba(new.astype("float64"))
    for data in (new, new.to_dict("records"), new.to_numpy(), new[["age", "income", "debt_ratio"]]):
        np.testing.assert_allclose(p.predict_proba(data), expected, rtol=0, atol=1e-6)
    with pytest.raises(mp.SchemaMismatch, match="income"):
        p.predict(new.assign(income="high"))
