"""The registry on the embedded default (SQLite + local folder)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

import modelport as mp
from modelport.store import db
from tests.conftest import loan_frame


def credit_pipeline():
    X, y = loan_frame(300)
    pre = ColumnTransformer(
        [
            ("num", SimpleImputer(), ["income", "debt_ratio", "age"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["home", "purpose"]),
        ]
    )
    return make_pipeline(pre, LogisticRegression(max_iter=1000)).fit(X, y), X, y


def test_register_load_predict_every_container(home: Path) -> None:
    model, X, _ = credit_pipeline()
    mv = mp.register(
        model, "credit", sample=X, metrics={"auc": 0.91}, tags={"team": "risk"}, alias="production"
    )
    assert (mv.name, mv.version, mv.aliases, mv.flavor, mv.task) == (
        "credit",
        1,
        ("production",),
        "sklearn",
        "classifier",
    )
    assert mv.metrics == {"auc": 0.91} and mv.tags == {"team": "risk"}
    expected = model.predict_proba(X.head(20))
    p = mp.load("credit@production")
    head = X.head(20)
    for data in (head, pl.from_pandas(head), pa.Table.from_pandas(head), head.to_dict("records")):
        np.testing.assert_allclose(p.predict_proba(data), expected)
        np.testing.assert_array_equal(p.predict(data), model.predict(head))
    assert p.classes == [0, 1]
    assert mp.load("credit").model_version.version == 1
    assert mp.load("credit:1").model_version.ref == "credit:1"


def test_record_has_environment_checksums_lineage_and_reference(home: Path) -> None:
    model, X, _ = credit_pipeline()
    mv = mp.register(model, "credit", sample=X)
    assert mv.environment["python"].count(".") == 2
    assert "scikit-learn" in mv.environment["packages"]
    assert any(r.startswith("scikit-learn==") for r in mv.requirements)
    assert set(mv.files) == {"model/model.joblib", "reference.parquet"}
    assert all(len(h) == 64 for h in mv.files.values())
    assert len(mv.lineage["data_fingerprint"]) == 64 and mv.lineage["training_rows"] == 300
    ref = mp.reference_sample("credit:1")
    pd.testing.assert_frame_equal(ref, X.reset_index(drop=True), check_dtype=False)
    stats = mv.reference["columns"]
    assert stats["income"]["kind"] == "numeric" and stats["income"]["nulls"] == int(X.income.isna().sum())
    assert abs(stats["income"]["mean"] - X.income.mean()) < 1e-6
    assert stats["home"]["kind"] == "categorical" and sum(stats["home"]["top"].values()) == 300
    assert mv.reference["rows"] == 300
    # the same data gives the same fingerprint
    assert (
        mp.register(model, "credit", sample=X).lineage["data_fingerprint"] == mv.lineage["data_fingerprint"]
    )


def test_reference_sample_is_capped(home: Path) -> None:
    X = pd.DataFrame({"a": np.arange(5000, dtype=float)})
    model = LinearRegression().fit(X, X.a * 2)
    client = mp.default_client()
    mv = client.registry.register(model, "lin", sample=X, reference_rows=1000)
    assert mv.reference["sample_rows"] == 1000 and mv.reference["source_rows"] == 5000
    assert len(mp.reference_sample("lin")) == 1000


def test_git_commit_of_the_calling_script_is_recorded(home: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    script = repo / "train.py"
    script.write_text(
        "import numpy as np, modelport as mp\n"
        "from sklearn.linear_model import LinearRegression\n"
        "X = np.arange(10.0).reshape(-1, 1)\n"
        "mv = mp.register(LinearRegression().fit(X, X[:, 0]), 'lin', sample=X)\n"
        "print(mv.lineage['git']['commit'])\n"
    )
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == head


def test_parent_lineage_and_versions(home: Path) -> None:
    model, X, _ = credit_pipeline()
    mp.register(model, "credit", sample=X)
    mv2 = mp.register(model, "credit", sample=X, parent="credit:1")
    assert mv2.version == 2 and mv2.lineage["parent"] == "credit:1"
    assert [v.version for v in mp.list_versions("credit")] == [1, 2]
    with pytest.raises(mp.ModelNotFound, match="credit:9"):
        mp.register(model, "credit", sample=X, parent="credit:9")


def test_aliases_move_and_are_listed(home: Path) -> None:
    model, X, _ = credit_pipeline()
    for _ in range(3):
        mp.register(model, "credit", sample=X)
    mp.set_alias("credit", 3, "production")
    mp.set_alias("credit", 2, "staging")
    assert mp.get("credit@production").version == 3
    mp.set_alias("credit", 1, "production")
    assert mp.get("credit@production").version == 1
    assert mp.get("credit:1").aliases == ("production",)
    [summary] = mp.list_models()
    assert summary.aliases == {"production": 1, "staging": 2} and summary.latest_version == 3
    assert mp.delete_alias("credit", "staging") == 2
    with pytest.raises(mp.AliasNotFound, match="Aliases of 'credit': production"):
        mp.get("credit@staging")
    history = mp.default_client().meta.alias_history("credit")
    assert [(e["alias"], e["version"], e["previous_version"]) for e in history] == [
        ("production", 3, None),
        ("staging", 2, None),
        ("production", 1, 3),
        ("staging", None, 2),
    ]


def test_not_found_messages_name_the_fix(home: Path) -> None:
    model, X, _ = credit_pipeline()
    mp.register(model, "credit", sample=X, alias="production")
    with pytest.raises(mp.ModelNotFound, match=r"Model 'credt' not found\. Did you mean: credit\?"):
        mp.load("credt")
    with pytest.raises(mp.ModelNotFound, match=r"Versions of 'credit': 1"):
        mp.load("credit:7")
    with pytest.raises(mp.AliasNotFound, match=r"'credit@prod' not found\. Aliases of 'credit': production"):
        mp.load("credit@prod")
    with pytest.raises(mp.ModelNotFound):
        mp.set_alias("credit", 5, "production")
    with pytest.raises(mp.InvalidReference):
        mp.load("credit@@x")


def test_tampered_artifact_is_refused(home: Path) -> None:
    model, X, _ = credit_pipeline()
    mv = mp.register(model, "credit", sample=X)
    path = Path(mv.artifact_uri) / "model" / "model.joblib"
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(mp.ArtifactTampered, match="modified after registration"):
        mp.load("credit:1", runtime="native")  # "auto" runs the ONNX twin, whose files are its own
    path.unlink()
    with pytest.raises(mp.ArtifactTampered, match="missing"):
        mp.load("credit:1", runtime="native")


def test_failed_registration_leaves_nothing(home: Path) -> None:
    model, X, _ = credit_pipeline()
    mp.register(model, "credit", sample=X)
    with pytest.raises(mp.RegistrationError, match="fitted on: home"):  # sample lacks a feature
        mp.register(model, "credit", sample=X.drop(columns=["home"]))
    with pytest.raises(mp.SchemaMismatch, match="Missing 1 input column"):
        mp.register(model, "credit", sample=X, signature={"nope": "float64"})
    bad = X.assign(home=1)
    with pytest.raises(mp.RegistrationError, match="does not load and predict"):
        mp.register(model, "credit", sample=bad)
    with pytest.raises(mp.RegistrationError, match="must be a number"):
        mp.register(model, "credit", sample=X, metrics={"auc": "high"})
    assert [v.version for v in mp.list_versions("credit")] == [1]
    artifacts = home / "artifacts"
    kept = {
        mp.get("credit:1").artifact_uri,
        mp.default_client().meta.get_compiled("credit", 1, "onnx")["artifact_uri"],
    }
    assert {str(p) for p in (artifacts / "credit").iterdir()} == kept  # the version and its ONNX twin
    assert not any((artifacts / ".staging").iterdir())


def test_db_failure_rolls_back_published_files(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, X, _ = credit_pipeline()
    client = mp.default_client()

    def boom(*a, **k):
        raise mp.StoreError("database went away")

    monkeypatch.setattr(client.meta, "insert_version", boom)
    with pytest.raises(mp.StoreError):
        mp.register(model, "credit", sample=X)
    assert not (home / "artifacts" / "credit").exists() or not any((home / "artifacts" / "credit").iterdir())


def test_signature_without_sample_and_errors(home: Path) -> None:
    X = np.arange(20.0).reshape(-1, 2)
    model = LinearRegression().fit(X, X.sum(axis=1))
    mv = mp.register(model, "lin", signature={"x0": "float64", "x1": "float64"})
    assert mv.reference == {} and mv.lineage["training_rows"] is None
    np.testing.assert_allclose(mp.load("lin").predict([[1.0, 2.0]]), [3.0])
    with pytest.raises(mp.RegistrationError, match="pass sample="):
        mp.register(model, "lin")
    with pytest.raises(mp.FlavorError, match="Cannot tell which framework"):
        mp.register(object(), "x", sample=X)
    with pytest.raises(mp.InvalidReference, match="Invalid model name"):
        mp.register(model, "bad name", sample=X)
    with pytest.raises(mp.ModelportError, match="only for classifiers"):
        mp.load("lin").predict_proba(X)


def test_framework_version_mismatch_warns(home: Path) -> None:
    model, X, _ = credit_pipeline()
    mp.register(model, "credit", sample=X)
    client = mp.default_client()
    with client.meta.engine.begin() as conn:
        row = conn.execute(db.versions.select()).mappings().one()
        env = dict(row["environment"])
        env["packages"] = {**env["packages"], "scikit-learn": "0.1.0"}
        conn.execute(db.versions.update().values(environment=env))
    with pytest.warns(mp.DependencyMismatchWarning, match=r"scikit-learn 0\.1\.0 at registration"):
        p = mp.load("credit:1", runtime="native")  # the ONNX twin does not run scikit-learn
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert p.predict(X.head(2)).shape == (2,)


def test_model_version_to_dict_is_json(home: Path) -> None:
    model, X, _ = credit_pipeline()
    mv = mp.register(model, "credit", sample=X, alias="production")
    d = json.loads(json.dumps(mv.to_dict()))
    assert d["aliases"] == ["production"] and d["signature"]["columns"][0]["name"] == "income"


def test_public_surface() -> None:
    """The public API is explicit: adding or dropping a name is a deliberate change."""
    assert set(mp.__all__) == {
        "AliasNotFound",
        "ArtifactTampered",
        "Client",
        "ColumnSpec",
        "CompileWarning",
        "DependencyMismatchWarning",
        "ExtraColumnsWarning",
        "FlavorError",
        "InvalidInput",
        "InvalidReference",
        "ModelNotFound",
        "Overloaded",
        "ModelSummary",
        "ModelVersion",
        "ModelportError",
        "Predictor",
        "RegistrationError",
        "SchemaMismatch",
        "ServeConfig",
        "Settings",
        "Signature",
        "StoreError",
        "TensorSpec",
        "__version__",
        "batch",
        "clear_traffic",
        "compile",
        "default_client",
        "delete_alias",
        "get",
        "list_models",
        "list_versions",
        "load",
        "log_labels",
        "monitor",
        "prediction_log",
        "reference_sample",
        "register",
        "serve",
        "set_alias",
        "set_traffic",
        "traffic",
    }
    for name in mp.__all__:
        assert hasattr(mp, name), name
    for name in (
        "register",
        "load",
        "get",
        "set_alias",
        "delete_alias",
        "list_models",
        "set_traffic",
        "traffic",
    ):
        assert getattr(mp, name).__doc__


def test_label_and_id_columns_in_the_sample_stay_out_of_the_signature(home: Path) -> None:
    model, X, y = credit_pipeline()
    train = X.assign(defaulted=y, application_id=range(len(X)))
    with pytest.warns(mp.ExtraColumnsWarning, match="defaulted, application_id"):
        mv = mp.register(model, "credit", sample=train)
    assert mv.signature.names == list(X.columns)
    assert list(mp.reference_sample("credit").columns) == list(X.columns)
    with pytest.raises(mp.RegistrationError, match=r"lacks column.*fitted on: age"):
        mp.register(model, "credit", sample=X.drop(columns=["age"]))


def test_unwritable_home_is_a_store_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("MODELPORT_HOME", str(blocker / "home"))
    with pytest.raises(mp.StoreError, match="Set MODELPORT_HOME to a writable folder"):
        mp.list_models()


class OpenMPProbe(RegressorMixin, BaseEstimator):
    """Predicts the OpenMP thread limit its predict call runs under."""

    def fit(self, X, y):
        import sklearn.ensemble  # noqa: F401 - brings scikit-learn's OpenMP runtime into the process

        return self

    def predict(self, X):
        from threadpoolctl import threadpool_info

        limits = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "openmp"]
        return np.full(len(X), float(min(limits)) if limits else -1.0)


def test_threads_are_an_option_of_load(home: Path) -> None:
    X, y = loan_frame(200)
    numeric = X[["income", "debt_ratio", "age"]].fillna(0.0)
    forest = RandomForestClassifier(n_estimators=5, n_jobs=-1, random_state=0).fit(numeric, y)
    mp.register(forest, "forest", sample=numeric)
    native = mp.load("forest", runtime="native", threads=1)
    assert native.threads == 1 and native.raw.n_jobs == 1
    assert mp.load("forest", runtime="native").raw.n_jobs == -1  # None: the model's own setting
    twin = mp.load("forest", runtime="onnx", threads=1)
    assert twin.threads == 1 and twin.raw.get_session_options().intra_op_num_threads == 1
    np.testing.assert_allclose(twin.predict_proba(numeric), forest.predict_proba(numeric), atol=1e-5)
    for bad in (0, -2, 1.5, True):
        with pytest.raises(mp.InvalidInput, match="threads must be a whole number"):
            mp.load("forest", threads=bad)


def test_native_scikit_learn_runs_under_the_openmp_limit(home: Path) -> None:
    X = pd.DataFrame({"a": np.arange(10.0), "b": np.ones(10)})
    mp.register(OpenMPProbe().fit(X, None), "probe", sample=X, compile=False)
    assert set(mp.load("probe", runtime="native", threads=1).predict(X)) == {1.0}
