"""Read-only lookups of grants shared by the consent and API-key services."""

from __future__ import annotations

import sqlalchemy as sa

from idp.consent.models import ConsentGrant, GrantChannel
from idp.extensions import db
from policies.consent import GrantFacts


def active_grant(partner_id: str, client_id: str, *, lock: bool = False) -> ConsentGrant | None:
    """The partner's active grant from the client, if there is one (``lock``: see ``_locked``)."""
    query = sa.select(ConsentGrant).where(
        ConsentGrant.partner_id == partner_id,
        ConsentGrant.client_id == client_id,
        ConsentGrant.revoked_at.is_(None),
    )
    return db.session.scalar(_locked(query) if lock else query)


def grant_by_id(grant_id: str, *, lock: bool = False) -> ConsentGrant | None:
    """One grant, active or not (``lock``: see ``_locked``)."""
    query = sa.select(ConsentGrant).where(ConsentGrant.id == grant_id)
    return db.session.scalar(_locked(query) if lock else query)


def _locked(query: sa.Select) -> sa.Select:
    # The grant row is where a grant's changes and the partner's key generations
    # under it take turns (PostgreSQL; SQLite runs one writer at a time anyway):
    # the second waits for the first to commit, then reads the grant, and its
    # channels, afresh.
    return query.with_for_update().execution_options(populate_existing=True)


def grant_facts(grant: ConsentGrant | None) -> GrantFacts | None:
    """The policy's view of a grant."""
    if grant is None:
        return None
    return GrantFacts(
        id=grant.id,
        client_id=grant.client_id,
        partner_id=grant.partner_id,
        scopes=grant.scopes,
        channel_ids=frozenset(grant.channel_ids),
        active=grant.is_active,
    )


def grant_includes(scope: str) -> sa.ColumnElement[bool]:
    """SQL condition on ``ConsentGrant``: its space-separated scopes include ``scope``."""
    padded = sa.literal(" ") + ConsentGrant.scope + sa.literal(" ")
    return padded.contains(f" {scope} ", autoescape=True)


def partners_granted_channel(channel_id: str, *, scope: str | None = None) -> list[str]:
    """Ids of the partners whose active grant covers the channel (and includes ``scope``)."""
    query = (
        sa.select(ConsentGrant.partner_id)
        .join(GrantChannel, GrantChannel.grant_id == ConsentGrant.id)
        .where(GrantChannel.channel_id == channel_id, ConsentGrant.revoked_at.is_(None))
    )
    if scope is not None:
        query = query.where(grant_includes(scope))
    return list(db.session.scalars(query))
