"""The outbox worker: claims due messages safely among several workers and delivers them.

A message is claimed by moving its ``next_attempt_at`` forward by a lease with a
compare-and-set UPDATE (PostgreSQL also skips rows another worker has locked,
``FOR UPDATE SKIP LOCKED``; SQLite has one writer at a time). A worker that dies
mid-delivery leaves the row to be claimed again when the lease ends, so
delivery is at least once. Failures are retried with exponential backoff and
end in ``failed`` after ``MAX_ATTEMPTS``.

An email's body holds its links with their secrets, so the UPDATE that makes
an email final (``sent`` or ``failed``) also replaces its body with
``REDACTED_EMAIL_BODY``: no committed final row ever holds a secret. A
webhook's body is the signed event, kept for redelivery; it holds no secret.

A running worker also purges what has outlived any use (``idp.janitor``)
when it starts and then about once an hour; a failed purge is logged and
never stops delivery.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import sqlalchemy as sa

from idp.extensions import db
from idp.janitor import BATCH_SIZE as PURGE_BATCH
from idp.janitor import purge, unfinished
from idp.outbox.models import REDACTED_EMAIL_BODY, OutboxMessage
from idp.outbox.smtp import DeliveryDeferred, PermanentDeliveryError, deliver_email
from idp.timeutil import utcnow

log = logging.getLogger(__name__)

# How each kind of message is delivered. A concept adds its kind when its module is
# imported (``create_app`` imports every concept), e.g. ``DELIVERERS["webhook"] = send``.
# A deliverer returns on success and raises on failure: ``PermanentDeliveryError``
# fails the message at once, ``DeliveryDeferred`` keeps it pending without an attempt,
# anything else is retried with backoff.
DELIVERERS: dict[str, Callable[[OutboxMessage], None]] = {"email": deliver_email}

# What a kind's body becomes once the message is final (sent or failed), written in the
# UPDATE that makes it final. A kind not named keeps its body.
REDACTED_WHEN_FINAL: dict[str, str] = {"email": REDACTED_EMAIL_BODY}

MAX_ATTEMPTS = 8
# A kind may retry longer than email does (partner webhooks retry for three days).
MAX_ATTEMPTS_BY_KIND: dict[str, int] = {}
BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 6 * 3600
LEASE_SECONDS = 300
DEFER_SECONDS = 300
BATCH_SIZE = 20
PURGE_EVERY = 3600.0  # seconds between the purges of a running worker
# A pass deletes at most this many batches per table, so that a backlog (the first purge of
# a large database) never holds messages back for long: the rest goes in later passes.
PURGE_BATCHES_PER_PASS = 20
PURGE_BACKLOG_EVERY = 5.0  # seconds between passes while a backlog is worked off


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after ``attempts`` failed ones: 30 s, 1 min, 2 min, ... 6 h."""
    seconds = BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, BACKOFF_MAX_SECONDS))


def claim_due(limit: int = BATCH_SIZE) -> list[str]:
    """Lease up to ``limit`` due pending messages to this worker and return their ids."""
    return claim_batch(limit)[1]


def claim_batch(limit: int = BATCH_SIZE) -> tuple[datetime, list[str]]:
    """Lease up to ``limit`` due pending messages to this worker: the lease's end, their ids.

    The lease is the message's ``next_attempt_at``: another worker claims the
    message once it has passed. ``deliver`` with that lease sends a message only
    while it is still this worker's (``_renew_lease``).
    """
    now = utcnow()
    candidates = db.session.execute(
        sa.select(OutboxMessage.id, OutboxMessage.next_attempt_at)
        .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    lease_until = now + timedelta(seconds=LEASE_SECONDS)
    claimed = []
    for row in candidates:
        result = db.session.execute(
            sa.update(OutboxMessage)
            .where(
                OutboxMessage.id == row.id,
                OutboxMessage.status == "pending",
                OutboxMessage.next_attempt_at == row.next_attempt_at,
            )
            .values(next_attempt_at=lease_until)
        )
        if result.rowcount == 1:
            claimed.append(row.id)
    db.session.commit()
    return lease_until, claimed


def _renew_lease(message_id: str, lease: datetime) -> bool:
    """Take a full lease on one message of a batch, if the batch's lease is still on it.

    A batch is delivered one message after another: a slow relay can use up the
    batch's lease before its last messages, and another worker then claims them.
    Whether this worker still holds a message is decided here, by a conditional
    UPDATE, just before it is sent, so that no message goes out from both.
    """
    result = db.session.execute(
        sa.update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            OutboxMessage.status == "pending",
            OutboxMessage.next_attempt_at == lease,
        )
        .values(next_attempt_at=utcnow() + timedelta(seconds=LEASE_SECONDS))
    )
    db.session.commit()
    return result.rowcount == 1


