"""Failed logins and reset requests name the address tried by a keyed HMAC, never in clear."""

from __future__ import annotations

import hashlib
import json

import pytest

from idp.accounts.emails import email_hmac
from idp.extensions import db
from tests.accounts.helpers import submit_form
from tests.factories import bearer_for, make_org, make_user


@pytest.fixture
def admin_auth(app):
    """A support admin's bearer header: the one who reads the audit log."""
    with app.app_context():
        support = make_org("support", "Support")
        return bearer_for(make_user("support", support, "admin"), support)


def _events(client, auth: dict, action: str) -> list[dict]:
    """The events of ``action``, oldest first, as the support admin reads them."""
    resp = client.get("/v1/audit-events", query_string={"action": action}, headers=auth)
    assert resp.status_code == 200
    return list(reversed(resp.get_json()["items"]))


def _log_in(client, email: str, password: str = "not the password"):
    return submit_form(client, "/login?hub=client", email=email, password=password)


def test_failed_logins_carry_the_same_hmac_for_every_spelling_of_an_address(
    app, client, admin_auth
):
    with app.app_context():
        user = make_user("client", make_org("client"), "owner", email="kim@example.com")
        db.session.commit()
        user_id = user.id
    for typed in ("ghost@example.com", " GHOST@Example.com", "ｇhost@example.com"):
        assert _log_in(client, typed).status_code == 401
    assert _log_in(client, "kim@example.com").status_code == 401
    assert _log_in(client, "no address at all").status_code == 401

    events = _events(client, admin_auth, "login.failed")
    hmacs = [e["after"]["email_hmac"] for e in events]
    assert len(set(hmacs[:3])) == 1  # one unknown address, however it was typed
    assert len(set(hmacs)) == 3  # ghost, kim, and the text that is no address
    assert events[3]["target_id"] == user_id and events[0]["target_id"] is None
    with app.app_context():
        assert hmacs[0] == email_hmac("ghost@example.com")
    assert hmacs[0] != hashlib.sha256(b"ghost@example.com").hexdigest()  # keyed, not guessable
    text = json.dumps(events).casefold()
    assert "ghost" not in text and "kim@" not in text and "no address" not in text


def test_reset_requests_carry_the_hmac_for_known_and_unknown_addresses(app, client, admin_auth):
    with app.app_context():
        make_user("client", make_org("client"), "owner", email="kim@example.com")
        db.session.commit()
    for typed in ("KIM@example.com", "nobody@example.com"):
        assert client.post("/v1/password-reset", json={"email": typed}).status_code == 202
    assert _log_in(client, "kim@example.com").status_code == 401

    known, unknown = _events(client, admin_auth, "password_reset.requested")
    (failed,) = _events(client, admin_auth, "login.failed")
    assert known["after"] == {"email_hmac": failed["after"]["email_hmac"]}  # one address
    with app.app_context():
        assert unknown["after"] == {
            "email_hmac": email_hmac("nobody@example.com"),
            "account": False,
        }
    assert "nobody" not in json.dumps(unknown)


def test_the_hmac_depends_on_the_secret_key(app):
    with app.app_context():
        ours = email_hmac("kim@example.com")
        previous = app.config["SECRET_KEY"]
        app.config["SECRET_KEY"] = "another deployment's secret key"
        try:
            theirs = email_hmac("kim@example.com")
        finally:
            app.config["SECRET_KEY"] = previous
    assert ours != theirs and len(ours) == 64
