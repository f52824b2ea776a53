"""Delivering one queued partner event over HTTP, signed as Standard Webhooks says.

The outbox worker calls ``deliver_webhook`` for each ``webhook`` message it
claims. Every HTTP attempt is recorded (and committed before the worker rolls
back a failure) so a partner can see what its endpoint answered.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import NoReturn

import requests
import sqlalchemy as sa
from flask import current_app

from idp.extensions import db
from idp.ids import PREFIXES, new_time_ordered_id
from idp.outbox.models import OutboxMessage
from idp.outbox.smtp import DeliveryDeferred, PermanentDeliveryError
from idp.timeutil import utcnow
from idp.webhooks import transport
from idp.webhooks.audience import event_data, withheld_because
from idp.webhooks.models import WebhookAttempt
from idp.webhooks.service import endpoint_for
from idp.webhooks.signing import open_secret, sign
from idp.webhooks.urls import InternalAddressError, check_stored_webhook_url

log = logging.getLogger(__name__)

# Retried with the worker's exponential backoff until the event is this old, then failed.
RETRY_WINDOW = timedelta(days=3)
# Enough attempts for the backoff (30 s doubling, capped at 6 h) to span the window;
# the window, not this count, is what ends the retries.
MAX_ATTEMPTS = 30
DEFAULT_TIMEOUT_SECONDS = 10.0
# How soon an event held back by an earlier one of its subject is looked at again.
ORDER_RECHECK_SECONDS = 5
USER_AGENT = "idp-webhooks/1"


class WebhookRejected(Exception):  # noqa: N818 (reads as the outcome in the worker's log)
    """The endpoint answered with a status other than 2xx, or could not be reached."""


def _earlier_pending(message: OutboxMessage) -> bool:
    """Whether an earlier event with the same ordering key is still waiting to be delivered."""
    if not message.ordering_key:
        return False
    earlier = sa.tuple_(OutboxMessage.created_at, OutboxMessage.id) < (
        message.created_at,
        message.id,
    )
    found = db.session.execute(
        sa.select(OutboxMessage.id)
        .where(
            OutboxMessage.ordering_key == message.ordering_key,
            OutboxMessage.status == "pending",
            OutboxMessage.kind == "webhook",
            earlier,
        )
        .limit(1)
    ).first()
    return found is not None


def _record(message: OutboxMessage, url: str, started: float, **outcome) -> None:
    db.session.add(
        WebhookAttempt(
            id=new_time_ordered_id(PREFIXES["webhook_attempt"]),
            partner_id=message.recipient,
            message_id=message.id,
            event_id=(message.payload or {}).get("event_id", message.id),
            event_type=message.subject or "",
            url=url,
            duration_ms=int((time.monotonic() - started) * 1000),
            created_at=utcnow(),
            **outcome,
        )
    )
    # The attempt is history whether or not the delivery succeeded; the worker
    # rolls back on failure, so it is committed here, on its own.
    db.session.commit()


def deliver_webhook(message: OutboxMessage) -> None:
    """POST one event to the partner's endpoint; raise so the worker retries or fails it."""
    if _earlier_pending(message):
        # Look again soon, not after the worker's default: the earlier event may be
        # in another worker's hands right now and done within a second.
        raise DeliveryDeferred(
            "an earlier event for the same subject is still pending", delay=ORDER_RECHECK_SECONDS
        )
    endpoint = endpoint_for(message.recipient)
    if endpoint is None:
        raise PermanentDeliveryError("the partner no longer has a webhook endpoint")
    # Who may receive the event is asked again now: the client may have revoked or
    # narrowed its grant since the event was queued.
    reason = withheld_because(message.recipient, message.subject or "", event_data(message))
    if reason is not None:
        _withhold(message, endpoint.url, reason)
    event_id = (message.payload or {}).get("event_id", message.id)
    timestamp = int(time.time())
    secret = open_secret(endpoint.secret_encrypted, endpoint.id)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": event_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, event_id, timestamp, message.body),
    }
    timeout = current_app.config.get("IDP_WEBHOOK_TIMEOUT", DEFAULT_TIMEOUT_SECONDS)
    url = endpoint.url
    production = current_app.config["IDP_ENV"] == "production"
    started = time.monotonic()
    # The URL was checked when it was set; one edited or imported since is refused here
    # where it points where registration would refuse, or holds a control character
    # (retried, so a URL the partner corrects still receives the event). A URL set under
    # the looser form rules of before keeps receiving (``check_stored_webhook_url``).
    problem = check_stored_webhook_url(url, production=production)
    if problem:
        _fail(message, url, started, f"the URL is refused: {problem}")
    try:
        # In production the connection is made only to the addresses it checked, so
        # DNS that changed since the URL was accepted (or changes between a check
        # and the connection) never reaches inside.
        response = transport.post(
            url,
            data=message.body.encode(),
            headers=headers,
            timeout=timeout,
            public_only=production,
        )
    except InternalAddressError as exc:
        _fail(message, url, started, "the URL resolves to an internal address", exc)
    except requests.RequestException as exc:
        _fail(message, url, started, f"{type(exc).__name__}: could not complete the request", exc)
    if 200 <= response.status_code < 300:
        _record(message, url, started, status_code=response.status_code, error=None)
        return
    _fail(
        message,
        url,
        started,
        f"endpoint answered HTTP {response.status_code}",
        status_code=response.status_code,
    )


def _withhold(message: OutboxMessage, url: str, reason: str) -> NoReturn:
    """Record in the partner's delivery log that the event was not sent and why; fail it."""
    error = f"not sent: {reason}"
    _record(message, url, time.monotonic(), status_code=None, error=error)
    raise PermanentDeliveryError(error)


def _fail(
    message: OutboxMessage,
    url: str,
    started: float,
    error: str,
    cause: Exception | None = None,
    *,
    status_code: int | None = None,
) -> NoReturn:
    """Record the failed attempt, then raise for the worker to retry or fail the event."""
    _record(message, url, started, status_code=status_code, error=error)
    _give_up_if_expired(message, error)
    raise WebhookRejected(error) from cause


def _give_up_if_expired(message: OutboxMessage, error: str) -> None:
    if utcnow() - message.created_at >= RETRY_WINDOW:
        raise PermanentDeliveryError(f"{error}; retried for three days")


def register() -> None:
    """Hand ``webhook`` outbox messages to ``deliver_webhook`` in the outbox worker."""
    from idp.outbox import worker

    worker.DELIVERERS["webhook"] = deliver_webhook
    worker.MAX_ATTEMPTS_BY_KIND["webhook"] = MAX_ATTEMPTS
