"""Password reset: the same answer for every address, a single-use link, everyone signed out."""

from __future__ import annotations

import re
from datetime import timedelta

import sqlalchemy as sa

from idp.accounts.models import EmailToken, User
from idp.accounts.passwords import verify_password
from idp.accounts.reset import reset_link_is_usable
from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.oauth.models import TokenFamily
from idp.oauth.tokens import open_family
from idp.outbox.models import REDACTED_EMAIL_BODY, OutboxMessage
from tests.accounts.helpers import deliver_mail, received_link, submit_form
from tests.factories import make_org, make_user

NEW_PASSWORD = "a brand new passphrase"


def _user(app, email="ann@example.com", status="active"):
    with app.app_context():
        user = make_user("client", make_org("client", "Ann's Shop"), email=email, status=status)
        family = open_family(client_id="hub", user_id=user.id, organization_id=None, lifetime=600)
        db.session.commit()
        return user.id, user.security_stamp, family.id


def _reset_link(app, client, mailbox, smtp_url, typed="ann@example.com"):
    resp = client.post("/v1/password-reset", json={"email": typed})
    assert resp.status_code == 202
    deliver_mail(app, smtp_url)
    return received_link(mailbox, "ann@example.com")


def test_a_reset_link_sets_a_new_password_and_signs_out_everywhere(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    user_id, old_stamp, family_id = _user(app)
    link = _reset_link(app, client, mailbox, smtp_url, typed=" ANN@example.com ")
    assert link.startswith("/password-reset/confirm?token=")
    resp = submit_form(client, link, password=NEW_PASSWORD, password_confirm=NEW_PASSWORD)
    assert resp.status_code == 200
    assert "Password changed" in resp.get_data(as_text=True)
    with app.app_context():
        user = db.session.get(User, user_id)
        assert verify_password(user.password_hash, NEW_PASSWORD)
        assert user.security_stamp != old_stamp and user.password_changed_at is not None
        family = db.session.get(TokenFamily, family_id)
        assert family.revoked_at is not None and family.revoked_reason == "password_changed"
        actions = set(db.session.scalars(sa.select(AuditEvent.action)))
        assert {"password_reset.requested", "password_reset.completed"} <= actions


def test_the_answer_is_the_same_for_unknown_and_disabled_addresses(app, client):
    _user(app, email="gone@example.com", status="disabled")
    answers = [
        client.post("/v1/password-reset", json={"email": email})
        for email in ("nobody@example.com", "gone@example.com")
    ]
    assert {a.status_code for a in answers} == {202}
    assert answers[0].get_json() == answers[1].get_json()
    with app.app_context():
        # Each mailbox owner learns that no active account uses the address; no link is sent.
        messages = db.session.scalars(sa.select(OutboxMessage)).all()
        assert sorted(m.recipient for m in messages) == ["gone@example.com", "nobody@example.com"]
        assert all("no active account uses it" in m.body for m in messages)
        assert not any("/password-reset/confirm" in m.body for m in messages)


def test_the_reset_link_works_once_and_spends_the_other_links(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    _user(app)
    first = _reset_link(app, client, mailbox, smtp_url)
    client.post("/v1/password-reset", json={"email": "ann@example.com"})
    deliver_mail(app, smtp_url)
    second = received_link(mailbox, "ann@example.com", 1)
    assert submit_form(client, second, password=NEW_PASSWORD, password_confirm=NEW_PASSWORD)
    for link in (first, second):
        resp = client.get(link)
        assert resp.status_code == 400
        assert "Ask for a new" in resp.get_data(as_text=True)


def test_an_expired_reset_link_is_refused(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    _user(app)
    link = _reset_link(app, client, mailbox, smtp_url)
    with app.app_context():
        token = db.session.scalar(sa.select(EmailToken))
        token.expires_at = token.created_at - timedelta(seconds=1)
        db.session.commit()
    assert client.get(link).status_code == 400


def test_the_new_password_follows_the_rules(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    user_id, stamp, _ = _user(app)
    link = _reset_link(app, client, mailbox, smtp_url)
    weak = submit_form(client, link, password="password", password_confirm="password")
    assert weak.status_code == 422 and "too common" in weak.get_data(as_text=True)
    own = submit_form(client, link, password="Ann@Example.com", password_confirm="Ann@Example.com")
    assert own.status_code == 422 and "email address" in own.get_data(as_text=True)
    named = submit_form(client, link, password="Anns Shop 2024", password_confirm="Anns Shop 2024")
    assert named.status_code == 422 and "of your business" in named.get_data(as_text=True)
    differ = submit_form(client, link, password=NEW_PASSWORD, password_confirm="other one!")
    assert differ.status_code == 422 and "differ" in differ.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, user_id).security_stamp == stamp  # nothing changed
    assert submit_form(client, link, password=NEW_PASSWORD, password_confirm=NEW_PASSWORD)


def test_the_reset_page_gives_the_same_answer_for_any_address(app, client):
    _user(app)
    known = submit_form(client, "/password-reset", email="ann@example.com")
    unknown = submit_form(client, "/password-reset", email="nobody@example.com")
    assert known.status_code == unknown.status_code == 200
    assert known.get_data() == unknown.get_data()


def _link_secrets(text: str) -> list[str]:
    return re.findall(r"token=([\w-]+)", text)


def test_a_sent_reset_email_does_not_keep_the_live_link_secret(app, client, smtp_server):
    _mailbox, smtp_url = smtp_server
    _user(app)
    assert client.post("/v1/password-reset", json={"email": "ann@example.com"}).status_code == 202
    with app.test_request_context():
        queued = db.session.scalar(sa.select(OutboxMessage.body))
        assert any(reset_link_is_usable(s) for s in _link_secrets(queued))  # live while pending
    assert deliver_mail(app, smtp_url)["sent"] == 1
    with app.test_request_context():
        (row,) = db.session.scalars(sa.select(OutboxMessage)).all()
        assert row.status == "sent"
        assert row.body == REDACTED_EMAIL_BODY
        assert not any(reset_link_is_usable(s) for s in _link_secrets(row.body))
        assert "token=" not in f"{row.subject} {row.payload} {row.last_error}"


def test_the_reset_email_that_reached_the_mailbox_still_carries_the_working_link(
    app, client, smtp_server
):
    mailbox, smtp_url = smtp_server
    _user(app)
    link = _reset_link(app, client, mailbox, smtp_url)
    (secret,) = _link_secrets(link)
    with app.test_request_context():
        assert reset_link_is_usable(secret)
    resp = submit_form(client, link, password=NEW_PASSWORD, password_confirm=NEW_PASSWORD)
    assert "Password changed" in resp.get_data(as_text=True)
