"""scikit-learn estimators and Pipelines (ColumnTransformer, encoders, ...), saved with joblib.

joblib files are pickles: they are only ever loaded from this store, after their sha256 has
been checked against the value recorded when this store wrote them.

``load(..., threads=N)`` caps the model's compute threads: every ``n_jobs`` parameter of the
estimator (and of the steps nested in it) is set to N, and each predict call runs under an OpenMP
limit of N (threadpoolctl; HistGradientBoosting and friends start an OpenMP team per call). The
OpenMP limit holds for the calling thread only, so concurrent callers don't interfere; BLAS pools
are process-wide and left as they are.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from modelport.flavors.base import (
    ConversionUnsupported,
    Converted,
    Saved,
    check_threads,
    classes_list,
    mro_modules,
    require,
)
from modelport.schema import Batch, Signature
from modelport.schema.signature import NUMERIC_TYPES

NAME = "sklearn"
FORMAT_VERSION = 1
PACKAGES = ("scikit-learn", "numpy", "scipy", "joblib")
OPTIONS: tuple[str, ...] = ()
FILE_SUFFIXES = (".joblib", ".pkl", ".pickle")
_FILE = "model.joblib"


def detect(obj: Any) -> bool:
    return "sklearn" in mro_modules(obj) and hasattr(obj, "predict")


def save(obj: Any, path: Path, sample: Batch | None, **options: Any) -> Saved:
    joblib = require("joblib", "sklearn")
    base = require("sklearn.base", "sklearn")
    if base.is_classifier(obj):
        task: str | None = "classifier"
    elif base.is_regressor(obj):
        task = "regressor"
    else:
        task = "classifier" if hasattr(obj, "predict_proba") else None
    joblib.dump(obj, path / _FILE)
    info = {
        "file": _FILE,
        "input": "pandas" if hasattr(obj, "feature_names_in_") else "numpy",
        "classes": classes_list(getattr(obj, "classes_", None)),
    }
    return Saved(task=task, info=info, packages=_nested_packages(obj))


def load(path: Path, info: dict[str, Any], threads: int | None = None) -> Any:
    joblib = require("joblib", "sklearn")
    threads = check_threads(threads)
    return _Loaded(joblib.load(path / info.get("file", _FILE)), info, threads)


def read_file(path: Path) -> Any:
    return require("joblib", "sklearn").load(path)


def to_onnx(raw: Any, signature: Signature, sample: Batch | None, info: dict[str, Any]) -> Converted:
    """The ONNX twin: skl2onnx made exact (see :mod:`modelport.flavors.sklearn_onnx`).

    Inputs are what the onnx flavor feeds: for a DataFrame model one (n, 1) input per column
    (text as string, numbers as double), else one double matrix. A missing text value is ``""``;
    NaN, None and pd.NA work too (onnxruntime renders them ``"nan"``, ``"None"``, ``"<NA>"``, which
    the graph maps to ``""`` unless they are categories of the column). Classifiers output
    ``label`` = classes[argmax(probabilities)] and a 2-d ``probabilities``. ``sample`` is not
    needed (the caller checks parity). Raises
    :class:`~modelport.flavors.base.ConversionUnsupported` naming a step that has no converter.
    """
    require("skl2onnx", "onnx")
    from sklearn.base import is_classifier, is_regressor

    from modelport.flavors.sklearn_onnx import MISSING_TEXT, check_convertible, convert_graph, takes_columns

    if signature.columns is None:
        raise ConversionUnsupported("Only models with tabular (column) signatures convert to ONNX.")
    check_convertible(raw)
    task = "classifier" if is_classifier(raw) else "regressor" if is_regressor(raw) else None
    if task is None:
        raise ConversionUnsupported(
            f"{type(raw).__qualname__} is neither a classifier nor a regressor; it keeps the native runtime."
        )
    pandas = info.get("input") == "pandas"
    per_column = pandas and takes_columns(raw)
    proto, notes = convert_graph(raw, _input_types(signature, per_column), task == "classifier")
    if pandas and not per_column:
        _split_matrix(proto, signature.names)
    notes.append(
        "inputs: one (n, 1) tensor per column, numbers as double" if pandas else "input: one double matrix"
    )
    text = [c for c in signature.columns if c.type in ("string", "category")] if pandas else []
    for col in text:
        known = {str(c) for c in col.categories or ()}
        if MISSING_TEXT in known:
            notes.append(f"'' is a category of {col.name!r} and also stands for its missing values")
        _text_nulls_as_empty(proto, col.name, [t for t in _RENDERED_NULLS if t not in known])
    if text:
        notes.append("missing text is fed as '' (NaN/None/pd.NA, rendered as text, are mapped to '')")
    classes = None
    if task == "classifier":
        classes = info.get("classes") or classes_list(getattr(raw, "classes_", None))
        if _label_from_proba(proto, classes):
            notes.append("labels are the argmax of the probabilities (ties: the first class)")
    return Converted(model=proto, task=task, classes=classes, notes=notes)


_MATRIX = "input"  # the graph input when the model takes all columns as one matrix
# How onnxruntime renders np.nan / None / pd.NA objects fed to a string tensor.
_RENDERED_NULLS = ("nan", "None", "<NA>")


def _input_types(signature: Signature, per_column: bool) -> list[tuple[str, Any]]:
    """skl2onnx input types. Numbers of every type are double: scikit-learn computes in float64
    (trees compare float32), and skl2onnx casts merged int64 + double columns inconsistently."""
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    cols = signature.columns or ()
    if not per_column:
        bad = [c.name for c in cols if c.type not in NUMERIC_TYPES]
        if bad:
            raise ConversionUnsupported(
                f"The model takes all columns as one numeric matrix, but {', '.join(bad)} "
                "are not numeric; put a ColumnTransformer first to encode them."
            )
        return [(_MATRIX, DoubleTensorType([None, len(cols)]))]
    types: list[tuple[str, Any]] = []
    for c in cols:
        if c.type in ("string", "category"):
            if c.categories and not all(isinstance(v, str) for v in c.categories):
                raise ConversionUnsupported(f"Column {c.name!r} has non-text categories.")
            types.append((c.name, StringTensorType([None, 1])))
        elif c.type in NUMERIC_TYPES:
            types.append((c.name, DoubleTensorType([None, 1])))
        else:
            raise ConversionUnsupported(f"Column {c.name!r} is {c.type}; ONNX inputs are numbers or text.")
    return types


def _prepend(graph: Any, nodes: list[Any]) -> None:
    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend([*nodes, *existing])


def _rename(graph: Any, old: str, new: str, outputs: bool = True) -> None:
    """Rename a value where nodes make and use it (and as a graph output if ``outputs``)."""
    for node in graph.node:
        node.input[:] = [new if i == old else i for i in node.input]
        node.output[:] = [new if o == old else o for o in node.output]
    for value in [*graph.initializer, *(graph.output if outputs else ())]:
        if value.name == old:
            value.name = new


def _const(graph: Any, name: str, values: Any) -> str:
    from onnx import numpy_helper

    graph.initializer.append(numpy_helper.from_array(np.asarray(values), name))
    return name


def _split_matrix(proto: Any, names: list[str]) -> None:
    """Give a model that takes the frame as one matrix one (n, 1) double input per column."""
    from onnx import TensorProto, helper

    graph = proto.graph
    (matrix,) = [i for i in graph.input if i.name == _MATRIX]
    graph.input.remove(matrix)
    _rename(graph, _MATRIX, "columns__matrix", outputs=False)
    taken = {o for n in graph.node for o in n.output} | {v.name for v in [*graph.initializer, *graph.output]}
    for name in set(names) & taken:  # a column called like a value inside the graph
        _rename(graph, name, f"{name}__model")
    graph.input.extend(helper.make_tensor_value_info(n, TensorProto.DOUBLE, [None, 1]) for n in names)
    _prepend(graph, [helper.make_node("Concat", names, ["columns__matrix"], axis=1, name="columns__concat")])


def _text_nulls_as_empty(proto: Any, name: str, tokens: list[str]) -> None:
    """Map the ``tokens`` of string input ``name`` to '' before any node reads it."""
    if not tokens:
        return
    from onnx import helper

    graph = proto.graph
    clean = f"{name}__text"
    _rename(graph, name, clean, outputs=False)
    empty = _const(graph, f"{name}__missing", np.array("", dtype=object))
    nodes: list[Any] = []
    mask = ""
    for k, token in enumerate(tokens):
        hit = f"{name}__is_null{k}"
        const = _const(graph, f"{name}__null{k}", np.array(token, dtype=object))
        nodes.append(helper.make_node("Equal", [name, const], [hit], name=hit))
        if mask:
            nodes.append(helper.make_node("Or", [mask, hit], [f"{hit}_any"], name=f"{hit}_any"))
            hit = f"{hit}_any"
        mask = hit
    nodes.append(helper.make_node("Where", [mask, empty, name], [clean], name=clean))
    _prepend(graph, nodes)


def _label_from_proba(proto: Any, classes: list[Any] | None) -> bool:
    """label = classes[argmax(probabilities)]: the first of tied classes, as scikit-learn picks;
    a tree ensemble's own label output can break vote ties the other way."""
    from onnx import TensorProto, helper

    graph = proto.graph
    if classes is None or len(graph.output) != 2:
        return False
    label, proba = graph.output
    kind = label.type.tensor_type.elem_type
    if len(proba.type.tensor_type.shape.dim) != 2:
        return False
    if kind == TensorProto.STRING:
        table = np.array([str(c) for c in classes], dtype=object)
    elif kind == TensorProto.INT64 and all(isinstance(c, (int, np.integer)) for c in classes):  # bools too
        table = np.array([int(c) for c in classes], dtype=np.int64)
    else:
        return False
    _rename(graph, label.name, f"{label.name}__native", outputs=False)
    index = f"{label.name}__argmax"
    graph.node.extend(
        [
            helper.make_node("ArgMax", [proba.name], [index], axis=1, keepdims=0, name=index),
            helper.make_node(
                "Gather", [_const(graph, f"{label.name}__classes", table), index], [label.name], axis=0
            ),
        ]
    )
    return True


