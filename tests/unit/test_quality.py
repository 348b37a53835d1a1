"""Data quality checks: missing share, out of range, new categories, schema, empty columns/frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelport.monitoring.quality import data_quality
from modelport.monitoring.results import QualityIssue
from modelport.schema.signature import ColumnSpec, Signature

RNG = np.random.default_rng(5)
N = 1000
SIG = Signature(
    columns=(
        ColumnSpec("income", "float64", nullable=True),
        ColumnSpec("age", "int64"),
        ColumnSpec("home", "string", categories=("OWN", "RENT", "MORTGAGE")),
        ColumnSpec("member", "bool"),
    )
)


def _frame(n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.normal(50_000, 10_000, n),
            "age": rng.integers(18, 80, n),
            "home": rng.choice(np.array(["OWN", "RENT"], dtype=object), n),
            "member": rng.random(n) < 0.5,
        }
    )


def _by(issues: list[QualityIssue], check: str, column: str | None = None) -> list[QualityIssue]:
    return [i for i in issues if i.check == check and (column is None or i.column == column)]


def test_clean_data_has_no_issues() -> None:
    assert data_quality(_frame(seed=1), _frame(seed=2), SIG) == []
    assert data_quality(_frame(seed=1), _frame(seed=2)) == []


def test_missing_share_change() -> None:
    ref, cur = _frame(seed=1), _frame(seed=2)
    cur.loc[: int(0.15 * N) - 1, "income"] = np.nan
    cur.loc[: int(0.05 * N) - 1, "age"] = np.nan  # below the 0.1 change: not reported
    issues = data_quality(ref, cur)
    (issue,) = _by(issues, "missing_share")
    assert issue.column == "income" and issue.severity == "warning"
    assert issue.current == pytest.approx(0.15) and issue.reference == 0.0
    assert len(_by(data_quality(ref, cur, missing_share_change=0.04), "missing_share")) == 2
    # fewer missing values than in the reference is a change too
    assert _by(data_quality(cur, ref), "missing_share", "income")[0].current == 0.0


def test_values_outside_the_reference_range() -> None:
    ref, cur = _frame(seed=1), _frame(seed=2)
    cur.loc[:59, "age"] = 120  # 6% above the reference max
    cur.loc[:9, "income"] = -1e9  # 1%: below the 5% threshold
    issues = data_quality(ref, cur)
    (issue,) = _by(issues, "out_of_range")
    assert issue.column == "age" and issue.current == pytest.approx(0.06)
    assert "60 above" in issue.message and "[18, 79]" in issue.message
    assert {i.column for i in _by(data_quality(ref, cur, out_of_range_share=0.01), "out_of_range")} == {
        "age",
        "income",
    }


def test_categories_never_seen_in_training() -> None:
    ref, cur = _frame(seed=1), _frame(seed=2)
    cur.loc[:99, "home"] = "BOAT"
    cur.loc[100:119, "home"] = "MORTGAGE"  # not in the reference, but in the signature's categories
    (issue,) = _by(data_quality(ref, cur, SIG), "new_category")
    assert issue.column == "home" and issue.current == pytest.approx(0.1)
    assert "'BOAT'" in issue.message and "MORTGAGE" not in issue.message
    (issue,) = _by(data_quality(ref, cur), "new_category")  # without a signature both are new
    assert issue.current == pytest.approx(0.12) and "'BOAT', 'MORTGAGE'" in issue.message
    many = cur.copy()
    many["home"] = [f"new{i % 15}" for i in range(N)]
    (issue,) = _by(data_quality(ref, many), "new_category")
    assert issue.current == 1.0 and "15 categories" in issue.message and "and 5 more" in issue.message


def test_schema_against_the_signature() -> None:
    ref, cur = _frame(seed=1), _frame(seed=2)
    cur = cur.drop(columns=["member"]).assign(extra=1.0, age=cur["age"].astype(str))
    issues = _by(data_quality(ref, cur, SIG), "schema")
    found = {(i.column, i.severity) for i in issues}
    assert found == {("member", "error"), ("extra", "warning"), ("age", "error")}
    assert "missing" in next(i.message for i in issues if i.column == "member")
    assert "expected integers" in next(i.message for i in issues if i.column == "age")


def test_types_that_can_hold_the_signature_type() -> None:
    ref, cur = _frame(seed=1), _frame(seed=2)
    ok = cur.assign(
        age=cur["age"].astype(float).where(cur.index % 7 != 0),  # ints with nulls arrive as floats
        income=cur["age"],  # ints fit float64
        member=cur["member"].astype(int),  # 0/1
    )
    assert _by(data_quality(ref, ok, SIG), "schema") == []
    bad = cur.assign(age=cur["age"] + 0.5, member=cur["age"], home=cur["age"], income=cur["home"])
    issues = _by(data_quality(ref, bad, SIG), "schema")
    assert {i.column for i in issues} == {"age", "member", "home", "income"}
    assert all(i.severity == "error" for i in issues)
    when = Signature(columns=(ColumnSpec("t", "datetime"),))
    good_t = pd.DataFrame({"t": pd.date_range("2024-01-01", periods=3)})
    text_t = pd.DataFrame({"t": ["2024-01-01", "2024-01-02T10:00:00", None]})
    assert data_quality(good_t, good_t, when) == []
    assert _by(data_quality(good_t, text_t, when), "schema") == []
    assert (
        _by(data_quality(good_t, pd.DataFrame({"t": ["soon", "later"]}), when), "schema")[0].severity
        == "error"
    )


def test_schema_against_the_reference_without_signature() -> None:
    ref, cur = _frame(seed=1), _frame(seed=2)
    cur = cur.drop(columns=["home"]).assign(income=cur["home"], new=1)
    found = {(i.column, i.severity) for i in _by(data_quality(ref, cur), "schema")}
    assert found == {("home", "error"), ("income", "error"), ("new", "warning")}


def test_all_empty_column_is_reported_not_a_crash() -> None:
    ref, cur = _frame(seed=1), _frame(seed=2)
    cur["income"] = np.nan
    cur["home"] = None
    issues = data_quality(ref, cur, SIG)
    empty = _by(issues, "empty_column")
    assert {i.column for i in empty} == {"income", "home"}
    assert all(i.severity == "error" and i.message.startswith("column is empty") for i in empty)
    assert _by(issues, "missing_share") == [] and _by(issues, "schema") == []
    ref["income"] = np.nan  # an empty reference column: noted, its range left unchecked
    issues = data_quality(ref, _frame(seed=2))
    assert [(i.column, i.check, i.severity) for i in issues] == [
        ("income", "missing_share", "warning"),
        ("income", "empty_column", "warning"),
    ]


def test_empty_frames() -> None:
    ref = _frame(seed=1)
    issues = data_quality(ref, ref.iloc[:0], SIG)
    assert [(i.column, i.check, i.severity) for i in issues] == [("*", "empty_column", "error")]
    issues = data_quality(ref.iloc[:0], ref, SIG)
    assert [(i.column, i.check, i.severity) for i in issues] == [("*", "empty_column", "warning")]
    assert data_quality(pd.DataFrame(), pd.DataFrame()) == [
        QualityIssue("*", "empty_column", "current data has no rows", 0.0, None, "error"),
        QualityIssue("*", "empty_column", "reference data has no rows; comparisons skipped", None, 0.0),
    ]
    issues = data_quality(pd.DataFrame(), ref, SIG)
    assert {i.check for i in issues} == {"empty_column"}


def test_categorical_dtype_and_nullable_columns() -> None:
    ref = pd.DataFrame(
        {"c": pd.Categorical(["a", "b", "a"], categories=["a", "b", "z"]), "n": pd.array([1, 2, None])}
    )
    cur = pd.DataFrame({"c": pd.Categorical(["a", "q", "q"]), "n": pd.array([1, 9, 2], dtype="Int64")})
    issues = data_quality(ref, cur)
    assert [(i.column, i.check) for i in issues] == [
        ("c", "new_category"),
        ("n", "missing_share"),
        ("n", "out_of_range"),
    ]
    assert "'q'" in issues[0].message and issues[0].current == pytest.approx(2 / 3)
