"""skl2onnx, made exact: scikit-learn models to ONNX graphs that decide as scikit-learn does.

skl2onnx's defaults lose precision, drop columns or fail with current releases, so every
conversion adjusts them for that call only (per-call custom converters, nothing registered):

* Tree ensembles become ai.onnx.ml ``TreeEnsemble*`` opset 3 with thresholds, leaf weights and
  base values as double tensors (``*_as_tensor``). Thresholds of scikit-learn trees (which compare
  ``float32(x) <= t``) are recomputed so that double inputs take the same branches, NaN follows
  each split's fitted ``missing_go_to_left``, and +inf thresholds (NaN-only splits) no longer
  hang skl2onnx. The ensembles' float scores are cast to double where the graph declares double.
* Attribute lists holding bools / numpy scalars (HistGradientBoosting) become plain ints.
* A numeric ``SimpleImputer`` runs in double, with its ``add_indicator`` columns (skl2onnx rounds
  the statistics to float32 and drops the indicator).
* Text: a missing string is ``""`` in the graph (string tensors cannot hold NaN), so string
  imputers look for ``""`` and a one-hot category learned from NaN becomes ``""``.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from modelport.flavors.base import ConversionUnsupported

ONNX_OPSET = 21
ML_OPSET = 3  # the TreeEnsemble* version with double (*_as_tensor) attributes
MISSING_TEXT = ""
_TREE_OPS = ("TreeEnsembleClassifier", "TreeEnsembleRegressor")
_DOUBLE_ATTRS = ("nodes_values", "nodes_hitrates", "base_values", "class_weights", "target_weights")
# ONNX-ML ops whose outputs are float whatever their input; cast where the graph declares double.
_FLOAT_OPS = ("OneHotEncoder", "FeatureVectorizer", "Scaler", "LinearClassifier", "LinearRegressor")
_F32_MAX = float(np.finfo(np.float32).max)
Converters = dict[type, Callable[..., Any]]


def takes_columns(raw: Any) -> bool:
    """Whether a ColumnTransformer takes the frame (then skl2onnx takes one input per column)."""
    from sklearn.compose import ColumnTransformer

    return isinstance(_end_step(raw, 0), ColumnTransformer)


def convert_graph(raw: Any, inputs: list[tuple[str, Any]], classifier: bool) -> tuple[Any, list[str]]:
    """``(ModelProto, notes)`` for a copy of ``raw`` (left unchanged), given skl2onnx ``inputs``;
    call :func:`check_convertible` first for a clear error on parts that cannot convert."""
    from skl2onnx import convert_sklearn

    model = copy.deepcopy(raw)
    for _, est in _walk(model):  # +inf thresholds hang skl2onnx; _float32_switch restores them
        for tree in _fitted_trees(est) or ():
            tree.threshold[tree.threshold >= _F32_MAX] = _F32_MAX  # a writable view of the copy
    notes = _text_missing_as_empty(model)
    converters, shapes = _custom_converters(model)
    if any(_fitted_trees(e) is not None or hasattr(e, "_predictors") for _, e in _walk(model)):
        notes.append("tree thresholds, leaf values and base values kept in double")
    try:
        with np.errstate(all="ignore"):  # skl2onnx's float32 threshold search overflows harmlessly
            proto = convert_sklearn(
                model,
                initial_types=inputs,
                target_opset={"": ONNX_OPSET, "ai.onnx.ml": ML_OPSET},
                options={id(_end_step(model, -1)): {"zipmap": False}} if classifier else None,
                custom_conversion_functions=converters,
                custom_shape_calculators=shapes,
            )
    except ConversionUnsupported:
        raise
    except Exception as exc:
        raise ConversionUnsupported(
            f"skl2onnx cannot convert {_qualname(raw)}: {exc}. The native runtime keeps working."
        ) from exc
    return proto, notes


# --- what the model is made of ------------------------------------------------------------------


def _qualname(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _walk(est: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every estimator inside Pipelines, ColumnTransformers and FeatureUnions, with its step path."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import FeatureUnion, Pipeline

    yield path, est
    if isinstance(est, Pipeline):
        children = list(est.steps)
    elif isinstance(est, ColumnTransformer):
        children = [(name, step) for name, step, _ in getattr(est, "transformers_", est.transformers)]
    elif isinstance(est, FeatureUnion):
        children = list(est.transformer_list)
    else:
        return
    for name, child in children:
        if child is not None and not isinstance(child, str):
            yield from _walk(child, (*path, name))


def check_convertible(raw: Any) -> None:
    """Raise :class:`ConversionUnsupported` naming the first step that cannot be converted."""
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    for path, est in _walk(raw):
        step = f"step '{'/'.join(path)}' " if path else ""
        if isinstance(est, (Pipeline, ColumnTransformer, FeatureUnion)):
            continue
        if type(est) not in sklearn_operator_name_map and not hasattr(est, "onnx_converter"):
            raise ConversionUnsupported(
                f"No ONNX converter for {step}({_qualname(est)}); the native runtime keeps working."
            )
        if getattr(est, "is_categorical_", None) is not None and np.any(est.is_categorical_):
            raise ConversionUnsupported(
                f"{step}({_qualname(est)}) uses native categorical splits, which skl2onnx cannot "
                "express; one-hot encode those columns instead. The native runtime keeps working."
            )
        if isinstance(est, OrdinalEncoder) and any(_has_null(c) for c in est.categories_):
            raise ConversionUnsupported(
                f"{step}({_qualname(est)}) learned missing values as a category; impute them first "
                "to convert it. The native runtime keeps working."
            )


def _end_step(est: Any, index: int) -> Any:
    """The first (``index=0``) or last (``-1``) estimator, through nested Pipelines."""
    from sklearn.pipeline import Pipeline

    while isinstance(est, Pipeline):
        est = est.steps[index][1]
    return est


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _has_null(categories: np.ndarray) -> bool:
    return categories.dtype == object and any(_is_null(v) for v in categories)


def _text_missing_as_empty(model: Any) -> list[str]:
    """In the copy: string imputers look for '' and one-hot NaN categories become ''."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    notes: list[str] = []
    for path, est in _walk(model):
        if isinstance(est, SimpleImputer) and np.asarray(est.statistics_).dtype == object:
            if _is_null(est.missing_values):
                est.missing_values = MISSING_TEXT
        elif isinstance(est, OneHotEncoder) and any(_has_null(c) for c in est.categories_):
            est.categories_ = [
                np.array([MISSING_TEXT if _is_null(v) else v for v in c], dtype=object) if _has_null(c) else c
                for c in est.categories_
            ]
            notes.append(f"{'/'.join(path) or 'OneHotEncoder'}: the category learned from NaN is ''")
    return notes


