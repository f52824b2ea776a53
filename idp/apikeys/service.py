"""Generating, listing, revoking and checking channel API keys.

Every decision comes from ``policies.apikeys``. Revocation helpers
(``revoke_channel_keys``, ``revoke_client_keys``, ``revoke_grant_keys``) add
their changes to the caller's transaction and never commit.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from idp import changes
from idp.accounts.service import hold_active_account
from idp.apikeys.keyformat import generate_key, hash_key, parse_lookup_id
from idp.apikeys.models import ChannelApiKey
from idp.auth.enforce import enforce
from idp.channels.models import Channel
from idp.consent.events import actor_fields, announce
from idp.consent.models import ConsentGrant, GrantChannel
from idp.consent.queries import active_grant, grant_facts, partners_granted_channel
from idp.errors import DomainError, NotFound
from idp.extensions import db
from idp.ids import PREFIXES, new_id
from idp.orgs.service import acting_now
from idp.timeutil import isoformat, utcnow
from policies.actor import Actor
from policies.apikeys import ChannelFacts, KeyFacts, can_manage_channel_keys, gateway_accepts
from policies.permissions import Permission

MAX_GRACE_SECONDS = 24 * 3600
_DUMMY_HASH = hash_key("d360_" + "0" * 61)


class InvalidApiKey(DomainError):
    """The presented API key is malformed, unknown, revoked or no longer allowed."""

    status, code, title = 401, "invalid_api_key", "Invalid API key"


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    """What the gateway learns from a valid key."""

    channel_id: str
    client_id: str
    partner_id: str | None


def _authorize(
    actor: Actor, permission: Permission, via_kind: str, via_id: str, channel_id: str, lock=False
) -> tuple[Channel | None, ConsentGrant | None]:
    query = sa.select(Channel).where(Channel.id == channel_id)
    if lock:
        # Serialises concurrent generations on PostgreSQL so one key survives. FOR NO
        # KEY UPDATE: a grant change adding the number (its foreign key check shares
        # the channel's key) must not wait for this generation, which waits for it.
        query = query.with_for_update(key_share=True)
    channel = db.session.scalar(query)
    grant = None
    if channel is not None and via_kind == "partner":
        # Locked too when generating: a change of the grant (it locks the same row
        # first) either commits before this decision reads the grant, or waits for
        # the new key to commit and then revokes it if the grant no longer allows it.
        grant = active_grant(via_id, channel.client_id, lock=lock)
    facts = ChannelFacts(channel.id, channel.client_id, channel.status) if channel else None
    enforce(can_manage_channel_keys(actor, permission, via_kind, via_id, facts, grant_facts(grant)))
    return channel, grant


def key_summary(key: ChannelApiKey) -> dict:
    """The audit and webhook view of a key (never the secret or its hash)."""
    return {
        "id": key.id,
        "prefix": key.prefix,
        "last_four": key.last_four,
        "channel_id": key.channel_id,
        "client_id": key.client_id,
        "partner_id": key.partner_id,
        "revoked_at": isoformat(key.revoked_at),
        "expires_at": isoformat(key.expires_at),
    }


def create_key(
    actor: Actor,
    via_kind: str,
    via_id: str,
    channel_id: str,
    grace_period_seconds: int | None = None,
) -> tuple[ChannelApiKey, str]:
    """Generate the channel's new key, retire its earlier ones, commit; returns (row, key text)."""
    if actor.user_id is not None:
        _hold_active_account(actor.user_id)
        # Judged by the roles the person holds now: a removal that came first is seen.
        actor = acting_now(actor, via_id)
    channel, grant = _authorize(
        actor, Permission.API_KEYS_CREATE, via_kind, via_id, channel_id, lock=True
    )
    grace = min(max(grace_period_seconds or 0, 0), MAX_GRACE_SECONDS)
    _retire_earlier_keys(channel.id, actor, grace)
    new = generate_key()
    who = actor_fields(actor)
    key = ChannelApiKey(
        id=new_id(PREFIXES["api_key"]),
        lookup_id=new.lookup_id,
        secret_hash=new.secret_hash,
        last_four=new.last_four,
        channel_id=channel.id,
        client_id=channel.client_id,
        partner_id=via_id if via_kind == "partner" else None,
        grant_id=grant.id if grant is not None else None,
        created_by_type=who["actor_type"],
        created_by_id=who["actor_id"] or "unknown",
        created_at=utcnow(),
    )
    db.session.add(key)
    db.session.flush()
    _announce("api_key.created", "api_key_created", actor, key, None)
    db.session.commit()
    return key, new.text


