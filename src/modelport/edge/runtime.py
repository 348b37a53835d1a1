"""Load an edge bundle and predict: numpy + onnxruntime only (plus the stdlib).

A bundle is a folder (or a .zip of one) holding ``model.onnx``, ``manifest.json`` and a copy of
this runtime. The manifest carries the version record (signature with column order and
categories), how to read the graph's outputs, the sha256 of every file and the parity report.
Inputs are validated by the same code as the full library, so bad input gets the same errors.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from modelport.errors import ArtifactTampered, InvalidInput
from modelport.flavors import onnx as onnx_flavor
from modelport.model_version import ModelVersion
from modelport.predictor import Predictor

MANIFEST = "manifest.json"
BUNDLE_FORMAT = "modelport-edge/1"


class EdgeModel(Predictor):
    """A :class:`~modelport.predictor.Predictor` over a bundle's ONNX graph."""

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        self.folder = folder
        self.manifest = manifest
        loaded = onnx_flavor.load(folder, manifest["onnx"])
        super().__init__(ModelVersion.from_dict(manifest["model_version"]), loaded, runtime="onnx")


def load_bundle(path: str | Path) -> EdgeModel:
    """Open a bundle folder or .zip, verify its checksums, and return an :class:`EdgeModel`."""
    path = Path(path)
    if path.is_file() and path.suffix == ".zip":
        target = Path(tempfile.mkdtemp(prefix="modelport-edge-"))
        with zipfile.ZipFile(path) as zf:
            zf.extractall(target)
        inner = [p for p in target.iterdir() if p.is_dir()]
        path = inner[0] if len(inner) == 1 and not (target / MANIFEST).exists() else target
    manifest_file = path / MANIFEST
    if not manifest_file.is_file():
        raise InvalidInput(f"{path} is not a modelport edge bundle: {MANIFEST} is missing.")
    manifest = json.loads(manifest_file.read_text())
    if manifest.get("format") != BUNDLE_FORMAT:
        raise InvalidInput(f"Unsupported bundle format {manifest.get('format')!r}; expected {BUNDLE_FORMAT}.")
    for rel, expected in manifest["files"].items():
        f = path / rel
        actual = hashlib.sha256(f.read_bytes()).hexdigest() if f.is_file() else None
        if actual != expected:
            state = "missing" if actual is None else "modified"
            raise ArtifactTampered(
                f"Bundle file {rel!r} is {state}; refusing to run it. Re-export the bundle."
            )
    return EdgeModel(path, manifest)