def _record_outcome(message_id: str, **values) -> None:
    db.session.execute(
        sa.update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values)
    )
    db.session.commit()


def _final(kind: str, **values) -> dict:
    """The values that make a message of ``kind`` final, its body redacted if the kind says so."""
    if kind in REDACTED_WHEN_FINAL:
        values["body"] = REDACTED_WHEN_FINAL[kind]
    return values


def deliver(message_id: str, lease: datetime | None = None) -> str:
    """Deliver one claimed message and record the outcome; return its new status.

    With the ``lease`` its batch was claimed with, a message another worker has
    claimed since (that lease ran out) is left to that worker: ``"pending"``.
    """
    if lease is not None and not _renew_lease(message_id, lease):
        log.info("lease of %s ran out before its turn; left to the worker holding it", message_id)
        return "pending"
    message = db.session.get(OutboxMessage, message_id)
    if message.status != "pending":
        # Another worker finished it after this one claimed it (that worker's lease ran
        # out mid-delivery): its body may be redacted by now, so nothing is sent again.
        status = message.status
        db.session.rollback()
        return status
    kind = message.kind
    deliverer = DELIVERERS.get(kind)
    attempts = message.attempts + 1
    try:
        if deliverer is None:
            raise LookupError(f"no deliverer for {message.kind!r} messages")
        deliverer(message)
    except DeliveryDeferred as deferred:
        db.session.rollback()
        delay = DEFER_SECONDS if deferred.delay is None else deferred.delay
        _record_outcome(message_id, next_attempt_at=utcnow() + timedelta(seconds=delay))
        return "pending"
    except Exception as exc:  # noqa: BLE001 (any failure of a deliverer is retried)
        db.session.rollback()
        limit = MAX_ATTEMPTS_BY_KIND.get(kind, MAX_ATTEMPTS)
        permanent = isinstance(exc, PermanentDeliveryError) or attempts >= limit
        error = f"{type(exc).__name__}: {exc}"[:1000]
        log.warning("delivery of %s failed (attempt %d): %s", message_id, attempts, error)
        retry_at = utcnow() + backoff(attempts)
        if permanent:
            outcome = _final(kind, status="failed", last_error=error, next_attempt_at=retry_at)
        else:
            outcome = {"status": "pending", "last_error": error, "next_attempt_at": retry_at}
        _record_outcome(message_id, attempts=attempts, **outcome)
        return outcome["status"]
    outcome = _final(kind, status="sent", sent_at=utcnow(), last_error=None)
    _record_outcome(message_id, attempts=attempts, **outcome)
    log.info("delivered %s %s", message.kind, message_id)
    return "sent"


def run_once(limit: int = BATCH_SIZE) -> dict[str, int]:
    """Claim and deliver one batch of due messages; return how many ended in each status."""
    counts: dict[str, int] = {"sent": 0, "pending": 0, "failed": 0}
    lease, claimed = claim_batch(limit)
    for message_id in claimed:
        counts[deliver(message_id, lease)] += 1
    return counts


def purge_when_due(due: float, now: float) -> float:
    """Purge if ``due`` (a ``time.monotonic()`` reading) has come; return when the next one is.

    One pass deletes a bounded number of batches; while a backlog remains the
    next pass comes ``PURGE_BACKLOG_EVERY`` later, else ``PURGE_EVERY``. A
    failure is logged and tried again ``PURGE_EVERY`` later: delivery goes on.
    """
    if now < due:
        return due
    try:
        counts = purge(batch=PURGE_BATCH, max_batches=PURGE_BATCHES_PER_PASS)
    except Exception:  # noqa: BLE001 (whatever the purge hit, messages must still go out)
        db.session.rollback()
        log.exception("purge failed; next try in %.0f s", PURGE_EVERY)
        return now + PURGE_EVERY
    log.info("purged %s", ", ".join(f"{n} {table}" for table, n in counts.items()))
    if unfinished(counts, PURGE_BATCH, PURGE_BATCHES_PER_PASS):
        return now + PURGE_BACKLOG_EVERY
    return now + PURGE_EVERY


def run_forever(
    interval: float = 2.0, limit: int = BATCH_SIZE, stop: threading.Event | None = None
) -> None:
    """Deliver due messages until ``stop`` is set or SIGTERM arrives; the current batch finishes."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    log.info("outbox worker started")
    purge_due = time.monotonic()
    while not stop.is_set():
        purge_due = purge_when_due(purge_due, time.monotonic())
        try:
            counts = run_once(limit)
        except sa.exc.OperationalError:
            db.session.rollback()
            log.error("database unavailable; retrying in %.0f s", interval * 5)
            stop.wait(interval * 5)
            continue
        if sum(counts.values()) == 0:
            stop.wait(interval)
    log.info("outbox worker stopped")
