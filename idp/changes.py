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
  by default), timed from before the read was sent (``idp.counter_readings``);
  a request uses the reading current at its first cache lookup for all of
  them, and an entry read under another value is read again;
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
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from flask import current_app, g, has_app_context, has_request_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from idp.counter_readings import drop_held, outlast_readings, plan_for, reading, redis_key
from idp.extensions import db, shared_redis
from idp.unannounced_changes import announce, write_down

log = logging.getLogger(__name__)

MAX_AGE = 300.0  # seconds: the backstop should a post-commit increment be lost
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
    plan = plan_for(app, _COUNTERS)
    versions = {} if plan is None else reading(app, plan, _drop_every_entry)
    request_g.idp_change_versions = versions
    return versions


def _forget(names: set[str]) -> None:
    caches = current_app.extensions.get("idp_caches", {})
    for cache_name in list(caches):
        if not _CACHES.get(cache_name, frozenset()).isdisjoint(names):
            caches[cache_name].clear()
    drop_held(current_app)  # read the moved counters again, right away
    g.pop("idp_change_versions", None)


def _drop_every_entry() -> None:
    for store in current_app.extensions.get("idp_caches", {}).values():
        store.clear()


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
        keys = {redis_key(name) for name in new}
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
    keys = {redis_key(name) for name in names}
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
    outlast_readings()


@event.listens_for(Session, "after_rollback")
def _drop_changes(session: Session) -> None:
    session.info.pop(_MARKS, None)
    session.info.pop(_WRITTEN, None)
