"""Per-process caches that every instance drops on its next request after a commit changes them.

The hot paths (the token endpoint, introspection, bearer checks, the API-key
gateway check) read the same few rows over and over. With Redis configured,
each process keeps what it read in a ``Cache``, valid while a change counter
in Redis still holds the value it was read under:

* every counter watches the tables its entries are read from. Session hooks
  note each flush or bulk ``UPDATE``/``DELETE`` that touches a watched table
  and increment that counter twice: as the change reaches the database
  (inside the transaction) and again after the commit, so no write path can
  forget to. The second increment drops what other instances read while the
  transaction was open; the first one means that should the second be lost,
  only rows read during that transaction can be stale, not everything cached
  before it;
* a process reads every counter at once (one ``MGET`` on a connection of its
  own per thread, about a quarter of the client library's full command path)
  and holds that reading for a short lease (``IDP_CHANGE_LEASE_MS``, 20 ms
  by default), timed from before the read was sent; a request uses the
  reading current at its first cache lookup for all of them, and an entry
  read under another value is read again;
* a commit that moved a counter returns only once the lease has run out
  after its increment: by then no instance holds a reading from before it.

A change committed by any instance is therefore seen by every instance on
the first request that starts after the commit returned: a revoked key,
token family or client is refused at once. The counters are read at most
once per lease per process instead of once per request, and a revocation
takes a lease longer. Without Redis, or while Redis cannot be read, every
lookup reads the database.

A counter never returns to a value it held: it starts at a random base far
above what ``INCR`` on a missing key gives, so a Redis restart (which loses
the counters) cannot make an old entry look current.

A change must commit even when Redis does not take the increments; how it
is kept and caught up, and what a process does meanwhile, is told in
``idp.unannounced_changes``.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, current_app, g, has_app_context, has_request_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from idp.extensions import db, shared_redis
from idp.unannounced_changes import announce, fold, take_pending, write_down

log = logging.getLogger(__name__)

MAX_AGE = 300.0  # seconds: the backstop should a post-commit increment be lost
REDIAL_AFTER = 1.0  # seconds a broken counter connection waits before dialling again
CHECK_EVERY = 1.0  # seconds between a process's looks for increments another one could not make
# Counters live at or above this; a lower value was made by INCR on a missing key.
BASE_FLOOR = 1 << 40
_MARKS = "idp_changed_counters"  # session.info: counters this transaction moves
_WRITTEN = "idp_written_down_counters"  # session.info: keys it wrote down instead
_UNREAD = object()


@dataclass(frozen=True)
class Counter:
    """A change counter and the tables whose changes move it."""

    name: str
    tables: frozenset[str]
    # Tables whose new rows move it too: those a cached answer reads by a link
    # that a new row can add (a row that did not exist was never cached).
    inserts: frozenset[str]


_COUNTERS: dict[str, Counter] = {}


def counter(name: str, *tables: str, inserts: tuple[str, ...] = ()) -> Counter:
    """Declare (once) the counter ``name``, moved by changes to ``tables``."""
    if not set(inserts) <= set(tables):
        raise ValueError(f"change counter {name!r}: inserts of a table it does not watch")
    declared = Counter(name, frozenset(tables), frozenset(inserts))
    existing = _COUNTERS.setdefault(name, declared)
    if existing != declared:
        raise ValueError(f"change counter {name!r} declared twice with different tables")
    return existing


@dataclass
class Cache:
    """Values read from the database, kept per application and process under its counters."""

    name: str
    counter: Counter
    max_entries: int = 10_000
    # More counters whose every move drops the entries too (a value read from more tables).
    also: tuple[Counter, ...] = ()

    def _version(self) -> Any:
        """The current reading of this cache's counters (None: the cache must not be used)."""
        versions = _versions()
        version = versions.get(self.counter.name)
        if self.also and version is not None:
            more = tuple(versions.get(other.name) for other in self.also)
            version = None if None in more else (version, *more)
        return version

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The cached value of ``key``, else ``load()`` (a None result is never kept)."""
        version = self._version()
        if version is None:
            return load()
        store = _store(self.name)
        entry = store.get(key)
        now = time.monotonic()
        if entry is not None and entry[0] == version and now - entry[1] <= MAX_AGE:
            return entry[2]
        value = load()
        if value is not None:
            if len(store) >= self.max_entries:
                store.clear()
            store[key] = (version, now, value)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        """Keep ``value`` (read by the caller in this request) under the current counters."""
        version = self._version()
        if version is not None and value is not None:
            store = _store(self.name)
            if len(store) >= self.max_entries:
                store.clear()
            store[key] = (version, time.monotonic(), value)


def _store(name: str) -> dict:
    return current_app.extensions.setdefault("idp_caches", {}).setdefault(name, {})


def _redis_key(name: str) -> str:
    return current_app.config["IDP_REDIS_PREFIX"] + "changes:" + name


def _versions() -> dict[str, bytes]:
    """Every counter's value, fixed for the request; empty when caches must not be used."""
    if not has_request_context():
        return {}  # a long-lived worker or CLI context would keep its first reading
    # One lookup per context proxy: each costs about as much as the rest of a cache hit.
    request_g = g._get_current_object()
    cached = getattr(request_g, "idp_change_versions", _UNREAD)
    if cached is not _UNREAD:
        return cached
    app = current_app._get_current_object()
    plan = _plan(app)
    versions = {} if plan is None else _reading(app, plan, _lease(app))
    request_g.idp_change_versions = versions
    return versions


