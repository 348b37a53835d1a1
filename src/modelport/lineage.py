"""Where a model came from: the git commit of the calling code, the training data fingerprint."""

from __future__ import annotations

import inspect
import os
import subprocess
from pathlib import Path
from typing import Any


def caller_dir() -> Path:
    """Folder of the first stack frame outside modelport (the user's script), else the cwd."""
    here = Path(__file__).resolve().parent
    for frame in inspect.stack()[1:]:
        f = Path(frame.filename)
        if f.is_file() and here not in f.resolve().parents:
            return f.resolve().parent
    return Path.cwd()


def git_info(path: Path) -> dict[str, Any] | None:
    """Commit, dirtiness and root of the git repository containing ``path``, if any."""

    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", "-C", str(path), *args],
            capture_output=True,
            text=True,
            timeout=5,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0"},
            check=True,
        )
        return out.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        root = git("rev-parse", "--show-toplevel")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty, "root": root}
