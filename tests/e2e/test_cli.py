"""The ``modelport`` command line: in-process with Typer's CliRunner, plus real runs of the script.

Commands are written as shell lines (split with :func:`shlex.split`), as a user would type them.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import modelport as mp
from modelport.cli import app
from modelport_examples.credit import FEATURES, generate_applications, split_applications, train_credit_model

SCRIPT = Path(sys.executable).parent / "modelport"
runner = CliRunner()


def ok(command: str) -> str:
    """stdout of a command that must succeed."""
    result = runner.invoke(app, shlex.split(command))
    assert result.exit_code == 0, f"modelport {command} exited {result.exit_code}: {result.output}"
    return result.stdout


def fails(command: str) -> str:
    """The error of a failing command: exit code 1, one "Error:" line ending stderr, no traceback."""
    result = runner.invoke(app, shlex.split(command))
    assert result.exit_code == 1, f"expected exit 1, got {result.exit_code}: {result.output}"
    lines = result.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Error: "), result.stderr
    assert sum(line.startswith("Error: ") for line in lines) == 1, result.stderr
    assert "Traceback" not in result.output
    return lines[-1]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained credit pipeline as a joblib file, training samples and new rows as Parquet and CSV."""
    d = tmp_path_factory.mktemp("cli-files")
    df = generate_applications(1_500, seed=7)
    model, _auc = train_credit_model(df, seed=7)
    joblib.dump(model, d / "model.joblib")
    split_applications(df, seed=7)[0].to_parquet(d / "train.parquet", index=False)
    df.to_csv(d / "train_full.csv", index=False)  # with the label and the id, for --target
    new = generate_applications(1_000, seed=8, with_label=False)
    new.to_parquet(d / "new.parquet", index=False)
    new.to_csv(d / "new.csv", index=False)
    new.drop(columns=["age"]).to_csv(d / "no_age.csv", index=False)
    bad = new.astype({"annual_income": object})
    bad.loc[700, "annual_income"] = "lots"
    bad.to_csv(d / "bad_income.csv", index=False)
    return d


def register_two(files: Path) -> None:
    ok(
        f"register {files}/model.joblib --name credit --sample {files}/train.parquet --alias production "
        "--metric auc=0.71 --tag team=risk --description first"
    )
    ok(
        f"register {files}/model.joblib --name credit --sample {files}/train_full.csv "
        "--target default --target application_id --parent credit:1"
    )


COMMANDS = ["", "register", "models", "models list", "models show", "models versions", "alias",
            "alias set", "alias rm", "predict", "demo"]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c or "root")
def test_every_command_has_help(command: str) -> None:
    out = ok(f"{command} --help")
    assert "Usage:" in out and len(out.strip().splitlines()) > 4


def test_version() -> None:
    assert ok("--version").strip() == f"modelport {mp.__version__}"


def test_register_from_files_then_list_show_versions(home: Path, files: Path) -> None:
    assert "No models registered" in ok("models list")
    assert json.loads(ok("models list --json")) == []
    register_two(files)

    listed = json.loads(ok("models list --json"))
    assert [(m["name"], m["latest_version"], m["versions"], m["aliases"], m["flavor"]) for m in listed] == [
        ("credit", 2, 2, {"production": 1}, "sklearn")
    ]
    table = ok("models list")
    assert "credit" in table and "production→1" in table

    shown = json.loads(ok("models show credit@production --json"))
    assert (shown["version"], shown["aliases"], shown["flavor"], shown["task"]) == (
        1, ["production"], "sklearn", "classifier"
    )  # fmt: skip
    assert shown["metrics"] == {"auc": 0.71} and shown["tags"] == {"team": "risk"}
    assert shown["description"] == "first"
    assert [c["name"] for c in shown["signature"]["columns"]] == FEATURES
    assert set(shown["files"]) == {"model/model.joblib", "reference.parquet"}

    # The CSV sample minus the --target columns gives the same signature; --parent is recorded.
    latest = json.loads(ok("models show credit --json"))
    assert latest["version"] == 2 and latest["signature"] == shown["signature"]
    assert latest["lineage"]["parent"] == "credit:1"
    assert json.loads(ok("models show credit:1 --json"))["version"] == 1

    detail = ok("models show credit@production")
    sha = shown["files"]["model/model.joblib"][:12]
    expected = ["credit:1", "@production", "sklearn classifier", "auc=0.71", "team=risk", "Signature (13",
                "employment_length", "scikit-learn==", "Files", sha]  # fmt: skip
    for text in expected:
        assert text in detail, text

    versions = json.loads(ok("models versions credit --json"))
    assert [v["version"] for v in versions] == [1, 2]
    assert "Versions of credit" in ok("models versions credit")