def _hold_active_account(user_id: str) -> None:
    """``hold_active_account`` until the key commits: a disabling, or an owner removing
    the person (``idp.orgs.members``), that comes later waits for this key. Taken before
    the channel, in the order a disabling takes the account and keys."""
    hold_active_account(user_id)


def _announce(
    action: str, event: str | None, actor: Actor | None, key: ChannelApiKey, before, reason=None
) -> None:
    """Audit a key change and tell the partners concerned with the key.

    Those are the partner that generated it and the partners whose active grant
    covers its number (they may manage that number's keys): the event names the
    key's partner, so other partners watching the client are not told.
    """
    announce(
        action,
        event,
        actor,
        target_type="api_key",
        target_id=key.id,
        organization_id=key.client_id,
        before=before,
        after=key_summary(key),
        partner_ids=[key.partner_id, *partners_granted_channel(key.channel_id)],
        ordering_key=key.channel_id,
        reason=reason,
    )


def _retire_earlier_keys(channel_id: str, actor: Actor | None, grace: int) -> None:
    now = utcnow()
    if grace == 0:
        _revoke_rows(_usable_keys(ChannelApiKey.channel_id == channel_id), "replaced", actor)
        return
    until = now + timedelta(seconds=grace)
    for key in db.session.scalars(_usable_keys(ChannelApiKey.channel_id == channel_id)):
        if key.expires_at is None or key.expires_at > until:
            before = key_summary(key)
            key.expires_at = until
            reason = f"a new key was generated; this one works for {grace} more seconds"
            # Its partner learns when the key stops working, as it learns of a revocation.
            _announce("api_key.replaced", "api_key_replaced", actor, key, before, reason)


def list_keys(actor: Actor, via_kind: str, via_id: str, channel_id: str) -> list[ChannelApiKey]:
    """The channel's keys, newest first, without secrets."""
    channel, _ = _authorize(actor, Permission.API_KEYS_READ, via_kind, via_id, channel_id)
    return list(
        db.session.scalars(
            sa.select(ChannelApiKey)
            .where(ChannelApiKey.channel_id == channel.id)
            .order_by(ChannelApiKey.created_at.desc(), ChannelApiKey.id)
        )
    )


def revoke_key(
    actor: Actor, via_kind: str, via_id: str, channel_id: str, key_id: str
) -> ChannelApiKey:
    """Revoke one key of the channel at once and commit (revoking twice changes nothing)."""
    channel, _ = _authorize(actor, Permission.API_KEYS_REVOKE, via_kind, via_id, channel_id)
    key = db.session.get(ChannelApiKey, key_id)
    if key is None or key.channel_id != channel.id:
        raise NotFound("No such API key on this channel.")
    if key.revoked_at is None:
        _revoke_rows(sa.select(ChannelApiKey).where(ChannelApiKey.id == key.id), "revoked", actor)
        db.session.commit()
    return key


def _usable_keys(*criteria) -> sa.Select:
    return sa.select(ChannelApiKey).where(ChannelApiKey.revoked_at.is_(None), *criteria)


def _revoke_rows(query: sa.Select, reason: str, actor: Actor | None) -> int:
    now = utcnow()
    count = 0
    for key in db.session.scalars(query):
        before = key_summary(key)
        key.revoked_at = now
        key.revoked_reason = reason[:200]
        _announce("api_key.revoked", "api_key_revoked", actor, key, before, reason)
        count += 1
    db.session.flush()
    return count


def revoke_channel_keys(channel_id: str, reason: str, *, actor: Actor | None = None) -> int:
    """Revoke every key of a channel (e.g. it was terminated); caller commits. Returns the count."""
    return _revoke_rows(_usable_keys(ChannelApiKey.channel_id == channel_id), reason, actor)


