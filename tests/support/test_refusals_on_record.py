"""Refusals of the support area are in the audit log: who tried what on which account, why."""

from __future__ import annotations

import re

import pytest

from idp.accounts.models import User
from idp.audit.models import AuditEvent
from idp.extensions import db
from tests.factories import PASSWORD, bearer_for, make_org, make_user
from tests.support.conftest import staff  # noqa: F401

DENIED = "support.access_denied"
BODY = {"ticket": "SUP-1", "reason": "trying my luck"}


def _denials() -> list[AuditEvent]:
    db.session.expire_all()
    stmt = db.select(AuditEvent).where(AuditEvent.action == DENIED).order_by(AuditEvent.id)
    return list(db.session.scalars(stmt))


def _every_row_but_the_audit_log() -> dict:
    """Every other table's committed rows, to show a refusal changed nothing else."""
    db.session.expire_all()
    return {
        table.name: sorted(map(repr, db.session.execute(table.select())))
        for table in db.metadata.sorted_tables
        if table.name != "audit_events"
    }


def test_a_refused_support_action_is_in_the_audit_log(client, staff):  # noqa: F811
    before = _every_row_but_the_audit_log()

    resp = client.post(
        f"/v1/support/accounts/{staff.admin.id}/disable", json=BODY, headers=staff.agent_auth
    )

    assert resp.status_code == 403
    [event] = _denials()
    assert (event.actor_type, event.actor_id) == ("user", staff.agent.id)
    assert (event.target_type, event.target_id) == ("user", staff.admin.id)
    assert event.after == {
        "permission": "support_accounts:disable",
        "endpoint": "support_api.disable_account",
        "method": "POST",
    }
    assert event.reason == "only a support admin may change a support account"
    assert event.ip == "127.0.0.1"
    assert event.request_id
    # the refused action changed nothing: the admin is active, no session or token ended
    assert _every_row_but_the_audit_log() == before
    assert db.session.get(User, staff.admin.id).status == "active"


def test_a_token_of_another_hub_is_on_record_with_the_account_it_asked_for(client, staff):  # noqa: F811
    bakery = make_org("client", "Bakery")
    owner = make_user("client", bakery, "owner")
    headers = bearer_for(owner, bakery)

    resp = client.get(f"/v1/support/accounts/{staff.agent.id}", headers=headers)
    assert resp.status_code == 403
    resp = client.get("/v1/support/email-conflicts", headers=headers)
    assert resp.status_code == 403

    read, conflicts = _denials()
    assert (read.actor_id, read.target_id) == (owner.id, staff.agent.id)
    assert read.after["permission"] == "support_accounts:read"
    assert read.reason == "support tools are for support staff only"
    assert (conflicts.actor_id, conflicts.target_id) == (owner.id, None)
    assert conflicts.after["permission"] == "support_conflicts:read"


def test_a_machine_token_is_on_record_as_its_client(client, staff):  # noqa: F811
    machine = bearer_for(None, staff.org, client_id="provisioning", hub="support")

    resp = client.get("/v1/audit-events", headers=machine)

    assert resp.status_code == 403
    [event] = _denials()
    assert (event.actor_type, event.actor_id) == ("client", "provisioning")
    assert event.after["permission"] == "audit:read"


@pytest.mark.parametrize("user_id", ["usr_nobody", "x" * 500, "usr_\u00e9\u0000"])
def test_an_id_that_names_no_account_is_not_recorded_as_a_target(client, staff, user_id):  # noqa: F811
    bakery = make_org("client", "Bakery")
    headers = bearer_for(make_user("client", bakery, "owner"), bakery)

    resp = client.post(f"/v1/support/accounts/{user_id}/disable", json=BODY, headers=headers)

    assert resp.status_code == 403
    [event] = _denials()
    assert event.target_id is None


def test_anonymous_requests_and_refused_input_are_not_on_record(client, staff):  # noqa: F811
    assert client.get("/v1/support/email-conflicts").status_code == 401
    anonymous = client.post(f"/v1/support/accounts/{staff.admin.id}/disable", json=BODY)
    assert anonymous.status_code == 401
    # input refused for what it is, not for who sends it
    bad = client.post(
        f"/v1/support/accounts/{staff.agent.id}/disable",
        json={"ticket": "SUP-1"},
        headers=staff.admin_auth,
    )
    assert bad.status_code == 422
    missing = client.get("/v1/support/accounts/usr_nobody", headers=staff.agent_auth)
    assert missing.status_code == 404

    assert _denials() == []


