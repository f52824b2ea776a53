"""Partner webhook endpoints and events, written to the outbox in the caller's transaction."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from idp.audit.service import record_event
from idp.auth.enforce import enforce
from idp.channels.cursor import Page, cut, decode
from idp.consent.events import actor_fields
from idp.errors import Conflict, Forbidden, InvalidInput, NotFound
from idp.extensions import db
from idp.ids import PREFIXES, new_id, new_time_ordered_id
from idp.orgs.service import hold_acting_person
from idp.outbox.models import OutboxMessage
from idp.timeutil import isoformat, utcnow
from idp.webhooks.audience import event_data, withheld_because
from idp.webhooks.models import WebhookAttempt, WebhookEndpoint
from idp.webhooks.signing import new_secret, seal_secret
from idp.webhooks.urls import check_webhook_url
from policies.actor import Actor
from policies.organizations import can_act_in_org
from policies.permissions import Permission as P

EVENT_TYPES = (
    "api_key_created",
    "api_key_replaced",
    "api_key_revoked",
    "channel_created",
    "channel_status_changed",
    "client_created",
    "grant_changed",
    "grant_created",
    "grant_revoked",
)


_LAST_EVENT_AT = "idp_last_partner_event_at"


class UnknownEventType(ValueError):
    """An event type outside ``EVENT_TYPES`` was emitted (a programming error)."""


class NoWebhookEndpoint(NotFound):
    """The partner has not set a webhook URL."""

    code, title = "no_webhook_endpoint", "No webhook endpoint"


class InvalidWebhookUrl(InvalidInput):
    """The webhook URL is not one events may be sent to."""

    code = "invalid_webhook_url"


class EndpointSetMeanwhile(Conflict):
    """Another request created the partner's endpoint while this one was creating it too."""

    code, title = "webhook_set_meanwhile", "The webhook URL was just set by another request"


class EventNoLongerShared(Forbidden):
    """The event is about a number the client no longer shares with the partner."""

    code, title = "event_no_longer_shared", "The event is no longer shared with you"


def endpoint_for(partner_id: str) -> WebhookEndpoint | None:
    """The partner's webhook endpoint, if it has set one."""
    return db.session.scalar(
        sa.select(WebhookEndpoint).where(WebhookEndpoint.partner_id == partner_id)
    )


def _ordering_key(partner_id: str, ordering_key: str | None) -> str | None:
    # Ordering is per partner and per subject (usually a channel): one partner's
    # slow endpoint never holds back another partner's events.
    return f"{partner_id}:{ordering_key}" if ordering_key else None


def _next_moment() -> datetime:
    """Now, but later than any event this session queued: equal clocks must not reorder."""
    now = utcnow()
    last = db.session.info.get(_LAST_EVENT_AT)
    if last is not None and now <= last:
        now = last + timedelta(microseconds=1)
    db.session.info[_LAST_EVENT_AT] = now
    return now


def emit_partner_event(
    partner_id: str, event_type: str, data: dict[str, Any], ordering_key: str | None = None
) -> OutboxMessage | None:
    """Queue a Standard Webhooks event for the partner; the caller's commit makes it durable.

    Returns None (nothing queued) when the partner has no webhook endpoint.
    Events with the same ``ordering_key`` (e.g. a channel id) reach the
    partner in the order they were emitted.
    """
    if event_type not in EVENT_TYPES:
        raise UnknownEventType(event_type)
    if endpoint_for(partner_id) is None:
        return None
    message_id = new_time_ordered_id(PREFIXES["outbox"])
    created_at = _next_moment()
    body = {"type": event_type, "timestamp": isoformat(created_at), "data": data}
    message = OutboxMessage(
        id=message_id,
        kind="webhook",
        recipient=partner_id,
        subject=event_type,
        body=json.dumps(body, separators=(",", ":"), sort_keys=True, default=str),
        payload={"event_id": message_id, "event_type": event_type},
        ordering_key=_ordering_key(partner_id, ordering_key),
        created_at=created_at,
        next_attempt_at=created_at,
    )
    db.session.add(message)
    return message


def _authorize(actor: Actor, permission: P, partner_id: str) -> None:
    enforce(can_act_in_org(actor, permission, partner_id, "partner"))


def _audit(action: str, actor: Actor, endpoint: WebhookEndpoint, before=None) -> None:
    record_event(
        action,
        **actor_fields(actor),
        target_type="webhook_endpoint",
        target_id=endpoint.id,
        organization_id=endpoint.partner_id,
        before=before,
        after={"url": endpoint.url},
    )


def get_endpoint(actor: Actor, partner_id: str) -> WebhookEndpoint:
    """The partner's webhook endpoint (never its secret)."""
    _authorize(actor, P.WEBHOOK_DELIVERIES_READ, partner_id)
    endpoint = endpoint_for(partner_id)
    if endpoint is None:
        raise NoWebhookEndpoint("No webhook URL is set.")
    return endpoint


