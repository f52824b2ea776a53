"""Read-side lookups of who is tied to whom: the one place the grant and key tables are joined."""

from __future__ import annotations

import sqlalchemy as sa

from idp.apikeys.models import channel_has_active_key
from idp.channels.models import Channel
from idp.consent.models import ConsentGrant, GrantChannel
from idp.consent.queries import (
    active_grant,
    grant_facts,
    grant_includes,
    partners_granted_channel,
)
from idp.extensions import db
from idp.orgs.models import Organization
from policies.consent import SCOPE_CHANNELS_READ, GrantFacts
from policies.partners import ClientRelation


def _active_grant_exists(partner_id: str, client_column) -> sa.Exists:
    return (
        sa.select(ConsentGrant.id)
        .where(
            ConsentGrant.client_id == client_column,
            ConsentGrant.partner_id == partner_id,
            ConsentGrant.revoked_at.is_(None),
        )
        .exists()
    )


def clients_of_partner(partner_id: str) -> sa.ColumnElement[bool]:
    """SQL condition on ``Organization``: a client the partner onboarded or holds a grant from.

    Mirrors ``policies.partners.partner_sees_client`` for listings, where the
    rule has to run inside the query to paginate.
    """
    return sa.and_(
        Organization.kind == "client",
        sa.or_(
            Organization.onboarding_partner_id == partner_id,
            _active_grant_exists(partner_id, Organization.id),
        ),
    )


def _status_shared(partner_id: str) -> sa.Exists:
    """On ``Channel``: an active grant of its client covers it with ``channels:read``."""
    return (
        sa.select(GrantChannel.channel_id)
        .join(ConsentGrant, ConsentGrant.id == GrantChannel.grant_id)
        .where(
            GrantChannel.channel_id == Channel.id,
            ConsentGrant.client_id == Channel.client_id,
            ConsentGrant.partner_id == partner_id,
            ConsentGrant.revoked_at.is_(None),
            grant_includes(SCOPE_CHANNELS_READ),
        )
        .exists()
    )


def channels_of_partner(partner_id: str) -> sa.ColumnElement[bool]:
    """SQL condition on ``Channel`` joined with its client (``Organization``): a number the
    partner sees, because it onboarded the client or the client shares the number's status.

    Mirrors ``policies.partners.partner_sees_channel`` for listings and counts.
    """
    return sa.and_(
        Organization.kind == "client",
        sa.or_(
            Organization.onboarding_partner_id == partner_id,
            _status_shared(partner_id),
        ),
    )


def client_relation(partner_id: str, client_id: str) -> ClientRelation | None:
    """The facts ``partner_sees_client`` and ``partner_sees_channel`` need, or None."""
    client = db.session.get(Organization, client_id)
    if client is None or client.kind != "client":
        return None
    return ClientRelation(
        client_id=client.id,
        onboarding_partner_id=client.onboarding_partner_id,
        grant=partner_grant(partner_id, client.id),
    )


def partners_watching(client_id: str, channel_id: str) -> list[str]:
    """Partners told about a number's changes: the client's onboarding partner and the
    partners whose active grant covers the number with ``channels:read``."""
    client = db.session.get(Organization, client_id)
    watchers = set(partners_granted_channel(channel_id, scope=SCOPE_CHANNELS_READ))
    if client is not None and client.onboarding_partner_id:
        watchers.add(client.onboarding_partner_id)
    return sorted(watchers)


def partner_grant(partner_id: str, client_id: str) -> GrantFacts | None:
    """The partner's active grant from the client, as policy facts."""
    return grant_facts(active_grant(partner_id, client_id))


def last_grant_state(partner_ids_by_client: dict[str, str]) -> dict[str, ConsentGrant]:
    """The newest grant (active first) of each ``client -> partner`` pair."""
    if not partner_ids_by_client:
        return {}
    rows = db.session.scalars(
        sa.select(ConsentGrant)
        .where(
            ConsentGrant.client_id.in_(list(partner_ids_by_client)),
            ConsentGrant.partner_id.in_(set(partner_ids_by_client.values())),
        )
        .order_by(ConsentGrant.created_at)
    )
    newest: dict[str, ConsentGrant] = {}
    for grant in rows:
        if partner_ids_by_client.get(grant.client_id) != grant.partner_id:
            continue
        current = newest.get(grant.client_id)
        if current is None or current.revoked_at is not None or grant.revoked_at is None:
            newest[grant.client_id] = grant
    return newest


def status_counts(partner_id: str, client_ids: list[str]) -> dict[str, dict[str, int]]:
    """Number of channels per status for each client, of those the partner sees."""
    counts: dict[str, dict[str, int]] = {cid: {} for cid in client_ids}
    if not client_ids:
        return counts
    rows = db.session.execute(
        sa.select(Channel.client_id, Channel.status, sa.func.count())
        .join(Organization, Organization.id == Channel.client_id)
        .where(Channel.client_id.in_(client_ids), channels_of_partner(partner_id))
        .group_by(Channel.client_id, Channel.status)
    )
    for client_id, status, n in rows:
        counts[client_id][status] = n
    return counts


def has_api_key(channel_id: str) -> bool:
    """Whether the channel has a working API key (never the key itself)."""
    return channel_has_active_key(channel_id)