def test_register_json_and_errors(home: Path, files: Path) -> None:
    model = files / "model.joblib"
    out = json.loads(ok(f"register {model} --name credit --sample {files}/new.csv --json"))
    # the id column of the sample is not a model feature: it stays out of the signature
    assert out["version"] == 1 and "application_id" not in [c["name"] for c in out["signature"]["columns"]]

    assert "File not found" in fails(f"register {files}/nope.joblib --name x")
    assert "must be a number" in fails(f"register {model} --name x --metric auc=high")
    assert "KEY=VALUE" in fails(f"register {model} --name x --tag team")
    assert "--target" in fails(f"register {model} --name x --sample {files}/new.csv --target label")
    assert ".parquet" in fails(f"register {files}/train.parquet --name x")
    assert "Invalid model name" in fails(f"register {model} --name 'bad name'")
    assert "Cannot tell the format" in fails(f"register {model} --name x --sample {model}")


def test_alias_set_rm_and_errors(home: Path, files: Path) -> None:
    register_two(files)
    assert "credit@staging → credit:2 (new alias)" in ok("alias set credit 2 staging")
    moved = json.loads(ok("alias set credit 2 production --json"))
    assert moved == {"name": "credit", "alias": "production", "version": 2, "previous_version": 1}
    assert mp.get("credit@production").version == 2

    assert "pointed at credit:2" in ok("alias rm credit staging")
    message = fails("alias rm credit staging")
    assert "credit@staging" in message and "Aliases of 'credit': production" in message
    assert "Aliases of 'credit': production" in fails("models show credit@nope")
    assert "Model 'ghost' not found" in fails("alias set ghost 1 production")
    assert "Model 'ghost' not found" in fails("models versions ghost")
    assert "credit:9" in fails("alias set credit 9 production")
    assert "Invalid model reference" in fails("models show credit@@x")


def _check_scored(scored: pd.DataFrame, new: pd.DataFrame, ref: str) -> None:
    p = mp.load(ref)
    assert list(scored.columns) == [*new.columns, "prediction", "proba_0", "proba_1"]
    np.testing.assert_allclose(scored[["proba_0", "proba_1"]].to_numpy(), p.predict_proba(new[FEATURES]))
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), p.predict(new[FEATURES]))
    assert scored["application_id"].tolist() == new["application_id"].tolist()


def test_predict_parquet_and_csv_match_the_python_api(home: Path, files: Path, tmp_path: Path) -> None:
    register_two(files)
    new = pd.read_parquet(files / "new.parquet")

    out = ok(
        f"predict credit@production --input {files}/new.parquet --output {tmp_path}/s.parquet --chunk-rows 99"
    )
    assert "Scored 1,000 rows with credit@production = credit:1" in out
    _check_scored(pd.read_parquet(tmp_path / "s.parquet"), new, "credit@production")

    out = ok(f"predict credit:2 -i {files}/new.csv -o {tmp_path}/s.csv --chunk-rows 256 --json")
    summary = json.loads(out)
    assert summary["rows"] == 1000 and summary["columns_added"] == ["prediction", "proba_0", "proba_1"]
    _check_scored(pd.read_csv(tmp_path / "s.csv"), pd.read_csv(files / "new.csv"), "credit:2")

    # Input and output formats are independent; --no-proba keeps just the prediction.
    ok(f"predict credit -i {files}/new.csv -o {tmp_path}/p.parquet --no-proba")
    plain = pd.read_parquet(tmp_path / "p.parquet")
    assert list(plain.columns) == [*new.columns, "prediction"] and len(plain) == 1000


