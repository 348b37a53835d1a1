"""The composition root: settings -> stores -> registry, built in one place.

``modelport.register(...)`` and friends use :func:`default_client`, built from the environment on
first use and rebuilt when the relevant environment variables change (so tests and scripts that
set ``MODELPORT_HOME`` get the store they asked for).
"""

from __future__ import annotations

import threading

from modelport.config import Settings
from modelport.registry import Registry
from modelport.store import ArtifactStore, MetadataStore


class Client:
    """Everything one store needs: ``Client(Settings.from_env())``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.meta = MetadataStore(settings.db_url)
        self.artifacts = ArtifactStore(settings.artifacts_url, settings.cache_dir)
        self.registry = Registry(self.meta, self.artifacts, auto_compile=settings.auto_compile)

    def close(self) -> None:
        self.meta.engine.dispose()


_lock = threading.Lock()
_clients: dict[Settings, Client] = {}


def default_client() -> Client:
    """The client for the current environment's settings (one per distinct settings)."""
    settings = Settings.from_env()
    with _lock:
        client = _clients.get(settings)
        if client is None:
            client = _clients[settings] = Client(settings)
        return client
