"""What partners and clients see of the account structure: clients, WABAs, numbers, details."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from idp.auth.enforce import enforce
from idp.channels.cursor import Page, after, cut
from idp.channels.models import Channel, Waba
from idp.channels.numbers import number_search_digits
from idp.channels.queries import (
    channels_of_partner,
    client_relation,
    clients_of_partner,
    has_api_key,
    last_grant_state,
    status_counts,
)
from idp.consent.models import ConsentGrant, GrantChannel
from idp.extensions import db
from idp.orgs.models import Organization
from policies.actor import Actor
from policies.partners import (
    can_list_partner_channels,
    can_list_partner_clients,
    can_view_client_accounts,
    can_view_client_channel,
    can_view_partner_channel,
    client_may_manage_keys,
    partner_may_manage_keys,
)


@dataclass
class ClientRow:
    """One client in a partner's list."""

    client: Organization
    onboarded_by_you: bool
    grant: ConsentGrant | None
    channel_counts: dict[str, int] = field(default_factory=dict)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def partner_clients(
    actor: Actor,
    partner_id: str,
    *,
    limit: int,
    cursor: str | None = None,
    q: str | None = None,
    grant_state: str | None = None,
) -> Page:
    """The clients a partner onboarded or holds a grant from, oldest first."""
    enforce(can_list_partner_clients(actor, partner_id))
    query = sa.select(Organization).where(clients_of_partner(partner_id))
    if q:
        query = query.where(Organization.name.ilike(_like(q.strip()), escape="\\"))
    if grant_state is not None:
        granted = (
            sa.select(ConsentGrant.id)
            .where(
                ConsentGrant.client_id == Organization.id,
                ConsentGrant.partner_id == partner_id,
                ConsentGrant.revoked_at.is_(None),
            )
            .exists()
        )
        query = query.where(granted if grant_state == "active" else ~granted)
    query = after(query, (Organization.created_at, Organization.id), cursor)
    clients = list(db.session.scalars(query.limit(limit + 1)))
    page = cut(clients, limit, lambda c: (c.created_at, c.id))
    ids = [c.id for c in page.items]
    grants = last_grant_state({cid: partner_id for cid in ids})
    counts = status_counts(partner_id, ids)
    page.items = [
        ClientRow(c, c.onboarding_partner_id == partner_id, grants.get(c.id), counts[c.id])
        for c in page.items
    ]
    return page


def _channel_rows(
    base: sa.Select,
    *,
    limit: int,
    cursor: str | None,
    status: str | None,
    client_id: str | None,
    number: str | None,
) -> Page:
    query = base.options(joinedload(Channel.waba), joinedload(Channel.client))
    if status:
        query = query.where(Channel.status == status)
    if client_id:
        query = query.where(Channel.client_id == client_id)
    if number:
        digits = number_search_digits(number)
        query = query.where(Channel.phone_number.like(_like(digits), escape="\\"))
    query = after(query, (Channel.created_at, Channel.id), cursor)
    rows = list(db.session.scalars(query.limit(limit + 1)).unique())
    return cut(rows, limit, lambda ch: (ch.created_at, ch.id))


def partner_channels(actor: Actor, partner_id: str, *, limit: int, cursor=None, **filters) -> Page:
    """One row per number the partner sees, oldest first, filtered and searchable."""
    enforce(can_list_partner_channels(actor, partner_id))
    base = (
        sa.select(Channel)
        .join(Organization, Organization.id == Channel.client_id)
        .where(channels_of_partner(partner_id))
    )
    return _channel_rows(base, limit=limit, cursor=cursor, **filters)


def client_channels(actor: Actor, client_id: str, *, limit: int, cursor=None, **filters) -> Page:
    """One row per number of the client's own WABAs, oldest first."""
    enforce(can_view_client_accounts(actor, client_id))
    filters["client_id"] = client_id
    return _channel_rows(
        sa.select(Channel).where(Channel.client_id == client_id),
        limit=limit,
        cursor=cursor,
        **filters,
    )


def client_wabas(actor: Actor, client_id: str) -> list[Waba]:
    """The client's WhatsApp Business Accounts with their numbers."""
    enforce(can_view_client_accounts(actor, client_id))
    return list(
        db.session.scalars(
            sa.select(Waba)
            .where(Waba.client_id == client_id)
            .options(selectinload(Waba.channels))
            .order_by(Waba.created_at, Waba.id)
        )
    )


def _channel(channel_id: str) -> Channel | None:
    return db.session.scalar(
        sa.select(Channel)
        .where(Channel.id == channel_id)
        .options(
            joinedload(Channel.waba),
            joinedload(Channel.client),
            selectinload(Channel.history),
        )
    )


def partner_channel_detail(actor: Actor, partner_id: str, channel_id: str) -> dict[str, Any]:
    """One number's full status as the partner sees it ("Show details")."""
    channel = _channel(channel_id)
    relation = client_relation(partner_id, channel.client_id) if channel else None
    enforce(can_view_partner_channel(actor, partner_id, relation, channel_id))
    grant = relation.grant
    keys = partner_may_manage_keys(partner_id, channel.id, channel.status, grant)
    return {
        "channel": channel,
        "history": channel.history,
        "grant": {
            "state": "active" if grant else "none",
            "scopes": sorted(grant.scopes) if grant else [],
            "covers_channel": bool(grant and channel.id in grant.channel_ids),
        },
        "has_api_key": has_api_key(channel.id),
        "may_act": _may_act(channel, keys),
    }


def client_channel_detail(actor: Actor, client_id: str, channel_id: str) -> dict[str, Any]:
    """One of the client's own numbers with its history and the partners granted it."""
    channel = _channel(channel_id)
    enforce(can_view_client_channel(actor, client_id, channel.client_id if channel else None))
    partners = list(
        db.session.scalars(
            sa.select(ConsentGrant)
            .join(GrantChannel, GrantChannel.grant_id == ConsentGrant.id)
            .where(GrantChannel.channel_id == channel.id, ConsentGrant.revoked_at.is_(None))
            .options(joinedload(ConsentGrant.partner))
        ).unique()
    )
    return {
        "channel": channel,
        "history": channel.history,
        "granted_partners": [
            {"partner_id": g.partner_id, "partner_name": g.partner.name, "scopes": sorted(g.scopes)}
            for g in partners
        ],
        "has_api_key": has_api_key(channel.id),
        "may_act": _may_act(channel, None),
    }


def _may_act(channel: Channel, partner_keys) -> dict[str, Any]:
    """Who may do what on the number right now, with the reason when not."""
    client_keys = client_may_manage_keys(channel.status)
    acts = {
        "status_changes": "platform",
        "client_manage_api_keys": {"allowed": client_keys.allowed, "reason": client_keys.reason},
    }
    if partner_keys is not None:
        acts["partner_manage_api_keys"] = {
            "allowed": partner_keys.allowed,
            "reason": partner_keys.reason,
        }
    return acts
