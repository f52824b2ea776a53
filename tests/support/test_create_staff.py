"""``idp support create-staff``: the first support admin, without demo data or a typed password."""

from __future__ import annotations

import pytest

from idp.accounts.models import User
from idp.audit.models import AuditEvent
from idp.cli import main
from idp.extensions import db
from idp.keys.service import verify_jwt
from idp.orgs.models import Membership, Organization
from idp.outbox.cli import worker_command
from idp.outbox.models import OutboxMessage
from tests.factories import make_org, make_user
from tests.fixtures.smtp import first_link
from tests.oauth.conftest import BrowserClient, Flow, csrf_from, make_hub_clients, query_of

NEW_PASSWORD = "a long and new passphrase 42"


def create(app, *args):
    return app.test_cli_runner().invoke(main, ["support", "create-staff", *args])


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(model))


def test_the_emailed_link_sets_a_password_that_opens_the_support_console(
    app, smtp_server, monkeypatch
):
    mailbox, smtp_url = smtp_server
    with app.app_context():
        make_hub_clients()
    result = create(app, "--email", "Ada@Support.example", "--name", "Ada Admin", "--role", "admin")
    assert result.exit_code == 0, result.output
    assert "token" not in result.output
    with app.app_context():
        user = db.session.scalars(db.select(User).where(User.hub == "support")).one()
        assert (user.email_normalized, user.password_hash) == ("ada@support.example", None)
        [membership] = user.memberships
        assert (membership.role, membership.organization.kind) == ("admin", "support")
    monkeypatch.setitem(app.config, "IDP_SMTP_URL", smtp_url)
    assert app.test_cli_runner().invoke(worker_command, ["--once"]).exit_code == 0
    [message] = mailbox.wait_for("Ada@Support.example")
    assert message["Subject"] == "Choose the password of your Support console account"
    link = first_link(message)

    browser = BrowserClient(app)
    page = browser.get(link.removeprefix(app.config["IDP_ISSUER"]))
    assert page.status_code == 200, page.text
    set_password = browser.post(
        "/password-reset/confirm",
        data={
            "csrf_token": csrf_from(page.text),
            "token": query_of(link)["token"],
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
        },
    )
    assert set_password.status_code == 200, set_password.text
    assert "Password changed" in set_password.text

    flow = Flow(BrowserClient(app), client_id="support-console")
    response = flow.login("ada@support.example", NEW_PASSWORD)
    while response.status_code == 302 and "code=" not in response.headers["Location"]:
        response = flow.http.get(response.headers["Location"])
    tokens = flow.exchange(query_of(response.headers["Location"])["code"]).get_json()
    with app.app_context():
        claims = verify_jwt(tokens["access_token"], typ="at+jwt")
    assert (claims["sub"], claims["hub"]) == (user.id, "support")
    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert flow.http.get("/v1/audit-events", headers=auth).status_code == 200  # an admin


def test_creating_staff_is_audited_without_the_address(app):
    result = create(app, "--email", "sid@support.example", "--name", "Sid", "--role", "agent")
    assert result.exit_code == 0, result.output
    with app.app_context():
        events = db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id)).all()
        user = db.session.scalars(db.select(User)).one()
        assert {(e.action, e.actor_type, e.actor_id) for e in events} == {
            ("organization.created", "system", "support create-staff"),
            ("account.created", "system", "support create-staff"),
        }
        [created] = [e for e in events if e.action == "account.created"]
        assert created.target_id == user.id and created.after["role"] == "agent"
        assert "sid@" not in str([(e.before, e.after) for e in events])


def test_staff_join_the_existing_support_organization(app):
    with app.app_context():
        support = make_org("support", "Support")
        db.session.commit()
        support_id = support.id
    assert (
        create(app, "--email", "a@support.example", "--name", "A", "--role", "agent").exit_code == 0
    )
    with app.app_context():
        assert db.session.scalars(db.select(Membership.organization_id)).all() == [support_id]
    assert count(app, Organization) == 1


@pytest.mark.parametrize(
    "email, named",
    [
        ("OWNER@acme.example", "Partner Hub"),  # one account per address, in any hub
        ("not-an-address", "Enter a valid email address."),
        ("ann@@example.com", "Enter a valid email address."),
    ],
)
def test_an_address_sign_up_would_refuse_is_refused_and_nothing_is_written(app, email, named):
    with app.app_context():
        make_user("partner", make_org("partner", "Acme"), "owner", email="owner@acme.example")
        db.session.commit()
    before = (count(app, User), count(app, Organization), count(app, AuditEvent))
    result = create(app, "--email", email, "--name", "Ann", "--role", "admin")
    assert result.exit_code == 1, result.output
    [line] = result.output.splitlines()
    assert line.startswith("Error: ") and named in line
    after = (count(app, User), count(app, Organization), count(app, AuditEvent))
    assert after == before and count(app, OutboxMessage) == 0


def test_bad_names_roles_and_a_password_option_are_refused(app):
    assert (
        create(app, "--email", "a@support.example", "--name", " ", "--role", "admin").exit_code == 1
    )
    assert (
        create(app, "--email", "a@support.example", "--name", "A", "--role", "owner").exit_code == 2
    )
    with_password = create(
        app, "--email", "a@support.example", "--name", "A", "--role", "admin", "--password", "x"
    )
    assert with_password.exit_code == 2
    assert count(app, User) == 0 and count(app, AuditEvent) == 0