def revoke_client_keys(client_id: str, reason: str, *, actor: Actor | None = None) -> int:
    """Revoke every key on every channel of a client (e.g. it was disabled); caller commits."""
    return _revoke_rows(_usable_keys(ChannelApiKey.client_id == client_id), reason, actor)


def revoke_grant_keys(
    grant_id: str,
    reason: str,
    *,
    channel_ids: list[str] | None = None,
    actor: Actor | None = None,
) -> int:
    """Revoke the keys a partner generated under a grant (optionally on some channels only)."""
    criteria = [ChannelApiKey.grant_id == grant_id]
    if channel_ids is not None:
        criteria.append(ChannelApiKey.channel_id.in_(channel_ids))
    return _revoke_rows(_usable_keys(*criteria), reason, actor)


_CHECK_QUERY = (
    sa.select(
        ChannelApiKey.secret_hash,
        ChannelApiKey.channel_id,
        ChannelApiKey.client_id,
        ChannelApiKey.partner_id,
        ChannelApiKey.revoked_at,
        ChannelApiKey.expires_at,
        Channel.status,
        ConsentGrant.revoked_at.label("grant_revoked_at"),
        ConsentGrant.scope.label("grant_scope"),
        GrantChannel.channel_id.label("granted_channel_id"),
    )
    .join(Channel, Channel.id == ChannelApiKey.channel_id)
    .outerjoin(ConsentGrant, ConsentGrant.id == ChannelApiKey.grant_id)
    .outerjoin(
        GrantChannel,
        sa.and_(
            GrantChannel.grant_id == ChannelApiKey.grant_id,
            GrantChannel.channel_id == ChannelApiKey.channel_id,
        ),
    )
    .where(ChannelApiKey.lookup_id == sa.bindparam("lookup_id"))
)


# What a gateway check reads; any change to these tables, committed anywhere,
# drops every instance's cached check rows on its next request (``idp.changes``).
# Of new rows only a grant's new channel matters: it can newly cover a cached
# key's channel, while a new key, channel or grant was never cached.
KEY_STATE = changes.counter(
    "api-keys",
    "channel_api_keys",
    "channels",
    "consent_grants",
    "consent_grant_channels",
    inserts=("consent_grant_channels",),
)
_checked = changes.cache("api-key-checks", KEY_STATE, max_entries=20_000)


def _read_check_row(lookup_id: str):
    # A read-only autocommit connection: one round trip, no BEGIN/ROLLBACK around it.
    with db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        return conn.execute(_CHECK_QUERY, {"lookup_id": lookup_id}).first()


def check_key(text: str | None) -> KeyIdentity:
    """Identify a presented key, or raise ``InvalidApiKey``.

    One indexed query, or with Redis a per-process copy of its row kept until
    any key, channel or grant changes anywhere: a revocation committed by any
    instance refuses the key on the very next check everywhere. The secret
    and the key's state are checked on every call.
    """
    lookup_id = parse_lookup_id((text or "").strip())
    if lookup_id is None:
        raise InvalidApiKey("The API key is invalid or revoked.")
    row = _checked.get(lookup_id, lambda: _read_check_row(lookup_id))
    presented = hash_key(text.strip())
    stored = row.secret_hash if row is not None else _DUMMY_HASH
    if not hmac.compare_digest(presented, stored) or row is None:
        raise InvalidApiKey("The API key is invalid or revoked.")
    facts = KeyFacts(
        revoked_at=row.revoked_at,
        expires_at=row.expires_at,
        channel_status=row.status,
        partner_id=row.partner_id,
        grant_revoked_at=row.grant_revoked_at,
        grant_covers_channel=row.granted_channel_id is not None,
        grant_scopes=frozenset(row.grant_scope.split()) if row.grant_scope else frozenset(),
    )
    if not gateway_accepts(facts, utcnow()):
        raise InvalidApiKey("The API key is invalid or revoked.")
    return KeyIdentity(row.channel_id, row.client_id, row.partner_id)
