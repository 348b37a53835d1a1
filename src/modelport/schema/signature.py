"""Signatures: what a model expects as input, inferred from a sample or given.

A signature is either a list of named, typed columns (tabular models) or one tensor spec
(dtype + shape, for models that take N-d arrays such as images).

>>> import pandas as pd
>>> sig = infer_signature(pd.DataFrame({"income": [52000.0], "home": ["RENT"]}))
>>> [(c.name, c.type) for c in sig.columns]
[('income', 'float64'), ('home', 'string')]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelport.errors import SchemaMismatch

NUMERIC_TYPES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
)
COLUMN_TYPES = (*NUMERIC_TYPES, "string", "category", "datetime")
MAX_RECORDED_CATEGORIES = 200


@dataclass(frozen=True)
class ColumnSpec:
    """One input column: name, type (see ``COLUMN_TYPES``), nullability, known categories."""

    name: str
    type: str
    nullable: bool = False
    categories: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise SchemaMismatch(
                f"Unknown column type {self.type!r} for column {self.name!r}; "
                f"use one of {', '.join(COLUMN_TYPES)}."
            )

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": self.type, "nullable": self.nullable}
        if self.categories is not None:
            d["categories"] = list(self.categories)
        return d


@dataclass(frozen=True)
class TensorSpec:
    """An N-d array input; ``-1`` in ``shape`` means any size (the batch axis is first)."""

    dtype: str
    shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"dtype": self.dtype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Signature:
    """The input schema of a model: ``columns`` (tabular) or ``tensor``, never both."""

    columns: tuple[ColumnSpec, ...] | None = None
    tensor: TensorSpec | None = None
    _index: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    # the float type every column has, when they all have one ("float64"), else None
    float_type: str | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if (self.columns is None) == (self.tensor is None):
            raise SchemaMismatch("A signature has either columns or a tensor spec.")
        if self.columns is not None:
            names = [c.name for c in self.columns]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise SchemaMismatch(f"Duplicate column names in signature: {', '.join(dupes)}.")
            self._index.update({n: i for i, n in enumerate(names)})
            types = {c.type for c in self.columns}
            if len(types) == 1 and next(iter(types)) in ("float32", "float64"):
                object.__setattr__(self, "float_type", next(iter(types)))

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns or ()]

    def column(self, name: str) -> ColumnSpec:
        assert self.columns is not None
        return self.columns[self._index[name]]

    def to_dict(self) -> dict[str, Any]:
        if self.tensor is not None:
            return {"tensor": self.tensor.to_dict()}
        return {"columns": [c.to_dict() for c in self.columns or ()]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Signature:
        """Build from ``to_dict()`` output, or from a plain ``{"col": "type"}`` mapping."""
        if "tensor" in d:
            t = d["tensor"]
            return cls(tensor=TensorSpec(str(t["dtype"]), tuple(int(s) for s in t["shape"])))
        if "columns" in d:
            cols = tuple(
                ColumnSpec(
                    c["name"],
                    c["type"],
                    bool(c.get("nullable", False)),
                    tuple(c["categories"]) if c.get("categories") is not None else None,
                )
                for c in d["columns"]
            )
            return cls(columns=cols)
        return cls(columns=tuple(ColumnSpec(str(k), str(v), True) for k, v in d.items()))


def infer_signature(sample: Any) -> Signature:
    """Infer a signature from sample data (pandas, polars, pyarrow, numpy, dicts, lists of dicts)."""
    from modelport.schema.frames import to_pandas_frame

    arr = _as_tensor(sample)
    if arr is not None:
        if arr.ndim == 2:
            return Signature(
                columns=tuple(
                    ColumnSpec(f"x{i}", _numpy_type(arr.dtype), _has_nulls(arr[:, i]))
                    for i in range(arr.shape[1])
                )
            )
        return Signature(tensor=TensorSpec(str(arr.dtype), (-1, *arr.shape[1:])))
    df = to_pandas_frame(sample)
    return Signature(columns=tuple(_infer_column(str(name), df[name]) for name in df.columns))


def _as_tensor(sample: Any) -> np.ndarray | None:
    """numpy arrays, and array-likes such as CPU torch tensors, but not frames or records."""
    if isinstance(sample, np.ndarray):
        arr = sample
    elif hasattr(sample, "__array__") and not hasattr(sample, "columns") and not hasattr(sample, "schema"):
        arr = np.asarray(sample)
    else:
        return None
    if arr.dtype.names is not None:
        return None
    if arr.ndim < 2:
        raise SchemaMismatch(
            f"A numpy sample must have a batch axis: expected shape (rows, ...), got {arr.shape}."
        )
    return arr


def _numpy_type(dtype: np.dtype) -> str:
    if dtype.kind == "M":
        return "datetime"
    if dtype.kind in "OUS":
        return "string"
    name = np.dtype(dtype).name
    if name not in NUMERIC_TYPES:
        raise SchemaMismatch(f"Unsupported dtype {name} in sample.")
    return name


def _has_nulls(values: np.ndarray) -> bool:
    if values.dtype.kind == "f":
        return bool(np.isnan(values).any())
    if values.dtype.kind == "O":
        return any(v is None or (isinstance(v, float) and v != v) for v in values)
    return False


def _infer_column(name: str, s: Any) -> ColumnSpec:
    import pandas as pd

    nullable = bool(s.isna().any())
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return ColumnSpec(name, "category", nullable, tuple(_plain(v) for v in dtype.categories))
    if pd.api.types.is_bool_dtype(dtype):
        return ColumnSpec(name, "bool", nullable)
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return ColumnSpec(name, "datetime", nullable)
    if pd.api.types.is_numeric_dtype(dtype):
        np_dtype = dtype.numpy_dtype if hasattr(dtype, "numpy_dtype") else np.dtype(dtype)
        kind = _numpy_type(np.dtype(np_dtype))
        if nullable and kind.startswith(("int", "uint")):
            # A nullable integer column arrives as float where nulls appear (numpy has no NA int).
            kind = "float64"
        return ColumnSpec(name, kind, nullable)
    values = s.dropna()
    bad = {type(v).__name__ for v in values if not isinstance(v, str)}
    if bad:
        raise SchemaMismatch(
            f"Column {name!r} mixes strings with {', '.join(sorted(bad))}; "
            "clean it or give an explicit signature."
        )
    uniques = values.unique()
    cats = tuple(sorted(uniques)) if len(uniques) <= MAX_RECORDED_CATEGORIES else None
    return ColumnSpec(name, "string", nullable, cats)


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v
