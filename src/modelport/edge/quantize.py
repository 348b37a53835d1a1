"""Smaller models for the edge: int8 (dynamic or static) and fp16, each gated on the reference sample.

They pay only for graphs whose size is in weight tensors (MatMul/Gemm/Conv: neural networks);
tree ensembles keep their thresholds in fp32 (int8 cannot shrink them and onnxruntime's ML ops
have no fp16 kernels), and the bundle says so. A reduced model is accepted only if, on the
reference sample, classifier labels agree with the native model on ≥ 99 % of rows (≤ 1 point of
accuracy) or regression outputs stay within 1 % mean relative error.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

import modelport.flavors as flavors
from modelport.errors import ModelportError
from modelport.predictor import Predictor
from modelport.registry import Registry
from modelport.schema import Batch, prepare

MODES = ("none", "int8", "int8-static", "fp16")
_WEIGHT_OPS = {"MatMul", "Gemm", "Conv", "ConvTranspose", "LSTM", "GRU", "Attention"}
_CALIBRATION_ROWS = 512


def reduce_model(
    registry: Registry,
    ref: str,
    model_file: Path,
    info: dict[str, Any],
    mode: str,
    force: bool,
    labels: Any = None,
) -> dict[str, Any]:
    """Replace ``model_file`` by its ``mode`` version if it passes the gate; returns what happened.

    ``labels`` (true outcomes of the reference sample's rows, in order) add the accuracy (or mean
    absolute error) of both models to the report, and the gate then judges the accuracy change.
    """
    import onnx

    ops = {n.op_type for n in onnx.load(str(model_file), load_external_data=False).graph.node}
    if not ops & _WEIGHT_OPS:
        reason = (
            f"{mode} skipped: the graph has no MatMul/Gemm/Conv weights (e.g. a tree ensemble, whose "
            "thresholds int8 cannot shrink and fp16 cannot run); kept fp32."
        )
        return {"mode": mode, "applied": False, "reason": reason}
    mv = registry.get(ref)
    rows = registry.reference_sample(mv)
    if rows is None:
        raise ModelportError(f"'{ref}' has no reference sample to calibrate and check {mode} on.")
    batch = prepare(rows, mv.signature)
    reduced = model_file.with_name(f"model.{mode}.onnx")
    if mode == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(model_file), str(reduced), weight_type=QuantType.QInt8)
    elif mode == "int8-static":
        _quantize_static(model_file, reduced, info, batch)
    else:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        onnx.save_model(
            convert_float_to_float16(onnx.load(str(model_file)), keep_io_types=True), str(reduced)
        )
    if labels is not None and len(labels) != batch.n_rows:
        raise ModelportError(f"Got {len(labels):,} labels for {batch.n_rows:,} reference rows.")
    verdict = _gate(registry.load(mv, runtime="native"), reduced, info, batch, labels)
    if not verdict["passed"] and not force:
        reduced.unlink()
        raise ModelportError(
            f"{mode} changes the predictions of '{ref}' too much ({verdict['reason']}); not exported. "
            "Export with --quantize none, or --force."
        )
    os.replace(reduced, model_file)
    return {"mode": mode, "applied": True, **verdict}


def _quantize_static(source: Path, target: Path, info: dict[str, Any], batch: Batch) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    loaded = flavors.get("onnx").load(source.parent, {**info, "file": source.name})
    n = min(batch.n_rows, _CALIBRATION_ROWS)
    chunks = [batch.rows(i, min(i + 64, n)) for i in range(0, n, 64)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds = iter([loaded._feeds(c) for c in chunks])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._feeds, None)

    quantize_static(
        str(source), str(target), Reader(), quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
    )  # fmt: skip


def _gate(
    native: Predictor, reduced: Path, info: dict[str, Any], batch: Batch, labels: Any
) -> dict[str, Any]:
    mv = native.model_version
    model = Predictor(mv, flavors.get("onnx").load(reduced.parent, {**info, "file": reduced.name}), "onnx")
    rows = f"{batch.n_rows:,} reference rows"
    if mv.task == "classifier":
        y_native, y_reduced = native.predict_batch(batch), model.predict_batch(batch)
        agreement = float(np.mean(y_native == y_reduced))
        out: dict[str, Any] = {"label_agreement": agreement}
        if labels is None:
            out["passed"] = agreement >= 0.99
            out["reason"] = (
                f"labels agree with the native model on {agreement:.2%} of {rows} (≥ 99 % required)"
            )
            return out
        truth = np.asarray(labels)
        acc, acc_q = float(np.mean(y_native == truth)), float(np.mean(y_reduced == truth))
        out.update(accuracy_native=acc, accuracy_reduced=acc_q, passed=acc - acc_q <= 0.01)
        out["reason"] = (
            f"accuracy {acc:.2%} -> {acc_q:.2%} on {rows} with labels (≤ 1 point drop allowed); "
            f"labels agree with the native model on {agreement:.2%}"
        )
        return out
    y = np.asarray(native.predict_batch(batch), dtype=np.float64)
    yq = np.asarray(model.predict_batch(batch), dtype=np.float64).reshape(y.shape)
    rel = float(np.mean(np.abs(y - yq)) / max(float(np.mean(np.abs(y))), 1e-12))
    out = {"passed": rel <= 0.01, "relative_error": rel}
    out["reason"] = f"mean relative error {rel:.3%} against the native model on {rows} (≤ 1 % required)"
    if labels is not None:
        truth = np.asarray(labels, dtype=np.float64).reshape(y.shape)
        mae, mae_q = float(np.mean(np.abs(y - truth))), float(np.mean(np.abs(yq - truth)))
        out.update(mae_native=mae, mae_reduced=mae_q)
        out["reason"] += f"; MAE against the labels {mae:.4g} -> {mae_q:.4g}"
    return out
