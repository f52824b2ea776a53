"""Support staff, their tokens, and accounts to work on."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from idp.accounts.models import User
from idp.extensions import db
from idp.outbox.models import OutboxMessage
from tests.factories import bearer_for, make_org, make_user


@dataclass
class Staff:
    org: object
    agent: User
    admin: User
    agent_auth: dict
    admin_auth: dict


@pytest.fixture
def staff(app_ctx) -> Staff:
    org = make_org("support", "Support")
    agent = make_user("support", org, "agent", email="agent@support.example")
    admin = make_user("support", org, "admin", email="admin@support.example")
    return Staff(org, agent, admin, bearer_for(agent, org), bearer_for(admin, org))


def emails_to(address: str) -> list[OutboxMessage]:
    """Outbox emails queued for ``address``."""
    return list(
        db.session.scalars(
            db.select(OutboxMessage).where(
                OutboxMessage.kind == "email", OutboxMessage.recipient == address
            )
        )
    )


def fresh(model, pk):
    """Re-read a row from the database (what another request would see)."""
    db.session.expire_all()
    return db.session.get(model, pk)
