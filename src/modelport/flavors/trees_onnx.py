"""ONNX graphs for tree ensembles, shared by the XGBoost and LightGBM converters.

The trees become one ``TreeEnsembleRegressor`` (ai.onnx.ml opset 3) that sums raw scores per
target; the link (sigmoid, softmax, exp, ...) and the classifier head (probabilities as a plain
2-d tensor, label = classes[argmax]) follow in standard ONNX ops, so nothing depends on a
converter's guess of the objective. Thresholds, leaf values and the input are float32 for
XGBoost (which itself compares float32 features with float32 splits) and float64 for LightGBM
(whose splits and sums are double): opset 3's ``*_as_tensor`` attributes keep them exact; only
the summed scores leave the ensemble as float32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelport.flavors.base import ConversionUnsupported, require
from modelport.schema import Signature
from modelport.schema.signature import NUMERIC_TYPES

OPSET = 17
ML_OPSET = 3
IR_VERSION = 8  # readable by onnxruntime >= 1.15
INPUT = "input"
LINKS = ("identity", "exp", "sigmoid", "softplus", "signed_square", "softmax")
_NODE_KEYS = (
    "nodes_treeids",
    "nodes_nodeids",
    "nodes_featureids",
    "nodes_modes",
    "nodes_values",
    "nodes_truenodeids",
    "nodes_falsenodeids",
    "nodes_missing_value_tracks_true",
)
_LEAF_KEYS = ("target_treeids", "target_nodeids", "target_ids", "target_weights")


@dataclass
class Forest:
    """Tree nodes in the flat layout of ONNX ``TreeEnsembleRegressor``."""

    n_features: int
    n_targets: int
    double: bool
    base_values: list[float] | None = None
    nodes: dict[str, list[Any]] = field(default_factory=lambda: {k: [] for k in _NODE_KEYS})
    leaves: dict[str, list[Any]] = field(default_factory=lambda: {k: [] for k in _LEAF_KEYS})

    def split(
        self,
        tree: int,
        node: int,
        feature: int,
        mode: str,
        threshold: float,
        yes: int,
        no: int,
        missing_yes: bool,
    ) -> None:
        self._node(tree, node, feature, mode, threshold, yes, no, int(missing_yes))

    def leaf(self, tree: int, node: int, target: int, value: float) -> None:
        self._node(tree, node, 0, "LEAF", 0.0, 0, 0, 0)
        for key, v in zip(_LEAF_KEYS, (tree, node, target, value), strict=True):
            self.leaves[key].append(v)

    def _node(self, *values: Any) -> None:
        for key, v in zip(_NODE_KEYS, values, strict=True):
            self.nodes[key].append(v)


def numeric_columns(signature: Signature, framework: str) -> int:
    """The number of input columns; only numbers and booleans can feed a tree ensemble."""
    if signature.columns is None:
        raise ConversionUnsupported(
            f"This {framework} model has a tensor signature; its ONNX twin needs named numeric columns."
        )
    bad = [f"{c.name} ({c.type})" for c in signature.columns if c.type not in NUMERIC_TYPES]
    if bad:
        raise ConversionUnsupported(
            f"The {framework} ONNX twin takes numeric columns only; {', '.join(bad[:5])} "
            "would need an encoder in the graph. The native runtime keeps working."
        )
    return len(signature.columns)


class GraphBuilder:
    """Collects nodes and constants for graphs built (or extended) with ``onnx.helper``."""

    def __init__(self, float_dtype: Any = np.float32) -> None:
        self.onnx = require("onnx", "onnx")
        self.helper = self.onnx.helper
        self.float_dtype = np.dtype(float_dtype)
        self.nodes: list[Any] = []
        self.inits: list[Any] = []

    def node(self, op: str, inputs: list[str], outputs: list[str], **attrs: Any) -> None:
        self.nodes.append(self.helper.make_node(op, inputs, outputs, **attrs))

    def const(self, name: str, value: Any, dtype: Any = None) -> str:
        arr = np.asarray(value, dtype=dtype or self.float_dtype)
        self.inits.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def float_type(self) -> int:
        return int(self.onnx.helper.np_dtype_to_tensor_dtype(self.float_dtype))

    def probabilities(self, score: str, out: str, link: str, k: int) -> int:
        """Scores (n, k) -> probabilities; returns their number of columns.

        ``softmax``; ``sigmoid`` with k == 1 gives [1-p, p]; with k > 1 each class its own sigmoid,
        not normalised (one-vs-rest, as the frameworks return it).
        """
        if link == "softmax":
            self.node("Softmax", [score], [out], axis=1)
            return k
        if link != "sigmoid":
            raise ValueError(f"link {link!r} does not give probabilities")
        if k > 1:
            self.node("Sigmoid", [score], [out])
            return k
        self.node("Sigmoid", [score], ["p1"])
        self.node("Sub", [self.const("one", 1.0), "p1"], ["p0"])
        self.node("Concat", ["p0", "p1"], [out], axis=1)
        return 2

    def label(self, proba: str, classes: list[Any] | None) -> list[Any]:
        """``label`` = classes[argmax(proba)] (the argmax itself without classes); its value infos.

        Labels that are neither ints nor strings (floats, booleans) get no label output: the onnx
        flavor maps the argmax through ``classes`` itself, which keeps their Python type.
        """
        tp = self.onnx.TensorProto
        if classes is None:
            self.node("ArgMax", [proba], ["label"], axis=1, keepdims=0)
            return [self.helper.make_tensor_value_info("label", tp.INT64, [None])]
        if all(isinstance(c, int) and not isinstance(c, bool) for c in classes):
            self.const("classes", classes, np.int64)
            elem = tp.INT64
        elif all(isinstance(c, str) for c in classes):
            encoded = [c.encode() for c in classes]
            self.inits.append(self.helper.make_tensor("classes", tp.STRING, [len(classes)], encoded))
            elem = tp.STRING
        else:
            return []
        self.node("ArgMax", [proba], ["class_index"], axis=1, keepdims=0)
        self.node("Gather", ["classes", "class_index"], ["label"], axis=0)
        return [self.helper.make_tensor_value_info("label", elem, [None])]


def ensemble_model(
    forest: Forest,
    *,
    task: str | None,
    link: str,
    scale: float = 1.0,
    classes: list[Any] | None = None,
    missing: float | None = None,
    name: str = "trees",
) -> Any:
    """The ModelProto: ``input`` (n, n_features) -> ``label`` + ``probabilities``, or ``variable``.

    ``scale`` multiplies the summed scores before the link (LightGBM's sigmoid parameter, the
    1/iterations of its random-forest mode); ``missing`` is a value the model treats as NaN.
    """
    if link not in LINKS:
        raise ValueError(f"unknown link {link!r}")
    g = GraphBuilder()
    helper, tp = g.helper, g.onnx.TensorProto
    x = INPUT
    if missing is not None and not math.isnan(missing):
        # The model treats this value like NaN (XGBoost's `missing=`): make it NaN first.
        in_dtype = np.float64 if forest.double else np.float32
        g.node("Equal", [x, g.const("missing_value", missing, in_dtype)], ["is_missing"])
        g.node("Where", ["is_missing", g.const("nan", np.nan, in_dtype), x], ["input_nan"])
        x = "input_nan"
    g.nodes.append(_ensemble_node(g, forest, x, "scores"))
    score = "scores"
    if scale != 1.0:
        g.node("Mul", [score, g.const("scale", scale)], ["scaled"])
        score = "scaled"
    k = forest.n_targets
    if task == "classifier":
        n_proba = g.probabilities(score, "probabilities", link, k)
        outputs = [
            *g.label("probabilities", classes),
            helper.make_tensor_value_info("probabilities", tp.FLOAT, [None, n_proba]),
        ]
    else:
        ops = {"identity": "Identity", "exp": "Exp", "sigmoid": "Sigmoid", "softplus": "Softplus"}
        if link == "signed_square":  # LightGBM's `sqrt` option: sign(x) * x^2
            g.node("Abs", [score], ["abs_score"])
            g.node("Mul", ["abs_score", score], ["variable"])
        elif link in ops:
            g.node(ops[link], [score], ["variable"])
        else:
            raise ValueError(f"link {link!r} is not a regression link")
        outputs = [helper.make_tensor_value_info("variable", tp.FLOAT, [None, k])]
    in_type = tp.DOUBLE if forest.double else tp.FLOAT
    inputs = [helper.make_tensor_value_info(INPUT, in_type, [None, forest.n_features])]
    graph = helper.make_graph(g.nodes, name, inputs, outputs, g.inits)
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=IR_VERSION, producer_name="modelport")
    g.onnx.checker.check_model(model)
    return model


def _ensemble_node(g: GraphBuilder, forest: Forest, x: str, out: str) -> Any:
    attrs: dict[str, Any] = {k: v for k, v in forest.nodes.items() if k != "nodes_values"}
    attrs.update({k: v for k, v in forest.leaves.items() if k != "target_weights"})
    values, weights = forest.nodes["nodes_values"], forest.leaves["target_weights"]
    base = forest.base_values
    if forest.double:
        tensor = g.onnx.numpy_helper.from_array
        attrs["nodes_values_as_tensor"] = tensor(np.asarray(values, np.float64))
        attrs["target_weights_as_tensor"] = tensor(np.asarray(weights, np.float64))
        if base is not None:
            attrs["base_values_as_tensor"] = tensor(np.asarray(base, np.float64))
    else:
        attrs["nodes_values"] = np.asarray(values, np.float32).tolist()
        attrs["target_weights"] = np.asarray(weights, np.float32).tolist()
        if base is not None:
            attrs["base_values"] = np.asarray(base, np.float32).tolist()
    return g.helper.make_node(
        "TreeEnsembleRegressor",
        [x],
        [out],
        domain="ai.onnx.ml",
        n_targets=forest.n_targets,
        aggregate_function="SUM",
        post_transform="NONE",
        **attrs,
    )
