"""How a process reads the change counters (``idp.changes``), and how long it trusts a reading.

Every counter is read at once: one ``MGET`` sent straight onto a connection
of the thread's own (the client library's pool, retry and health-check
layers cost three times the round trip itself). A reading is held for a
lease (``IDP_CHANGE_LEASE_MS``) timed from before the read was sent, and a
commit that moved a counter waits out that lease (``outlast_readings``), so
no instance holds a reading from before it once the commit returns.

A counter missing from Redis (a restart, an eviction) is moved to a random
base far above anything ``INCR`` on a missing key gives, so an entry read
under an old value can never look current again. Before a reading is
trusted, increments this process or another could not make are made
(``idp.unannounced_changes``); while Redis cannot be read, there is no
reading and the caches are not used.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app

from idp.extensions import shared_redis
from idp.unannounced_changes import announce, fold, take_pending

log = logging.getLogger(__name__)

REDIAL_AFTER = 1.0  # seconds a broken counter connection waits before dialling again
CHECK_EVERY = 1.0  # seconds between a process's looks for increments another one could not make
# Counters live at or above this; a lower value was made by INCR on a missing key.
BASE_FLOOR = 1 << 40
_UNSET = object()


def redis_key(name: str) -> str:
    """The Redis key of the counter ``name``."""
    return current_app.config["IDP_REDIS_PREFIX"] + "changes:" + name


@dataclass
class Plan:
    """This application's Redis, its counters' names and keys, and the reading it holds."""

    redis: Any
    names: list[str]
    keys: list[str]
    # (monotonic time the read was sent, {name: value}), replaced whole, never mutated.
    held: tuple[float, dict[str, bytes]] | None = None
    # Redis failed this process since it last folded: fold before trusting a reading.
    doubtful: bool = False
    next_fold: float = 0.0  # monotonic time of the next routine fold (the first reading folds)


def plan_for(app: Flask, counters: Collection[str]) -> Plan | None:
    """``app``'s plan for reading ``counters`` (their names; None without Redis)."""
    config = app.config
    # Counters are declared as modules load; the settings may change under a test.
    key = (len(counters), config.get("IDP_REDIS_URL"), config["IDP_REDIS_PREFIX"])
    plans = app.extensions.setdefault("idp_change_plans", {})
    plan = plans.get(key, _UNSET)
    if plan is _UNSET:
        redis = shared_redis()
        names = sorted(counters)
        plan = None
        if redis and names:
            plan = Plan(redis, names, [redis_key(name) for name in names])
        plans[key] = plan
    return plan


def drop_held(app: Flask) -> None:
    """Make ``app``'s next lookup read the counters again, right away."""
    for plan in app.extensions.get("idp_change_plans", {}).values():
        if plan is not None:
            plan.held = None


def _lease(app: Flask) -> float:
    return app.config["IDP_CHANGE_LEASE_MS"] / 1000


def reading(app: Flask, plan: Plan, on_fault: Callable[[], None]) -> dict[str, bytes]:
    """The counters as read less than a lease ago, else read now; empty if Redis fails.

    ``on_fault`` drops every cached entry: one filled before a failed read is never
    trusted again."""
    lease = _lease(app)
    held = plan.held
    started = time.monotonic()  # before the read: a lease can only end early
    if held is not None and started - held[0] < lease:
        return held[1]
    values = _read_counters(plan.redis, plan.keys) if _announce_pending(plan.redis) else None
    if values is None:
        on_fault()
        plan.held, plan.doubtful = None, True
        log.warning("change counters unreadable; caches bypassed for this request")
        return {}
    if plan.doubtful or started >= plan.next_fold:
        folded = fold(plan.redis, plan.keys)
        if folded:
            values = _read_counters(plan.redis, plan.keys)
        if folded is None or values is None:
            plan.held, plan.doubtful = None, True
            return {}
        plan.doubtful, plan.next_fold = False, started + CHECK_EVERY
    versions = dict(zip(plan.names, values, strict=True))
    plan.held = (started, versions)
    return versions


def outlast_readings() -> None:
    """Return once every reading taken before now, by any instance, has run out."""
    # A margin for clocks that run at slightly different rates on other hosts.
    remaining = _lease(current_app) * 1.01
    if remaining > 0:
        time.sleep(remaining)


@dataclass
class _Link:
    """One thread's own connection for reading the counters."""

    pid: int
    connection: Any
    down_until: float = 0.0
    commands: dict[tuple[str, ...], Any] = field(default_factory=dict)  # packed MGETs


_links = threading.local()


def _link(redis) -> _Link:
    pool = redis.connection_pool
    links = _links.__dict__.setdefault("by_pool", {})
    link = links.get(id(pool))
    if link is None or link.pid != os.getpid():  # a forked worker dials its own
        link = _Link(os.getpid(), pool.connection_class(**pool.connection_kwargs))
        links[id(pool)] = link
    return link


def _read_counters(redis, keys: list[str]) -> list[bytes] | None:
    """The counters' values, each made current-and-unique if missing; None if Redis fails."""
    link = _link(redis)
    if time.monotonic() < link.down_until:
        return None  # do not make every request wait for a dial that just failed
    connection = link.connection
    try:
        # Straight onto the connection: the pool, retry and health-check layers of
        # the full command path cost three times the round trip itself.
        packed = link.commands.get(tuple(keys))
        if packed is None:
            packed = link.commands[tuple(keys)] = connection.pack_command("MGET", *keys)
        connection.send_packed_command(packed, False)
        values = connection.read_response()
        return [
            value if value is not None and int(value) >= BASE_FLOOR else _rebase(redis, key)
            for key, value in zip(keys, values, strict=True)
        ]
    except Exception:  # any failure: drop the connection, read the database meanwhile
        connection.disconnect()
        link.down_until = time.monotonic() + REDIAL_AFTER
        return None


def _rebase(redis, key: str) -> bytes:
    """Move a missing (or freshly INCRed) counter to a random base no entry was read under."""
    return str(redis.incrby(key, BASE_FLOOR + secrets.randbits(52))).encode()


def _announce_pending(redis) -> bool:
    """Retry increments that failed after earlier commits; False while they still fail."""
    keys = take_pending(redis)
    # Until the others have heard of those changes, this process reads the database.
    if not keys:
        return True
    if not announce(redis, keys):
        return False
    outlast_readings()  # as the commit that could not announce them would have
    return True
