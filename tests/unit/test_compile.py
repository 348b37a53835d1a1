"""Compiled ONNX twins: conversion, the parity gate, storage, and runtime selection at load."""

from __future__ import annotations

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
from modelport.cli import app
from modelport.edge.compile import stored_report
from modelport.flavors.base import ConversionUnsupported
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


def test_compile_passes_and_auto_runs_the_twin(home: Path) -> None:
    model, X, _ = credit_pipeline()
    mp.register(model, "credit", sample=X, alias="production")
    assert mp.load("credit@production").runtime == "native"
    report = mp.compile("credit@production")
    assert report.passed, report.summary()
    assert report.rows == len(X) and report.label_agreement == 1.0 and report.model_bytes > 0
    assert mp.get("credit:1").compiled["onnx"]["passed"] is True
    assert stored_report(mp.default_client().registry, "credit:1") == report

    p = mp.load("credit@production")
    assert p.runtime == "onnx"
    new, _ = loan_frame(60, seed=9)
    np.testing.assert_allclose(p.predict_proba(new), model.predict_proba(new), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(p.predict(new), model.predict(new))
    np.testing.assert_array_equal(p.predict(new.to_dict("records")), model.predict(new))
    assert mp.load("credit:1", runtime="native").runtime == "native"
    with pytest.raises(mp.SchemaMismatch, match="Missing 1 input column"):
        p.predict(new.drop(columns=["income"]))


def test_failed_gate_is_kept_but_never_used(home: Path) -> None:
    X, y = loan_frame(300)
    model = HistGradientBoostingClassifier(max_iter=20).fit(X[NUMERIC], y)
    mp.register(model, "hgb", sample=X[NUMERIC])
    with pytest.raises(mp.ModelNotFound, match=r"no ONNX twin\. Run `modelport compile hgb:1`"):
        mp.load("hgb", runtime="onnx")
    strict = mp.compile("hgb", rtol=0.0)  # any difference at all fails: the gate must say so
    assert not strict.passed and any("relative difference" in r for r in strict.reasons)
    assert mp.get("hgb:1").compiled["onnx"]["passed"] is False
    assert mp.load("hgb").runtime == "native"
    with pytest.raises(mp.ModelNotFound, match="failed the parity gate"):
        mp.load("hgb", runtime="onnx")
    old = mp.default_client().meta.get_compiled("hgb", 1, "onnx")["artifact_uri"]
    assert mp.compile("hgb").passed  # recompiling with the default gate replaces the twin
    assert not Path(old).exists()
    assert mp.load("hgb").runtime == "onnx"


def test_unsupported_estimator_names_it_and_native_keeps_working(home: Path) -> None:
    X, y = loan_frame(100)
    model = make_pipeline(StandardScaler(), MajorityClass()).fit(X[NUMERIC], y)
    mp.register(model, "custom", sample=X[NUMERIC])
    with pytest.raises(ConversionUnsupported, match=r"MajorityClass.*native runtime keeps working"):
        mp.compile("custom")
    assert mp.get("custom").compiled == {}
    assert mp.load("custom").predict(X[NUMERIC].head(3)).shape == (3,)


def test_tampered_twin_falls_back_under_auto_and_fails_under_onnx(home: Path) -> None:
    model, X, _ = credit_pipeline()
    mp.register(model, "credit", sample=X)
    mp.compile("credit")
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
