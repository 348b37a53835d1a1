"""Settings, read from the environment in one place.

``MODELPORT_HOME``       home folder (default ``~/.modelport``): SQLite file and artifacts
``MODELPORT_DB_URL``     metadata database (default ``sqlite:///$MODELPORT_HOME/modelport.db``);
                         ``postgresql://user@host/db`` for a team
``MODELPORT_ARTIFACTS``  artifact root: a folder or any fsspec URL (default ``$MODELPORT_HOME/artifacts``)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    db_url: str
    artifacts_url: str

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ) if env is None else env
        home = Path(env.get("MODELPORT_HOME") or Path.home() / ".modelport").expanduser()
        db_url = env.get("MODELPORT_DB_URL") or f"sqlite:///{home / 'modelport.db'}"
        artifacts = env.get("MODELPORT_ARTIFACTS") or str(home / "artifacts")
        return cls(home=home, db_url=db_url, artifacts_url=artifacts)

    @property
    def cache_dir(self) -> Path:
        """Where artifacts from remote (fsspec) stores are downloaded and verified."""
        return self.home / "cache"
