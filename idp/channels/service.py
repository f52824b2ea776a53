"""Registering WABAs and numbers for clients and moving channels through their lifecycle.

The platform's provisioning service is the only caller (``channels:write``).
Each change is audited and told to the partners watching the client, in the
same transaction.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from idp.apikeys.service import revoke_channel_keys
from idp.auth.enforce import enforce
from idp.channels.models import Channel, ChannelStatusChange, Waba
from idp.channels.numbers import normalize_number
from idp.channels.queries import partners_watching
from idp.consent.events import audit, notify_partners
from idp.errors import Conflict, NotFound
from idp.extensions import db
from idp.ids import PREFIXES, new_time_ordered_id
from idp.orgs.models import Organization
from idp.timeutil import isoformat, utcnow
from policies.actor import Actor
from policies.channels import allowed_targets, can_transition
from policies.partners import can_provision


class NumberInUse(Conflict):
    """Another channel that is not terminated already has this number."""

    code, title = "number_in_use", "Number already registered"


class IllegalTransition(Conflict):
    """The lifecycle does not allow this status change."""

    code, title = "illegal_transition", "Status change not allowed"


class StatusChangedMeanwhile(Conflict):
    """Another status change was committed while this one was being made."""

    code, title = "status_changed", "The status changed meanwhile"


def channel_event(channel: Channel) -> dict[str, Any]:
    """What partners (webhooks) and the audit log are told about a channel."""
    return {
        "channel_id": channel.id,
        "client_id": channel.client_id,
        "waba_id": channel.waba_id,
        "phone_number": channel.phone_number,
        "display_name": channel.display_name,
        "status": channel.status,
        "account_mode": channel.account_mode,
        "status_changed_at": isoformat(channel.status_changed_at),
    }


def _audit(action: str, actor: Actor, target: Waba | Channel, **change) -> None:
    """Audit a change of a WABA or channel under its client's organization."""
    kind = "waba" if isinstance(target, Waba) else "channel"
    audit(
        action,
        actor,
        target_type=kind,
        target_id=target.id,
        organization_id=target.client_id,
        **change,
    )


def _client(client_id: str) -> Organization:
    client = db.session.get(Organization, client_id)
    if client is None or client.kind != "client":
        raise NotFound("No such client.")
    return client


def create_waba(
    actor: Actor, client_id: str, name: str, verification_state: str = "unverified"
) -> Waba:
    """Register a WhatsApp Business Account for a client."""
    enforce(can_provision(actor))
    client = _client(client_id)
    waba = Waba.create(client, name, verification_state=verification_state)
    db.session.add(waba)
    db.session.flush()
    after = {"waba_id": waba.id, "name": name, "verification_state": verification_state}
    _audit("waba.created", actor, waba, after=after)
    db.session.commit()
    return waba


def set_waba_verification(actor: Actor, waba_id: str, verification_state: str) -> Waba:
    """Record Meta's business verification outcome for a WABA."""
    enforce(can_provision(actor))
    waba = db.session.get(Waba, waba_id)
    if waba is None:
        raise NotFound("No such WABA.")
    before = {"verification_state": waba.verification_state}
    after = {"verification_state": verification_state}
    waba.verification_state = verification_state
    _audit("waba.verification_changed", actor, waba, before=before, after=after)
    db.session.commit()
    return waba


def _history(channel: Channel, before: str | None, reason: str | None, actor: Actor) -> None:
    db.session.add(
        ChannelStatusChange(
            id=new_time_ordered_id(PREFIXES["status_change"]),
            channel_id=channel.id,
            from_status=before,
            to_status=channel.status,
            reason=reason,
            actor_id=actor.subject,
            created_at=channel.status_changed_at,
        )
    )


def _number_taken(number: str) -> bool:
    return (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Channel)
            .where(Channel.phone_number == number, Channel.status != "terminated")
        )
        > 0
    )


def create_channel(
    actor: Actor,
    waba_id: str,
    phone_number: str,
    display_name: str,
    *,
    account_mode: str = "sandbox",
    region: str | None = None,
) -> Channel:
    """Register a number on a WABA; one channel per number until it is terminated."""
    enforce(can_provision(actor))
    waba = db.session.get(Waba, waba_id)
    if waba is None:
        raise NotFound("No such WABA.")
    number = normalize_number(phone_number, region)
    if _number_taken(number):
        raise NumberInUse(f"{number} already has a channel that is not terminated.")
    now = utcnow()
    channel = Channel.create(
        waba,
        number,
        display_name,
        account_mode=account_mode,
        status="created",
        created_at=now,
        status_changed_at=now,
    )
    db.session.add(channel)
    _history(channel, None, "registered", actor)
    try:
        db.session.flush()
    except IntegrityError as exc:
        # Two registrations raced past the check; the partial unique index decided.
        db.session.rollback()
        raise NumberInUse(f"{number} already has a channel that is not terminated.") from exc
    event = channel_event(channel)
    _audit("channel.created", actor, channel, after=event)
    notify_partners(
        partners_watching(channel.client_id, channel.id),
        "channel_created",
        event,
        ordering_key=channel.id,
    )
    db.session.commit()
    return channel


def _has_been_live(channel_id: str) -> bool:
    """Whether the channel's history shows it live: its billing has started."""
    return db.session.scalar(
        sa.select(
            sa.exists().where(
                ChannelStatusChange.channel_id == channel_id,
                sa.or_(
                    ChannelStatusChange.to_status == "live",
                    ChannelStatusChange.from_status == "live",
                ),
            )
        )
    )


def change_status(actor: Actor, channel_id: str, status: str, reason: str | None) -> Channel:
    """Move a channel along its lifecycle; terminating it revokes its API keys at once."""
    enforce(can_provision(actor))
    channel = db.session.get(Channel, channel_id)
    if channel is None:
        raise NotFound("No such channel.")
    before = channel.status
    billing_started = before == "suspended" and _has_been_live(channel.id)
    decision = can_transition(before, status, billing_started=billing_started)
    if not decision:
        allowed = sorted(allowed_targets(before, billing_started=billing_started))
        raise IllegalTransition(
            f"A {before} channel can move to: {', '.join(allowed) or 'nothing (final)'}.",
            code=decision.code,
            current_status=before,
            allowed=allowed,
        )
    before_event = channel_event(channel)
    now = utcnow()
    # Compare-and-set on the status read above: of two racing changes from one
    # status only the first applies, so none is lost and the lifecycle holds.
    moved = db.session.execute(
        sa.update(Channel)
        .where(Channel.id == channel.id, Channel.status == before)
        .values(
            status=status,
            status_changed_at=now,
            terminated_at=now if status == "terminated" else Channel.terminated_at,
        )
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        db.session.rollback()
        raise StatusChangedMeanwhile("Another status change came first: read the channel again.")
    db.session.refresh(channel)
    _history(channel, before, reason, actor)
    event = {**channel_event(channel), "previous_status": before, "reason": reason}
    _audit(
        "channel.status_changed", actor, channel, before=before_event, after=event, reason=reason
    )
    notify_partners(
        partners_watching(channel.client_id, channel.id),
        "channel_status_changed",
        event,
        ordering_key=channel.id,
    )
    if status == "terminated":
        # After the status event, so a partner reads "terminated" before the key revocations.
        revoke_channel_keys(channel.id, reason or "channel terminated", actor=actor)
    db.session.commit()
    return channel
