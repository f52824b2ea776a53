"""A support admin removes the second step of a person who lost their phone."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.mfa.models import RecoveryCode, TwoStepSecret
from idp.oauth.models import TokenFamily
from idp.outbox.models import OutboxMessage
from tests.factories import bearer_for, make_org, make_user
from tests.mfa.helpers import enrol, password_then
from tests.oauth.conftest import BrowserClient, Flow, csrf_from, tokens_for
from tests.test_hostile_forms import login

REASON = "Lost the phone; identity checked on a call"


@pytest.fixture
def staff(app_ctx):
    support = make_org("support", "Support")
    admin = make_user("support", support, "admin", email="admin@support.example")
    agent = make_user("support", support, "agent", email="agent@support.example")
    db.session.commit()
    return {"admin": admin, "agent": agent}


def _console(app, email: str, user_id: str):
    browser = login(app, email, hub="support")
    page = browser.get(f"/support/accounts/{user_id}")
    assert page.status_code == 200, page.text
    return browser, page


def _reset(browser, page, user_id: str, ticket: str = "SUP-7"):
    data = {
        "csrf_token": csrf_from(page.text),
        "action": "two_step_reset",
        "ticket": ticket,
        "reason": REASON,
    }
    return browser.post(f"/support/accounts/{user_id}/controls", data=data)


def test_an_admin_removes_the_second_step_and_signs_the_person_out(app, partner_world, staff):
    owner = partner_world["owner"]
    user_id, email = owner.id, owner.email
    here = login(app, email)
    enrol(here)
    browser, page = _console(app, "admin@support.example", user_id)
    assert 'id="two-step">on<' in page.text
    assert 'value="two_step_reset"' in page.text

    done = _reset(browser, page, user_id)
    assert done.status_code == 303
    after = browser.get(f"/support/accounts/{user_id}").text
    assert "Two-step sign-in is removed" in after and 'id="two-step">off<' in after

    db.session.expire_all()
    assert db.session.get(TwoStepSecret, user_id) is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RecoveryCode)) == 0
    # Signed out everywhere; the password alone signs in again.
    assert here.get("/login/done").status_code == 302
    assert password_then(BrowserClient(app), email).headers["Location"] == "/login/done"
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "account.two_step_reset")
    ).one()
    assert (event.actor_id, event.target_id) == (staff["admin"].id, user_id)
    assert (event.ticket, event.reason) == ("SUP-7", REASON)
    [notice] = db.session.scalars(
        sa.select(OutboxMessage).where(
            OutboxMessage.recipient == email, OutboxMessage.subject.like("%removed two-step%")
        )
    ).all()
    assert "signed out" in notice.body


def test_the_reset_ends_the_persons_token_families(app, partner_world, staff):
    owner = partner_world["owner"]
    flow = Flow(BrowserClient(app))
    tokens_for(flow, owner.email, partner_world["acme"].id)  # a hub login before set-up
    enrol(login(app, owner.email))
    browser, page = _console(app, "admin@support.example", owner.id)
    assert _reset(browser, page, owner.id).status_code == 303
    db.session.expire_all()
    live = sa.select(sa.func.count()).where(
        TokenFamily.user_id == owner.id, TokenFamily.revoked_at.is_(None)
    )
    assert db.session.scalar(live) == 0


def test_an_agent_may_not_remove_it(app, partner_world, staff):
    owner = partner_world["owner"]
    enrol(login(app, owner.email))
    browser, page = _console(app, "agent@support.example", owner.id)
    assert 'value="two_step_reset"' not in page.text
    refused = _reset(browser, page, owner.id)
    assert refused.status_code == 403
    assert db.session.get(TwoStepSecret, owner.id) is not None
    denied = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "support.access_denied")
    ).all()
    assert denied and denied[-1].after["permission"] == "support_accounts:reset_two_step"


def test_a_ticket_is_required_and_an_account_without_it_is_refused(app, partner_world, staff):
    owner = partner_world["owner"]
    browser, page = _console(app, "admin@support.example", owner.id)
    missing = _reset(browser, page, owner.id, ticket="")
    assert missing.status_code == 422 and 'aria-invalid="true"' in missing.text
    none = _reset(browser, page, owner.id)
    assert none.status_code == 409
    assert re.search(r"no two-step sign-in", none.text)
    assert not db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "account.two_step_reset")
    ).all()


def test_the_support_api_removes_it_too(app, client, partner_world, staff):
    owner = partner_world["owner"]
    flow = Flow(BrowserClient(app))
    tokens_for(flow, owner.email, partner_world["acme"].id)
    enrol(login(app, owner.email))
    support = staff["admin"].memberships[0].organization
    url = f"/v1/support/accounts/{owner.id}/two-step-reset"
    body = {"ticket": "SUP-8", "reason": REASON}

    refused = client.post(url, json=body, headers=bearer_for(staff["agent"], support))
    assert refused.status_code == 403
    assert db.session.get(TwoStepSecret, owner.id) is not None

    done = client.post(url, json=body, headers=bearer_for(staff["admin"], support))
    assert done.status_code == 200, done.text
    assert done.get_json()["id"] == owner.id
    db.session.expire_all()
    assert db.session.get(TwoStepSecret, owner.id) is None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RecoveryCode)) == 0
    live = sa.select(sa.func.count()).where(
        TokenFamily.user_id == owner.id, TokenFamily.revoked_at.is_(None)
    )
    assert db.session.scalar(live) == 0
    assert password_then(BrowserClient(app), owner.email).headers["Location"] == "/login/done"
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "account.two_step_reset")
    ).one()
    assert (event.actor_id, event.ticket, event.reason) == (staff["admin"].id, "SUP-8", REASON)

    again = client.post(url, json=body, headers=bearer_for(staff["admin"], support))
    assert again.status_code == 409
    assert again.get_json()["code"] == "account_state"
