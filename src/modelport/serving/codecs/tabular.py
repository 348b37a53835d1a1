"""Turning JSON row layouts (records, split, columns, positional rows) into what ``prepare`` reads."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.errors import InvalidInput, SchemaMismatch
from modelport.schema import Signature

LAYOUTS = (
    "a list of row objects [{...}], {'columns': [...], 'data': [[...]]}, "
    "an object of column lists {'col': [...]}, or a list of positional rows [[...]]"
)


def rows(value: Any, signature: Signature, where: str = "inputs") -> Any:
    """Any supported layout of ``value`` as records, a dict of columns or a tensor."""
    if signature.tensor is not None:
        return _tensor(value, where)
    if isinstance(value, list):
        if not value:
            raise InvalidInput(f"'{where}' holds no rows.")
        if all(isinstance(r, dict) for r in value):
            whole = records_matrix(value, signature)
            return value if whole is None else whole
        if all(isinstance(r, list) for r in value):
            whole = float_matrix(value, signature)
            return positional(value, signature, where) if whole is None else whole
        raise InvalidInput(f"'{where}' must be {LAYOUTS}; its items are of mixed kinds.")
    if isinstance(value, dict):
        if "data" in value or "columns" in value:
            return split(value, signature, where)
        return columns(value, where)
    raise InvalidInput(f"'{where}' must be {LAYOUTS}; got a JSON {_kind(value)}.")


def split(value: dict[str, Any], signature: Signature, where: str) -> Any:
    """``{"columns": [...], "data": [[...]]}`` (pandas' orient="split"; ``index`` is ignored)."""
    data = value.get("data")
    if not isinstance(data, list) or not all(isinstance(r, list) for r in data):
        raise InvalidInput(f"'{where}.data' must be a list of rows, each a list of values.")
    names = value.get("columns")
    if names is None:
        return positional(data, signature, f"{where}.data")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidInput(f"'{where}.columns' must be a list of column names.")
    if len(set(names)) != len(names):
        raise InvalidInput(f"'{where}.columns' names a column twice.")
    if not data:
        raise InvalidInput(f"'{where}.data' holds no rows.")
    if names == signature.names:
        whole = float_matrix(data, signature)
        if whole is not None:
            return whole
    bad = next((i for i, r in enumerate(data) if len(r) != len(names)), None)
    if bad is not None:
        raise InvalidInput(
            f"Row {bad} of '{where}.data' has {len(data[bad])} values for {len(names)} columns."
        )
    return {n: [r[i] for r in data] for i, n in enumerate(names)}


def columns(value: dict[str, Any], where: str) -> dict[str, Any]:
    """``{"col": [v, ...], ...}`` or one row as ``{"col": v, ...}``."""
    if not value:
        raise InvalidInput(f"'{where}' holds no columns.")
    if all(not isinstance(v, (list, dict)) for v in value.values()):
        return {k: [v] for k, v in value.items()}
    if not all(isinstance(v, list) for v in value.values()):
        raise InvalidInput(f"'{where}' must map every column to a list of values.")
    lengths = {len(v) for v in value.values()}
    if len(lengths) > 1:
        raise InvalidInput(f"The columns of '{where}' have different lengths: {sorted(lengths)}.")
    return value


def positional(data: list[Any], signature: Signature, where: str) -> dict[str, Any]:
    """Rows of values in signature column order."""
    names = signature.names
    bad = next((i for i, r in enumerate(data) if not isinstance(r, list) or len(r) != len(names)), None)
    if bad is not None:
        raise SchemaMismatch(
            f"Row {bad} of '{where}' must be a list of {len(names)} values in the order {', '.join(names)}."
        )
    return {n: [r[i] for r in data] for i, n in enumerate(names)}


FLOATS = frozenset({"float32", "float64"})


def float_matrix(rows: Any, signature: Signature) -> np.ndarray | None:
    """``rows`` (positional rows, or a 2-d array) as one 2-d array when every column of the model is
    a float and every value a number or boolean (the same values ``prepare`` would make of them);
    None when that does not hold, and the caller takes the per-column path."""
    columns = signature.columns or ()
    if signature.tensor is not None or not columns or any(c.type not in FLOATS for c in columns):
        return None
    try:
        arr = rows if isinstance(rows, np.ndarray) else np.array(rows)
    except (ValueError, TypeError, OverflowError):
        return None
    if arr.ndim == 2 and arr.shape[1] == len(columns) and arr.shape[0] > 0 and arr.dtype.kind in "fiub":
        return arr
    return None


_NUMBERS = frozenset({float, int})


def records_matrix(records: list[dict[str, Any]], signature: Signature) -> np.ndarray | None:
    """Row objects as one 2-d array when the model's columns are all floats, every row names exactly
    them and every value is a JSON number; None otherwise (the per-column path then validates, warns
    about extra columns and names what is missing or of the wrong type)."""
    columns = signature.columns or ()
    if signature.tensor is not None or not columns or any(c.type not in FLOATS for c in columns):
        return None
    names = signature.names
    width = len(names)
    try:
        flat = [r[n] for r in records if len(r) == width for n in names]
    except KeyError:
        return None
    if len(flat) != width * len(records) or not set(map(type, flat)) <= _NUMBERS:
        return None
    try:
        arr = np.array(flat, dtype=np.float64)
    except OverflowError:
        return None
    return arr.reshape(len(records), width)


def _tensor(value: Any, where: str) -> np.ndarray:
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise SchemaMismatch(f"'{where}' must be a rectangular array of numbers.") from exc


def _kind(value: Any) -> str:
    return {str: "string", int: "number", float: "number", bool: "boolean"}.get(type(value), "null")