# --- per-call converters --------------------------------------------------------------------------


def _custom_converters(model: Any) -> tuple[Converters, Converters]:
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common._registration import get_converter, get_shape_calculator
    from sklearn.impute import SimpleImputer

    convs: Converters = {}
    shapes: Converters = {}
    for _, est in _walk(model):
        kind = type(est)
        alias = sklearn_operator_name_map.get(kind)
        if alias is None or kind in convs:
            continue
        original = get_converter(alias)
        if isinstance(est, SimpleImputer):
            original = _imputer_converter(original)
            shapes[kind] = _imputer_shape(get_shape_calculator(alias))
        convs[kind] = _precise(original)
    return convs, shapes


def _plain(value: Any) -> Any:
    """Attribute values onnx.helper accepts: numpy scalars and bools (in lists too) as Python ints."""
    if isinstance(value, (bool, np.bool_, np.integer)):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, (list, tuple)) and any(isinstance(v, (bool, np.generic)) for v in value):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray) and value.dtype == np.bool_:
        return value.astype(np.int64)
    return value


def _precise(original: Callable[..., Any]) -> Callable[..., None]:
    """Run a skl2onnx converter with exact double trees, plain-int attributes and double outputs."""
    function = getattr(original, "_fct", original)  # skl2onnx wraps it in a RegisteredConverter

    def convert(scope: Any, operator: Any, container: Any) -> None:
        from onnx import TensorProto, numpy_helper
        from skl2onnx.common.data_types import DoubleTensorType

        double = isinstance(operator.inputs[0].type, DoubleTensorType)
        trees = _fitted_trees(operator.raw_operator)
        loss = getattr(operator.raw_operator, "_loss", None)  # HistGradientBoosting's own loss
        log_link = (
            type(getattr(loss, "link", None)).__name__ == "LogLink"
        )  # poisson, gamma: skl2onnx drops it
        want_double = {v.full_name for v in operator.outputs if isinstance(v.type, DoubleTensorType)}
        floats: set[str] = set()  # outputs of float-only ONNX-ML ops, and what is computed from them
        add = container.add_node

        def add_node(op_type: str, inputs: Any, outputs: Any, op_domain: str = "", **kw: Any) -> None:
            ins = [inputs] if isinstance(inputs, str) else list(inputs)
            outs = [outputs] if isinstance(outputs, str) else list(outputs)
            attrs = {k: _plain(v) for k, v in kw.items()}
            if op_type in _TREE_OPS and op_domain == "ai.onnx.ml":
                if trees is not None:
                    _exact_splits(attrs, trees, double)
                if double:
                    attrs["op_version"] = ML_OPSET
                    for key in _DOUBLE_ATTRS:
                        if key in attrs:
                            values = np.asarray(attrs.pop(key), dtype=np.float64).ravel()
                            attrs[f"{key}_as_tensor"] = numpy_helper.from_array(values)
                floats.add(outs[1] if op_type == "TreeEnsembleClassifier" else outs[0])
                if log_link and op_type == "TreeEnsembleRegressor":
                    raw = scope.get_unique_variable_name("raw_prediction")
                    floats.add(raw)
                    add(op_type, ins, [raw], op_domain=op_domain, **attrs)
                    return add_node("Exp", [raw], outs)
            elif (op_type in _FLOAT_OPS and op_domain == "ai.onnx.ml") or floats.intersection(ins):
                floats.update(outs)
            cast = {o: scope.get_unique_variable_name(f"{o}_float") for o in outs if o in floats}
            cast = {o: tmp for o, tmp in cast.items() if o in want_double}
            add(op_type, ins, [cast.get(o, o) for o in outs], op_domain=op_domain, **attrs)
            for out, tmp in cast.items():
                add("Cast", [tmp], [out], to=TensorProto.DOUBLE, name=scope.get_unique_operator_name("Cast"))

        container.add_node = add_node  # this container only, for this converter call
        try:
            if "op_version" in inspect.signature(function).parameters:
                function(scope, operator, container, op_version=ML_OPSET if double else 1)
            else:
                function(scope, operator, container)
        finally:
            del container.add_node

    return convert


