"""Traffic routes that running servers follow, changed without restarting them.

A **canary** answers ``share`` of a model's traffic with another version of it (sticky per
``X-Routing-Key``); a **shadow** mirrors ``share`` of it to another version, whose outputs are
logged (role ``shadow``) and never returned. Both are also per-server settings (``serve.yaml``);
routes set here live in the metadata store (``mp_traffic_routes``), every server polls them with
its hot-swap check (``watch_interval``), loads the version off the request path and then applies
the route on top of its own settings. A stored route overrides the server's route of the same kind;
clearing it restores the server's own.

>>> mp.set_traffic("credit", canary="credit:5", share=0.1)      # doctest: +SKIP
>>> mp.set_traffic("credit", shadow="credit@challenger")        # doctest: +SKIP
>>> mp.traffic("credit")                                         # doctest: +SKIP
>>> mp.clear_traffic("credit")                                   # doctest: +SKIP

(Not ``modelport/traffic.py``: that submodule would replace the function ``mp.traffic``.)
The retraining loop's shadow and canary phases (``promote: {mode: shadow}``) use these routes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, insert, select, update

from modelport.errors import InvalidInput
from modelport.files import plain
from modelport.refs import ModelRef
from modelport.store import db

KINDS = ("canary", "shadow")


@dataclass(frozen=True)
class Route:
    """A stored route: ``share`` of ``model``'s traffic goes to (canary) or mirrors to (shadow) ``ref``."""

    id: int
    model: str
    kind: str
    ref: str
    share: float
    source: str
    started_at: datetime
    ends_at: datetime | None = None
    ended_at: datetime | None = None
    active: bool = True
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = plain(self.__dict__)
        return out

    def describe(self) -> str:
        verb = "answers" if self.kind == "canary" else "mirrors"
        return f"{self.kind} {self.ref} {verb} {self.share:.0%} of {self.model}'s traffic"


def set_route(
    engine: Engine,
    model: str,
    kind: str,
    ref: str,
    share: float,
    *,
    source: str = "api",
    ends_at: datetime | None = None,
    details: dict[str, Any] | None = None,
) -> Route:
    """Store an active route (ending the model's previous route of that kind in the same transaction)."""
    if kind not in KINDS:
        raise InvalidInput(f"A route is a canary or a shadow, got '{kind}'.")
    if not 0.0 <= float(share) <= 1.0:
        raise InvalidInput(f"A route's share must be between 0 and 1 (10% = 0.1), got {share}.")
    target = ModelRef.parse(ref)
    name = ModelRef.parse(model).name
    if kind == "canary" and target.name != name:
        raise InvalidInput(f"The canary of '{name}' must be another version of '{name}', got '{ref}'.")
    t = db.traffic_routes
    now = datetime.now(UTC)
    row = {
        "model": name,
        "kind": kind,
        "ref": str(target),
        "share": float(share),
        "active": True,
        "source": source,
        "started_at": now,
        "ends_at": ends_at,
        "ended_at": None,
        "details": plain(details or {}),
    }
    with engine.begin() as conn:
        where = and_(t.c.model == name, t.c.kind == kind, t.c.active.is_(True))
        conn.execute(update(t).where(where).values(active=False, ended_at=now))
        key = conn.execute(insert(t).values(**row)).inserted_primary_key
        assert key is not None
        new_id = key[0]
    return Route(id=int(new_id), **{k: v for k, v in row.items() if k != "active"})


def clear_routes(engine: Engine, model: str, kind: str | None = None) -> list[Route]:
    """End the model's active routes (of ``kind``, or both); returns the routes ended."""
    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"A route is a canary or a shadow, got '{kind}'.")
    name = ModelRef.parse(model).name
    ended = [r for r in active_routes(engine, [name]) if kind is None or r.kind == kind]
    if ended:
        t = db.traffic_routes
        with engine.begin() as conn:
            ids = [r.id for r in ended]
            conn.execute(update(t).where(t.c.id.in_(ids)).values(active=False, ended_at=datetime.now(UTC)))
    return ended


def active_routes(engine: Engine, models: Iterable[str] | None = None) -> list[Route]:
    """The active routes (of ``models``, or all), oldest first."""
    t = db.traffic_routes
    q = select(t).where(t.c.active.is_(True))
    if models is not None:
        q = q.where(t.c.model.in_(list(models)))
    return _routes(engine, q.order_by(t.c.id))


def route_history(engine: Engine, model: str) -> list[Route]:
    """Every route the model ever had, active or ended, oldest first."""
    t = db.traffic_routes
    return _routes(engine, select(t).where(t.c.model == ModelRef.parse(model).name).order_by(t.c.id))


def _routes(engine: Engine, query: Any) -> list[Route]:
    with engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return [
        Route(
            id=r["id"],
            model=r["model"],
            kind=r["kind"],
            ref=r["ref"],
            share=float(r["share"]),
            source=r["source"],
            started_at=_utc(r["started_at"]),
            ends_at=_utc(r["ends_at"]),
            ended_at=_utc(r["ended_at"]),
            active=bool(r["active"]),
            details=dict(r["details"] or {}),
        )
        for r in rows
    ]


def _utc(value: Any) -> Any:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# --- the public functions (mp.set_traffic, mp.clear_traffic, mp.traffic) -------------------------------


def _client(client: Any) -> Any:
    from modelport.client import default_client

    return client or default_client()


def set_traffic(
    model: str,
    *,
    canary: str | None = None,
    shadow: str | None = None,
    share: float | None = None,
    client: Any = None,
) -> Route:
    """Route ``share`` of ``model``'s traffic to a ``canary`` version, or mirror it to a ``shadow``
    (default share: 10 % for a canary, all traffic for a shadow). The version must exist."""
    if (canary is None) == (shadow is None):
        raise InvalidInput("Give exactly one of canary=REF or shadow=REF.")
    c = _client(client)
    kind, ref = ("canary", canary) if canary is not None else ("shadow", shadow)
    assert ref is not None
    if kind == "canary" and ModelRef.parse(ref).name != ModelRef.parse(model).name:
        raise InvalidInput(f"The canary of '{model}' must be another version of '{model}', got '{ref}'.")
    c.registry.get(ref)  # fails with a clear message when the version or alias does not exist
    default = 0.1 if kind == "canary" else 1.0
    return set_route(c.meta.engine, model, kind, ref, default if share is None else share, source="api")


def clear_traffic(model: str, kind: str | None = None, client: Any = None) -> list[Route]:
    """End ``model``'s stored canary and/or shadow; servers go back to their own settings."""
    return clear_routes(_client(client).meta.engine, model, kind)


def traffic(model: str | None = None, client: Any = None) -> list[Route]:
    """The active stored routes (of ``model``, or of every model)."""
    engine = _client(client).meta.engine
    return active_routes(engine, None if model is None else [ModelRef.parse(model).name])
