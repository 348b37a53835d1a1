"""Export a version as an edge bundle: ``model.onnx`` + ``manifest.json`` + the tiny runtime.

The bundle runs with numpy and onnxruntime alone (``python BUNDLE/run.py --input new.csv
--output scored.csv``). Only a twin that passed its parity gate is exported unless ``force``;
int8 quantization is applied where it pays (graphs with MatMul/Gemm/Conv weights) and is itself
gated on the reference sample; tree ensembles stay fp32, and the bundle says why.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

import modelport
from modelport import flavors
from modelport.edge.compile import RUNTIME, compile_version
from modelport.edge.runtime import BUNDLE_FORMAT, MANIFEST
from modelport.errors import InvalidInput, ModelportError
from modelport.flavors.base import installed_version
from modelport.predictor import Predictor
from modelport.refs import ModelRef
from modelport.registry import MODEL_DIR, Registry
from modelport.schema import prepare
from modelport.store.artifacts import hash_tree

QUANTIZE = ("none", "int8")
# Modules of this package that the edge runtime needs; each imports only numpy/onnxruntime/stdlib.
RUNTIME_FILES = (
    "__init__.py",
    "errors.py",
    "model_version.py",
    "predictor.py",
    "schema/__init__.py",
    "schema/frames.py",
    "schema/signature.py",
    "schema/validate.py",
    "flavors/__init__.py",
    "flavors/base.py",
    "flavors/onnx.py",
    "edge/__init__.py",
    "edge/__main__.py",
    "edge/runtime.py",
    "edge/tables.py",
)
_WEIGHT_OPS = {"MatMul", "Gemm", "Conv", "ConvTranspose", "LSTM", "GRU", "Attention"}
_RUN_PY = '''"""Score a file with this bundle: python run.py --input new.csv --output scored.csv"""
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "runtime"))
from modelport.edge.__main__ import main  # noqa: E402

sys.exit(main([str(HERE), *sys.argv[1:]]))
'''


@dataclass
class ExportResult:
    path: Path
    quantize: str
    model_bytes: int
    fp32_bytes: int
    notes: list[str] = field(default_factory=list)
    quantization: dict[str, Any] | None = None


def export_bundle(
    registry: Registry,
    ref: str | ModelRef,
    output: Path,
    *,
    quantize: str = "none",
    zip_bundle: bool = False,
    force: bool = False,
) -> ExportResult:
    """Write the bundle folder ``output`` (and ``output.zip`` with ``zip_bundle``)."""
    if quantize not in QUANTIZE:
        raise InvalidInput(f"--quantize must be one of {', '.join(QUANTIZE)}; got {quantize!r}.")
    if output.exists() and any(output.iterdir()):
        raise InvalidInput(f"The output folder {output} exists and is not empty.")
    mv = registry.get(ref)
    twin = registry.meta.get_compiled(mv.name, mv.version, RUNTIME)
    if twin is None:
        compile_version(registry, mv.ref)
        twin = registry.meta.get_compiled(mv.name, mv.version, RUNTIME)
    assert twin is not None
    report = twin["report"]
    if not twin["passed"] and not force:
        raise ModelportError(
            f"The ONNX twin of '{mv.ref}' failed its parity gate ({'; '.join(report['reasons'])}); "
            "it is not exported. Use --force to export it anyway."
        )
    src = registry.artifacts.local_copy(twin["artifact_uri"], twin["files"], f"the ONNX twin of '{mv.ref}'")
    info = dict(twin["info"])
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=output.parent if output.parent.exists() else None))
    try:
        model_file = tmp / info["file"]
        shutil.copyfile(src / MODEL_DIR / info["file"], model_file)
        fp32_bytes = model_file.stat().st_size
        notes: list[str] = []
        quant = None
        if quantize == "int8":
            quant = _quantize_int8(registry, mv.ref, model_file, info, notes, force)
        _copy_runtime(tmp / "runtime")
        (tmp / "run.py").write_text(_RUN_PY)
        (tmp / "requirements.txt").write_text(
            "".join(f"{p}=={v}\n" for p in ("numpy", "onnxruntime") if (v := installed_version(p)))
        )
        manifest = {
            "format": BUNDLE_FORMAT,
            "ref": mv.ref,
            "created_at": datetime.now(UTC).isoformat(),
            "modelport_version": modelport.__version__,
            "model_version": {**mv.to_dict(), "artifact_uri": "", "files": {}},
            "onnx": info,
            "outputs": {"label": info.get("label_output"), "probabilities": info.get("proba_output")},
            "preprocessing": [
                "inputs are validated and coerced against model_version.signature (column order, types, "
                "categories) by modelport.schema before they reach the graph",
            ],
            "parity": report,
            "quantization": quant or {"mode": "none"},
            "notes": notes,
        }
        manifest["files"] = {k: v for k, v in hash_tree(tmp).items() if k != MANIFEST}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        output.parent.mkdir(parents=True, exist_ok=True)
        if output.exists():
            output.rmdir()
        os.replace(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if zip_bundle:
        shutil.make_archive(str(output), "zip", root_dir=output.parent, base_dir=output.name)
    size = (output / info["file"]).stat().st_size
    return ExportResult(
        output, "int8" if quant and quant.get("applied") else "none", size, fp32_bytes, notes, quant
    )


def _copy_runtime(target: Path) -> None:
    package = Path(modelport.__file__).resolve().parent
    for rel in RUNTIME_FILES:
        dest = target / "modelport" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(package / rel, dest)


def _quantize_int8(
    registry: Registry, ref: str, model_file: Path, info: dict[str, Any], notes: list[str], force: bool
) -> dict[str, Any]:
    """Dynamic int8 quantization of weight-bearing ops, accepted only within the quantized gate."""
    import onnx

    ops = {n.op_type for n in onnx.load(str(model_file), load_external_data=False).graph.node}
    if not ops & _WEIGHT_OPS:
        notes.append(
            "int8 quantization skipped: the graph has no MatMul/Gemm/Conv weights (e.g. a tree ensemble, "
            "whose thresholds int8 cannot shrink); kept fp32."
        )
        return {"mode": "int8", "applied": False, "reason": notes[-1]}
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = model_file.with_name("model.int8.onnx")
    quantize_dynamic(str(model_file), str(quantized), weight_type=QuantType.QInt8)
    verdict = _quantized_gate(registry, ref, quantized, info)
    if not verdict["passed"] and not force:
        quantized.unlink()
        raise ModelportError(
            f"int8 quantization of '{ref}' changes predictions too much ({verdict['reason']}); "
            "not exported. Export with --quantize none, or --force."
        )
    os.replace(quantized, model_file)
    notes.append(f"int8 dynamic quantization: {verdict['reason']}")
    return {"mode": "int8", "applied": True, **verdict}


def _quantized_gate(registry: Registry, ref: str, quantized: Path, info: dict[str, Any]) -> dict[str, Any]:
    """Classifiers: labels may change on ≤ 1 % of reference rows; regressors: ≤ 1 % relative error."""
    mv = registry.get(ref)
    native = registry.load(mv, runtime="native")
    rows = registry.reference_sample(mv)
    if rows is None:
        return {"passed": False, "reason": "no reference rows to measure the quantized model on"}
    batch = prepare(rows, mv.signature)
    q = Predictor(mv, flavors.get("onnx").load(quantized.parent, {**info, "file": quantized.name}), "onnx")
    if mv.task == "classifier":
        agreement = float(np.mean(native.predict_batch(batch) == q.predict_batch(batch)))
        return {
            "passed": agreement >= 0.99,
            "label_agreement": agreement,
            "reason": f"labels agree with the native model on {agreement:.2%} of {batch.n_rows:,} rows "
            "(≥ 99 % required)",
        }
    y, yq = np.asarray(native.predict_batch(batch), float), np.asarray(q.predict_batch(batch), float)
    rel = float(np.mean(np.abs(y - yq.reshape(y.shape))) / max(np.mean(np.abs(y)), 1e-12))
    return {
        "passed": rel <= 0.01,
        "relative_error": rel,
        "reason": f"mean relative error {rel:.3%} on {batch.n_rows:,} rows (≤ 1 % required)",
    }
