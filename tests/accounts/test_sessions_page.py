"""A signed-in person sees their open logins and, with the password, signs other browsers out."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.login.models import LoginSession
from idp.login.session import LAST_SEEN_EVERY
from idp.timeutil import utcnow
from tests.accounts.test_password_change import _browser_sign_in, signed_in_elsewhere
from tests.factories import PASSWORD, make_org, make_user
from tests.login.test_login_activity import FIREFOX_ON_WINDOWS, signed_in_from
from tests.oauth.conftest import BrowserClient, Flow, csrf_from, refresh, tokens_for
from tests.test_hostile_forms import login

PAGE = "/account/sessions"
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
ROW = re.compile(r'<li class="login">(.*?)</li>', re.S)
END_ONE = re.compile(r'<button type="submit" name="login" value="([^"]+)"[^>]*>Sign out</button>')


def _end(browser, login: str, password: str = PASSWORD):
    """Press a button of the page ("others", or a login's own) with ``password`` typed."""
    page = browser.get(PAGE)
    assert page.status_code == 200, page.text
    data = {"csrf_token": csrf_from(page.text), "current_password": password, "login": login}
    return browser.post(PAGE, data=data)


def _signed_in_still(browser) -> bool:
    return browser.get("/login/done").status_code == 200


def _open_logins() -> int:
    query = sa.select(sa.func.count()).where(LoginSession.ended_at.is_(None))
    return db.session.scalar(query)


def test_the_page_lists_each_open_login_and_names_this_browser(app, partner_world):
    email = partner_world["owner"].email
    here, _elsewhere = login(app, email), login(app, email)
    login(app, partner_world["consultant"].email)  # someone else's: not listed

    page = here.get(PAGE)

    assert page.status_code == 200
    rows = ROW.findall(page.text)
    assert len(rows) == 2
    assert ["This browser" in row for row in rows].count(True) == 1
    assert all(re.search(r"Signed in \d{4}-\d\d-\d\d \d\d:\d\d UTC", row) for row in rows)
    # The other login has its own button; the page never shows a login's session id.
    assert len(END_ONE.findall(page.text)) == 1
    for login_id in db.session.scalars(sa.select(LoginSession.id)):
        assert login_id not in page.text


def test_signing_out_every_other_browser_ends_them_and_their_apps(app, partner_world):
    owner = partner_world["owner"]
    elsewhere = Flow(BrowserClient(app))  # another browser, with a hub's refresh token
    tokens = tokens_for(elsewhere, owner.email, partner_world["acme"].id)
    third = login(app, owner.email)
    here = login(app, owner.email)

    resp = _end(here, "others")

    assert resp.status_code == 200, resp.text
    assert "Every other browser is signed out" in resp.text
    assert _signed_in_still(here)
    assert not _signed_in_still(elsewhere.http) and not _signed_in_still(third)
    assert refresh(elsewhere.http, tokens["refresh_token"]).status_code == 400
    assert _open_logins() == 1
    assert len(ROW.findall(here.get(PAGE).text)) == 1
    event = db.session.scalar(sa.select(AuditEvent).filter_by(action="account.sessions_ended"))
    assert (event.actor_type, event.actor_id, event.target_id) == ("user", owner.id, owner.id)
    assert event.after == {"via": "current_password", "logins_ended": 2}


def test_signing_out_one_browser_leaves_the_others(app, partner_world):
    email = partner_world["owner"].email
    other, here = login(app, email), login(app, email)
    (others_button,) = END_ONE.findall(here.get(PAGE).text)
    third = login(app, email)
    assert len(END_ONE.findall(here.get(PAGE).text)) == 2

    resp = _end(here, others_button)

    assert resp.status_code == 200, resp.text
    assert "That browser is signed out" in resp.text
    assert not _signed_in_still(other)
    assert _signed_in_still(third) and _signed_in_still(here)


def test_a_wrong_password_ends_nothing_and_is_a_failed_login(app, partner_world):
    email = partner_world["owner"].email
    other, here = login(app, email), login(app, email)

    resp = _end(here, "others", password="not the password")

    assert resp.status_code == 401
    assert "The current password is wrong." in resp.text
    assert _signed_in_still(other) and _signed_in_still(here)
    actions = db.session.scalars(sa.select(AuditEvent.action)).all()
    assert "login.failed" in actions and "account.sessions_ended" not in actions


def test_a_login_already_ended_is_named_and_nothing_is_checked(app, partner_world):
    email = partner_world["owner"].email
    other, here = login(app, email), login(app, email)
    (button,) = END_ONE.findall(here.get(PAGE).text)
    other.post("/logout", data={"csrf_token": csrf_from(other.get("/logout").text)})
    failures_before = db.session.scalar(
        sa.select(sa.func.count()).where(AuditEvent.action == "login.failed")
    )

    resp = _end(here, button, password="not the password")

    assert resp.status_code == 422
    assert "That browser is signed out already." in resp.text
    assert _signed_in_still(here)
    failures = sa.select(sa.func.count()).where(AuditEvent.action == "login.failed")
    assert db.session.scalar(failures) == failures_before  # no guess was counted


def test_a_visitor_not_signed_in_is_sent_to_the_login_page(app, partner_world):
    resp = BrowserClient(app).get(PAGE)
    assert resp.status_code == 302
    assert "/login?next=/account/sessions" in resp.headers["Location"]


def test_the_signed_in_page_links_to_it(app, partner_world):
    here = login(app, partner_world["owner"].email)
    assert f'href="{PAGE}"' in here.get("/login/done").text


@pytest.mark.browser
def test_sign_every_other_browser_out_in_a_browser(app, live_server, page, _browser):
    other = signed_in_elsewhere(app, live_server, _browser)
    _browser_sign_in(page, live_server.url, "cleo@bakery.example", PASSWORD)
    page.click("text=Your signed-in browsers")
    assert page.locator("h1").inner_text() == "Your signed-in browsers"
    assert page.locator("li.login").count() == 2

    # Enter in the password field presses "Sign out every other browser".
    page.fill("#current_password", "not my password")
    page.press("#current_password", "Enter")
    assert page.locator("#current_password-error").inner_text() == "The current password is wrong."
    page.fill("#current_password", PASSWORD)
    page.press("#current_password", "Enter")
    assert page.locator("h1").inner_text() == "Signed out elsewhere"
    page.click("text=Your signed-in browsers")
    assert page.locator("li.login").count() == 1  # this browser stays signed in

    other.goto(f"{live_server.url}/login/done")
    assert other.locator("h1").inner_text().startswith("Sign in")
    other.context.close()


def _row_of(page_text: str, words: str) -> str:
    (row,) = [row for row in ROW.findall(page_text) if words in row]
    return row


def test_each_login_shows_its_device_address_start_and_last_activity(app, partner_world):
    email = partner_world["owner"].email
    signed_in_from(app, email, IPHONE, "2001:db8::5")
    here = signed_in_from(app, email, FIREFOX_ON_WINDOWS, "203.0.113.7")

    page = here.get(PAGE)

    assert page.status_code == 200
    this = _row_of(page.text, "This browser")
    assert "Firefox on Windows" in this and "203.0.113.7" in this
    assert re.search(r"Signed in \d{4}-\d\d-\d\d \d\d:\d\d UTC", this)
    assert "Active now" in this
    other = _row_of(page.text, "Mobile Safari on iOS (iPhone)")
    assert "2001:db8::5" in other and "This browser" not in other
    assert re.search(r"Last active \d{4}-\d\d-\d\d \d\d:\d\d UTC", other)


def test_a_login_from_before_devices_were_recorded_shows_an_unknown_device(app, partner_world):
    email = partner_world["owner"].email
    signed_in_from(app, email, IPHONE, "2001:db8::5")
    here = signed_in_from(app, email, FIREFOX_ON_WINDOWS, "203.0.113.7")
    first = db.session.scalar(sa.select(sa.func.min(LoginSession.created_at)))
    db.session.execute(
        sa.update(LoginSession)
        .where(LoginSession.created_at == first)
        .values(device=None, ip_address=None, last_seen_at=None)
    )
    db.session.commit()

    page = here.get(PAGE)

    assert page.status_code == 200
    other = _row_of(page.text, "Unknown device")
    assert "This browser" not in other
    assert "Last active unknown" in other and "address unknown" in other
    assert len(END_ONE.findall(page.text)) == 1  # and it can still be signed out


def test_markup_in_a_user_agent_is_shown_as_text(app, partner_world):
    email = partner_world["owner"].email
    hostile = "<b>Evil</b>"
    signed_in_from(app, email, FIREFOX_ON_WINDOWS, "203.0.113.7")
    here = login(app, email)
    db.session.execute(
        sa.update(LoginSession).where(LoginSession.device.is_not(None)).values(device=hostile)
    )
    db.session.commit()

    page = here.get(PAGE)

    assert page.status_code == 200
    assert "&lt;b&gt;Evil&lt;/b&gt;" in page.text and hostile not in page.text


def test_a_browser_idle_past_the_session_timeout_is_not_listed(app, partner_world):
    """Its cookie has expired: it is signed out, though its login is not yet past its age."""
    email = partner_world["owner"].email
    signed_in_from(app, email, IPHONE, "2001:db8::5")
    here = signed_in_from(app, email, FIREFOX_ON_WINDOWS, "203.0.113.7")
    first = db.session.scalar(sa.select(sa.func.min(LoginSession.created_at)))
    idle = app.config["IDP_SESSION_IDLE_TIMEOUT"] + LAST_SEEN_EVERY + 60
    db.session.execute(
        sa.update(LoginSession)
        .where(LoginSession.created_at == first)
        .values(last_seen_at=utcnow() - timedelta(seconds=idle))
    )
    db.session.commit()

    assert len(ROW.findall(here.get(PAGE).text)) == 1


@pytest.mark.browser
def test_another_browser_is_listed_with_its_device_and_signed_out(app, live_server, page, _browser):
    with app.app_context():
        make_user("client", make_org("client"), email="cleo@bakery.example")
        db.session.commit()
        db.session.remove()
    context = _browser.new_context(user_agent=FIREFOX_ON_WINDOWS)
    other = context.new_page()
    _browser_sign_in(other, live_server.url, "cleo@bakery.example", PASSWORD)
    _browser_sign_in(page, live_server.url, "cleo@bakery.example", PASSWORD)

    page.click("text=Your signed-in browsers")
    this = page.locator("li.login", has_text="This browser")
    assert "on Linux" in this.inner_text()  # this headless Chromium
    firefox = page.locator("li.login", has_text="Firefox on Windows")
    assert "127.0.0.1" in firefox.inner_text()
    page.fill("#current_password", PASSWORD)
    firefox.get_by_role("button", name="Sign out").click()
    assert page.locator("h1").inner_text() == "Signed out elsewhere"
    page.click("text=Your signed-in browsers")
    assert page.locator("li.login").count() == 1
    assert page.locator("li.login", has_text="Firefox on Windows").count() == 0

    other.goto(f"{live_server.url}/login/done")
    assert other.locator("h1").inner_text().startswith("Sign in")
    context.close()


@pytest.mark.parametrize("how", ["sessions page", "turning two-step sign-in on"])
def test_signing_out_everywhere_else_ends_the_apps_of_logins_that_went_idle(
    app, partner_world, how
):
    """A login idle past its timeout is no longer listed, but its app's refresh token lives
    on (30 days): "every other browser and app" must end that too."""
    from tests.mfa.helpers import enrol

    owner = partner_world["owner"]
    elsewhere = Flow(BrowserClient(app), nonce="theirs")
    theirs = tokens_for(elsewhere, owner.email, partner_world["acme"].id)
    db.session.execute(sa.update(LoginSession).values(last_seen_at=utcnow() - timedelta(hours=13)))
    db.session.commit()
    renewed = refresh(elsewhere.http, theirs["refresh_token"])
    assert renewed.status_code == 200  # the browser's login went idle; its app did not
    here = Flow(BrowserClient(app), nonce="ours")
    ours = tokens_for(here, owner.email, partner_world["acme"].id)
    login(app, owner.email)  # one more browser, open: there is something to sign out

    if how == "sessions page":
        assert _end(here.http, "others").status_code == 200
    else:
        enrol(here.http, sign_out_others="yes")

    assert refresh(elsewhere.http, renewed.get_json()["refresh_token"]).status_code == 400
    assert refresh(here.http, ours["refresh_token"]).status_code == 200


def test_apps_of_logins_no_longer_listed_are_named_and_signed_out(app, partner_world):
    """No other browser is listed, but an idle login's app still renews its tokens: the
    page says so and offers the button, which ends that app and nothing of this browser."""
    owner = partner_world["owner"]
    elsewhere = Flow(BrowserClient(app), nonce="theirs")
    theirs = tokens_for(elsewhere, owner.email, partner_world["acme"].id)
    db.session.execute(sa.update(LoginSession).values(last_seen_at=utcnow() - timedelta(hours=13)))
    db.session.commit()
    here = Flow(BrowserClient(app), nonce="ours")
    ours = tokens_for(here, owner.email, partner_world["acme"].id)

    page = here.http.get(PAGE).text
    assert len(ROW.findall(page)) == 1  # this browser only
    assert "1 app sign-in from browsers no longer listed here" in page
    assert 'value="others"' in page

    assert _end(here.http, "others").status_code == 200

    assert refresh(elsewhere.http, theirs["refresh_token"]).status_code == 400
    assert refresh(here.http, ours["refresh_token"]).status_code == 200
    assert "no longer listed" not in here.http.get(PAGE).text


def test_with_nothing_else_signed_in_every_other_browser_is_refused(app, partner_world):
    here = Flow(BrowserClient(app))
    tokens_for(here, partner_world["owner"].email, partner_world["acme"].id)
    page = here.http.get(PAGE).text
    assert 'value="others"' not in page and "no longer listed" not in page

    resp = _end(here.http, "others")

    assert resp.status_code == 422
    assert "No other browser is signed in." in resp.text
