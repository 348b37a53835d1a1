"""Edge bundles: export, checksums, the tiny runtime, int8 where it pays, a bare environment."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from typer.testing import CliRunner

import modelport as mp
from modelport.cli import app
from modelport.edge import load_bundle
from modelport.flavors.base import installed_version
from tests.conftest import loan_frame
from tests.unit.test_registry import credit_pipeline

NUMERIC = ["income", "debt_ratio", "age"]


@pytest.fixture
def bundle(home: Path, tmp_path: Path) -> tuple[Path, object, pd.DataFrame]:
    model, X, _ = credit_pipeline()
    mp.register(model, "credit", sample=X, alias="production")
    out = tmp_path / "credit-edge"
    result = CliRunner().invoke(app, ["export", "credit@production", "--output", str(out), "--zip"])
    assert result.exit_code == 0, result.output
    return out, model, X


def test_bundle_layout_manifest_and_predictions(bundle) -> None:
    out, model, X = bundle
    assert (out / "model.onnx").is_file() and (out / "run.py").is_file()
    assert (out / "runtime" / "modelport" / "edge" / "runtime.py").is_file()
    assert Path(f"{out}.zip").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["ref"] == "credit:1" and manifest["parity"]["passed"] is True
    assert [c["name"] for c in manifest["model_version"]["signature"]["columns"]] == list(X.columns)
    assert "model.onnx" in manifest["files"]
    new, _ = loan_frame(40, seed=5)
    for source in (out, Path(f"{out}.zip")):
        edge = load_bundle(source)
        np.testing.assert_allclose(edge.predict_proba(new), model.predict_proba(new), atol=1e-5)
        np.testing.assert_array_equal(edge.predict(new.to_dict("records")), model.predict(new))
    with pytest.raises(mp.SchemaMismatch, match="Missing 1 input column"):
        load_bundle(out).predict(new.drop(columns=["age"]))


def test_tampered_bundle_is_refused(bundle) -> None:
    out, _, _ = bundle
    with open(out / "model.onnx", "ab") as f:
        f.write(b"\0")
    with pytest.raises(mp.ArtifactTampered, match=r"model\.onnx.*modified"):
        load_bundle(out)


def _write_csv(path: Path, df: pd.DataFrame) -> None:
    df.to_csv(path, index=False, na_rep="")


def test_edge_run_scores_csv_and_reports_bad_cells(bundle, tmp_path: Path) -> None:
    out, model, _ = bundle
    new, _ = loan_frame(30, seed=6)
    _write_csv(tmp_path / "new.csv", new)
    runner = CliRunner()
    res = runner.invoke(
        app, ["edge-run", str(out), "-i", str(tmp_path / "new.csv"), "-o", str(tmp_path / "s.csv")]
    )
    assert res.exit_code == 0, res.output
    scored = pd.read_csv(tmp_path / "s.csv")
    np.testing.assert_allclose(scored["proba_1"], model.predict_proba(new)[:, 1], atol=1e-5)
    np.testing.assert_array_equal(scored["prediction"], model.predict(new))
    bad = new.astype(object)
    bad.loc[1, "age"] = "abc"
    _write_csv(tmp_path / "bad.csv", bad)
    res = runner.invoke(
        app, ["edge-run", str(out), "-i", str(tmp_path / "bad.csv"), "-o", str(tmp_path / "b.csv")]
    )
    assert res.exit_code == 1 and "Line 3, column 'age': expected int64, got 'abc'" in res.output
    assert not (tmp_path / "b.csv").exists()


def test_failed_gate_is_not_exported_without_force(home: Path, tmp_path: Path) -> None:
    X, y = loan_frame(300)
    mp.register(HistGradientBoostingClassifier(max_iter=20).fit(X[NUMERIC], y), "hgb", sample=X[NUMERIC])
    mp.compile("hgb", rtol=0.0)
    runner = CliRunner()
    refused = runner.invoke(app, ["export", "hgb", "-o", str(tmp_path / "b")])
    assert (
        refused.exit_code == 1 and "failed its parity gate" in refused.output and "--force" in refused.output
    )
    assert not (tmp_path / "b").exists()
    forced = runner.invoke(app, ["export", "hgb", "-o", str(tmp_path / "b"), "--force", "--quantize", "int8"])
    assert forced.exit_code == 0, forced.output
    assert "int8 skipped: the graph has no MatMul" in " ".join(forced.output.split())  # trees stay fp32


@pytest.mark.slow
def test_bundle_runs_in_a_bare_environment(bundle, tmp_path: Path) -> None:
    """Only numpy and onnxruntime (and what they need) are installed next to the bundle."""
    out, model, _ = bundle
    env_dir = tmp_path / "bare"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    pins = [f"{p}=={installed_version(p)}" for p in ("numpy", "onnxruntime")]
    subprocess.run([py, "-m", "pip", "install", "-q", *pins], check=True, timeout=600)
    listed = subprocess.run([py, "-m", "pip", "list", "--format=json"], capture_output=True, text=True)
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert not names & {"pandas", "scikit-learn", "pyarrow", "sqlalchemy", "modelport"}
    new, _ = loan_frame(25, seed=7)
    _write_csv(tmp_path / "new.csv", new)
    run = subprocess.run(
        [py, str(out / "run.py"), "--input", str(tmp_path / "new.csv"), "--output", str(tmp_path / "s.csv")],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    with open(tmp_path / "s.csv") as f:
        rows = list(csv.DictReader(f))
    got = [float(r["proba_1"]) for r in rows]
    np.testing.assert_allclose(got, model.predict_proba(new)[:, 1], atol=1e-5)
    missing = ["--input", str(tmp_path / "missing.csv"), "--output", str(tmp_path / "x.csv")]
    bad = subprocess.run([py, str(out / "run.py"), *missing], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "Error:" in bad.stderr and "Traceback" not in bad.stderr
    assert sys.executable != str(py)


def _trained_mlp() -> tuple[object, np.ndarray, np.ndarray]:
    import torch

    from tests.unit.torch_models import TabularNet

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 64)).astype(np.float32)
    y = (X[:, :4].sum(axis=1) > 0).astype(np.int64)
    torch.manual_seed(0)
    net = TabularNet(64, 2, hidden=1024)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.from_numpy(X)), torch.from_numpy(y)).backward()
        opt.step()
    return net.eval(), X, y


@pytest.mark.parametrize(("mode", "max_ratio"), [("int8", 0.3), ("int8-static", 0.3), ("fp16", 0.55)])
def test_reduced_mlp_bundles_are_smaller_and_gated(
    home: Path, tmp_path: Path, mode: str, max_ratio: float
) -> None:
    net, X, _ = _trained_mlp()
    mp.register(net, "mlp", sample=X, flavor_options={"task": "classifier", "classes": [0, 1]})
    assert mp.compile("mlp").passed
    reg = mp.default_client().registry
    from modelport.edge.export import export_bundle

    result = export_bundle(reg, "mlp", tmp_path / mode, quantize=mode)
    assert result.quantize == mode and result.quantization["passed"] is True
    assert result.model_bytes <= max_ratio * result.fp32_bytes, (result.model_bytes, result.fp32_bytes)
    assert result.quantization["label_agreement"] >= 0.99
    edge = load_bundle(tmp_path / mode)
    agree = np.mean(edge.predict(X[:500]) == mp.load("mlp", runtime="native").predict(X[:500]))
    assert agree >= 0.98
    assert json.loads((tmp_path / mode / "manifest.json").read_text())["quantization"]["mode"] == mode


def test_quantization_judged_on_accuracy_when_labels_are_given(home: Path, tmp_path: Path) -> None:
    net, X, y = _trained_mlp()
    mp.register(net, "mlp", sample=X, flavor_options={"task": "classifier", "classes": [0, 1]})
    pd.DataFrame({"y": y}).to_parquet(tmp_path / "labels.parquet")
    out = tmp_path / "b"
    res = CliRunner().invoke(
        app,
        [
            "export",
            "mlp",
            "-o",
            str(out),
            "--quantize",
            "int8",
            "--labels",
            str(tmp_path / "labels.parquet"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    q = json.loads(res.stdout)["quantization"]
    assert q["passed"] and q["accuracy_native"] > 0.9
    assert abs(q["accuracy_native"] - q["accuracy_reduced"]) <= 0.01
    assert "accuracy" in q["reason"]
