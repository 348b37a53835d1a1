"""The batch chunk path on Arrow: chunks scored straight from their Arrow columns (values, output
types, the log sample), watermark windows of every type, rows that need a per-value decision
(only they take the slow way, or go to the rejects), text typed on Arrow, parallel workers with
the ONNX twin, and a SIGKILL while chunks are in flight."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import modelport as mp
from modelport.batch import arrow_rows, job_from_dict, model_input, text_values
from modelport.batch.admission import Admission
from modelport.batch.runner import FAILPOINT_ENV
from modelport.batch.scoring import Scorer
from modelport.batch.watermarks import wm_max, wm_series, wm_text, wm_texts
from modelport.errors import SchemaMismatch
from modelport.schema import Signature
from tests.integration.test_batch import MODELPORT, T0, applications, job, output
from tests.unit.test_registry import credit_pipeline


@pytest.fixture
def model(home: Path) -> Any:
    pipeline, X, _ = credit_pipeline()
    mp.register(pipeline, "credit", sample=X, alias="production")
    return mp.load("credit@production")


def _scorer(model: Any, **job_settings: Any) -> Scorer:
    spec = {
        "name": "j",
        "model": "credit@production",
        "source": {"kind": "parquet", "path": "x", "watermark": "updated_at"},
        "key": "application_id",
        "output": {"kind": "parquet", "path": "o"},
        "log_sample": 0.0,
        **job_settings,
    }
    return Scorer(job_from_dict(spec), model, "run-1", text=False)


def _batch(data: pd.DataFrame) -> pa.RecordBatch:
    return pa.RecordBatch.from_pandas(data, preserve_index=False)


OUTPUT_SCHEMA = pa.schema(
    [
        ("application_id", pa.int64()),
        ("tag", pa.large_string()),
        ("prediction", pa.int64()),
        ("proba_0", pa.float64()),
        ("proba_1", pa.float64()),
        ("model", pa.large_string()),
        ("version", pa.int64()),
        ("run_id", pa.large_string()),
    ]
)


def test_a_chunk_is_scored_straight_from_arrow(tmp_path: Path, model: Any) -> None:
    data = applications(500)
    data["tag"] = np.where(np.arange(500) % 3, "a", None)  # passthrough text with nulls
    table = pa.Table.from_pandas(data, preserve_index=False)
    scorer = _scorer(model, passthrough=["tag"])
    lower, upper = T0 + pd.Timedelta(minutes=99), T0 + pd.Timedelta(minutes=449)
    res = scorer.score_chunk(table, Admission("updated_at", lower, upper))
    assert res.slow_rows == 0 and res.rejected is None
    assert res.table.schema == OUTPUT_SCHEMA
    ids = res.table.column("application_id").to_numpy()
    assert ids.tolist() == list(range(100, 450))
    rows = data.set_index("application_id").loc[ids]
    expected = model.predict_proba(rows[model.signature.names])
    np.testing.assert_allclose(res.table.column("proba_1").to_numpy(), expected[:, 1], rtol=1e-6)
    assert res.table.column("prediction").to_pylist() == model.predict(rows[model.signature.names]).tolist()
    assert res.table.column("tag").to_pylist() == [t if isinstance(t, str) else None for t in rows["tag"]]
    assert res.wm.to_pylist() == rows["updated_at"].dt.to_pydatetime().tolist()
    # text read dictionary-encoded (as the local engine reads the model's text columns)
    for name in ("home", "purpose"):
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pc.dictionary_encode(table.column(name)))
    encoded = scorer.score_chunk(table, Admission("updated_at", lower, upper))
    assert encoded.slow_rows == 0 and encoded.table.equals(res.table)


class _Captured:
    """Stands in for the prediction logger: keeps what a scorer logs."""

    def __init__(self) -> None:
        self.records: list[tuple[Any, Any]] = []

    def log(self, result: Any, request_id: Any, protocol: str, seconds: float) -> None:
        self.records.append((result, request_id))


def _logged_rows(records: list[tuple[Any, Any]]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The logged input rows (a frame), their keys and probabilities, over every record."""
    frames = [pd.DataFrame(result.batch.columns) for result, _ in records]
    keys = np.concatenate([np.asarray(k, dtype=object) for _, k in records])
    proba = np.concatenate([result.probabilities for result, _ in records])
    return pd.concat(frames, ignore_index=True), keys, proba


