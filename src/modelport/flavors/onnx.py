"""ONNX: an ``onnx.ModelProto``, or the path / bytes of a ``.onnx`` file, run with onnxruntime.

ONNX is a frozen graph with typed inputs, so the flavor can run any converter's output
(skl2onnx, torch.onnx, tf2onnx, ...) without its framework, and can derive a signature from the
graph when no sample is given. Conventions handled here:

* one input -> the whole batch as a 2-d array (or the tensor), cast to the graph's input dtype;
  several inputs (skl2onnx pipelines: one input per column) -> each column as an (n, 1) array,
  matched by name;
* a classifier has a label output and a probability output; probabilities may come as a ZipMap
  (a list of ``{class: p}`` dicts) and become a 2-d array ordered by ``classes``. A classifier
  graph with one output must output probabilities (put the softmax in the graph).

Options: ``task``, ``classes`` (else read from the graph's ZipMap / classifier node) and
``intra_op_threads`` (onnxruntime's own default is every core, too many next to other workers).
``load(..., threads=N)`` sets the session's intra-op threads for one deployment (a server worker,
a batch chunk scorer) and wins over the registered ``intra_op_threads``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from modelport.errors import FlavorError
from modelport.flavors.base import (
    ConversionUnsupported,
    Converted,
    Saved,
    check_threads,
    classes_list,
    mro_modules,
    require,
)
from modelport.flavors.onnx_graph import column_type, elem_type, unzip_outputs
from modelport.schema import Batch, ColumnSpec, Signature, TensorSpec

NAME = "onnx"
FORMAT_VERSION = 1
PACKAGES = ("onnx", "onnxruntime", "numpy")
FILE_SUFFIXES = (".onnx",)
_FILE = "model.onnx"
OPTIONS = ("task", "classes", "intra_op_threads")
_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}


def detect(obj: Any) -> bool:
    if isinstance(obj, (str, os.PathLike)):
        return str(obj).lower().endswith(".onnx")
    return "onnx" in mro_modules(obj) and type(obj).__name__ == "ModelProto"


def save(obj: Any, path: Path, sample: Batch | None, **options: Any) -> Saved:
    onnx = require("onnx", "onnx")
    threads = options.get("intra_op_threads")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise TypeError(f"intra_op_threads must be a positive int, got {threads!r}")
    proto = _proto(obj)
    onnx.save_model(proto, str(path / _FILE))
    outputs = proto.graph.output
    label = next((o.name for o in outputs if elem_type(o) in _LABEL_TYPES), None)
    proba = next((o.name for o in outputs if o.name != label and _is_proba(o)), None)
    task = options.get("task") or ("classifier" if label and proba else "regressor")
    if task not in ("classifier", "regressor"):
        raise TypeError(f"task must be 'classifier' or 'regressor', got {task!r}")
    classes = classes_list(options.get("classes"))
    if task == "classifier":
        proba = proba or outputs[0].name
        classes = classes if classes is not None else _graph_classes(proto, proba)
    info = {
        "file": _FILE,
        "task": task,
        "classes": classes if task == "classifier" else None,
        "label_output": label if task == "classifier" else None,
        "proba_output": proba if task == "classifier" else None,
        "intra_op_threads": threads,
    }
    return Saved(task=task, info=info)


def load(path: Path, info: dict[str, Any], threads: int | None = None) -> Any:
    ort = require("onnxruntime", "onnx")
    opts = ort.SessionOptions()
    threads = check_threads(threads) or info.get("intra_op_threads")
    if threads:
        opts.intra_op_num_threads = int(threads)
    session = ort.InferenceSession(
        str(path / info.get("file", _FILE)), opts, providers=["CPUExecutionProvider"]
    )
    return OnnxModel(session, info)


def read_file(path: Path) -> Any:
    return require("onnx", "onnx").load(str(path))


def to_onnx(
    raw: Any, signature: Signature, sample: Batch | None, info: dict[str, Any], path: Path | None = None
) -> Converted:
    """Pass-through: the registered graph itself, with a ZipMap probability output made a tensor.

    ``raw`` is the flavor's onnxruntime session (the model file it was opened from is read back),
    or a ModelProto, bytes or ``.onnx`` path; ``path`` (the version's model folder) wins if given.
    """
    if path is not None:
        source: Any = Path(path) / info.get("file", _FILE)
    elif hasattr(raw, "get_inputs"):  # onnxruntime.InferenceSession keeps what it was built from
        source = getattr(raw, "_model_path", None) or getattr(raw, "_model_bytes", None)
    else:
        source = raw
    if source is None:
        raise ConversionUnsupported(
            "The ONNX session does not say which model file it runs; pass the model folder "
            "(to_onnx(..., path=...)). The native runtime keeps working."
        )
    proto = require("onnx", "onnx").ModelProto()
    proto.CopyFrom(_proto(source))  # never edit the caller's ModelProto
    notes = ["pass-through: the registered ONNX graph"]
    if unzip_outputs(proto):
        notes.append("ZipMap probability output replaced by the plain (rows, classes) tensor it wraps")
    return Converted(model=proto, task=info.get("task"), classes=info.get("classes"), notes=notes)


def signature_from_model(obj: Any) -> Signature | None:
    """Columns x0..xN-1 for one (n, N) input, a tensor spec for N-d, one column per (n, 1) input."""
    graph = _proto(obj, external_data=False).graph
    weights = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    shapes = [[d.dim_value or -1 for d in i.type.tensor_type.shape.dim] for i in inputs]
    types = [column_type(i.type.tensor_type.elem_type) for i in inputs]
    if len(inputs) == 1:
        kind, shape = types[0], shapes[0]
        if kind and len(shape) == 2 and shape[1] > 0:
            return Signature(
                columns=tuple(ColumnSpec(f"x{j}", kind, _nullable(kind)) for j in range(shape[1]))
            )
        if kind and kind != "string" and shape:
            return Signature(tensor=TensorSpec(kind, (-1, *shape[1:])))
        return None
    columns = []
    for value_info, kind, shape in zip(inputs, types, shapes, strict=True):
        if not kind or len(shape) not in (1, 2) or shape[1:] not in ([], [1]):
            return None  # not one column per input: the caller asks for a sample instead
        columns.append(ColumnSpec(value_info.name, kind, _nullable(kind)))
    return Signature(columns=tuple(columns)) if columns else None


def _proto(obj: Any, external_data: bool = True) -> Any:
    onnx = require("onnx", "onnx")
    if isinstance(obj, (bytes, bytearray)):
        return onnx.load_from_string(bytes(obj))
    if isinstance(obj, (str, os.PathLike)):
        try:
            return onnx.load(str(obj), load_external_data=external_data)
        except OSError as exc:
            raise FlavorError(f"Cannot read the ONNX file {str(obj)!r}: {exc}") from exc
    if type(obj).__name__ == "ModelProto":
        return obj
    raise FlavorError(f"Expected an onnx.ModelProto, bytes or a .onnx path, got {type(obj).__name__}.")


# onnx.TensorProto element types: INT32=6, INT64=7, STRING=8.
_LABEL_TYPES = (6, 7, 8)


def _is_proba(value_info: Any) -> bool:
    return value_info.type.WhichOneof("value") == "sequence_type" or elem_type(value_info) in (1, 11)


def _graph_classes(proto: Any, proba: str) -> list[Any] | None:
    """Class labels from a ZipMap or classifier node, else 0..k-1 for a fixed-width output."""
    for node in proto.graph.node:
        for attr in node.attribute:
            if attr.name in ("classlabels_int64s", "classlabels_ints") and attr.ints:
                return [int(v) for v in attr.ints]
            if attr.name == "classlabels_strings" and attr.strings:
                return [v.decode() for v in attr.strings]
    out = next(o for o in proto.graph.output if o.name == proba)
    dims = out.type.tensor_type.shape.dim if elem_type(out) is not None else []
    return list(range(dims[1].dim_value)) if len(dims) == 2 and dims[1].dim_value > 0 else None


def _nullable(column_type: str) -> bool:
    return column_type.startswith("float")


_SMALL = 64  # rows up to which a Python check beats pandas.isna's fixed cost


def _text(col: np.ndarray) -> np.ndarray:
    """Strings for a string tensor: every missing value (NaN, None, pd.NA) becomes "".

    onnxruntime would otherwise stringify them ("nan", "None", "<NA>"); converted graphs treat ""
    as missing (see flavors.sklearn.to_onnx).
    """
    if col.dtype.kind != "O":
        return col.astype(object)
    if len(col) <= _SMALL and all(type(v) is str for v in col):  # a request's few rows: no pandas call
        return col
    try:  # one C loop; validation already made every other value a string
        from pandas import isna
    except ImportError:  # the edge bundle's runtime: numpy and onnxruntime only
        if all(isinstance(v, str) for v in col):
            return col
        return np.array([v if isinstance(v, str) else "" for v in col], dtype=object)
    missing = isna(col)
    if not missing.any():
        return col
    out = col.copy()
    out[missing] = ""
    return out


def feed(col: np.ndarray, dtype: Any, rank: int) -> np.ndarray:
    """One column as the graph input of ``dtype`` (None: as it is) and ``rank`` takes it."""
    if dtype is np.object_:
        col = _text(col)
    elif dtype is not None:
        col = col.astype(dtype, copy=False)
    return col.reshape(-1, 1) if rank == 2 else col


class OnnxModel:
    def __init__(self, session: Any, info: dict[str, Any]) -> None:
        self.raw = session
        self.task = info.get("task")
        self.classes = info.get("classes")
        self.label_output = info.get("label_output")
        self.proba_output = info.get("proba_output")
        self.inputs = [(i.name, _ORT_DTYPES.get(i.type), len(i.shape)) for i in session.get_inputs()]
        # one (n, 1) numeric input per column, all of one dtype: fed from a batch's matrix at once
        kinds = {(dtype, rank) for _, dtype, rank in self.inputs}
        (dtype, rank), *more = kinds or {(None, 0)}
        self._per_column = dtype if not more and rank == 2 and dtype not in (None, np.object_) else None
        self._plan: tuple[Any, list[tuple[str, int]] | None] = (None, None)

    def _feeds(self, batch: Batch) -> dict[str, np.ndarray]:
        if len(self.inputs) == 1:
            name, dtype, _ = self.inputs[0]
            arr = batch.tensor if batch.tensor is not None else batch.to_numpy(dtype)
            return {name: arr if dtype is None else arr.astype(dtype, copy=False)}
        matrix = batch.matrix
        if matrix is not None and self._per_column is not None:
            order = self._order(batch.signature)
            if order is not None:  # (columns, rows), contiguous: each input is a view of one row
                by_column: np.ndarray = np.ascontiguousarray(matrix.T, dtype=self._per_column)
                return {name: by_column[i].reshape(-1, 1) for name, i in order}
        feeds = {}
        columns = batch.columns
        for name, dtype, rank in self.inputs:
            col = columns.get(name)
            if col is None:
                raise FlavorError(
                    f"The ONNX model has input {name!r}, which is not a column of the signature "
                    f"({', '.join(batch.signature.names)}); register it with matching column names."
                )
            feeds[name] = feed(col, dtype, rank)
        return feeds

    def _order(self, signature: Signature) -> list[tuple[str, int]] | None:
        """(input name, signature position) of each graph input; None if one is not a column."""
        seen, order = self._plan
        if seen is not signature:
            index = {n: i for i, n in enumerate(signature.names)}
            found = [(name, index.get(name)) for name, _, _ in self.inputs]
            order = (
                [(n, i) for n, i in found if i is not None] if all(i is not None for _, i in found) else None
            )
            self._plan = (signature, order)
        return order

    def predict(self, batch: Batch) -> np.ndarray:
        if self.task == "classifier" and not self.label_output:
            idx = self.predict_proba(batch).argmax(axis=1)
            return idx if self.classes is None else np.asarray(self.classes)[idx]
        (out,) = self.raw.run([self.label_output] if self.label_output else None, self._feeds(batch))[:1]
        out = np.asarray(out)
        return out.reshape(-1) if out.ndim == 2 and out.shape[1] == 1 else out

    def predict_proba(self, batch: Batch) -> np.ndarray:
        if self.task != "classifier":
            raise FlavorError("This ONNX model is not a classifier; use predict().")
        (out,) = self.raw.run([self.proba_output], self._feeds(batch))
        if isinstance(out, list):  # ZipMap: one {class: probability} dict per row
            keys = self.classes if self.classes is not None else list(out[0]) if out else []
            return np.array([[row[k] for k in keys] for row in out], dtype=np.float32).reshape(-1, len(keys))
        out = np.asarray(out)
        return np.column_stack([1.0 - out, out]) if out.ndim == 1 else out
