"""The local engine's fast path: Parquet chunks scored straight from Arrow on several threads,
against the pandas path (the same rows, values and output types), with rejects, watermark
windows of every type, the ONNX twin, and a SIGKILL while chunks are in flight."""

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
from modelport.batch import arrow_chunks, job_from_dict
from modelport.batch.runner import FAILPOINT_ENV
from modelport.batch.scoring import Admission, Scorer
from modelport.errors import SchemaMismatch
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


def _both(scorer: Scorer, table: pa.Table, admission: Admission) -> tuple[Any, Any]:
    batch = table.to_batches(max_chunksize=table.num_rows)[0]
    fast = scorer.score_chunk(batch, admission)
    slow = scorer.score_chunk(batch.to_pandas(), admission)
    return fast, slow


def test_the_arrow_path_scores_like_the_pandas_path(tmp_path: Path, model: Any) -> None:
    data = applications(500)
    data["tag"] = np.where(np.arange(500) % 3, "a", None)  # passthrough text with nulls
    table = pa.Table.from_pandas(data, preserve_index=False)
    scorer = _scorer(model, passthrough=["tag"])
    lower, upper = T0 + pd.Timedelta(minutes=99), T0 + pd.Timedelta(minutes=449)
    fast, slow = _both(scorer, table, Admission("updated_at", lower, upper))
    assert fast.fast and not slow.fast
    assert fast.table.schema.remove_metadata() == slow.table.schema.remove_metadata()
    assert fast.table.num_rows == 350 and fast.table.equals(slow.table.replace_schema_metadata(None))
    pd.testing.assert_series_equal(fast.wm, slow.wm, check_names=False)
    ids = fast.table.column("application_id").to_numpy()
    expected = model.predict_proba(data.set_index("application_id").loc[ids, model.signature.names])
    np.testing.assert_allclose(fast.table.column("proba_1").to_numpy(), expected[:, 1], rtol=1e-6)
    # text read dictionary-encoded (as the local engine reads the model's text columns)
    for name in ("home", "purpose"):
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pc.dictionary_encode(table.column(name)))
    encoded, _ = _both(scorer, table, Admission("updated_at", lower, upper))
    assert encoded.fast and encoded.table.equals(fast.table)


class _Captured:
    """Stands in for the prediction logger: keeps what a scorer logs."""

    def __init__(self) -> None:
        self.records: list[tuple[Any, Any]] = []

    def log(self, result: Any, request_id: Any, protocol: str, seconds: float) -> None:
        self.records.append((result, request_id))


@pytest.mark.parametrize("key_kind", ["text", "int"])
def test_the_arrow_path_logs_its_sample_like_the_pandas_path(model: Any, key_kind: str) -> None:
    data = applications(300)
    if key_kind == "text":
        data["application_id"] = "APP-" + data["application_id"].astype(str)
    batch = pa.RecordBatch.from_pandas(data, preserve_index=False)
    admission = Admission("updated_at", None, None)
    fast_scorer, slow_scorer = _scorer(model, log_sample=1.0), _scorer(model, log_sample=1.0)
    logged = [_Captured(), _Captured()]
    fast_scorer.logger, slow_scorer.logger = logged
    assert fast_scorer.score_chunk(batch, admission).fast
    assert not slow_scorer.score_chunk(batch.to_pandas(), admission).fast
    (fast, fast_keys), (slow, slow_keys) = logged[0].records[0], logged[1].records[0]
    assert fast.rows == slow.rows == 300
    np.testing.assert_array_equal(fast_keys, slow_keys)
    assert fast_keys.dtype == slow_keys.dtype
    np.testing.assert_allclose(fast.probabilities, slow.probabilities)
    for name, col in slow.batch.columns.items():
        got = fast.batch.columns[name]
        assert got.dtype == col.dtype, name
        pd.testing.assert_series_equal(pd.Series(got), pd.Series(col), check_names=False)


def test_text_from_a_dictionary_keeps_missing_values_missing() -> None:
    values = pa.array(["a", None, "b", "a", None])
    got = arrow_chunks._text_from_dictionary(pc.dictionary_encode(values))
    assert got.dtype == object and got[0] == "a" and got[2] == "b" and got[3] == "a"
    assert np.isnan(got[1]) and np.isnan(got[4])
    batch = pa.RecordBatch.from_arrays([pc.dictionary_encode(values)], names=["t"])
    assert arrow_chunks.dense(batch).column("t").equals(values)


@pytest.mark.parametrize("kind", ["naive_us", "tz_ms", "int", "float"])
def test_watermark_windows_of_every_type_match(tmp_path: Path, model: Any, kind: str) -> None:
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
    fast, slow = _both(
        _scorer(model), pa.Table.from_pandas(data, preserve_index=False), Admission("updated_at", lower)
    )
    assert fast.fast
    assert fast.table.column("application_id").to_pylist() == slow.table.column("application_id").to_pylist()
    pd.testing.assert_series_equal(fast.wm, slow.wm, check_dtype=False, check_names=False)


def test_chunks_the_arrow_path_cannot_decide_take_the_pandas_path(tmp_path: Path, model: Any) -> None:
    scorer = _scorer(model)
    data = applications(40)
    with_null_wm = pa.Table.from_pandas(data.assign(updated_at=data["updated_at"].where(data.index != 4)))
    age_null = pa.Table.from_pandas(data.assign(age=data["age"].astype("Int64").where(data.index != 7)))
    income_text = pa.Table.from_pandas(data.assign(income=data["income"].astype(str)))
    for table, reject in ((with_null_wm, 4), (age_null, 7)):
        res = scorer.score_chunk(table.to_batches()[0], Admission("updated_at"))
        assert not res.fast and res.table.num_rows == 39
        assert res.rejected["application_id"].tolist() == [str(reject)]
    res = scorer.score_chunk(income_text.to_batches()[0], Admission("updated_at"))
    missing = int(data["income"].isna().sum())  # a missing income stays missing: valid
    assert not res.fast and (res.table.num_rows, len(res.rejected)) == (missing, 40 - missing)
    assert "income" in res.rejected["reject_reason"].iloc[0]


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