@pytest.mark.parametrize("key_kind", ["text", "int"])
def test_the_log_sample_is_the_validated_input(model: Any, key_kind: str) -> None:
    data = applications(300)
    if key_kind == "text":
        data["application_id"] = "APP-" + data["application_id"].astype(str)
    scorer = _scorer(model, log_sample=1.0)
    scorer.logger = _Captured()
    assert scorer.score_chunk(_batch(data), Admission("updated_at", None, None)).slow_rows == 0
    ((result, keys),) = scorer.logger.records
    assert result.rows == 300 and keys.dtype == object
    assert keys.tolist() == data["application_id"].astype(str).tolist()
    expected = model.prepare(data[model.signature.names])  # what validation makes of the rows
    for name, col in expected.columns.items():
        got = result.batch.columns[name]
        assert got.dtype == col.dtype, name
        pd.testing.assert_series_equal(pd.Series(got), pd.Series(col), check_names=False)
    np.testing.assert_allclose(result.probabilities, model.predict_proba(data[model.signature.names]))


def test_text_from_a_dictionary_keeps_missing_values_missing(model: Any) -> None:
    values = pa.array(["a", None, "b", "a", None])
    batch = pa.RecordBatch.from_arrays([pc.dictionary_encode(values)], names=["home"])
    inp = model_input.check(batch, Signature.from_dict({"home": "string"}))
    assert inp is not None and inp.slow is None
    got = inp.arrays()["home"]
    assert got.dtype == object and got[0] == "a" and got[2] == "b" and got[3] == "a"
    assert np.isnan(got[1]) and np.isnan(got[4])
    assert arrow_rows.dense(batch).column("home").equals(values)


@pytest.mark.parametrize("kind", ["naive_us", "tz_ms", "int", "float"])
def test_watermark_windows_of_every_type(tmp_path: Path, model: Any, kind: str) -> None:
    data = applications(200)
    if kind == "naive_us":
        data["updated_at"] = data["updated_at"].dt.tz_localize(None).astype("datetime64[us]")
        lower: Any = T0 + pd.Timedelta(minutes=50)
    elif kind == "tz_ms":
        data["updated_at"] = (
            data["updated_at"].dt.tz_convert("Europe/Paris").astype("datetime64[ms, Europe/Paris]")
        )
        lower = T0 + pd.Timedelta(minutes=50, seconds=30)
    else:
        data["updated_at"] = np.arange(200) if kind == "int" else np.arange(200) / 2
        lower = 50
    res = _scorer(model).score_chunk(_batch(data), Admission("updated_at", lower))
    wm = wm_series(data["updated_at"])  # the pandas reading of the same column
    want = data[(wm > lower).to_numpy()]
    assert res.table.column("application_id").to_pylist() == want["application_id"].tolist()
    assert res.slow_rows == 0 and len(res.wm) == len(want)
    top = wm_max(res.wm)
    assert top == wm[wm > lower].max()
    assert wm_texts(res.wm) == [wm_text(v) for v in wm[wm > lower]]


