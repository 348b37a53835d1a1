"""Where a model came from: the git commit of the calling code, the training data fingerprint."""

from __future__ import annotations

import inspect
import os
import subprocess
import sysconfig
from pathlib import Path
from typing import Any


def caller_dir() -> Path:
    """Folder of the user's calling script: the first stack frame outside modelport and outside
    installed packages (so a CLI run or a notebook falls back to the working directory)."""
    here = Path(__file__).resolve().parent
    libs = {Path(p).resolve() for p in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["stdlib"])}
    for frame in inspect.stack()[1:]:
        f = Path(frame.filename)
        if not f.is_file():
            continue
        parents = set(f.resolve().parents)
        if here in parents or parents & libs:
            continue
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
