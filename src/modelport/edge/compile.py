"""Compile a registered version to an ONNX twin, gate it on parity, and store it with the version.

The twin is written to a staging folder (model + ``parity.json``), loaded back through the
onnx flavor (exactly as ``mp.load(runtime="onnx")`` will load it), compared with the native model
on the reference sample, and published with its report whether or not it passed: a failed twin
is kept for inspection but never used by ``runtime="auto"``.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import modelport.flavors as flavors
from modelport.edge.parity import ParityReport, Tolerance, check_parity
from modelport.errors import ModelportError
from modelport.flavors.base import ConversionUnsupported
from modelport.predictor import Predictor
from modelport.refs import ModelRef
from modelport.registry import MODEL_DIR, Registry
from modelport.schema import prepare
from modelport.store.artifacts import hash_tree

RUNTIME = "onnx"
REPORT_FILE = "parity.json"


def compile_version(
    registry: Registry,
    ref: str | ModelRef,
    *,
    data: Any = None,
    tolerance: Tolerance | None = None,
) -> ParityReport:
    """Convert ``ref`` to ONNX, check parity on ``data`` (default: the reference sample), store it.

    Raises :class:`ConversionUnsupported` (naming the estimator) when the model cannot be
    converted; the native runtime keeps working either way.
    """
    tolerance = tolerance or Tolerance()
    mv = registry.get(ref)
    native = registry.load(mv, runtime="native")
    flavor_mod = flavors.get(mv.flavor)
    to_onnx = getattr(flavor_mod, "to_onnx", None)
    if to_onnx is None:
        raise ConversionUnsupported(
            f"The {mv.flavor} flavor has no ONNX converter; '{mv.ref}' keeps the native runtime."
        )
    rows = data if data is not None else registry.reference_sample(mv)
    batch = prepare(rows, mv.signature) if rows is not None else None
    try:
        converted = to_onnx(native.raw, mv.signature, batch, mv.flavor_info)
    except ModelportError:
        raise
    except Exception as exc:
        raise ConversionUnsupported(
            f"Converting '{mv.ref}' to ONNX failed: {exc}. The native runtime keeps working."
        ) from exc
    onnx_flavor = flavors.get("onnx")
    staging = registry.artifacts.new_staging_dir()
    try:
        (staging / MODEL_DIR).mkdir()
        saved = onnx_flavor.save(
            converted.model, staging / MODEL_DIR, None, task=converted.task, classes=converted.classes
        )
        twin = Predictor(mv, onnx_flavor.load(staging / MODEL_DIR, saved.info), runtime=RUNTIME)
        size = sum(p.stat().st_size for p in (staging / MODEL_DIR).iterdir())
        report = check_parity(mv.ref, native, twin, batch, tolerance, list(converted.notes), size)
        (staging / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2))
        files = hash_tree(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    uri = registry.artifacts.publish(staging, mv.name)
    record = {
        "artifact_uri": uri,
        "files": files,
        "info": saved.info,
        "report": report.to_dict(),
        "passed": report.passed,
    }
    try:
        replaced = registry.meta.put_compiled(mv.name, mv.version, RUNTIME, record)
    except BaseException:
        registry.artifacts.delete(uri)
        raise
    if replaced:
        registry.artifacts.delete(replaced)
    return report


def stored_report(registry: Registry, ref: str | ModelRef) -> ParityReport | None:
    """The parity report of the version's stored ONNX twin, if it was compiled."""
    mv = registry.get(ref)
    twin = registry.meta.get_compiled(mv.name, mv.version, RUNTIME)
    return None if twin is None else ParityReport.from_dict(twin["report"])