def test_a_chunk_with_a_few_bad_rows_sends_only_those_the_slow_way(model: Any) -> None:
    data = applications(1000)
    data["age"] = data["age"].astype("Int64")
    data.loc[17, "age"] = pd.NA  # the model's integer column has no missing values
    data.loc[500, "updated_at"] = pd.NaT  # no watermark: rejected before anything else
    data.loc[801, "income"] = np.inf  # valid for the signature; the native model (its imputer) refuses it
    model = mp.load("credit@production", runtime="native")  # (its ONNX twin would score the row)
    scorer = _scorer(model, log_sample=1.0)
    scorer.logger = _Captured()
    res = scorer.score_chunk(_batch(data), Admission("updated_at"))
    assert res.slow_rows == 1  # the null age; the empty watermark and the refused row never get there
    assert res.rejected is not None
    rejected = res.rejected.to_pydict()
    reasons = dict(zip(rejected["application_id"], rejected["reject_reason"], strict=True))
    assert list(reasons) == ["500", "17", "801"]
    assert reasons["500"] == "the watermark column 'updated_at' is empty"
    assert "age" in reasons["17"] and "null" in reasons["17"]
    assert "infinity" in reasons["801"]
    assert set(res.rejected.column_names) == {*data.columns, "reject_reason", "run_id"}
    good = data.drop(index=[17, 500, 801])
    assert res.table.column("application_id").to_pylist() == good["application_id"].tolist()
    expected = model.predict_proba(good[model.signature.names].astype({"age": "int64"}))
    np.testing.assert_allclose(res.table.column("proba_1").to_numpy(), expected[:, 1], rtol=1e-6)
    logged, keys, proba = _logged_rows(scorer.logger.records)  # the slow row's too
    order = np.argsort(keys.astype(int))
    assert keys.astype(int)[order].tolist() == good["application_id"].tolist()
    assert logged["age"].dtype == np.int64
    np.testing.assert_allclose(proba[order, 1], expected[:, 1], rtol=1e-6)


def test_rows_the_arrow_checks_cannot_vouch_for_are_validated_one_by_one(model: Any) -> None:
    data = applications(40)
    data["age"] = data["age"].astype("Int64")
    data.loc[7, "age"] = pd.NA
    data.loc[9, "age"] = 2**40  # an int64 column: valid
    res = _scorer(model).score_chunk(_batch(data), Admission("updated_at"))
    assert res.slow_rows == 1 and res.table.num_rows == 39
    assert res.rejected["application_id"].to_pylist() == ["7"]
    income_text = _batch(data.drop(index=[7]).assign(income=data["income"].astype(str)))
    res = _scorer(model).score_chunk(income_text, Admission("updated_at"))
    missing = int(data.drop(index=[7])["income"].isna().sum())  # a missing income stays missing: valid
    assert res.slow_rows == 39 and (res.table.num_rows, res.rejected.num_rows) == (missing, 39 - missing)
    assert "income" in res.rejected["reject_reason"][0].as_py()


def test_text_values_are_typed_on_arrow_and_bad_ones_reject_their_row(model: Any) -> None:
    data = applications(30).astype({"income": object, "age": object})
    data.loc[3, "income"] = "lots"
    data.loc[5, "income"] = " 1e3 "  # pandas reads it; the plain-number path does not: parsed alone
    data.loc[7, "age"] = "41.5"
    data.loc[8, "age"] = None
    text = data.astype(str).where(data.notna(), None)
    batch = arrow_rows.from_frame(text)
    typed, reasons = text_values.type_text(batch, model.signature)
    assert reasons == {
        3: "column 'income' expects float64, got 'lots'",
        7: "column 'age' expects int64, got '41.5'",
        8: "column 'age' is empty",
    }
    assert typed.column("income").type == pa.float64() and typed.column("age").type == pa.int64()
    assert typed.column("income")[5].as_py() == 1000.0
    expected = pd.to_numeric(data["income"].drop(index=[3, 5]))
    got = typed.column("income").take(expected.index.to_numpy()).to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(got, expected)
    res = Scorer(_scorer(model).job, model, "run-1", text=True).score_chunk(batch, Admission("updated_at"))
    assert res.rejected["application_id"].to_pylist() == ["3", "7", "8"]
    assert res.table.num_rows == 27 and res.slow_rows == 0


