"""Grants: approving a consent, listing grants, and revoking them whole or per channel.

Every change is decided by ``policies.consent``, audited, announced to the
partner (webhook outbox) and committed once. Revoking a grant or a channel of
it revokes the API keys the partner generated under it in the same transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from idp.apikeys.service import revoke_grant_keys
from idp.auth.enforce import enforce
from idp.channels.models import Channel
from idp.consent.events import announce
from idp.consent.models import ConsentGrant, GrantChannel
from idp.consent.queries import active_grant, grant_by_id, grant_facts
from idp.errors import Conflict, InvalidInput, NotFound
from idp.extensions import db
from idp.ids import PREFIXES, new_id
from idp.timeutil import isoformat, utcnow
from policies.actor import Actor
from policies.consent import (
    SCOPE_API_KEYS_MANAGE,
    can_approve_consent,
    can_read_grants,
    can_revoke_grant,
    consent_scopes,
)


class GrantChanged(Conflict):
    """Another approval changed the same grant at the same moment."""

    code = "grant_changed"


def grant_view(grant: ConsentGrant) -> dict:
    """The grant as partners learn it (token response, webhooks, audit)."""
    return {
        "id": grant.id,
        "client": grant.client_id,
        "partner": grant.partner_id,
        "channels": grant.channel_ids,
        "scope": grant.scope,
        "revoked_at": isoformat(grant.revoked_at),
    }


def client_channels(client_id: str) -> list[Channel]:
    """The client's channels a consent can cover (every one not terminated), oldest first."""
    return list(
        db.session.scalars(
            sa.select(Channel)
            .where(Channel.client_id == client_id, Channel.status != "terminated")
            .order_by(Channel.created_at, Channel.id)
        )
    )


def current_grant(partner_id: str, client_id: str) -> ConsentGrant | None:
    """The partner's active grant from the client (to tick what is already granted)."""
    return active_grant(partner_id, client_id)


def approve_consent(actor: Actor, **approval) -> ConsentGrant:
    """Create or change the partner's grant as ``stage_approval`` does, and commit."""
    grant = stage_approval(actor, **approval)
    db.session.commit()
    return grant


def stage_approval(
    actor: Actor,
    *,
    partner_id: str,
    oauth_client_id: str | None,
    scope: str,
    channel_ids: list[str],
) -> ConsentGrant:
    """Create the partner's grant, or change it to exactly these channels and scopes.

    Channels left out of a changed grant leave it, and the partner's keys on
    them are revoked. Adds to the caller's transaction (the authorization
    response commits it together with the code, so a failed response leaves
    no grant behind). An approval that loses a race with another change of the
    same grant raises ``GrantChanged``.
    """
    enforce(can_approve_consent(actor))
    client_id = actor.organization_id
    wanted = set(channel_ids)
    allowed = {c.id for c in client_channels(client_id)}
    if not wanted <= allowed:
        raise InvalidInput("Choose among your own channels.", fields={"channels": ["unknown"]})
    scopes = " ".join(consent_scopes(scope))
    if not scopes:
        raise InvalidInput("Nothing to grant.", fields={"scope": ["no consent scope"]})
    # Locked: a second approval (a double-submitted form) or a key generation under
    # the grant waits here until this one commits, and then sees what it did.
    grant = active_grant(partner_id, client_id, lock=True)
    now = utcnow()
    if grant is None:
        grant = ConsentGrant(
            id=new_id(PREFIXES["grant"]),
            client_id=client_id,
            partner_id=partner_id,
            oauth_client_id=oauth_client_id,
            scope=scopes,
            granted_by_id=actor.user_id,
            created_at=now,
            updated_at=now,
        )
        grant.channels = [GrantChannel(channel_id=c, created_at=now) for c in sorted(wanted)]
        db.session.add(grant)
        # The partial unique index decides between two approvals racing.
        _flush_or_grant_changed()
        _announce("grant.created", "grant_created", actor, grant, None)
    elif wanted != set(grant.channel_ids) or scopes != grant.scope:
        before = grant_view(grant)
        current = set(grant.channel_ids)
        had_keys_scope = SCOPE_API_KEYS_MANAGE in grant.scopes
        grant.channels = [gc for gc in grant.channels if gc.channel_id in wanted] + [
            GrantChannel(channel_id=c, created_at=now) for c in sorted(wanted - current)
        ]
        grant.scope = scopes
        grant.oauth_client_id = oauth_client_id or grant.oauth_client_id
        grant.granted_by_id = actor.user_id
        grant.updated_at = now
        # Without row locks (SQLite) a concurrent approval may have added the same number.
        _flush_or_grant_changed()
        _revoke_keys_not_allowed(
            grant,
            actor,
            removed=sorted(current - wanted),
            added=sorted(wanted - current),
            had_keys_scope=had_keys_scope,
        )
        _announce("grant.changed", "grant_changed", actor, grant, before)
    else:
        # An approval of exactly what is granted changes nothing: the grant keeps who gave
        # it, through which of the partner's applications, and when (its audit event). A
        # key that slipped past an earlier change is still revoked, as any approval does.
        _revoke_keys_not_allowed(
            grant,
            actor,
            removed=[],
            added=[],
            had_keys_scope=SCOPE_API_KEYS_MANAGE in grant.scopes,
        )
    return grant


