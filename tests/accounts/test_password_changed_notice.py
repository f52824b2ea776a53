"""The account's address hears of every password change, with no link to follow."""

from __future__ import annotations

import re

from idp.extensions import db
from tests.accounts.helpers import deliver_mail, received_link, submit_form
from tests.factories import make_org, make_user
from tests.fixtures.smtp import body_of

NEW_PASSWORD = "a brand new passphrase"


def _reset_link(app, client, mailbox, smtp_url, email):
    with app.app_context():
        make_user("partner", make_org("partner"), "owner", email=email)
        db.session.commit()
    assert client.post("/v1/password-reset", json={"email": email}).status_code == 202
    deliver_mail(app, smtp_url)
    return received_link(mailbox, email)


def test_a_completed_reset_tells_the_mailbox_the_password_changed(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    link = _reset_link(app, client, mailbox, smtp_url, "pia@example.com")
    resp = submit_form(client, link, password=NEW_PASSWORD, password_confirm=NEW_PASSWORD)
    assert resp.status_code == 200
    deliver_mail(app, smtp_url)

    _, notice = mailbox.wait_for("pia@example.com", count=2)
    assert notice["Subject"] == "The password of your Partner Hub account was changed"
    body = body_of(notice)
    assert "signed out" in body and "contact support" in body
    assert not re.search(r"https?://", body)  # nothing to click: no undo link to steal


def test_no_notice_when_the_password_did_not_change(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    link = _reset_link(app, client, mailbox, smtp_url, "quinn@example.com")
    weak = submit_form(client, link, password="password", password_confirm="password")
    assert weak.status_code == 422
    deliver_mail(app, smtp_url)
    assert len(mailbox.wait_for("quinn@example.com")) == 1  # only the reset link
