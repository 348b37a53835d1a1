"""LightGBM -> ONNX from ``Booster.dump_model()``, with splits and leaf sums kept in double.

LightGBM compares double features with double thresholds (``x <= t``) and sums leaves in double;
onnxmltools' converter rounds both to float32, so rows near a threshold can take the other branch.
Here the thresholds and leaf values go into ``*_as_tensor`` (float64) attributes and the input is
float64; only the summed score leaves the ensemble as float32. Missing values follow LightGBM's
rules per split: ``NaN`` -> the default child, ``None`` -> NaN is treated as 0, ``Zero`` -> 0 and
NaN take the default child (converted when that is where ``0 <= t`` goes anyway).
"""

from __future__ import annotations

from typing import Any

from modelport.flavors.base import ConversionUnsupported, Converted
from modelport.flavors.trees_onnx import Forest, ensemble_model, numeric_columns
from modelport.schema import Signature

_IDENTITY = (
    "regression",
    "regression_l1",
    "huber",
    "fair",
    "quantile",
    "mape",
    "lambdarank",
    "rank_xendcg",
)
_REGRESSION_LINK = {
    **dict.fromkeys(_IDENTITY, "identity"),
    **dict.fromkeys(("poisson", "gamma", "tweedie"), "exp"),
    "cross_entropy": "sigmoid",
    "cross_entropy_lambda": "softplus",
}


def convert(raw: Any, signature: Signature, info: dict[str, Any]) -> Converted:
    if info.get("input") == "pandas" or getattr(raw, "pandas_categorical", None):
        raise ConversionUnsupported(
            "This LightGBM model was trained on pandas category columns (pandas_categorical): its "
            "ONNX twin would need the category-to-code mapping in the graph, which is not built. "
            "The native runtime keeps working."
        )
    n_columns = numeric_columns(signature, "LightGBM")
    dump = raw.dump_model()  # the iterations predict() uses: up to best_iteration if there is one
    n_features = int(dump["max_feature_idx"]) + 1
    if n_features != n_columns:
        raise ConversionUnsupported(
            f"The LightGBM model has {n_features} features but the signature has {n_columns} "
            "columns; the ONNX twin needs them to match one to one."
        )
    name, *tokens = str(dump["objective"]).split()
    options = dict(t.split(":", 1) for t in tokens if ":" in t)
    task = info.get("task")
    link, scale = _link(name, task, "sqrt" in tokens, options)
    k = int(dump["num_tree_per_iteration"])
    trees = dump["tree_info"]
    if dump.get("average_output"):  # random-forest mode averages the iterations
        scale /= max(len(trees) // k, 1)
    forest = Forest(n_features=n_columns, n_targets=k, double=True)
    for t, tree in enumerate(trees):
        _add_tree(forest, t, tree["tree_structure"], t % k)
    classes = info.get("classes") if task == "classifier" else None
    model = ensemble_model(forest, task=task, link=link, scale=scale, classes=classes, name="lightgbm")
    notes = [
        "thresholds, leaf values and inputs kept in float64 as LightGBM uses them; the summed score "
        "and the outputs are float32 (~1e-7 relative)",
    ]
    return Converted(model=model, task=task, classes=classes, notes=notes)


def _link(name: str, task: str | None, sqrt: bool, options: dict[str, str]) -> tuple[str, float]:
    if task == "classifier" and name in ("binary", "multiclassova"):
        return "sigmoid", float(options.get("sigmoid", 1.0))
    if task == "classifier" and name == "multiclass":
        return "softmax", 1.0
    if task == "regressor" and name in _REGRESSION_LINK:
        if sqrt:  # trained on sqrt(label): predictions are squared back (keeping the sign)
            return "signed_square", 1.0
        return _REGRESSION_LINK[name], 1.0
    raise ConversionUnsupported(
        f"LightGBM objective '{name}' ({task or 'no task'}) has no ONNX conversion here; "
        "the native runtime keeps working."
    )


def _add_tree(forest: Forest, t: int, root: dict[str, Any], target: int) -> None:
    stack = [root]
    ids = {id(root): 0}
    while stack:
        node = stack.pop()
        nid = ids[id(node)]
        if "leaf_coeff" in node:
            raise ConversionUnsupported(
                "This LightGBM model has linear trees (linear_tree=True), which the ONNX tree "
                "operator cannot express; the native runtime keeps working."
            )
        if "left_child" not in node:
            forest.leaf(t, nid, target, float(node.get("leaf_value", 0.0)))
            continue
        if node["decision_type"] != "<=":
            raise ConversionUnsupported(
                "This LightGBM model has categorical splits (categorical_feature=...), which are not "
                "converted here; the native runtime keeps working."
            )
        threshold = float(node["threshold"])
        default_left = bool(node["default_left"])
        missing = node.get("missing_type", "None")
        if missing == "NaN":
            nan_left = default_left
        elif missing == "None":  # LightGBM turns NaN into 0 before comparing
            nan_left = threshold >= 0.0
        elif default_left == (threshold >= 0.0):  # "Zero": 0 and NaN take the default child
            nan_left = default_left
        else:
            raise ConversionUnsupported(
                "This LightGBM model treats zeros as missing (zero_as_missing) at a split where "
                "that changes the branch; the ONNX tree operator cannot express it. The native "
                "runtime keeps working."
            )
        left, right = node["left_child"], node["right_child"]
        ids[id(left)], ids[id(right)] = len(ids), len(ids) + 1
        forest.split(
            t,
            nid,
            int(node["split_feature"]),
            "BRANCH_LEQ",
            threshold,
            ids[id(left)],
            ids[id(right)],
            nan_left,
        )
        stack += [right, left]
