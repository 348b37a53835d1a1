"""Data quality of the current data against the reference (training) sample and the model signature.

Checks (``QualityIssue.check``):

- ``schema``: a signature column missing from the current data (error), a current column the
  signature does not know (warning), a column whose dtype cannot hold the signature's type (error).
  Without a signature the reference frame's columns and kinds are the schema.
- ``empty_column``: a column with no non-null value while the frame has rows (error); a frame with
  no rows at all (error for current, warning for reference, column ``"*"``).
- ``missing_share``: the share of nulls changed by at least ``missing_share_change`` (warning).
- ``out_of_range``: at least ``out_of_range_share`` of the current values of a numeric column lie
  outside [reference min, reference max] (warning).
- ``new_category``: values of a categorical column never seen in the reference (nor listed in the
  signature's categories), with their share of the current values (warning).

Nothing here raises on empty frames or all-null columns: those are findings, not crashes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from modelport.monitoring.drift import DATETIME, kind_of
from modelport.monitoring.results import QualityIssue
from modelport.monitoring.stats import CATEGORICAL, NUMERIC, FloatArray
from modelport.schema.signature import Signature

MAX_LISTED = 10


def data_quality(
    reference_df: pd.DataFrame,
    current_df: pd.DataFrame,
    signature: Signature | None = None,
    missing_share_change: float = 0.1,
    out_of_range_share: float = 0.05,
) -> list[QualityIssue]:
    """Quality issues of ``current_df`` (see the module docstring), in column order."""
    issues: list[QualityIssue] = []
    specs = {c.name: c for c in signature.columns} if signature is not None and signature.columns else None
    issues += _schema_issues(reference_df, current_df, specs)

    n_ref, n_cur = len(reference_df), len(current_df)
    if n_cur == 0:
        issues.append(QualityIssue("*", "empty_column", "current data has no rows", 0.0, None, "error"))
    if n_ref == 0:
        issues.append(
            QualityIssue("*", "empty_column", "reference data has no rows; comparisons skipped", None, 0.0)
        )

    for col in current_df.columns:
        cur = current_df[col]
        ref = reference_df[col] if col in reference_df.columns else None
        name = str(col)
        cur_valid = int(cur.notna().sum())
        if n_cur and cur_valid == 0:
            issues.append(
                QualityIssue(
                    name, "empty_column", "column is empty (all values are missing)", 1.0, None, "error"
                )
            )
            continue
        if ref is None or n_ref == 0 or n_cur == 0:
            continue
        ref_valid = int(ref.notna().sum())
        ref_missing = 1.0 - ref_valid / n_ref
        cur_missing = 1.0 - cur_valid / n_cur
        if abs(cur_missing - ref_missing) >= missing_share_change:
            issues.append(
                QualityIssue(
                    name,
                    "missing_share",
                    f"missing values {cur_missing:.1%} (reference {ref_missing:.1%})",
                    cur_missing,
                    ref_missing,
                )
            )
        if ref_valid == 0:
            issues.append(
                QualityIssue(
                    name, "empty_column", "reference column is empty; range and categories unchecked"
                )
            )
            continue
        kind = _kind(ref, cur)
        if kind == NUMERIC:
            issue = _out_of_range(name, ref, cur, out_of_range_share)
            if issue is not None:
                issues.append(issue)
        elif kind == CATEGORICAL:
            known = specs[col].categories if specs is not None and col in specs else None
            issue = _new_categories(name, ref, cur, known)
            if issue is not None:
                issues.append(issue)
    return issues


def _kind(ref: pd.Series, cur: pd.Series) -> str:
    ref_kind, cur_kind = kind_of(ref), kind_of(cur)
    return ref_kind if ref_kind == cur_kind else "mismatch"


# -------------------------------------------------------------------------------------- schema


def _schema_issues(
    reference_df: pd.DataFrame, current_df: pd.DataFrame, specs: dict[str, Any] | None
) -> list[QualityIssue]:
    issues: list[QualityIssue] = []
    current = set(current_df.columns)
    if specs is not None:
        for name, spec in specs.items():
            if name not in current:
                issues.append(
                    QualityIssue(
                        name, "schema", "column of the model signature is missing", None, None, "error"
                    )
                )
                continue
            problem = _type_problem(spec.type, current_df[name])
            if problem:
                issues.append(QualityIssue(name, "schema", problem, None, None, "error"))
        for col in current_df.columns:
            if col not in specs:
                issues.append(QualityIssue(str(col), "schema", "column is not in the model signature"))
        return issues
    for col in reference_df.columns:
        if col not in current:
            issues.append(
                QualityIssue(
                    str(col), "schema", "column of the reference data is missing", None, None, "error"
                )
            )
            continue
        ref_kind, cur_kind = kind_of(reference_df[col]), kind_of(current_df[col])
        both_hold_values = reference_df[col].notna().any() and current_df[col].notna().any()
        if ref_kind != cur_kind and both_hold_values:
            issues.append(
                QualityIssue(
                    str(col),
                    "schema",
                    f"{cur_kind} values ({current_df[col].dtype}) where the reference has "
                    f"{ref_kind} ({reference_df[col].dtype})",
                    None,
                    None,
                    "error",
                )
            )
    reference = set(reference_df.columns)
    for col in current_df.columns:
        if col not in reference:
            issues.append(QualityIssue(str(col), "schema", "column is not in the reference data"))
    return issues


def _type_problem(spec_type: str, s: pd.Series) -> str:
    """Why the column's dtype cannot hold ``spec_type`` values ("" when it can)."""
    dtype = s.dtype
    values = s.dropna()
    if values.empty:
        return ""  # an all-null column fits any type; the emptiness is reported on its own
    is_bool = pd.api.types.is_bool_dtype(dtype)
    is_number = pd.api.types.is_numeric_dtype(dtype) and not is_bool
    is_text = not is_number and not is_bool and kind_of(s) == CATEGORICAL
    got = f"got {dtype}"
    if spec_type.startswith("float"):
        return "" if is_number or is_bool else f"expected numbers ({spec_type}), {got}"
    if spec_type.startswith(("int", "uint")):
        if is_bool or pd.api.types.is_integer_dtype(dtype):
            return ""
        if is_number:
            arr = values.to_numpy(dtype=np.float64)
            if np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
                return ""
            return f"expected integers ({spec_type}), got fractional or infinite values"
        return f"expected integers ({spec_type}), {got}"
    if spec_type == "bool":
        if is_bool:
            return ""
        if is_number and bool(values.isin([0, 1]).all()):
            return ""
        if dtype.kind == "O" and all(isinstance(v, bool | np.bool_) for v in values.iloc[:1000]):
            return ""
        return f"expected booleans, {got}"
    if spec_type in ("string", "category"):
        return "" if is_text else f"expected text or categories ({spec_type}), {got}"
    if spec_type == "datetime":
        if kind_of(s) == DATETIME and not pd.api.types.is_timedelta64_dtype(dtype):
            return ""
        if is_text:
            sample = values.iloc[:100].astype(str)
            parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
            if bool(parsed.notna().all()):
                return ""
        return f"expected datetimes, {got}"
    return ""


