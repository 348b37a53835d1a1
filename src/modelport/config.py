"""Settings, read from the environment in one place.

``MODELPORT_HOME``       home folder (default ``~/.modelport``): SQLite file and artifacts
``MODELPORT_DB_URL``     metadata database (default ``sqlite:///$MODELPORT_HOME/modelport.db``);
                         ``postgresql://user@host/db`` for a team
``MODELPORT_ARTIFACTS``  artifact root: a folder or any fsspec URL (default ``$MODELPORT_HOME/artifacts``)
``MODELPORT_AUTO_COMPILE``  ``0``/``false``/``no``/``off``: do not build ONNX twins at registration and
                         first load (default: on; ``mp.register(..., compile=False)`` per call)

Every setting and environment variable of the product is listed in ``docs/settings.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from modelport.errors import InvalidInput


@dataclass(frozen=True)
class Settings:
    home: Path
    db_url: str
    artifacts_url: str
    auto_compile: bool = True  # ONNX twins at registration and first load (see modelport.registry)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ) if env is None else env
        home = Path(env.get("MODELPORT_HOME") or Path.home() / ".modelport").expanduser()
        db_url = env.get("MODELPORT_DB_URL") or f"sqlite:///{home / 'modelport.db'}"
        artifacts = env.get("MODELPORT_ARTIFACTS") or str(home / "artifacts")
        auto_compile = _flag(env, "MODELPORT_AUTO_COMPILE", True)
        return cls(home=home, db_url=db_url, artifacts_url=artifacts, auto_compile=auto_compile)

    @property
    def cache_dir(self) -> Path:
        """Where artifacts from remote (fsspec) stores are downloaded and verified."""
        return self.home / "cache"


_FALSE = ("0", "false", "no", "off")
_TRUE = ("1", "true", "yes", "on")


def _flag(env: dict[str, str], name: str, default: bool) -> bool:
    value = (env.get(name) or "").strip().lower()
    if not value:
        return default
    if value not in _FALSE + _TRUE:
        raise InvalidInput(f"{name}={env[name]!r}: use one of {', '.join(_TRUE + _FALSE)}.")
    return value in _TRUE
