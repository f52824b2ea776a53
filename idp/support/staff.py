"""Support accounts made by the operator: no password until their owner chooses one by email."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from idp.accounts.models import User
from idp.accounts.reset import send_password_reset
from idp.accounts.service import (
    EmailTaken,
    checked_name,
    hub_name,
    parse_address,
    user_by_email,
)
from idp.audit.service import record_event
from idp.extensions import db
from idp.orgs.models import Membership
from idp.orgs.service import support_organization

TAKEN = "An account of the {hub} already uses this address (one account per address)."


def create_staff(email: str, name: str, role: str, *, actor: dict) -> User:
    """Create a support account with ``role`` and no password, and email it a link to set one.

    The address is read as at sign-up; one already used by any account is
    refused. ``actor`` holds the audit ``actor_type``/``actor_id``. Commits.
    """
    address = parse_address(email)
    name = checked_name(name, "name", "name")
    existing = user_by_email(address.normalized)
    if existing is not None:
        raise EmailTaken(TAKEN.format(hub=hub_name(existing.hub)))
    organization = support_organization(actor)
    user = User.create(
        email=address.display,
        email_normalized=address.normalized,
        hub="support",
        name=name,
        email_verified=False,
    )
    db.session.add_all([user, Membership.create(user, organization, role)])
    record_event(
        "account.created",
        **actor,
        target_type="user",
        target_id=user.id,
        organization_id=organization.id,
        after={
            "hub": "support",
            "organization_id": organization.id,
            "role": role,
            "via": "operator",
        },
    )
    try:
        db.session.flush()  # the UNIQUE address decides a race with a sign-up or an import
    except IntegrityError:
        db.session.rollback()
        raise EmailTaken("Another account took this address meanwhile.") from None
    send_password_reset(user, first=True)
    db.session.commit()
    return user
