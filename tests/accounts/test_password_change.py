"""A signed-in person changes their password: the current one proves it, the rest is signed out."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from idp.accounts.models import EmailToken, User
from idp.accounts.passwords import verify_password
from idp.accounts.tokens import issue_email_token
from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.login import throttle
from idp.login.models import LoginFailure, LoginSession
from idp.oauth.models import TokenFamily
from tests.accounts.helpers import deliver_mail
from tests.factories import PASSWORD, make_org, make_user
from tests.fixtures.smtp import body_of
from tests.oauth.conftest import BrowserClient, Flow, csrf_from, refresh, tokens_for

NEW_PASSWORD = "a brand new passphrase"
PAGE = "/account/password"


def _signed_in(app, email: str) -> BrowserClient:
    browser = BrowserClient(app)
    page = browser.get("/login")
    resp = browser.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page.text)}
    )
    assert resp.status_code == 302, resp.text
    return browser


def _change(browser, current=PASSWORD, new=NEW_PASSWORD, confirm=None, address="10.0.0.1"):
    page = browser.get(PAGE)
    assert page.status_code == 200, page.text
    fields = {
        "csrf_token": csrf_from(page.text),
        "current_password": current,
        "password": new,
        "password_confirm": new if confirm is None else confirm,
    }
    return browser.post(PAGE, data=fields, environ_base={"REMOTE_ADDR": address})


def _can_log_in(app, email: str, password: str) -> bool:
    browser = BrowserClient(app)
    page = browser.get("/login")
    resp = browser.post(
        "/login", data={"email": email, "password": password, "csrf_token": csrf_from(page.text)}
    )
    return resp.status_code == 302


def _snapshot(user_id: str) -> dict:
    """What a refused change must leave as it was (the failed-login trail aside)."""
    db.session.expire_all()
    user = db.session.get(User, user_id)
    return {
        "user": (user.password_hash, user.security_stamp, user.password_changed_at),
        "logins": db.session.scalars(
            sa.select(LoginSession.id).where(LoginSession.ended_at.is_(None))
        ).all(),
        "families": db.session.scalars(
            sa.select(TokenFamily.id).where(TokenFamily.revoked_at.is_(None))
        ).all(),
        "actions": sorted(
            a for a in db.session.scalars(sa.select(AuditEvent.action)) if a != "login.failed"
        ),
        "tokens": db.session.scalars(sa.select(EmailToken.used_at)).all(),
    }


def _failed_logins() -> int:
    return db.session.scalar(sa.select(sa.func.count()).where(AuditEvent.action == "login.failed"))


def test_the_password_changes_and_every_other_session_ends(app, partner_world, smtp_server):
    mailbox, smtp_url = smtp_server
    owner = partner_world["owner"]
    user_id, email, old_stamp = owner.id, owner.email, owner.security_stamp
    elsewhere = Flow(BrowserClient(app))  # another browser, with a hub's refresh token
    tokens = tokens_for(elsewhere, email, partner_world["acme"].id)
    reset_link = issue_email_token("password_reset", owner.email_normalized, 600, user_id=user_id)
    db.session.commit()
    here = _signed_in(app, email)

    resp = _change(here)
    assert resp.status_code == 200, resp.text
    assert "Password changed" in resp.text
    assert "this browser stays signed in" in resp.text

    # This browser holds a fresh login; the other one and its hub tokens are ended.
    assert here.get("/login/done").status_code == 200
    assert here.get(PAGE).status_code == 200
    assert elsewhere.http.get("/login/done").status_code == 302
    assert refresh(elsewhere.http, tokens["refresh_token"]).status_code == 400
    user = db.session.get(User, user_id)
    assert verify_password(user.password_hash, NEW_PASSWORD)
    assert user.security_stamp != old_stamp
    families = db.session.scalars(sa.select(TokenFamily)).all()
    assert families and all(f.revoked_reason == "password_changed" for f in families)
    assert db.session.scalar(sa.select(EmailToken.used_at)) is not None  # the reset link too
    assert len(db.session.scalars(sa.select(LoginSession).filter_by(ended_at=None)).all()) == 1
    event = db.session.scalar(sa.select(AuditEvent).filter_by(action="password.changed"))
    assert (event.actor_id, event.target_id, event.after) == (
        user_id,
        user_id,
        {"via": "current_password"},
    )

    assert not _can_log_in(app, email, PASSWORD)
    assert _can_log_in(app, email, NEW_PASSWORD)
    assert reset_link  # spent: it cannot set the password again
    assert here.get(f"/password-reset/confirm?token={reset_link}").status_code == 400

    deliver_mail(app, smtp_url)
    (notice,) = mailbox.wait_for(email)
    assert notice["Subject"] == "The password of your Partner Hub account was changed"
    body = body_of(notice)
    assert "typed the current password" in body and "stays signed in" in body
    assert "contact support" in body
    assert not re.search(r"https?://", body)


def test_a_wrong_current_password_is_a_failed_login(app, partner_world):
    owner = partner_world["owner"]
    user_id = owner.id
    here = _signed_in(app, owner.email)
    before = _snapshot(user_id)

    resp = _change(here, current="not my password")
    assert resp.status_code == 401
    # Only that: nothing about the account, its counters or its hash.
    errors = re.findall(r'<p class="error"[^>]*>([^<]*)</p>', resp.text)
    assert errors == ["The current password is wrong."]
    assert _snapshot(user_id) == before
    assert _failed_logins() == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginFailure)) > 0
    assert here.get("/login/done").status_code == 200  # still signed in


def test_the_failed_login_throttle_stops_guessing(app, partner_world):
    owner = partner_world["owner"]
    here = _signed_in(app, owner.email)
    for _ in range(throttle.PAIR.free):
        assert _change(here, current="a wrong guess").status_code == 401
    # Now even the right password waits, and is not checked.
    resp = _change(here)
    assert resp.status_code == 429
    assert int(resp.headers["Retry-After"]) >= 1
    assert "Too many failed attempts" in resp.text
    assert verify_password(db.session.get(User, owner.id).password_hash, PASSWORD)
    assert _failed_logins() == throttle.PAIR.free + 1


# The current password typed on a full-width keyboard layout: NFKC makes it the same one.
_FULL_WIDTH = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in PASSWORD)


@pytest.mark.parametrize(
    ("new", "confirm", "says"),
    [
        ("password", "password", "too common"),
        ("short", "short", "at least 8"),
        (NEW_PASSWORD, "something else", "differ"),
        (PASSWORD, PASSWORD, "must differ from the current one"),
        (_FULL_WIDTH, _FULL_WIDTH, "must differ from the current one"),  # the same under NFKC
        ("{email}", "{email}", "Do not use your email address"),
        # The names of the service and of the account's partner are context-specific words.
        ("Acme 2025!", "Acme 2025!", "Do not use the name of this service or of your business"),
        ("PartnerHub1", "PartnerHub1", "Do not use the name of this service"),
    ],
)
def test_a_refused_new_password_changes_nothing(app, partner_world, new, confirm, says):
    owner = partner_world["owner"]
    new, confirm = (value.replace("{email}", owner.email) for value in (new, confirm))
    here = _signed_in(app, owner.email)
    before = _snapshot(owner.id)
    resp = _change(here, new=new, confirm=confirm)
    assert resp.status_code == 422
    assert says in resp.text
    assert _snapshot(owner.id) == before
    assert _failed_logins() == 0  # the current password was not even checked
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginFailure)) == 0


def test_an_empty_current_password_is_not_a_guess(app, partner_world):
    owner = partner_world["owner"]
    here = _signed_in(app, owner.email)
    resp = _change(here, current="")
    assert resp.status_code == 422 and "Type your current password" in resp.text
    assert _failed_logins() == 0


def test_a_post_without_csrf_is_refused(app, partner_world):
    owner = partner_world["owner"]
    here = _signed_in(app, owner.email)
    before = _snapshot(owner.id)
    fields = {"current_password": PASSWORD, "password": NEW_PASSWORD}
    resp = here.post(PAGE, data={**fields, "password_confirm": NEW_PASSWORD})
    assert resp.status_code == 400
    assert _snapshot(owner.id) == before


def test_a_visitor_not_signed_in_is_sent_to_the_login_page(app, partner_world):
    browser = BrowserClient(app)
    resp = browser.get(PAGE)
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/login?next=/account/password"
    # Signing in there comes back to the page.
    page = browser.get(resp.headers["Location"])
    back = browser.post(
        resp.headers["Location"],
        data={
            "email": partner_world["owner"].email,
            "password": PASSWORD,
            "csrf_token": csrf_from(page.text),
        },
    )
    assert back.headers["Location"] == PAGE


def test_a_signed_in_person_finds_the_page(app, partner_world):
    here = _signed_in(app, partner_world["owner"].email)
    assert f'href="{PAGE}"' in here.get("/login/done").text
    well_known = here.get("/.well-known/change-password")
    assert well_known.status_code == 302 and well_known.headers["Location"] == PAGE


def _browser_sign_in(page, url: str, email: str, password: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")


def signed_in_elsewhere(app, live_server, _browser):
    """A page of another browser where cleo@bakery.example (made here) is signed in."""
    with app.app_context():
        make_user("client", make_org("client"), email="cleo@bakery.example")
        db.session.commit()
        db.session.remove()
    other = _browser.new_context().new_page()
    _browser_sign_in(other, live_server.url, "cleo@bakery.example", PASSWORD)
    return other


@pytest.mark.browser
def test_change_the_password_in_a_browser(app, live_server, smtp_server, page, _browser):
    mailbox, smtp_url = smtp_server
    other = signed_in_elsewhere(app, live_server, _browser)
    assert other.locator("h1").inner_text() == "Signed in"

    _browser_sign_in(page, live_server.url, "cleo@bakery.example", PASSWORD)
    assert page.locator("h1").inner_text() == "Signed in"
    page.click("text=Change your password")
    assert page.locator("h1").inner_text() == "Change your password"
    page.fill("#current_password", "not my password")
    page.fill("#password", "a fresher longer passphrase")
    page.fill("#password_confirm", "a fresher longer passphrase")
    page.click("button[type=submit]")
    assert page.locator("#current_password-error").inner_text() == "The current password is wrong."
    page.fill("#current_password", PASSWORD)
    page.fill("#password", "a fresher longer passphrase")
    page.fill("#password_confirm", "a fresher longer passphrase")
    page.click("button[type=submit]")
    assert page.locator("h1").inner_text() == "Password changed"
    page.click("text=Back to your account")
    assert page.locator("h1").inner_text() == "Signed in"  # this browser stays in

    other.goto(f"{live_server.url}/login/done")
    assert other.locator("h1").inner_text().startswith("Sign in")  # the other one is out
    _browser_sign_in(other, live_server.url, "cleo@bakery.example", PASSWORD)
    assert "The email or password is wrong." in other.content()
    _browser_sign_in(other, live_server.url, "cleo@bakery.example", "a fresher longer passphrase")
    assert other.locator("h1").inner_text() == "Signed in"
    other.context.close()

    deliver_mail(app, smtp_url)
    (notice,) = mailbox.wait_for("cleo@bakery.example")
    assert "typed the current password" in body_of(notice)
