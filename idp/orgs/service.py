"""The support organization, which every support account and platform client belongs to;
a person's roles in an organization as they are now."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from idp.accounts.service import hold_active_account
from idp.audit.service import record_event
from idp.extensions import db
from idp.orgs.models import Membership, Organization
from policies.actor import Actor

SUPPORT_NAME = "Support"


def support_organization(actor: dict[str, str | None]) -> Organization:
    """The (oldest) support organization, created under ``actor`` when there is none yet.

    ``actor`` holds the audit ``actor_type``/``actor_id``; the caller commits.
    Of two callers finding none at once, one stores it (``first_of`` is
    UNIQUE) and the other, refused, takes that one: on PostgreSQL once the
    first has committed, since the second insert waits for it.
    """
    found = db.session.scalar(
        db.select(Organization)
        .where(Organization.kind == "support")
        .order_by(Organization.created_at, Organization.id)
        .limit(1)
    )
    if found is not None:
        return found
    created = Organization.create("support", SUPPORT_NAME, first_of="support")
    try:
        with db.session.begin_nested():
            db.session.add(created)
            db.session.flush()  # before the rows that name it without a relationship (a client)
    except IntegrityError:
        return db.session.scalars(
            db.select(Organization).where(Organization.first_of == "support")
        ).one()
    record_event(
        "organization.created",
        **actor,
        target_type="organization",
        target_id=created.id,
        organization_id=created.id,
        after={"kind": "support", "name": SUPPORT_NAME},
    )
    return created


def acting_now(actor: Actor, organization_id: str) -> Actor:
    """``actor`` with a person's roles in ``organization_id`` as they are now.

    A token carries the roles of when it was issued; an owner may have taken
    one away since. Read after the locks that order the request against such a
    change (``idp.orgs.members``), this is what a policy should judge. A
    machine's scopes are its own: returned as it is.
    """
    if actor.user_id is None:
        return actor
    roles = db.session.scalars(
        sa.select(Membership.role).where(
            Membership.organization_id == organization_id, Membership.user_id == actor.user_id
        )
    )
    return dataclasses.replace(actor, roles=frozenset(roles))


def hold_acting_person(actor: Actor, organization_id: str) -> Actor:
    """Hold a person's account active until the caller commits; ``actor`` as it acts now.

    For a write that leaves something lasting (a key, a client secret, an
    invitation, a webhook): a disabling, or an owner removing the person or
    taking their role (``idp.orgs.members``), either came first (refused:
    ``Unauthorized`` here, or the policy judging the roles read after the hold)
    or waits for the caller's commit and then finds what it wrote. A machine
    is returned as it is.
    """
    if actor.user_id is None:
        return actor
    hold_active_account(actor.user_id)
    return acting_now(actor, organization_id)