def test_support_admins_find_refusals_in_the_audit_log(client, staff):  # noqa: F811
    client.post(
        f"/v1/support/accounts/{staff.admin.id}/end-sessions", json=BODY, headers=staff.agent_auth
    )

    resp = client.get(f"/v1/audit-events?action={DENIED}", headers=staff.admin_auth)

    assert resp.status_code == 200
    [item] = resp.json["items"]
    assert item["actor_id"] == staff.agent.id
    assert item["target_id"] == staff.admin.id
    assert item["after"]["permission"] == "support_accounts:end_sessions"
    by_actor = client.get(f"/v1/audit-events?actor={staff.agent.id}", headers=staff.admin_auth)
    assert [e["action"] for e in by_actor.json["items"]] == [DENIED]


# --------------------------------------------------------------------------- console


def _csrf(page_text: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page_text).group(1)


def _signed_in(app, hub: str, email: str):
    browser = app.test_client()
    form = browser.get(f"/login?hub={hub}")
    resp = browser.post(
        f"/login?hub={hub}",
        data={"csrf_token": _csrf(form.text), "email": email, "password": PASSWORD},
    )
    assert resp.status_code == 302, resp.text
    return browser


@pytest.fixture
def people(app):
    """A support agent and admin and a client owner, made in a context of their own.

    Each browser request then gets its own context, as in production (a context
    shared with the test would share ``g``, and with it a stale CSRF token).
    """
    with app.app_context():
        support = make_org("support", "Support")
        agent = make_user("support", support, "agent", email="agent@support.example")
        admin = make_user("support", support, "admin", email="admin@support.example")
        bakery = make_org("client", "Bakery")
        owner = make_user("client", bakery, "owner", email="owner@bakery.example")
        db.session.commit()
        return {"agent": agent.id, "admin": admin.id, "owner": owner.id}


def _console_denials(app) -> list[AuditEvent]:
    with app.app_context():
        return [_detached(event) for event in _denials()]


def _detached(event: AuditEvent) -> AuditEvent:
    db.session.expunge(event)
    return event


def _console_rows(app) -> dict:
    with app.app_context():
        return _every_row_but_the_audit_log()


def test_refusals_in_the_console_are_on_record(app, people):
    browser = _signed_in(app, "support", "agent@support.example")
    admin = people["admin"]
    page = browser.get(f"/support/accounts/{admin}")
    assert page.status_code == 200
    before = _console_rows(app)

    control = browser.post(
        f"/support/accounts/{admin}/controls",
        data={"csrf_token": _csrf(page.text), "action": "disable", **BODY},
        follow_redirects=True,
    )
    email = browser.post(
        f"/support/accounts/{admin}/email",
        data={"csrf_token": _csrf(page.text), "email": "mine@support.example", **BODY},
    )

    assert "only a support admin may change a support account" in control.text
    assert email.status_code == 403
    disable, reassign = _console_denials(app)
    assert (disable.actor_id, disable.target_id) == (people["agent"], admin)
    assert disable.after["permission"] == "support_accounts:disable"
    assert disable.after["endpoint"] == "support.account_control"
    assert reassign.after["permission"] == "support_accounts:reassign_email"
    assert reassign.target_id == admin
    assert _console_rows(app) == before


def test_people_of_other_hubs_refused_by_the_console_are_on_record(app, people):
    browser = _signed_in(app, "client", "owner@bakery.example")

    assert browser.get("/support/", headers={"Accept": "text/html"}).status_code == 403
    admin = people["admin"]
    resp = browser.get(f"/support/accounts/{admin}", headers={"Accept": "text/html"})
    assert resp.status_code == 403

    search, account = _console_denials(app)
    owner = people["owner"]
    assert (search.actor_type, search.actor_id, search.target_id) == ("user", owner, None)
    assert search.after == {"permission": None, "endpoint": "support.search", "method": "GET"}
    assert search.reason == "The support console is for support staff only."
    assert (account.actor_id, account.target_id) == (owner, admin)
