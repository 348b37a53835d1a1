"""Signatures: inference from every accepted container, safe coercion, clear errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from modelport.errors import ExtraColumnsWarning, SchemaMismatch
from modelport.schema import ColumnSpec, Signature, infer_signature, prepare

SIG = Signature(
    columns=(
        ColumnSpec("income", "float64", nullable=True),
        ColumnSpec("age", "int64"),
        ColumnSpec("home", "string", categories=("OWN", "RENT")),
        ColumnSpec("member", "bool"),
    )
)
ROWS = [
    {"income": 52000.0, "age": 31, "home": "RENT", "member": True},
    {"income": None, "age": 45, "home": "OWN", "member": False},
]


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "income": [52000.0, np.nan],
            "age": np.array([31, 45], dtype=np.int64),
            "home": ["RENT", "OWN"],
            "member": [True, False],
        }
    )


def test_infer_from_pandas_records_nullability_and_categories() -> None:
    sig = infer_signature(frame())
    assert [(c.name, c.type, c.nullable) for c in sig.columns or ()] == [
        ("income", "float64", True),
        ("age", "int64", False),
        ("home", "string", False),
        ("member", "bool", False),
    ]
    assert sig.column("home").categories == ("OWN", "RENT")


def test_infer_category_dtype_and_numpy_and_tensor() -> None:
    df = pd.DataFrame({"c": pd.Categorical(["a", "b", "a"], categories=["a", "b", "z"])})
    spec = infer_signature(df).column("c")
    assert spec.type == "category" and spec.categories == ("a", "b", "z")
    sig = infer_signature(np.zeros((4, 3), dtype=np.float32))
    assert sig.names == ["x0", "x1", "x2"] and sig.column("x0").type == "float32"
    t = infer_signature(np.zeros((4, 1, 8, 8), dtype=np.float32))
    assert t.tensor is not None and t.tensor.shape == (-1, 1, 8, 8)


def test_infer_rejects_mixed_text_column() -> None:
    with pytest.raises(SchemaMismatch, match="mixes strings"):
        infer_signature(pd.DataFrame({"a": ["x", 1]}))


def test_signature_round_trips_through_dict() -> None:
    assert Signature.from_dict(SIG.to_dict()) == SIG
    plain = Signature.from_dict({"a": "float64", "b": "string"})
    assert plain.names == ["a", "b"]


@pytest.mark.parametrize(
    "make",
    [
        lambda: frame(),
        lambda: pl.from_pandas(frame()),
        lambda: pa.Table.from_pandas(frame()),
        lambda: ROWS,
        lambda: {k: [r[k] for r in ROWS] for k in ROWS[0]},
    ],
    ids=["pandas", "polars", "arrow", "records", "columns-dict"],
)
def test_every_container_gives_the_same_batch(make) -> None:
    batch = prepare(make(), SIG)
    assert batch.n_rows == 2
    np.testing.assert_array_equal(batch.columns["age"], [31, 45])
    assert batch.columns["age"].dtype == np.int64
    assert batch.columns["income"][0] == 52000.0 and np.isnan(batch.columns["income"][1])
    assert list(batch.columns["home"]) == ["RENT", "OWN"]
    assert batch.columns["member"].dtype == bool
    assert list(batch.to_pandas().columns) == SIG.names


def test_single_row_dict_is_one_row() -> None:
    batch = prepare(ROWS[0], SIG)
    assert batch.n_rows == 1


def test_pandas_fast_path_reuses_the_frame() -> None:
    df = frame()
    assert prepare(df, SIG).to_pandas() is df


def test_int_widens_to_float_but_float_never_narrows_to_int() -> None:
    sig = Signature.from_dict({"x": "float64", "n": "int64"})
    batch = prepare({"x": [1, 2], "n": np.array([1, 2], dtype=np.int32)}, sig)
    assert batch.columns["x"].dtype == np.float64 and batch.columns["n"].dtype == np.int64
    with pytest.raises(SchemaMismatch, match=r"column 'n': expected int64, got float64"):
        prepare({"x": [1.0], "n": np.array([1.0])}, sig)
    with pytest.raises(SchemaMismatch, match=r"column 'n': expected int64, got float values"):
        prepare([{"x": 1.0, "n": 2.5}], sig)


def test_strings_never_become_numbers_and_all_problems_are_listed() -> None:
    with pytest.raises(SchemaMismatch) as err:
        prepare([{"income": "52000", "age": "31", "home": 3, "member": True}], SIG)
    msg = str(err.value)
    assert "column 'income': expected float64, got str" in msg
    assert "column 'age': expected int64, got str" in msg
    assert "column 'home': expected text, got int" in msg
    assert {d["column"] for d in err.value.details} == {"income", "age", "home"}


def test_missing_columns_listed_at_once() -> None:
    with pytest.raises(SchemaMismatch) as err:
        prepare([{"income": 1.0}], SIG)
    assert "Missing 3 input column(s): age, home, member" in str(err.value)


def test_nulls_rejected_only_where_the_type_cannot_hold_them() -> None:
    with pytest.raises(SchemaMismatch, match="'age': expected int64 without missing values, got 1 null"):
        prepare([{**ROWS[0], "age": None}], SIG)
    batch = prepare([{**ROWS[0], "home": None}], SIG)  # text nulls become NaN for imputers
    assert batch.columns["home"][0] is np.nan


def test_extra_columns_warn_and_are_ignored() -> None:
    df = frame().assign(extra=1)
    with pytest.warns(ExtraColumnsWarning, match="extra"):
        batch = prepare(df, SIG)
    assert list(batch.to_pandas().columns) == SIG.names


def test_numpy_rows_are_positional() -> None:
    sig = Signature.from_dict({"a": "float64", "b": "float64"})
    batch = prepare(np.array([[1.0, 2.0], [3.0, 4.0]]), sig)
    np.testing.assert_array_equal(batch.to_numpy(), [[1.0, 2.0], [3.0, 4.0]])
    assert prepare([[1.0, 2.0]], sig).n_rows == 1  # JSON-style list of rows
    with pytest.raises(SchemaMismatch, match=r"shape \(rows, 2\)"):
        prepare(np.zeros((2, 3)), sig)


def test_int32_range_is_checked() -> None:
    sig = Signature.from_dict({"n": "int32"})
    with pytest.raises(SchemaMismatch, match="outside the range of int32"):
        prepare({"n": np.array([2**40])}, sig)


def test_category_columns_rebuild_training_categories() -> None:
    sig = Signature(columns=(ColumnSpec("c", "category", categories=("a", "b", "z")),))
    df = prepare([{"c": "b"}], sig).to_pandas()
    assert list(df["c"].cat.categories) == ["a", "b", "z"]


def test_tensor_signature_checks_shape_and_dtype() -> None:
    sig = infer_signature(np.zeros((2, 1, 4, 4), dtype=np.float32))
    assert prepare(np.ones((3, 1, 4, 4)), sig).tensor.dtype == np.float32
    assert prepare(np.ones((1, 4, 4)), sig).n_rows == 1  # one item without batch axis
    with pytest.raises(SchemaMismatch, match=r"shape"):
        prepare(np.ones((3, 2, 4, 4)), sig)
    isig = infer_signature(np.zeros((2, 3), dtype=np.int64)[:, None, :])
    with pytest.raises(SchemaMismatch, match="Expected int64 values, got float64"):
        prepare(np.ones((1, 1, 3)), isig)


def test_unsupported_input_type() -> None:
    with pytest.raises(SchemaMismatch, match="Unsupported input type"):
        prepare(object(), SIG)


def test_no_warning_for_exact_input() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepare(frame(), SIG)


def test_uniform_numeric_matrix_passes_through_without_copy() -> None:
    sig = infer_signature(np.zeros((2, 3)))
    arr = np.ones((4, 3))
    batch = prepare(arr, sig)
    assert batch.to_numpy() is arr
    np.testing.assert_array_equal(batch.columns["x1"], arr[:, 1])
    ints = prepare(np.ones((4, 3), dtype=np.int32), sig)  # widened to the signature's float64
    assert ints.to_numpy().dtype == np.float64
    assert list(prepare(arr, sig).to_pandas().columns) == ["x0", "x1", "x2"]


def test_integers_beyond_64_bits_are_a_column_error_not_a_crash() -> None:
    sig = Signature.from_dict({"n": "int64", "x": "float64"})
    with pytest.raises(SchemaMismatch, match="outside the range of int64"):
        prepare([{"n": 2**64, "x": 1.0}], sig)
    with pytest.raises(SchemaMismatch, match="outside the range of float64"):
        prepare([{"n": 1, "x": 10**400}], sig)
