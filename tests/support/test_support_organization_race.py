"""Two ``idp support create-staff`` runs at once on a database without a support
organization make one support organization, and both people join it.

The command is paused between finding no support organization and storing
its own, or between storing it and committing, while the other run goes
through on its own connection (``tests.consent.interleave``).
"""

from __future__ import annotations

import pytest

from idp.accounts.models import User
from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.operator import operator_actor
from idp.orgs.models import Membership, Organization
from idp.support import staff
from tests.consent.interleave import Competitor, pause_before

ACTOR = operator_actor("support create-staff")


def _other_run(app):
    return Competitor(
        app, lambda: staff.create_staff("bo@support.example", "Bo", "agent", actor=ACTOR)
    )


def _one_support_organization_holding_both() -> None:
    db.session.rollback()
    [support] = db.session.scalars(db.select(Organization).where(Organization.kind == "support"))
    members = db.session.scalars(
        db.select(User.email).join(Membership).where(Membership.organization_id == support.id)
    )
    assert sorted(members) == ["ada@support.example", "bo@support.example"]
    created = db.select(db.func.count()).where(AuditEvent.action == "organization.created")
    assert db.session.scalar(created) == 1


def test_a_run_that_finds_no_support_organization_joins_the_one_made_meanwhile(
    app_ctx, monkeypatch
):
    competitor = _other_run(app_ctx)
    pause_before(monkeypatch, Organization, "create", competitor)
    user = staff.create_staff("ada@support.example", "Ada", "admin", actor=ACTOR)
    assert competitor.finish() is not None
    assert user.memberships[0].role == "admin"
    _one_support_organization_holding_both()


@pytest.mark.postgres
def test_a_run_that_stores_its_support_organization_second_waits_and_joins_the_first(
    app_ctx, monkeypatch
):
    # The other run's insert waits for this uncommitted one, then joins it.
    competitor = _other_run(app_ctx)
    pause_before(monkeypatch, staff, "send_password_reset", competitor)
    staff.create_staff("ada@support.example", "Ada", "admin", actor=ACTOR)
    competitor.finish()
    _one_support_organization_holding_both()