def _flush_or_grant_changed() -> None:
    try:
        db.session.flush()
    except IntegrityError as exc:
        db.session.rollback()
        raise GrantChanged("The grant was changed at the same moment; try again.") from exc


def _revoke_keys_not_allowed(
    grant: ConsentGrant,
    actor: Actor,
    *,
    removed: list[str],
    added: list[str],
    had_keys_scope: bool,
) -> None:
    """Revoke the partner's keys the changed grant does not allow.

    Keys must not outlive the partner's right to manage them. A number shared
    again, or the key scope given again, never revives a key from before: every
    such key was revoked when the number or the scope left the grant, so one
    still unrevoked could only have slipped past that change.
    """
    if SCOPE_API_KEYS_MANAGE not in grant.scopes:
        revoke_grant_keys(
            grant.id, "the client no longer lets the partner manage API keys", actor=actor
        )
        return
    if not had_keys_scope:
        revoke_grant_keys(
            grant.id, "generated before the client let the partner manage API keys", actor=actor
        )
        return
    for channel_ids, reason in (
        (removed, "the client removed the channel from the grant"),
        (added, "generated before the client shared the channel again"),
    ):
        if channel_ids:
            revoke_grant_keys(grant.id, reason, channel_ids=channel_ids, actor=actor)


def _announce(action: str, event: str, actor: Actor, grant: ConsentGrant, before, reason=None):
    announce(
        action,
        event,
        actor,
        target_type="grant",
        target_id=grant.id,
        organization_id=grant.client_id,
        before=before,
        after=grant_view(grant),
        partner_ids=[grant.partner_id],
        ordering_key=grant.client_id,
        reason=reason,
    )


def list_grants(
    actor: Actor, organization_kind: str, organization_id: str, *, include_revoked: bool = False
) -> list[ConsentGrant]:
    """Grants a partner received or a client gave, newest first."""
    enforce(can_read_grants(actor, organization_id, organization_kind))
    column = ConsentGrant.partner_id if organization_kind == "partner" else ConsentGrant.client_id
    query = sa.select(ConsentGrant).where(column == organization_id)
    if not include_revoked:
        query = query.where(ConsentGrant.revoked_at.is_(None))
    return list(db.session.scalars(query.order_by(ConsentGrant.created_at.desc(), ConsentGrant.id)))


def _grant_for_revocation(actor: Actor, client_id: str, grant_id: str) -> ConsentGrant:
    # Locked like an approval: a key generated under the grant meanwhile is revoked too.
    grant = grant_by_id(grant_id, lock=True)
    enforce(can_revoke_grant(actor, client_id, grant_facts(grant)))
    return grant


def revoke_grant(
    actor: Actor, client_id: str, grant_id: str, reason: str = "revoked by the client"
) -> ConsentGrant:
    """End a grant at once, with every key the partner generated under it; commit."""
    grant = _grant_for_revocation(actor, client_id, grant_id)
    before = grant_view(grant)
    grant.revoked_at = utcnow()
    grant.revoked_by_id = actor.subject
    grant.revoked_reason = reason[:200]
    revoke_grant_keys(grant.id, "the client revoked the grant", actor=actor)
    _announce("grant.revoked", "grant_revoked", actor, grant, before, reason)
    db.session.commit()
    return grant


def revoke_grant_channel(
    actor: Actor, client_id: str, grant_id: str, channel_id: str
) -> ConsentGrant:
    """Take one channel out of a grant at once, with the partner's keys on it; commit."""
    grant = _grant_for_revocation(actor, client_id, grant_id)
    if channel_id not in grant.channel_ids:
        raise NotFound("The grant does not cover this channel.")
    before = grant_view(grant)
    grant.channels = [gc for gc in grant.channels if gc.channel_id != channel_id]
    grant.updated_at = utcnow()
    db.session.flush()
    revoke_grant_keys(
        grant.id, "the client revoked the channel", channel_ids=[channel_id], actor=actor
    )
    _announce(
        "grant.changed", "grant_changed", actor, grant, before, f"channel {channel_id} revoked"
    )
    db.session.commit()
    return grant


def grant_for_token_response(context: dict | None) -> dict:
    """The ``grant`` member of the token response for a code issued on a consent approval."""
    grant_id = (context or {}).get("grant_id")
    if not grant_id:
        return {}
    grant = db.session.get(ConsentGrant, grant_id)
    if grant is None or not grant.is_active:
        return {}
    view = grant_view(grant)
    return {"grant": {k: view[k] for k in ("id", "client", "channels", "scope")}}
