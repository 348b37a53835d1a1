"""Package a model version for a platform: a container build context, Kubernetes manifests, or a
serverless function (AWS Lambda, Google Cloud Functions).

>>> from modelport.client import default_client
>>> package(default_client().registry, "credit:3", "docker", Path("build/credit"))  # doctest: +SKIP

Every target that runs the model bakes it in (see :mod:`modelport.packaging.store`), so nothing is
downloaded at start, and pins only the runtime closure it needs
(see :mod:`modelport.packaging.requirements`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelport.errors import InvalidInput, ModelNotFound
from modelport.files import staged_folder
from modelport.model_version import ModelVersion
from modelport.packaging.requirements import build_wheel, pinned_closure, wheel_requirements
from modelport.packaging.store import bake_store
from modelport.refs import ModelRef
from modelport.registry import Registry
from modelport.version import __version__

__all__ = ["RUNTIMES", "TARGETS", "PackageResult", "package"]

TARGETS = ("docker", "k8s", "lambda", "cloud-function")
RUNTIMES = ("auto", "native", "onnx")
MANIFEST = "package.json"
STORE = "store"
WHEELS = "wheels"


@dataclass
class PackageResult:
    path: Path
    target: str
    ref: str
    runtime: str | None = None  # "native" or "onnx" where the package serves the model
    requirements: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "target": self.target,
            "ref": self.ref,
            "runtime": self.runtime,
            "requirements": self.requirements,
            "files": self.files,
            "notes": self.notes,
        }


@dataclass
class Staged:
    """What the target writers get: the version, a folder to fill, and the shared pieces made."""

    mv: ModelVersion
    dir: Path
    runtime: str = "native"
    wheel: Path | None = None
    requirements: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def package(
    registry: Registry,
    ref: str | ModelRef,
    target: str,
    output: Path,
    *,
    runtime: str = "auto",
    wheel: Path | None = None,
    **options: Any,
) -> PackageResult:
    """Write the package for ``target`` into the new folder ``output`` (atomically).

    ``runtime``: "auto" serves the ONNX twin when it passed its parity gate (the framework is then
    left out of the package), "native" the framework, "onnx" requires the twin. ``wheel``: the
    modelport wheel to ship (default: built from the source tree). ``options`` go to the target:
    docker (port, workers, python), k8s (image, replicas, cpu, memory, cpu_limit, memory_limit,
    max_replicas, cpu_target, port, workers, batch_job).
    """
    if target not in TARGETS:
        raise InvalidInput(f"--target must be one of {', '.join(TARGETS)}; got {target!r}.")
    if runtime not in RUNTIMES:
        raise InvalidInput(f"--runtime must be one of {', '.join(RUNTIMES)}; got {runtime!r}.")
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise InvalidInput(f"The output folder {output} exists and is not empty.")
    mv = registry.get(ref)
    writer = _writer(target)
    with staged_folder(output, ".package-") as tmp:
        staged = Staged(mv, tmp, runtime=_runtime(registry, mv, runtime))
        if target != "k8s":
            staged.wheel = build_wheel(tmp / WHEELS, wheel)
            roots = wheel_requirements(staged.wheel)
            roots += ["onnxruntime"] if staged.runtime == "onnx" else list(mv.requirements)
            roots += {"lambda": ["mangum"], "cloud-function": ["functions-framework"]}.get(target, [])
            staged.requirements = pinned_closure(roots)
            bake_store(registry, mv, tmp / STORE, twin=staged.runtime == "onnx")
            if staged.runtime == "onnx":
                staged.notes.append(
                    f"serves the ONNX twin (parity passed): {mv.flavor} and its framework packages are "
                    "left out; use --runtime native to ship them"
                )
        writer(staged, **options)
        files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        served = staged.runtime if target != "k8s" else None
        manifest = {
            "target": target,
            "ref": mv.ref,
            "runtime": served,
            "created_at": datetime.now(UTC).isoformat(),
            "modelport_version": __version__,
            "requirements": staged.requirements,
            "notes": staged.notes,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return PackageResult(
        output,
        target,
        mv.ref,
        served,
        staged.requirements,
        [*files, MANIFEST],
        staged.notes,
    )


def _runtime(registry: Registry, mv: ModelVersion, runtime: str) -> str:
    if runtime == "native":
        return "native"
    twin = registry.meta.get_compiled(mv.name, mv.version, "onnx")
    if twin is not None and twin["passed"]:
        return "onnx"
    if runtime == "onnx":
        why = "its ONNX twin failed the parity gate" if twin else "it has no ONNX twin"
        raise ModelNotFound(
            f"Cannot package '{mv.ref}' with --runtime onnx: {why}. Run `modelport compile {mv.ref}` "
            "(see its parity report), or use --runtime native."
        )
    return "native"


def _writer(target: str) -> Callable[..., None]:
    if target == "docker":
        from modelport.packaging.docker import write_docker

        return write_docker
    if target == "k8s":
        from modelport.packaging.k8s import write_k8s

        return write_k8s
    from modelport.packaging.serverless import write_cloud_function, write_lambda

    return write_lambda if target == "lambda" else write_cloud_function
