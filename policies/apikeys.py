"""Channel API keys: who may generate, list or revoke them, and when the gateway accepts one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from policies.actor import Actor
from policies.channels import allows_api_keys
from policies.consent import SCOPE_API_KEYS_MANAGE, GrantFacts
from policies.decision import Decision
from policies.organizations import can_act_in_org
from policies.permissions import Permission

KEY_PERMISSIONS = (Permission.API_KEYS_CREATE, Permission.API_KEYS_READ, Permission.API_KEYS_REVOKE)


@dataclass(frozen=True, slots=True)
class ChannelFacts:
    """The facts about a channel that key rules need."""

    id: str
    client_id: str
    status: str


@dataclass(frozen=True, slots=True)
class KeyFacts:
    """What the gateway check learned about a presented key in its one query."""

    revoked_at: datetime | None
    expires_at: datetime | None
    channel_status: str
    partner_id: str | None
    grant_revoked_at: datetime | None = None
    grant_covers_channel: bool = False
    grant_scopes: frozenset[str] = frozenset()


def can_manage_channel_keys(
    actor: Actor,
    permission: Permission,
    via_kind: str,
    via_id: str,
    channel: ChannelFacts | None,
    grant: GrantFacts | None = None,
) -> Decision:
    """A channel's keys are managed by its client, or by a partner whose active grant covers it.

    ``via_kind``/``via_id`` name the organization in the request path (the
    client's or the partner's); ``grant`` is that partner's active grant from
    the channel's client, if any. Generating also needs a channel status that
    allows keys.
    """
    if permission not in KEY_PERMISSIONS:
        return Decision.deny(f"{permission} is not a key permission", "invalid_permission")
    decision = can_act_in_org(actor, permission, via_id, via_kind)
    if not decision:
        return decision
    if channel is None:
        return Decision.deny("no such channel", "not_found")
    if via_kind == "client":
        if channel.client_id != via_id:
            return Decision.deny("the channel belongs to another client", "not_found")
    elif via_kind == "partner":
        decision = _partner_grant_covers(via_id, channel, grant)
        if not decision:
            return decision
    else:
        return Decision.deny("keys are managed by clients and granted partners", "not_found")
    if permission == Permission.API_KEYS_CREATE:
        return allows_api_keys(channel.status)
    return Decision.allow(f"{permission} allowed on this channel")


def _partner_grant_covers(partner_id: str, channel: ChannelFacts, grant: GrantFacts | None):
    if (
        grant is None
        or not grant.active
        or grant.partner_id != partner_id
        or grant.client_id != channel.client_id
    ):
        # Without a grant from the channel's client the partner must not learn it exists.
        return Decision.deny("no such channel", "not_found")
    if channel.id not in grant.channel_ids:
        return Decision.deny("the client has not granted you this channel", "grant_required")
    if SCOPE_API_KEYS_MANAGE not in grant.scopes:
        return Decision.deny("the client has not allowed you to manage API keys", "scope_required")
    return Decision.allow("an active grant covers this channel")


def gateway_accepts(key: KeyFacts, now: datetime) -> Decision:
    """The gateway accepts an unrevoked, in-date key on a keyed channel that is still granted.

    A partner's key needs its grant active, covering the channel and still
    allowing the partner to manage keys.
    """
    if key.revoked_at is not None:
        return Decision.deny("the key is revoked", "revoked")
    if key.expires_at is not None and key.expires_at <= now:
        return Decision.deny("the key was replaced", "replaced")
    status = allows_api_keys(key.channel_status)
    if not status:
        return status
    if key.partner_id is None:
        return Decision.allow("the key is valid")
    if key.grant_revoked_at is not None or not key.grant_covers_channel:
        return Decision.deny("the client no longer grants this channel", "grant_revoked")
    if SCOPE_API_KEYS_MANAGE not in key.grant_scopes:
        return Decision.deny("the client no longer lets the partner manage keys", "scope_required")
    return Decision.allow("the key is valid")
