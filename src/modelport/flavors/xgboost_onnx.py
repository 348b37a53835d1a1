"""XGBoost -> ONNX, read from the model's own JSON (``save_raw("json")``), not from a text dump.

Why not onnxmltools' converter: it guesses a raw Booster's task from tree covers, cuts
``best_iteration`` by tree count (wrong for forests and multi-target models), maps classes to
trees by position and has no ``reg:logistic`` or dart weights. The JSON model states all of it:
split values as float32 (XGBoost compares float32 features with ``x < split``, NaN -> the default
child), ``tree_info`` (class/target of each tree), ``iteration_indptr``, dart's ``weight_drop``
and ``base_score``. The graph compares in float32 exactly like XGBoost, so splits agree exactly;
only the order of the float32 leaf sum differs (about 1e-7 relative).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from modelport.flavors.base import ConversionUnsupported, Converted, require
from modelport.flavors.trees_onnx import Forest, ensemble_model, numeric_columns
from modelport.schema import Signature

# How ``base_score`` (stored in output space) becomes the margin the trees add to, and how the
# summed margin becomes a prediction, per objective.
_LOGIT = ("binary:logistic", "reg:logistic")
_LOG = ("count:poisson", "reg:gamma", "reg:tweedie", "survival:cox", "survival:aft")
_IDENTITY = (
    "reg:squarederror",
    "reg:squaredlogerror",
    "reg:pseudohubererror",
    "reg:absoluteerror",
    "reg:quantileerror",
    "rank:pairwise",
    "rank:ndcg",
    "rank:map",
)
_REGRESSION_LINK = {**dict.fromkeys(_IDENTITY, "identity"), **dict.fromkeys(_LOG, "exp")}
_REGRESSION_LINK["reg:logistic"] = "sigmoid"


def convert(raw: Any, signature: Signature, info: dict[str, Any]) -> Converted:
    xgb = require("xgboost", "xgboost")
    is_booster = isinstance(raw, xgb.Booster)
    booster = raw if is_booster else raw.get_booster()
    if info.get("categorical") or "c" in (booster.feature_types or []):
        raise ConversionUnsupported(
            "This XGBoost model splits on categorical features (enable_categorical): its ONNX twin "
            "would need the category-to-code mapping in the graph, which is not built. The native "
            "runtime keeps working."
        )
    n_columns = numeric_columns(signature, "XGBoost")
    learner = json.loads(bytes(booster.save_raw(raw_format="json")))["learner"]
    objective = str(learner["objective"]["name"])
    gbm = learner["gradient_booster"]
    if gbm["name"] == "gbtree":
        trees_model, drop = gbm["model"], None
    elif gbm["name"] == "dart":
        trees_model, drop = gbm["gbtree"]["model"], gbm.get("weight_drop")
    else:
        raise ConversionUnsupported(
            f"XGBoost booster '{gbm['name']}' has no ONNX converter here (only tree boosters); "
            "the native runtime keeps working."
        )
    params = learner["learner_model_param"]
    if int(params["num_feature"]) != n_columns:
        raise ConversionUnsupported(
            f"The XGBoost model has {params['num_feature']} features but the signature has "
            f"{n_columns} columns; the ONNX twin needs them to match one to one."
        )
    task = info.get("task")
    link = _link(objective, task, is_booster)
    n_class, n_target = int(params.get("num_class", 0)), int(params.get("num_target", 1))
    if task == "classifier" and n_target > 1:
        raise ConversionUnsupported(
            "Multi-label XGBoost classifiers (one binary output per label) have no ONNX conversion "
            "here; the native runtime keeps working."
        )
    n_out = max(n_class, n_target, 1)
    trees = trees_model["trees"]
    n_trees = len(trees)
    best = None if is_booster else booster.attr("best_iteration")
    if best is not None:  # the scikit-learn wrapper predicts with the best iteration only
        indptr = trees_model.get("iteration_indptr")
        per_round = len(trees) // max(booster.num_boosted_rounds(), 1)
        n_trees = int(indptr[int(best) + 1]) if indptr else (int(best) + 1) * per_round
    forest = Forest(n_features=n_columns, n_targets=n_out, double=False)
    forest.base_values = _margin_base(params["base_score"], objective, n_out)
    tree_info = trees_model["tree_info"]
    for t in range(n_trees):
        weight = np.float32(drop[t]) if drop else None
        _add_tree(forest, t, trees[t], int(tree_info[t]) if n_out > 1 else 0, weight)
    missing = getattr(raw, "missing", np.nan)
    classes = info.get("classes") if task == "classifier" else None
    model = ensemble_model(
        forest,
        task=task,
        link=link,
        classes=classes,
        missing=None if missing is None else float(missing),
        name="xgboost",
    )
    notes = [
        "tree splits and inputs in float32, as XGBoost itself compares them (splits agree exactly); "
        "leaf values are summed in float32 in another order (~1e-7 relative)",
    ]
    if best is not None:
        notes.append(f"uses the {int(best) + 1} boosting rounds up to best_iteration, as predict() does")
    if drop:
        notes.append("dart tree weights applied")
    return Converted(model=model, task=task, classes=classes, notes=notes)


def _link(objective: str, task: str | None, is_booster: bool) -> str:
    if task == "classifier":
        # The wrapper's predict_proba is only meaningful for these; a raw Booster's probabilities
        # are rebuilt from the margin (see the flavor), so binary:logitraw works there too.
        binary = ("binary:logistic", "binary:logitraw") if is_booster else ("binary:logistic",)
        if objective in binary:
            return "sigmoid"
        if objective in ("multi:softprob", "multi:softmax"):
            return "softmax"
    elif task == "regressor" and objective in _REGRESSION_LINK:
        return _REGRESSION_LINK[objective]
    raise ConversionUnsupported(
        f"XGBoost objective '{objective}' ({task or 'no task'}) has no ONNX conversion here; "
        "the native runtime keeps working."
    )


def _margin_base(base_score: str, objective: str, n_out: int) -> list[float]:
    """XGBoost stores ``base_score`` in output space ("[5E-1]"); the trees add to its margin."""
    values = np.asarray(json.loads(base_score) if base_score.startswith("[") else [base_score], np.float32)
    if objective in _LOGIT:
        values = -np.log(np.float32(1.0) / values - np.float32(1.0))
    elif objective in _LOG:
        values = np.log(values)
    out = [float(v) for v in values]
    return out * n_out if len(out) == 1 and n_out > 1 else out


def _add_tree(forest: Forest, t: int, tree: dict[str, Any], target: int, weight: Any) -> None:
    if int(tree["tree_param"].get("size_leaf_vector", "1")) > 1:
        raise ConversionUnsupported(
            "This XGBoost model has vector leaves (multi_strategy='multi_output_tree'), which the "
            "ONNX tree operator cannot express; the native runtime keeps working."
        )
    if any(tree.get("split_type") or ()):
        raise ConversionUnsupported(
            "This XGBoost model has categorical splits; the native runtime keeps working."
        )
    left, right = tree["left_children"], tree["right_children"]
    feature, cond, default_left = tree["split_indices"], tree["split_conditions"], tree["default_left"]
    stack = [0]  # walk from the root: deleted (pruned) nodes stay in the arrays but are unreachable
    while stack:
        i = stack.pop()
        if left[i] == -1:
            value = np.float32(cond[i])  # a leaf keeps its value in split_conditions
            forest.leaf(t, i, target, float(value if weight is None else value * weight))
            continue
        if math.isnan(cond[i]):
            raise ConversionUnsupported(f"XGBoost tree {t} has a NaN split value.")
        forest.split(
            t, i, int(feature[i]), "BRANCH_LT", cond[i], int(left[i]), int(right[i]), bool(default_left[i])
        )
        stack += [int(right[i]), int(left[i])]
