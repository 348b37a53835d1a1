"""The pinned runtime dependencies of a package, and the modelport wheel that goes with them.

A package pins the whole runtime closure — modelport's own dependencies, the packages the model's
flavor captured at registration (or onnxruntime alone for an ONNX-twin package) and the target's
adapter (mangum, functions-framework) — at the versions installed here, which are the versions the
model was checked with. Training-only packages (skl2onnx, onnxmltools, pytest…) never enter:
only what those roots require is followed.
"""

from __future__ import annotations

import email.parser
import importlib.metadata
import subprocess
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from modelport.errors import ModelportError
from modelport.version import PACKAGE_DIR

SELF = "modelport"


def wheel_requirements(wheel: Path) -> list[str]:
    """The runtime dependencies (no extras) that a modelport wheel declares.

    Read from the wheel, not from the installed metadata, which an editable install leaves stale.
    """
    with zipfile.ZipFile(wheel) as zf:
        name = next((n for n in zf.namelist() if n.endswith(".dist-info/METADATA")), None)
        if name is None:
            raise ModelportError(f"{wheel} has no .dist-info/METADATA; is it a wheel?")
        meta = email.parser.Parser().parsestr(zf.read(name).decode())
    out = []
    for line in meta.get_all("Requires-Dist") or []:
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            out.append(line)
    return out


def pinned_closure(roots: Iterable[str]) -> list[str]:
    """``name==version`` for every distribution that ``roots`` need, transitively, as installed here.

    A root with an exact pin (``scikit-learn==1.9.1`` from a model's captured requirements) keeps
    its pin; the rest take the installed version. Raises when a needed package is not installed.
    """
    pins: dict[str, str] = {}
    names: dict[str, str] = {}
    todo = list(roots)
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        line = todo.pop()
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            raise ModelportError(f"Cannot read the requirement {line!r}: {exc}") from exc
        key = canonicalize_name(req.name)
        extras = frozenset(req.extras)
        if key == SELF or (key, extras) in seen:
            continue
        seen.add((key, extras))
        try:
            dist = importlib.metadata.distribution(req.name)
        except importlib.metadata.PackageNotFoundError as exc:
            raise ModelportError(
                f"The package {req.name!r} is needed at run time but is not installed here, so its version "
                "cannot be pinned. Install it (pip install modelport[EXTRA]) and package again."
            ) from exc
        exact = [s.version for s in req.specifier if s.operator == "=="]
        if key not in pins or exact:
            pins[key] = exact[0] if exact else dist.version
            names[key] = dist.metadata["Name"] or req.name
        for child in dist.requires or []:
            marker = Requirement(child).marker
            envs = [{"extra": e} for e in (sorted(extras) or [""])]
            if marker is None or any(marker.evaluate(env) for env in envs):
                todo.append(child)
    return [f"{names[k]}=={pins[k]}" for k in sorted(pins)]


def build_wheel(dest: Path, wheel: Path | None = None) -> Path:
    """Put the modelport wheel into ``dest``: ``wheel`` when given, else built from the source tree.

    Building needs no network (``--no-build-isolation`` uses the installed setuptools).
    """
    dest.mkdir(parents=True, exist_ok=True)
    if wheel is not None:
        if not wheel.is_file() or wheel.suffix != ".whl":
            raise ModelportError(f"--wheel must be a modelport .whl file; got {wheel}.")
        target = dest / wheel.name
        target.write_bytes(wheel.read_bytes())
        return target
    source = PACKAGE_DIR.parents[1]
    if not (source / "pyproject.toml").is_file():
        raise ModelportError(
            "modelport is not installed from a source tree, so its wheel cannot be built here. "
            "Pass --wheel PATH (e.g. from `pip download modelport --no-deps`)."
        )
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dest)]
    done = subprocess.run([*cmd, str(source)], capture_output=True, text=True, check=False)
    wheels = sorted(dest.glob("modelport-*.whl"))
    if done.returncode != 0 or not wheels:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ModelportError(f"Building the modelport wheel from {source} failed: {' '.join(tail)}")
    return wheels[-1]
