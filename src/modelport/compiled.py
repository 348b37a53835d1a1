"""The compiled runtime: a version's ONNX twin, converted, gated on parity, stored with the version.

The twin is written to a staging folder (model + ``parity.json``), loaded back through the
onnx flavor (exactly as ``load(runtime="onnx")`` will load it), compared with the native model
on held-out rows (the reference sample stored at registration), and published with its report
whether or not it passed: a failed twin is kept for inspection but never used by
``runtime="auto"``. A model no converter handles gets a record too (no files, the reason in its
report), so that the automatic paths do not try again on every load.

The registry calls this module at registration and at the first ``runtime="auto"`` load of a
version without a twin (see :class:`modelport.registry.Registry`); ``modelport compile`` rebuilds
a twin on purpose.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from typing import Any

import modelport.flavors as flavors
from modelport.errors import FlavorError, ModelportError
from modelport.flavors.base import ConversionUnsupported, LoadedModel
from modelport.flavors.onnx_graph import merge_column_inputs
from modelport.model_version import ModelVersion
from modelport.parity import ParityReport, Tolerance, check_parity
from modelport.predictor import Predictor
from modelport.schema import Batch
from modelport.store import ArtifactStore, MetadataStore
from modelport.store.artifacts import hash_tree

RUNTIME = "onnx"
MODEL_DIR = "model"
REPORT_FILE = "parity.json"


def missing_packages() -> str:
    """The packages every twin needs that are not installed ("" when none)."""
    return " and ".join(p for p in ("onnx", "onnxruntime") if importlib.util.find_spec(p) is None)


def build(
    artifacts: ArtifactStore, mv: ModelVersion, native: Predictor, batch: Batch | None, tolerance: Tolerance
) -> dict[str, Any]:
    """Convert ``native`` to ONNX, gate it on ``batch``, publish it; the record to store.

    Raises :class:`ConversionUnsupported` (naming the estimator) when the model cannot be
    converted; nothing is published then.
    """
    flavor_mod = flavors.get(mv.flavor)
    to_onnx = getattr(flavor_mod, "to_onnx", None)
    if to_onnx is None:
        raise ConversionUnsupported(
            f"The {mv.flavor} flavor has no ONNX converter; '{mv.ref}' keeps the native runtime."
        )
    try:
        converted = to_onnx(native.raw, mv.signature, batch, mv.flavor_info)
    except ModelportError:
        raise
    except Exception as exc:
        raise ConversionUnsupported(
            f"Converting '{mv.ref}' to ONNX failed: {exc}. The native runtime keeps working."
        ) from exc
    onnx_flavor = flavors.get("onnx")
    notes = list(converted.notes)
    if merge_column_inputs(converted.model, mv.signature.names):
        notes.append("one 2-d input for the numeric columns instead of one input per column")
    staging = artifacts.new_staging_dir()
    try:
        (staging / MODEL_DIR).mkdir()
        saved = onnx_flavor.save(
            converted.model, staging / MODEL_DIR, None, task=converted.task, classes=converted.classes
        )
        twin = Predictor(mv, onnx_flavor.load(staging / MODEL_DIR, saved.info), runtime=RUNTIME)
        size = sum(p.stat().st_size for p in (staging / MODEL_DIR).iterdir())
        report = check_parity(mv.ref, native, twin, batch, tolerance, notes, size)
        (staging / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2))
        files = hash_tree(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    uri = artifacts.publish(staging, mv.name)
    return {
        "artifact_uri": uri,
        "files": files,
        "info": saved.info,
        "report": report.to_dict(),
        "passed": report.passed,
    }


def unsupported(mv: ModelVersion, reason: str, tolerance: Tolerance) -> dict[str, Any]:
    """The record of a version no converter handles: no files, ``reason`` in a failed report."""
    report = ParityReport(
        ref=mv.ref, runtime=RUNTIME, task=mv.task, rows=0, max_abs_diff=None, max_rel_diff=None,
        label_agreement=None, tolerance=tolerance, passed=False, reasons=[reason],
    )  # fmt: skip
    return {"artifact_uri": "", "files": {}, "info": {}, "report": report.to_dict(), "passed": False}


def store(
    meta: MetadataStore, artifacts: ArtifactStore, mv: ModelVersion, record: dict[str, Any], replace: bool
) -> dict[str, Any]:
    """Store ``record`` as the version's twin; returns the record the store holds afterwards.

    ``replace``: a rebuild on purpose replaces the stored twin (and deletes its files); otherwise
    (the automatic paths) a twin stored meanwhile by another process wins and ours is dropped.
    """
    uri = record["artifact_uri"]
    try:
        if replace:
            old = meta.put_compiled(mv.name, mv.version, RUNTIME, record)
            if old:
                artifacts.delete(old)
            return record
        if meta.add_compiled(mv.name, mv.version, RUNTIME, record):
            return record
    except BaseException:
        if uri:
            artifacts.delete(uri)
        raise
    if uri:
        artifacts.delete(uri)
    stored = meta.get_compiled(mv.name, mv.version, RUNTIME)
    return stored if stored is not None else record


def report_of(record: dict[str, Any]) -> ParityReport:
    return ParityReport.from_dict(record["report"])


def why_not(record: dict[str, Any]) -> str:
    """Why a stored twin is not used, in words ("" when it passed)."""
    if record["passed"]:
        return ""
    reasons = "; ".join(record["report"].get("reasons") or ()) or "no reason recorded"
    if not record["files"]:
        return reasons
    return f"its ONNX twin failed the parity gate ({reasons})"


def open_twin(
    artifacts: ArtifactStore, mv: ModelVersion, record: dict[str, Any], threads: int | None
) -> LoadedModel:
    """The stored twin's model, loaded with the onnx flavor (``threads``: its intra-op threads)."""
    root = artifacts.local_copy(record["artifact_uri"], record["files"], f"the ONNX twin of '{mv.ref}'")
    try:
        loaded: LoadedModel = flavors.get("onnx").load(root / MODEL_DIR, record["info"], threads=threads)
    except ModelportError:
        raise
    except Exception as exc:
        raise FlavorError(f"Loading the ONNX twin of '{mv.ref}' failed: {exc}") from exc
    return loaded