class _Loaded:
    def __init__(self, model: Any, info: dict[str, Any], threads: int | None = None) -> None:
        self.raw = model
        self.classes = info.get("classes")
        self.task = "classifier" if self.classes is not None else None
        self.threads = threads
        self._pandas = info.get("input") == "pandas"
        self._limit = _thread_limit(model, threads)

    def _x(self, batch: Batch) -> Any:
        return batch.to_pandas() if self._pandas else batch.to_numpy()

    def predict(self, batch: Batch) -> np.ndarray:
        with self._limit():
            return np.asarray(self.raw.predict(self._x(batch)))

    def predict_proba(self, batch: Batch) -> np.ndarray:
        with self._limit():
            return np.asarray(self.raw.predict_proba(self._x(batch)))


def _thread_limit(model: Any, threads: int | None) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    """Set ``n_jobs`` to ``threads`` throughout the model; a per-call OpenMP limit of ``threads``."""
    if threads is None:
        return contextlib.nullcontext
    params = model.get_params(deep=True) if hasattr(model, "get_params") else {}
    n_jobs = {k: threads for k in params if k == "n_jobs" or k.endswith("__n_jobs")}
    if n_jobs:
        model.set_params(**n_jobs)
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # scikit-learn depends on it; a bare estimator-like object may not
        return contextlib.nullcontext
    # after joblib.load: the model's modules (and their OpenMP runtime) are imported by now
    openmp = ThreadpoolController().select(user_api="openmp")
    if not openmp.lib_controllers:
        return contextlib.nullcontext
    return lambda: openmp.limit(limits=threads)


def _nested_packages(obj: Any) -> tuple[str, ...]:
    """Distributions of estimators nested in Pipelines (e.g. an XGBoost step inside a Pipeline)."""
    import importlib.metadata

    mods: set[str] = set()
    params = obj.get_params(deep=True) if hasattr(obj, "get_params") else {}
    for value in [obj, *params.values()]:
        mods.add(type(value).__module__.split(".")[0])
    dists = importlib.metadata.packages_distributions()
    out = {d for m in mods for d in dists.get(m, []) if m not in ("builtins", "sklearn", "numpy")}
    return tuple(sorted(out))