_ENSEMBLES = {
    f"{kind}{task}"
    for kind in ("RandomForest", "ExtraTrees", "GradientBoosting")
    for task in ("Classifier", "Regressor")
}


def _fitted_trees(est: Any) -> list[Any] | None:
    """scikit-learn ``Tree`` objects in the order skl2onnx numbers them (``nodes_treeids``)."""
    from sklearn.tree import BaseDecisionTree

    if getattr(est, "n_outputs_", 1) != 1:
        return None
    if isinstance(est, BaseDecisionTree):
        return [est.tree_]
    if type(est).__name__ in _ENSEMBLES and type(est).__module__.startswith("sklearn.ensemble"):
        return [e.tree_ for e in np.ravel(np.asarray(est.estimators_, dtype=object))]
    return None


def _float32_switch(t: np.ndarray) -> np.ndarray:
    """The largest double ``w`` with ``x <= w`` exactly when ``float32(x) <= t`` (how scikit-learn's
    trees compare), ties rounding to even as the float32 cast does; +inf stays +inf."""
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(over="ignore"):
        f = t.astype(np.float32)
    f = np.where(f.astype(np.float64) > t, np.nextafter(f, np.float32(-np.inf)), f).astype(np.float32)
    g = np.nextafter(f, np.float32(np.inf)).astype(np.float64)
    mid = (f.astype(np.float64) + np.where(np.isinf(g), 2.0**128, g)) / 2  # exact in double
    w = np.where((f.view(np.uint32) & 1) == 0, mid, np.nextafter(mid, -np.inf))
    return np.where(t >= _F32_MAX, np.inf, w)


