"""Edits of ONNX graphs that the flavor and the compiled twin make: a ZipMap probability output
made a plain tensor, per-column inputs merged into one 2-d input, graph element types as
signature column types."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelport.flavors.base import require
from modelport.schema.signature import NUMERIC_TYPES


def unzip_outputs(proto: Any) -> bool:
    """Turn each ZipMap that produces a graph output into an Identity of its float tensor."""
    onnx = require("onnx", "onnx")
    outputs = {o.name: o for o in proto.graph.output}
    changed = False
    for i, node in enumerate(proto.graph.node):
        if node.op_type != "ZipMap" or node.output[0] not in outputs:
            continue
        labels = next((a for a in node.attribute if a.name.startswith("classlabels")), None)
        n = len(labels.ints or labels.strings) if labels is not None else None
        out = outputs[node.output[0]]
        identity = onnx.helper.make_node("Identity", [node.input[0]], [out.name], name=node.name)
        proto.graph.node[i].CopyFrom(identity)
        out.CopyFrom(onnx.helper.make_tensor_value_info(out.name, onnx.TensorProto.FLOAT, [None, n]))
        changed = True
    return changed


def merge_column_inputs(proto: Any, names: list[str]) -> bool:
    """Give a graph with one (n, 1) input per column, all of one numeric type, named and ordered
    as ``names``, a single (n, len(names)) input instead, split into the old inputs in the graph.

    The same computation, fed as one 2-d array: onnxruntime's per-input cost (about 1 µs each on
    a 1-row call) is paid once, and a numeric batch needs no per-column copies. Returns whether
    the graph changed (it is edited in place).
    """
    onnx = require("onnx", "onnx")
    graph = proto.graph
    weights = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in weights]
    if len(inputs) < 2 or [i.name for i in inputs] != names or len(inputs) != len(graph.input):
        return False
    kinds = {i.type.tensor_type.elem_type for i in inputs}
    kind = kinds.pop()
    if kinds or kind == onnx.TensorProto.STRING or column_type(kind) is None:
        return False
    dims = [list(i.type.tensor_type.shape.dim) for i in inputs]
    if any(len(d) != 2 or d[1].dim_value != 1 for d in dims):
        return False
    taken = weights | set(names) | {o for n in graph.node for o in n.output}
    merged, sizes = _fresh("columns", taken), _fresh("columns_split", taken)
    rows = dims[0][0].dim_param or None
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)
    if opset >= 13:  # the split sizes became an input in opset 13
        graph.initializer.append(
            onnx.helper.make_tensor(sizes, onnx.TensorProto.INT64, [len(names)], [1] * len(names))
        )
        split = onnx.helper.make_node("Split", [merged, sizes], names, axis=1, name=merged)
    else:
        split = onnx.helper.make_node("Split", [merged], names, axis=1, split=[1] * len(names), name=merged)
    del graph.input[:]
    graph.input.append(onnx.helper.make_tensor_value_info(merged, kind, [rows, len(names)]))
    graph.node.insert(0, split)
    return True


def _fresh(name: str, taken: set[str]) -> str:
    out, i = name, 1
    while out in taken:
        out, i = f"{name}_{i}", i + 1
    return out


def column_type(elem_type: int) -> str | None:
    onnx = require("onnx", "onnx")
    if elem_type == onnx.TensorProto.STRING:
        return "string"
    try:
        name = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name
    except (KeyError, TypeError, ValueError):
        return None
    return name if name in NUMERIC_TYPES else None


def elem_type(value_info: Any) -> int | None:
    t = value_info.type
    return int(t.tensor_type.elem_type) if t.WhichOneof("value") == "tensor_type" else None
