"""Changes whose counter increments Redis did not take: kept, and caught up once it can.

A change must commit even when Redis does not take the increments (down,
out of memory, a read-only replica), and other processes must still learn of
it, whether or not the writer serves another request:

* an increment that fails before the commit is written down instead, in the
  same transaction, as a row of ``unannounced_changes`` naming the counter
  (one that fails after the commit too, in a transaction of its own);
* a process "folds" those rows: it increments their counters and deletes
  them. It does so before it trusts a reading once it has seen Redis fail (a
  failed read or increment), and otherwise at least every ``CHECK_EVERY``
  seconds (``idp.counter_readings``), whatever it saw. Until it has folded
  them it reads the database;
* a process that finds the counters unreadable drops everything it cached:
  an entry filled before the failure is never trusted again (Redis may come
  back from a failover without the last increments).

So a change whose increments were lost is seen at once by processes that
noticed the fault, and by every process within ``CHECK_EVERY`` seconds (and a
lease) of its commit when some process can still read the counters. An
increment that fails after a commit is also retried before this process next
reads the counters; should one still be lost with its row (the process dies
between its commit and both), no entry read during that transaction outlives
``MAX_AGE`` seconds (``idp.changes``).
"""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa
from flask import current_app

from idp.extensions import db
from idp.timeutil import utcnow

log = logging.getLogger(__name__)

# Increments that Redis did not take, written down with the change they announce.
UNANNOUNCED = sa.Table(
    "unannounced_changes",
    db.metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("counter_key", sa.String(255), nullable=False),  # the Redis key to increment
    sa.Column("created_at", sa.DateTime, nullable=False),
)

_pending: dict[int, set[str]] = {}  # id(redis client) -> counter keys whose INCR failed
_pending_lock = threading.Lock()


def _increment(redis, keys: set[str]) -> bool:
    """Increment ``keys`` in one round trip; False if Redis fails."""
    try:
        pipe = redis.pipeline(transaction=False)
        for key in sorted(keys):
            pipe.incr(key)
        pipe.execute()
        return True
    except Exception:
        return False


def announce(redis, keys: set[str]) -> bool:
    """Increment ``keys``; remember them for a retry if Redis fails."""
    if _increment(redis, keys):
        return True
    with _pending_lock:
        _pending.setdefault(id(redis), set()).update(keys)
    return False


def take_pending(redis) -> set[str]:
    """The keys whose increments failed after earlier commits, forgotten here (retry them)."""
    if not _pending.get(id(redis)):
        return set()
    with _pending_lock:
        return _pending.pop(id(redis), set())


def write_down(connection, keys: set[str]) -> None:
    """Keep ``keys``' lost increments in the database, for any process to fold."""
    now = utcnow()
    connection.execute(UNANNOUNCED.insert(), [{"counter_key": k, "created_at": now} for k in keys])
    for plan in current_app.extensions.get("idp_change_plans", {}).values():
        if plan is not None:
            plan.doubtful = True  # this process folds them on its next reading


def fold(redis, keys: list[str]) -> int | None:
    """Make the increments written down for ``keys``: the rows folded, None if it could not."""
    try:
        with db.engine.connect() as connection:
            rows = connection.execute(
                sa.select(UNANNOUNCED.c.id, UNANNOUNCED.c.counter_key).where(
                    UNANNOUNCED.c.counter_key.in_(keys)
                )
            ).all()
        if not rows:
            return 0
        if not _increment(redis, {key for _, key in rows}):  # the rows stay meanwhile
            raise ConnectionError("Redis did not take the increments")
        with db.engine.begin() as connection:
            connection.execute(
                UNANNOUNCED.delete().where(UNANNOUNCED.c.id.in_([i for i, _ in rows]))
            )
    except Exception as exc:
        log.warning("unannounced changes not folded (%s); caches bypassed", type(exc).__name__)
        return None
    log.warning("folded %d increment(s) another process could not make", len(rows))
    return len(rows)
