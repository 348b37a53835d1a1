"""Follow the traffic routes stored in the metadata store (:mod:`modelport.traffic_routes`).

The manager's watcher thread calls :meth:`RouteFollower.poll` after each hot-swap check. When the
stored routes of the served models change, the follower loads each route's version (off the request
path; a version that fails to load is skipped and retried on the next poll) and then swaps the
service's config for the server's own config with the stored canaries and shadows on top — one
attribute assignment, so a request sees either the old routes or the new ones.
"""

from __future__ import annotations

import logging
from typing import Any

from modelport.refs import ModelRef
from modelport.serving.settings import Canary, ServeConfig, Shadow

log = logging.getLogger(__name__)


class RouteFollower:
    def __init__(self, engine: Any, manager: Any, service: Any, base: ServeConfig) -> None:
        self.engine = engine
        self.manager = manager
        self.service = service
        self.base = base
        self.applied: tuple[tuple[str, str, str, float], ...] = ()
        self._failed: set[str] = set()

    def poll(self) -> bool:
        """Apply the stored routes if they changed; True when the service's config changed."""
        from modelport.traffic_routes import active_routes

        names = self.manager.names or None  # a server without refs serves any model
        routes = active_routes(self.engine, names)
        wanted = tuple((r.model, r.kind, r.ref, r.share) for r in routes)
        if wanted == self.applied:
            return False
        config = self.base
        applied = []
        for model, kind, ref, share in wanted:
            try:
                self.manager.get(ModelRef.parse(ref))  # load before routing traffic to it
            except Exception as exc:  # noqa: BLE001 - skip this route, keep the others; retry next poll
                if ref not in self._failed:
                    log.error("cannot load %s for the stored %s of %s: %s", ref, kind, model, exc)
                    self._failed.add(ref)
                continue
            self._failed.discard(ref)
            route = Canary(ref, share) if kind == "canary" else Shadow(ref, share)
            config = config.with_policy(model, **{kind: route})
            applied.append((model, kind, ref, share))
        self.service.config = config
        self.applied = tuple(applied)
        log.info(
            "traffic routes now: %s", ", ".join(f"{m} {k} {r}={s:g}" for m, k, r, s in applied) or "none"
        )
        return True