# ------------------------------------------------------------------------------ value checks


def _finite(s: pd.Series) -> FloatArray:
    arr: FloatArray = s.to_numpy(dtype=np.float64, na_value=np.nan)
    finite: FloatArray = arr[np.isfinite(arr)]
    return finite


def _out_of_range(name: str, ref: pd.Series, cur: pd.Series, threshold: float) -> QualityIssue | None:
    r = _finite(ref)
    c = _finite(cur)
    if r.size == 0 or c.size == 0:
        return None
    lo, hi = float(r.min()), float(r.max())
    below = int(np.count_nonzero(c < lo))
    above = int(np.count_nonzero(c > hi))
    share = (below + above) / c.size
    if share < threshold or share == 0:
        return None
    return QualityIssue(
        name,
        "out_of_range",
        f"{share:.1%} of values outside the reference range [{lo:.6g}, {hi:.6g}] "
        f"({below} below, {above} above)",
        share,
        0.0,
    )


def _new_categories(
    name: str, ref: pd.Series, cur: pd.Series, known: tuple[Any, ...] | None
) -> QualityIssue | None:
    cur_counts = _value_counts(cur)
    seen = pd.Index(_value_counts(ref).index, dtype=object)
    if known:
        seen = seen.append(pd.Index(list(known), dtype=object))
    new_mask = ~pd.Index(cur_counts.index, dtype=object).isin(seen)
    if not new_mask.any():
        return None
    new = cur_counts[new_mask].sort_values(ascending=False, kind="stable")
    share = float(new.sum() / cur_counts.sum())
    listed = ", ".join(repr(_plain(v)) for v in new.index[:MAX_LISTED])
    more = f" and {len(new) - MAX_LISTED} more" if len(new) > MAX_LISTED else ""
    return QualityIssue(
        name,
        "new_category",
        f"{len(new)} categor{'y' if len(new) == 1 else 'ies'} never seen in the reference "
        f"({share:.1%} of values): {listed}{more}",
        share,
        0.0,
    )


def _value_counts(s: pd.Series) -> pd.Series:
    counts = s.value_counts(dropna=True, sort=False)
    return counts[counts > 0]


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
