"""Codecs' shortcuts give what their general paths give: v2 per-column JSON inputs as plain lists,
and JSON rows of an all-float model as one matrix, validated to the same batch."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from modelport.errors import SchemaMismatch
from modelport.schema import infer_signature, prepare
from modelport.serving.codecs import tabular, v2

FRAME = pd.DataFrame(
    {
        "income": [52000.5, 61000.0],
        "age": np.array([31, 45], dtype=np.int64),
        "home": pd.Series(["rent", "own"], dtype="string"),
        "flag": [True, False],
    }
)
SIG = infer_signature(FRAME)
INPUTS = [
    {"name": "income", "shape": [2], "datatype": "FP64", "data": [52000.5, 61000]},
    {"name": "age", "shape": [2, 1], "datatype": "INT64", "data": [31, 45]},
    {"name": "home", "shape": [2], "datatype": "BYTES", "data": ["rent", "own"]},
    {"name": "flag", "shape": [2], "datatype": "BOOL", "data": [True, False]},
]


def _general(payload: dict) -> dict:
    """The same request through the tensor-per-input path (an input with parameters skips the shortcut)."""
    slow = copy.deepcopy(payload)
    slow["inputs"][0]["parameters"] = {"content_type": "np"}
    return slow


def _columns(batch) -> dict:
    return {k: v.tolist() for k, v in batch.columns.items()}


def test_v2_per_column_lists_validate_like_tensors() -> None:
    payload = {"inputs": INPUTS}
    assert isinstance(v2._column_lists(payload, SIG), dict)  # the shortcut applies
    fast = prepare(v2.decode((payload, b""), SIG), SIG)
    slow = prepare(v2.decode((_general(payload), b""), SIG), SIG)
    assert _columns(fast) == _columns(slow)
    assert {k: v.dtype for k, v in fast.columns.items()} == {k: v.dtype for k, v in slow.columns.items()}


@pytest.mark.parametrize(
    "change",
    [
        {"name": "age", "datatype": "FP64", "data": [31.0, 45.0]},  # floats for an int column
        {"name": "age", "datatype": "INT64", "data": [31.5, 45]},  # a value not of the datatype
        {"name": "home", "datatype": "BYTES", "data": [1, 2]},
        {"name": "age", "datatype": "INT64", "data": [31, 45], "shape": [1, 2]},
    ],
)
def test_anything_else_takes_the_general_path(change: dict) -> None:
    payload = {"inputs": [dict(i, **change) if i["name"] == change["name"] else i for i in INPUTS]}
    assert v2._column_lists(payload, SIG) is None
    try:
        fast = _columns(prepare(v2.decode((payload, b""), SIG), SIG))
    except (SchemaMismatch, ValueError) as exc:
        fast = type(exc)
    try:
        slow = _columns(prepare(v2.decode((_general(payload), b""), SIG), SIG))
    except (SchemaMismatch, ValueError) as exc:
        slow = type(exc)
    assert fast == slow


def test_json_rows_of_an_all_float_model_become_one_matrix() -> None:
    floats = pd.DataFrame({"a": [0.5, 1.0], "b": [2.0, 3.5]})
    sig = infer_signature(floats)
    records = [{"a": 0.5, "b": 2}, {"a": 1, "b": 3.5}]
    whole = tabular.rows(records, sig)
    assert isinstance(whole, np.ndarray) and whole.shape == (2, 2)
    assert _columns(prepare(whole, sig)) == _columns(prepare(pd.DataFrame(records).astype(float), sig))
    # a missing key, an extra key or a text value: the per-column path with its own errors
    assert tabular.records_matrix([{"a": 0.5}], sig) is None
    assert tabular.records_matrix([{"a": 0.5, "b": 1.0, "c": 2.0}], sig) is None
    assert tabular.records_matrix([{"a": "x", "b": 1.0}], sig) is None
