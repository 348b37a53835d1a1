"""Export a version as an edge bundle: ``model.onnx`` + ``manifest.json`` + the tiny runtime.

The bundle runs with numpy and onnxruntime alone (``python BUNDLE/run.py --input new.csv
--output scored.csv``). Only a twin that passed its parity gate is exported unless ``force``;
int8/fp16 reduction is applied where it pays (see :mod:`modelport.edge.quantize`) and is itself
gated on the reference sample; tree ensembles stay fp32, and the bundle says why.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelport.compiled import MODEL_DIR, RUNTIME, why_not
from modelport.edge.quantize import MODES, reduce_model
from modelport.edge.runtime import BUNDLE_FORMAT, MANIFEST
from modelport.errors import InvalidInput, ModelportError
from modelport.files import staged_folder
from modelport.flavors.base import ConversionUnsupported, installed_version
from modelport.refs import ModelRef
from modelport.registry import Registry
from modelport.store.artifacts import hash_tree
from modelport.version import PACKAGE_DIR, __version__

# Modules of this package that the edge runtime needs; each imports only numpy/onnxruntime/stdlib.
RUNTIME_FILES = (
    "__init__.py",
    "errors.py",
    "lazy.py",
    "version.py",
    "model_version.py",
    "predictor.py",
    "schema/__init__.py",
    "schema/batch.py",
    "schema/coerce.py",
    "schema/frames.py",
    "schema/signature.py",
    "schema/validate.py",
    "flavors/__init__.py",
    "flavors/base.py",
    "flavors/onnx.py",
    "flavors/onnx_graph.py",
    "edge/__init__.py",
    "edge/__main__.py",
    "edge/runtime.py",
    "edge/tables.py",
)
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
    labels: Any = None,
) -> ExportResult:
    """Write the bundle folder ``output`` (and ``output.zip`` with ``zip_bundle``).

    ``labels``: true outcomes of the reference sample's rows, so that quantization is judged on
    accuracy (see :func:`modelport.edge.quantize.reduce_model`).
    """
    if quantize not in MODES:
        raise InvalidInput(f"--quantize must be one of {', '.join(MODES)}; got {quantize!r}.")
    if output.exists() and any(output.iterdir()):
        raise InvalidInput(f"The output folder {output} exists and is not empty.")
    mv = registry.get(ref)
    twin = registry.meta.get_compiled(mv.name, mv.version, RUNTIME)
    if twin is None:
        registry.compile(mv.ref)
        twin = registry.meta.get_compiled(mv.name, mv.version, RUNTIME)
    assert twin is not None
    report = twin["report"]
    if not twin["files"]:  # a model no converter handles (recorded by the automatic compile)
        raise ConversionUnsupported(f"'{mv.ref}' has no ONNX twin: {why_not(twin)}.")
    if not twin["passed"] and not force:
        raise ModelportError(
            f"The ONNX twin of '{mv.ref}' failed its parity gate ({'; '.join(report['reasons'])}); "
            "it is not exported. Use --force to export it anyway."
        )
    src = registry.artifacts.local_copy(twin["artifact_uri"], twin["files"], f"the ONNX twin of '{mv.ref}'")
    info = dict(twin["info"])
    with staged_folder(output, ".export-") as tmp:
        model_file = tmp / info["file"]
        shutil.copyfile(src / MODEL_DIR / info["file"], model_file)
        fp32_bytes = model_file.stat().st_size
        notes: list[str] = []
        quant = None
        if quantize != "none":
            quant = reduce_model(registry, mv.ref, model_file, info, quantize, force, labels)
            notes.append(quant["reason"])
        _copy_runtime(tmp / "runtime")
        (tmp / "run.py").write_text(_RUN_PY)
        (tmp / "requirements.txt").write_text(
            "".join(f"{p}=={v}\n" for p in ("numpy", "onnxruntime") if (v := installed_version(p)))
        )
        manifest = {
            "format": BUNDLE_FORMAT,
            "ref": mv.ref,
            "created_at": datetime.now(UTC).isoformat(),
            "modelport_version": __version__,
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
    if zip_bundle:
        shutil.make_archive(str(output), "zip", root_dir=output.parent, base_dir=output.name)
    size = (output / info["file"]).stat().st_size
    applied = quant["mode"] if quant and quant["applied"] else "none"
    return ExportResult(output, applied, size, fp32_bytes, notes, quant)


def _copy_runtime(target: Path) -> None:
    package = PACKAGE_DIR
    for rel in RUNTIME_FILES:
        dest = target / "modelport" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(package / rel, dest)