def test_keys_and_watermark_texts_match_their_python_forms() -> None:
    assert arrow_rows.key_text(pa.array([1, -20])).tolist() == ["1", "-20"]
    assert arrow_rows.key_text(pc.dictionary_encode(pa.array(["x", "y"]))).tolist() == ["x", "y"]
    assert arrow_rows.key_text(pa.array([1.5, 2.0])).tolist() == ["1.5", "2.0"]  # as pandas writes them
    numbers = pa.array([-2.5, 0.0, 3, 1e300])
    assert wm_texts(numbers) == [wm_text(v) for v in numbers.to_pylist()]
    stamps = pa.array([0, 1_700_000_000_123_456_789], pa.timestamp("ns", "UTC"))
    ticks = stamps.cast(pa.int64()).to_pylist()
    assert wm_texts(stamps) == [wm_text(pd.Timestamp(v, tz="UTC")) for v in ticks]


def test_parallel_workers_with_the_onnx_twin_keep_order_and_values(tmp_path: Path, model: Any) -> None:
    assert mp.compile("credit@production").passed
    path = job(tmp_path, batch_size=64, workers=3)
    for i in range(3):
        applications(400, start=400 * i, seed=i).to_parquet(tmp_path / "data" / f"part-{i}.parquet")
    r = mp.batch.run(path)
    assert (r.stats["runtime"], r.rows_out, r.stats["rows_rejected"]) == ("onnx", 1200, 0)
    files = sorted((tmp_path / "scores").glob("run_date=*/*/part-*.parquet"))
    out = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    assert out["application_id"].tolist() == list(range(1200))  # in input order
    data = pd.concat([applications(400, start=400 * i, seed=i) for i in range(3)], ignore_index=True)
    expected = mp.load("credit@production", runtime="native").predict_proba(data[model.signature.names])
    np.testing.assert_allclose(out["proba_1"].to_numpy(), expected[:, 1], rtol=1e-5, atol=1e-6)
    assert r.stats["watermark_after"] == (T0 + pd.Timedelta(minutes=1199)).isoformat()


def test_a_bad_file_among_good_ones_is_rejected_row_by_row(tmp_path: Path, model: Any) -> None:
    path = job(tmp_path, batch_size=50, workers=2)
    applications(100).to_parquet(tmp_path / "data" / "a.parquet")
    bad = applications(100, start=100)
    bad["age"] = bad["age"].astype("Int64")
    bad.loc[3, "age"] = pd.NA  # the model's integer column has no missing values
    bad.to_parquet(tmp_path / "data" / "b.parquet")
    r = mp.batch.run(path)
    assert (r.rows_out, r.stats["rows_rejected"]) == (199, 1)
    rejects = pd.read_parquet(tmp_path / "scores" / "_rejects")
    assert rejects["application_id"].tolist() == ["103"] and "age" in rejects["reject_reason"].iloc[0]


def test_sigkill_while_chunks_are_in_flight(tmp_path: Path, model: Any) -> None:
    path = job(tmp_path, batch_size=32, workers=2)
    applications(300).to_parquet(tmp_path / "data" / "a.parquet")
    env = {**os.environ, FAILPOINT_ENV: "in_worker"}
    killed = subprocess.run(
        [str(MODELPORT), "batch", "run", str(path)], env=env, capture_output=True, text=True
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert output(tmp_path).empty
    assert mp.batch.run(path).rows_out == 300
    ids = output(tmp_path)["application_id"]
    assert ids.is_unique and sorted(ids) == list(range(300))
    assert [r.state for r in mp.batch.history("credit-nightly")] == ["published", "crashed"]


def test_on_error_fail_stops_the_workers_and_publishes_nothing(tmp_path: Path, model: Any) -> None:
    path = job(tmp_path, batch_size=20, workers=2, on_error="fail")
    for i in range(4):
        part = applications(100, start=100 * i, seed=i)
        if i == 1:
            part["age"] = part["age"].astype("Int64")
            part.loc[5, "age"] = pd.NA
        part.to_parquet(tmp_path / "data" / f"part-{i}.parquet")
    with pytest.raises(SchemaMismatch, match="age"):
        mp.batch.run(path)
    assert output(tmp_path).empty and not list((tmp_path / "scores" / "_staging").iterdir())
    assert mp.batch.history("credit-nightly")[0].state == "failed"
