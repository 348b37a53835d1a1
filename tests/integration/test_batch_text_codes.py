"""The local engine's ONNX text cut: a classifier's text preprocessing run once per distinct value
of the dictionary-encoded text columns (flavors.onnx_text.TextCodes), against the whole graph: the same
probabilities bit for bit, the same log sample, nulls included, and no cut where it could mix rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import modelport as mp
from modelport.batch import model_input
from modelport.batch.admission import Admission
from modelport.batch.scoring import Scorer
from modelport.flavors import onnx_text
from tests.integration.test_batch import applications, job, output
from tests.integration.test_batch_arrow import _Captured
from tests.integration.test_batch_arrow import _scorer as _job_scorer
from tests.unit.test_registry import credit_pipeline


@pytest.fixture
def twin(home: Path) -> Any:
    pipeline, X, _ = credit_pipeline()
    mp.register(pipeline, "credit", sample=X, alias="production")
    assert mp.compile("credit@production").passed
    return mp.load("credit@production", runtime="onnx")


def _scorer(model: Any, cut: bool, log_sample: float = 0.0) -> Scorer:
    scorer = _job_scorer(model, log_sample=log_sample)
    if not cut:
        scorer._codes = None  # the whole graph, as for any other model
    return scorer


def _encoded(data: pd.DataFrame) -> pa.RecordBatch:
    table = pa.Table.from_pandas(data, preserve_index=False)
    for name in ("home", "purpose"):  # as the engine reads the model's text columns from Parquet
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, pc.dictionary_encode(table.column(name)))
    return table.combine_chunks().to_batches()[0]


def _chunks() -> list[pd.DataFrame]:
    a = applications(300, seed=1)
    a.loc[a.index % 7 == 0, "home"] = None  # missing text: the graph's own "missing" category
    b = applications(200, start=300, seed=2)
    b["purpose"] = "car"  # another dictionary: one value
    return [a, b]


def test_the_cut_scores_exactly_like_the_whole_graph(twin: Any) -> None:
    cut, whole = _scorer(twin, cut=True), _scorer(twin, cut=False)
    for data in _chunks():
        batch = _encoded(data)
        a, b = (
            cut.score_chunk(batch, Admission("updated_at")),
            whole.score_chunk(batch, Admission("updated_at")),
        )
        assert a.slow_rows == b.slow_rows == 0
        assert a.table.equals(b.table)  # probabilities bit for bit
    codes = cut._codes
    assert isinstance(codes, onnx_text.TextCodes) and codes._checked is True and len(codes._heads) == 2


def test_the_cut_logs_the_same_sample(twin: Any) -> None:
    cut, whole = _scorer(twin, cut=True, log_sample=1.0), _scorer(twin, cut=False, log_sample=1.0)
    cut.logger, whole.logger = _Captured(), _Captured()
    batch = _encoded(_chunks()[0])
    cut.score_chunk(batch, Admission("updated_at"))
    whole.score_chunk(batch, Admission("updated_at"))
    assert isinstance(cut._codes, onnx_text.TextCodes)
    (a, a_keys), (b, b_keys) = cut.logger.records[0], whole.logger.records[0]
    np.testing.assert_array_equal(a_keys, b_keys)
    np.testing.assert_array_equal(a.probabilities, b.probabilities)
    for name, col in b.batch.columns.items():
        got = a.batch.columns[name]
        assert got.dtype == col.dtype, name
        pd.testing.assert_series_equal(pd.Series(got), pd.Series(col), check_names=False)


def test_a_cut_that_disagrees_with_the_whole_graph_is_turned_off(twin: Any) -> None:
    codes = onnx_text.text_codes(twin.loaded)
    assert codes is not None
    batch = _encoded(_chunks()[0])
    inp = model_input.check(batch, twin.signature)
    assert inp is not None and inp.text
    parts = (inp.columns, inp.text, inp.n)
    codes._checked = True  # skip the check once, to fill the cache; then spoil the cache
    assert codes.predict_proba(*parts) is not None
    for heads in codes._heads.values():
        heads[0] = heads[0] + 1
    codes._checked = None
    assert codes.predict_proba(*parts) is None and codes._checked is False
    codes._heads.clear()
    assert codes.predict_proba(*parts) is None  # off for good


def test_no_cut_where_a_node_could_mix_rows() -> None:
    from onnx import helper

    def node(op: str, **attrs: Any) -> Any:
        return helper.make_node(op, ["a", "b"], ["c"], **attrs)

    assert not onnx_text._row_wise(node("Concat", axis=0), 2)
    assert onnx_text._row_wise(node("Concat", axis=-1), 3)
    assert not onnx_text._row_wise(node("Concat", axis=-1), 1)  # rank 1: the rows themselves
    assert not onnx_text._row_wise(node("Gather"), 2)  # axis 0 by default
    assert not onnx_text._row_wise(node("TopK"), 2)
    assert onnx_text._row_wise(node("Equal"), 2)


def test_a_job_with_the_cut_scores_like_the_native_model(tmp_path: Path, twin: Any) -> None:
    path = job(tmp_path, batch_size=128, workers=2)
    for i, data in enumerate(_chunks()):
        data.to_parquet(tmp_path / "data" / f"part-{i}.parquet")
    r = mp.batch.run(path)
    assert (r.stats["runtime"], r.rows_out, r.stats["rows_rejected"]) == ("onnx", 500, 0)
    out = output(tmp_path).sort_values("application_id", ignore_index=True)
    data = pd.concat(_chunks(), ignore_index=True)
    expected = mp.load("credit@production", runtime="native").predict_proba(data[twin.signature.names])
    np.testing.assert_allclose(out["proba_1"].to_numpy(), expected[:, 1], rtol=1e-5, atol=1e-6)
