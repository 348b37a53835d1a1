"""Small helpers for the files users write (YAML settings) and the JSON modelport stores."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from modelport.errors import InvalidInput


def read_yaml_mapping(path: str | Path, what: str, expects: str) -> Mapping[str, Any]:
    """A YAML (or JSON) file holding a mapping; errors name the file (``what``, e.g. "Job file")."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except FileNotFoundError:
        raise InvalidInput(f"{what} '{p}' does not exist.") from None
    except yaml.YAMLError as exc:
        raise InvalidInput(f"{what} '{p}' is not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{what} '{p}' must hold a mapping ({expects}).")
    return data


def plain(value: Any) -> Any:
    """Plain JSON types: numpy scalars become Python ones, NaN/inf None, datetimes ISO strings."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return value


@contextlib.contextmanager
def staged_folder(output: Path, prefix: str) -> Iterator[Path]:
    """A temporary folder beside ``output`` (absent or empty) that becomes ``output`` in one rename
    when the block succeeds, and is removed when it fails: readers never see half a folder."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=output.parent))
    try:
        yield tmp
        if output.exists():
            output.rmdir()
        os.replace(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def resolve_path(path: str, base: Path) -> str:
    """``path`` relative to ``base`` unless it is absolute or a URL (``s3://``, ``memory://`` ...)."""
    if "://" in path or Path(path).is_absolute():
        return path
    resolved = str(base / path)
    return resolved + "/" if path.endswith("/") else resolved
