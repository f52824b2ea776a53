"""Audit events and partner webhooks for consent and key changes, in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from idp.audit.service import actor_fields, record_event
from policies.actor import Actor


def audit(
    action: str,
    actor: Actor | None,
    *,
    target_type: str,
    target_id: str,
    organization_id: str | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """Record one audit event for a consent or key change; the caller commits."""
    record_event(
        action,
        **actor_fields(actor),
        target_type=target_type,
        target_id=target_id,
        organization_id=organization_id,
        before=before,
        after=after,
        reason=reason,
    )


def notify_partners(
    partner_ids: Iterable[str | None], event_type: str, data: dict[str, Any], ordering_key: str
) -> None:
    """Queue a webhook event for each partner that has a webhook endpoint."""
    # Imported here: the webhooks service itself uses ``actor_fields`` from this module.
    from idp.webhooks.service import emit_partner_event

    for partner_id in sorted({p for p in partner_ids if p}):
        emit_partner_event(partner_id, event_type, data, ordering_key=ordering_key)


def announce(
    action: str,
    event: str | None,
    actor: Actor | None,
    *,
    target_type: str,
    target_id: str,
    organization_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    partner_ids: Iterable[str | None],
    ordering_key: str,
    reason: str | None = None,
) -> None:
    """Audit a change and, when it is a partner event, queue it for the partners concerned."""
    audit(
        action,
        actor,
        target_type=target_type,
        target_id=target_id,
        organization_id=organization_id,
        before=before,
        after=after,
        reason=reason,
    )
    if event is not None:
        notify_partners(partner_ids, event, after, ordering_key)