def _exact_splits(attrs: dict[str, Any], trees: list[Any], double: bool) -> None:
    """NaN goes where scikit-learn sends it; for double inputs, thresholds from ``_float32_switch``."""
    offsets = np.cumsum([0] + [tree.node_count for tree in trees])[:-1]
    rows = offsets[np.asarray(attrs["nodes_treeids"], dtype=np.int64)]
    rows = rows + np.asarray(attrs["nodes_nodeids"], dtype=np.int64)
    branch = np.asarray(attrs["nodes_modes"]) != "LEAF"
    left = np.concatenate([np.asarray(tree.missing_go_to_left, dtype=np.int64) for tree in trees])
    attrs["nodes_missing_value_tracks_true"] = np.where(branch, left[rows], 0).tolist()
    if double:
        thresholds = np.concatenate([tree.threshold for tree in trees])[rows]
        attrs["nodes_values"] = np.where(branch, _float32_switch(thresholds), 0.0)


def _nan_imputer(operator: Any) -> tuple[np.ndarray, np.ndarray, list[int]] | None:
    """(kept columns, their fill values, indicator columns) of a numeric NaN imputer, else None."""
    from skl2onnx.common.data_types import StringTensorType

    op = operator.raw_operator
    if isinstance(operator.inputs[0].type, StringTensorType) or not _is_null(op.missing_values):
        if op.add_indicator:
            raise ConversionUnsupported("SimpleImputer(add_indicator=True) converts only for numeric NaN.")
        return None
    stats = np.asarray(op.statistics_, dtype=np.float64)
    keep = np.arange(stats.size) if op.keep_empty_features else np.flatnonzero(~np.isnan(stats))
    features = [int(f) for f in op.indicator_.features_] if op.add_indicator else []
    return keep, np.nan_to_num(stats[keep]), features


def _imputer_shape(original: Callable[..., Any]) -> Callable[..., None]:
    def calc(operator: Any) -> None:
        from skl2onnx.common.data_types import DoubleTensorType

        plan = _nan_imputer(operator)
        if plan is None:
            return original(operator)
        n = operator.inputs[0].get_first_dimension()
        operator.outputs[0].type = DoubleTensorType([n, len(plan[0]) + len(plan[2])])

    return calc


def _imputer_converter(original: Callable[..., Any]) -> Callable[..., None]:
    def convert(scope: Any, operator: Any, container: Any) -> None:
        from onnx import TensorProto
        from skl2onnx.common.data_types import DoubleTensorType

        plan = _nan_imputer(operator)
        if plan is None:
            return original(scope, operator, container)
        keep, stats, features = plan

        def node(op_type: str, inputs: list[str], base: str, **attrs: Any) -> str:
            out = str(scope.get_unique_variable_name(base))
            container.add_node(op_type, inputs, [out], **attrs)
            return out

        def const(base: str, value: np.ndarray, kind: int) -> str:
            var = str(scope.get_unique_variable_name(base))
            container.add_initializer(var, kind, list(value.shape), value.ravel().tolist())
            return var

        parts = [
            v.full_name
            if isinstance(v.type, DoubleTensorType)
            else node("Cast", [v.full_name], "imp_cast", to=TensorProto.DOUBLE)
            for v in operator.inputs
        ]
        x = parts[0] if len(parts) == 1 else node("Concat", parts, "imp_concat", axis=1)
        isnan = node("IsNaN", [x], "imp_isnan")
        kept, kept_nan = x, isnan
        if len(keep) != np.size(operator.raw_operator.statistics_):
            idx = const("imp_keep", keep.astype(np.int64), TensorProto.INT64)
            kept = node("Gather", [x, idx], "imp_kept", axis=1)
            kept_nan = node("Gather", [isnan, idx], "imp_kept_nan", axis=1)
        fill = const("imp_stats", stats.reshape(1, -1), TensorProto.DOUBLE)
        out = operator.outputs[0].full_name
        if not features:
            container.add_node("Where", [kept_nan, fill, kept], [out])
            return None
        filled = node("Where", [kept_nan, fill, kept], "imp_filled")
        idx = const("imp_features", np.asarray(features, dtype=np.int64), TensorProto.INT64)
        flags = node(
            "Cast", [node("Gather", [isnan, idx], "imp_mask", axis=1)], "imp_flags", to=TensorProto.DOUBLE
        )
        container.add_node("Concat", [filled, flags], [out], axis=1)
        return None

    return convert
