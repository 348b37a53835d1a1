"""A peer's own virtual environment for a benchmark (MLflow, Evidently): never the project's."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path


def peer_venv(venv: Path, requirements: Path) -> tuple[Path | None, str]:
    """``venv`` built from ``requirements`` once per the file's content (a stamp keyed by its hash);
    (its bin folder, "ok") or (None, why it could not be installed)."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    stamp = venv / f".req-{digest}"
    if not stamp.exists():
        print(f"creating {venv.name} from {requirements.name} (once)…", flush=True)
        shutil.rmtree(venv, ignore_errors=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            pip = subprocess.run(
                [str(venv / "bin" / "pip"), "install", "--quiet", "-r", str(requirements)],
                env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
                capture_output=True,
                text=True,
            )
        except OSError as exc:
            return None, f"could not be installed ({exc})"
        if pip.returncode != 0:
            return None, f"could not be installed: {pip.stderr[-600:]}"
        stamp.touch()
    return venv / "bin", "ok"


def peer_env(venv: Path, requirements: Path, package: str, skip: str) -> tuple[Path | None, str]:
    """:func:`peer_venv`, unless the environment variable ``skip`` is "1"; (bin, its ``package``
    version) or (None, why not)."""
    if os.environ.get(skip) == "1":
        return None, f"skipped ({skip}=1)"
    bin_dir, note = peer_venv(venv, requirements)
    if bin_dir is None:
        return None, note
    out = subprocess.run(
        [str(bin_dir / "python"), "-c", f"import importlib.metadata as m; print(m.version('{package}'))"],
        capture_output=True,
        text=True,
    )
    return bin_dir, out.stdout.strip() or "unknown"