@dataclass
class _Plan:
    """This application's Redis, its counters' names and keys, and the reading it holds."""

    redis: Any
    names: list[str]
    keys: list[str]
    # (monotonic time the read was sent, {name: value}), replaced whole, never mutated.
    held: tuple[float, dict[str, bytes]] | None = None
    # Redis failed this process since it last folded: fold before trusting a reading.
    doubtful: bool = False
    next_fold: float = 0.0  # monotonic time of the next routine fold (the first reading folds)


def _plan(app: Flask) -> _Plan | None:
    """``app``'s counter plan (None without Redis)."""
    config = app.config
    # Counters are declared as modules load; the settings may change under a test.
    key = (len(_COUNTERS), config.get("IDP_REDIS_URL"), config["IDP_REDIS_PREFIX"])
    plans = app.extensions.setdefault("idp_change_plans", {})
    plan = plans.get(key, _UNREAD)
    if plan is _UNREAD:
        redis = shared_redis()
        names = sorted(_COUNTERS)
        plan = None
        if redis and names:
            plan = _Plan(redis, names, [_redis_key(name) for name in names])
        plans[key] = plan
    return plan


def _lease(app: Flask) -> float:
    return app.config["IDP_CHANGE_LEASE_MS"] / 1000


def _reading(app: Flask, plan: _Plan, lease: float) -> dict[str, bytes]:
    """The counters as read less than ``lease`` ago, else read now; empty if Redis fails."""
    held = plan.held
    started = time.monotonic()  # before the read: a lease can only end early
    if held is not None and started - held[0] < lease:
        return held[1]
    values = _read_counters(plan.redis, plan.keys) if _announce_pending(plan.redis) else None
    if values is None:
        # Entries filled before the fault are never trusted again.
        for store in app.extensions.get("idp_caches", {}).values():
            store.clear()
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


def _outlast_readings() -> None:
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
    _outlast_readings()  # as the commit that could not announce them would have
    return True


def _forget(names: set[str]) -> None:
    caches = current_app.extensions.get("idp_caches", {})
    for cache_name in list(caches):
        if not _CACHES.get(cache_name, frozenset()).isdisjoint(names):
            caches[cache_name].clear()
    for plan in current_app.extensions.get("idp_change_plans", {}).values():
        if plan is not None:
            plan.held = None  # read the moved counters again, right away
    g.pop("idp_change_versions", None)


_CACHES: dict[str, frozenset[str]] = {}  # cache name -> the names of its counters


def cache(name: str, counter_: Counter, *also: Counter, max_entries: int = 10_000) -> Cache:
    """A cache named ``name`` whose entries a move of ``counter_`` (or of any ``also``) drops."""
    names = frozenset(c.name for c in (counter_, *also))
    if _CACHES.setdefault(name, names) != names:
        raise ValueError(f"cache {name!r} declared twice")
    return Cache(name, counter_, max_entries, also)


def _moved_by(table: str, *, inserted: bool) -> set[str]:
    return {
        watched.name
        for watched in _COUNTERS.values()
        if table in (watched.inserts if inserted else watched.tables)
    }


def _mark(session: Session, names: set[str]) -> None:
    """Note that this transaction moves ``names``; increment the new ones right away."""
    marked = session.info.setdefault(_MARKS, set())
    new = names - marked
    if not new:
        return
    marked |= new
    redis = shared_redis() if has_app_context() else None
    if redis is not None:
        keys = {_redis_key(name) for name in new}
        if not announce(redis, keys):
            write_down(session.connection(), keys)  # committed with the change, or not at all
            session.info.setdefault(_WRITTEN, set()).update(keys)


def note_written(session: Session, table: str, *, inserted: bool) -> None:
    """Move the counters a write of ``table`` moves, for a write the session cannot see:
    one made by a data-modifying ``WITH`` inside a statement of another table."""
    _mark(session, _moved_by(table, inserted=inserted))


@event.listens_for(Session, "before_flush")
def _note_flushed_changes(session: Session, flush_context, instances) -> None:
    names: set[str] = set()
    for obj in session.new:
        names |= _moved_by(_table_of(obj), inserted=True)
    for obj in (*session.dirty, *session.deleted):
        names |= _moved_by(_table_of(obj), inserted=False)
    _mark(session, names)


def _table_of(obj) -> str:
    table = getattr(obj, "__table__", None)
    return table.name if table is not None else ""


@event.listens_for(Session, "do_orm_execute")
def _note_bulk_changes(state) -> None:
    """Statements run through the session (an INSERT too) move counters like a flush would."""
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(state.statement, "table", None)
        if table is not None and getattr(table, "name", None):
            _mark(state.session, _moved_by(table.name, inserted=state.is_insert))


@event.listens_for(Session, "after_commit")
def _announce_changes(session: Session) -> None:
    names = session.info.pop(_MARKS, None)
    written = session.info.pop(_WRITTEN, set())
    if not names or not has_app_context():
        return
    _forget(names)
    redis = shared_redis()
    if redis is None:
        return
    keys = {_redis_key(name) for name in names}
    if not announce(redis, keys):
        log.error(
            "change counters %s not incremented; written down for every process to make",
            sorted(names),
        )
        try:
            if keys - written:  # those not already committed with the change
                with db.engine.begin() as connection:
                    write_down(connection, keys - written)
        except Exception:
            log.exception("lost increments not written down either; retried by this process")
    # Even without the second increment the first one, made before the commit,
    # retires every reading older than the transaction once the lease runs out.
    _outlast_readings()


@event.listens_for(Session, "after_rollback")
def _drop_changes(session: Session) -> None:
    session.info.pop(_MARKS, None)
    session.info.pop(_WRITTEN, None)