def set_endpoint(actor: Actor, partner_id: str, url: str) -> tuple[WebhookEndpoint, str | None]:
    """Set the partner's webhook URL; a first URL gets a signing secret, returned only now."""
    _authorize(actor, P.WEBHOOKS_MANAGE, partner_id)
    # Checked before any lock is taken: in production it looks the host up in DNS.
    problem = check_webhook_url(url, production=current_app.config["IDP_ENV"] == "production")
    if problem:
        raise InvalidWebhookUrl(problem, fields={"url": [problem]})
    _authorize(hold_acting_person(actor, partner_id), P.WEBHOOKS_MANAGE, partner_id)
    endpoint = endpoint_for(partner_id)
    secret = None
    before = None
    if endpoint is None:
        endpoint = WebhookEndpoint(
            id=new_id(PREFIXES["webhook_endpoint"]), partner_id=partner_id, url=url
        )
        secret = new_secret()
        endpoint.secret_encrypted = seal_secret(secret, endpoint.id)
        endpoint.secret_created_at = utcnow()
        db.session.add(endpoint)
    else:
        before = {"url": endpoint.url}
    endpoint.url = url
    endpoint.updated_at = utcnow()
    try:
        db.session.flush()
    except IntegrityError as exc:
        # One endpoint per partner (UNIQUE): a racing first setting (a double
        # click) created it, and its answer carried the only copy of the secret.
        db.session.rollback()
        raise EndpointSetMeanwhile(
            "Another request set the webhook URL at the same moment: read it, and rotate "
            "the secret if you did not receive it."
        ) from exc
    _audit("webhook.url_set", actor, endpoint, before)
    db.session.commit()
    return endpoint, secret


def rotate_secret(actor: Actor, partner_id: str) -> tuple[WebhookEndpoint, str]:
    """Replace the partner's signing secret at once and return the new one (shown once)."""
    _authorize(hold_acting_person(actor, partner_id), P.WEBHOOKS_MANAGE, partner_id)
    endpoint = endpoint_for(partner_id)
    if endpoint is None:
        raise NoWebhookEndpoint("Set a webhook URL first.")
    secret = new_secret()
    endpoint.secret_encrypted = seal_secret(secret, endpoint.id)
    endpoint.secret_created_at = endpoint.updated_at = utcnow()
    _audit("webhook.secret_rotated", actor, endpoint)
    db.session.commit()
    return endpoint, secret


def delete_endpoint(actor: Actor, partner_id: str) -> None:
    """Stop sending events to the partner; events already queued then fail."""
    _authorize(actor, P.WEBHOOKS_MANAGE, partner_id)
    endpoint = endpoint_for(partner_id)
    if endpoint is None:
        raise NoWebhookEndpoint("No webhook URL is set.")
    _audit("webhook.deleted", actor, endpoint, {"url": endpoint.url})
    db.session.delete(endpoint)
    db.session.commit()


def list_attempts(actor: Actor, partner_id: str, limit: int, cursor: str | None) -> Page:
    """The partner's delivery attempts, newest first, one keyset page at a time."""
    _authorize(actor, P.WEBHOOK_DELIVERIES_READ, partner_id)
    query = sa.select(WebhookAttempt).where(WebhookAttempt.partner_id == partner_id)
    if cursor:
        created_at, attempt_id = decode(cursor)
        query = query.where(
            sa.tuple_(WebhookAttempt.created_at, WebhookAttempt.id) < (created_at, attempt_id)
        )
    query = query.order_by(WebhookAttempt.created_at.desc(), WebhookAttempt.id.desc())
    rows = list(db.session.scalars(query.limit(limit + 1)))
    return cut(rows, limit, lambda a: (a.created_at, a.id))


def redeliver(actor: Actor, partner_id: str, attempt_id: str) -> OutboxMessage:
    """Queue the event of one of the partner's attempts again, with the same ``webhook-id``."""
    _authorize(actor, P.WEBHOOKS_MANAGE, partner_id)
    attempt = db.session.get(WebhookAttempt, attempt_id)
    if attempt is None or attempt.partner_id != partner_id:
        raise NotFound("No such webhook delivery.")
    original = db.session.get(OutboxMessage, attempt.message_id)
    if original is None:
        raise NotFound("The event of this delivery is no longer kept.")
    if withheld_because(partner_id, original.subject or "", event_data(original)) is not None:
        raise EventNoLongerShared(
            "The client no longer shares this event's number with you: it is not sent again."
        )
    message = OutboxMessage(
        id=new_time_ordered_id(PREFIXES["outbox"]),
        kind="webhook",
        recipient=partner_id,
        subject=original.subject,
        body=original.body,
        payload={**(original.payload or {}), "redelivery_of": attempt.id},
        # A redelivery is a repeat the partner asked for, outside the ordered stream.
        ordering_key=None,
        created_at=utcnow(),
        next_attempt_at=utcnow(),
    )
    db.session.add(message)
    record_event(
        "webhook.redelivered",
        **actor_fields(actor),
        target_type="webhook_attempt",
        target_id=attempt.id,
        organization_id=partner_id,
        after={"event_id": attempt.event_id, "event_type": attempt.event_type},
    )
    db.session.commit()
    return message