def test_predict_bad_input_gives_a_clear_error(home: Path, files: Path, tmp_path: Path) -> None:
    register_two(files)
    out = tmp_path / "out.csv"
    message = fails(f"predict credit -i {files}/no_age.csv -o {out}")
    assert "no_age.csv lacks 1 column(s) the model needs: age" in message
    message = fails(f"predict credit -i {files}/bad_income.csv -o {out} --chunk-rows 500")
    assert "rows 501-1,000" in message and "'annual_income': expected float64" in message
    assert "File not found" in fails(f"predict credit -i {tmp_path}/missing.csv -o {out}")
    assert "suffix" in fails(f"predict credit -i {files}/model.joblib -o {out}")
    assert "Model 'ghost' not found" in fails(f"predict ghost -i {files}/new.csv -o {out}")
    ok(f"predict credit -i {files}/new.csv -o {tmp_path}/scored.csv")
    assert "already has column(s) prediction" in fails(f"predict credit -i {tmp_path}/scored.csv -o {out}")
    assert not out.exists() and not list(tmp_path.glob(".out.csv*"))  # nothing half-written


def test_demo_in_process_registers_the_next_version(home: Path) -> None:
    first = json.loads(ok("demo --rows 600 --json"))
    second = json.loads(ok("demo --rows 600 --json"))
    # each demo registers the next version and its closed loop promotes a retrained one after it
    assert (first["model"], first["previous"]) == ("credit:1", None)
    assert (second["model"], second["previous"]) == ("credit:3", "credit:2")
    assert 0.5 < second["auc"] <= 1 and len(second["scored"]) == 8
    assert mp.get("credit@production").version == 4
    assert mp.get("credit:3").lineage["parent"] == "credit:2"
    assert mp.get("credit:4").lineage["parent"] == "credit:3"
    new = pd.read_parquet(second["new_applications_file"])
    # the demo scores in-app with the ONNX twin built at registration: equal within its parity gate
    expected = mp.load("credit:3", runtime="native").predict_proba(new[FEATURES].head(8))[:, 1]
    np.testing.assert_allclose([r["p_default"] for r in second["scored"]], expected, rtol=0, atol=1e-5)
    assert second["compiled"]["passed"] and mp.load("credit@production").runtime == "onnx"
    assert Path(second["compiled"]["edge_bundle"], "model.onnx").is_file()
    assert [s["protocol"] for s in second["served"]] == ["native JSON", "Open Inference v2", "MLflow"]
    runs = second["batch"]["runs"]  # the second demo starts the job afresh: 2,000 rows, then the 500 new
    assert [r["rows_out"] for r in runs] == [2000, 500] and second["batch"]["output_rows"] == 2500
    assert runs[1]["watermark_before"] == runs[0]["watermark_after"]
    watched = second["monitoring"]  # a calm week, then drift with outcomes that show it
    assert not watched["calm"]["dataset_drift"] and "annual_income" in watched["drifted"]["drifted_columns"]
    before = watched["calm"]["performance"]["metrics"]["roc_auc"]
    assert watched["drifted"]["performance"]["metrics"]["roc_auc"] < before - 0.05
    assert Path(watched["report"]).read_text().count("<svg") > 10
    loop = second["retraining"]  # the drop triggers retraining; the better challenger is served
    assert loop["state"] == "promoted" and loop["served_after"] == int(loop["challenger"].split(":")[1])
    assert loop["served_before"] != loop["served_after"]
    assert loop["metrics"]["challenger_rows"] >= 100  # promoted after shadowing live requests
    advice = second["advice"]["recommendation"]  # the advisor's report for the demo model
    assert advice["mode"] in ("real-time", "batch", "edge") and advice["reasons"]
    assert second["advice"]["profile"]["runtimes"]["onnx"]


def _script(command: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODELPORT_HOME": str(home), "COLUMNS": "100"}
    args = [str(SCRIPT), *shlex.split(command)]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, check=False)


def test_demo_script_end_to_end(home: Path) -> None:
    done = _script("demo --rows 1000", home)
    assert done.returncode == 0, done.stderr
    expected = ["Generated 1,000 loan applications", "test AUC", "Registered credit:1 (sklearn classifier)",
                "Promoted credit@production → credit:1", "scored 1,000 new applications", "P(default)",
                f"MODELPORT_HOME={home}", "modelport predict credit@production"]  # fmt: skip
    for text in expected:
        assert text in done.stdout, text
    assert "Traceback" not in done.stderr
    listed = _script("models list --json", home)
    assert json.loads(listed.stdout)[0]["aliases"] == {"production": 2}  # the closed loop promoted v2


def test_script_error_is_one_line_without_traceback(home: Path) -> None:
    done = _script("models show nope@production", home)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip() == "Error: Model 'nope' not found. See `modelport models list`."
