"""Two-step sign-in in a real browser: set up with the app, then sign in with it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from idp.extensions import db
from tests.factories import PASSWORD, make_org, make_user
from tests.mfa.helpers import code_at

pytestmark = pytest.mark.browser

EMAIL = "bea@bakery.example"


def _sign_in(page, base: str, email: str = EMAIL) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _set_up(page, base: str) -> tuple[str, list[str]]:
    """Turn two-step sign-in on from the account page; the secret and the recovery codes."""
    page.goto(f"{base}/login/done")
    page.get_by_role("link", name="Two-step sign-in").click()
    page.get_by_label("Your password, to set it up").fill(PASSWORD)
    page.get_by_role("button", name="Set up two-step sign-in").click()
    expect(page.get_by_role("img", name="QR code for your authenticator app")).to_be_visible()
    secret = page.locator("#secret").inner_text()
    code = page.get_by_label("The 6-digit code the app shows")
    expect(code).to_have_attribute("autocomplete", "one-time-code")
    expect(code).to_have_attribute("inputmode", "numeric")
    code.fill(code_at(secret, -1))
    # Offered ticked, its label bound to it: other browsers are signed out.
    expect(page.get_by_label("Sign me out of every other browser and app")).to_be_checked()
    page.get_by_role("button", name="Turn two-step sign-in on").click()
    expect(page.locator("h1")).to_have_text("Two-step sign-in is on")
    codes = page.locator(".recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    return secret, codes


@pytest.fixture
def person(app):
    with app.app_context():
        make_user("client", make_org("client", "Blue Bakery"), email=EMAIL)
        db.session.commit()
        db.session.remove()


def test_set_up_then_sign_in_with_a_code_after_a_wrong_one(app, live_server, page, person):
    base = live_server.url
    _sign_in(page, base)
    secret, _ = _set_up(page, base)
    page.context.clear_cookies()

    _sign_in(page, base)
    expect(page.locator("h1")).to_have_text("Two-step sign-in")
    code = page.get_by_label("Code from your app")
    expect(code).to_be_focused()
    code.fill("000000" if code_at(secret) != "000000" else "111111")
    page.get_by_role("button", name="Sign in", exact=True).click()
    # Refused: the field is marked, described by the reason, and holds the focus again.
    code = page.get_by_label("Code from your app")
    expect(code).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#code-error")).to_contain_text("The code is wrong")
    expect(code).to_be_focused()
    page.goto(f"{base}/login/done")  # not signed in: the password is not enough
    expect(page.locator("h1")).to_have_text("Sign in to your account")
    page.goto(f"{base}/login/two-step")  # the password is still accepted for a while

    page.get_by_label("Code from your app").fill(code_at(secret))
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator("h1")).to_have_text("Signed in")
    expect(page.get_by_role("status")).to_contain_text(EMAIL)


def test_sign_in_with_a_recovery_code(app, live_server, page, person):
    base = live_server.url
    _sign_in(page, base)
    _, codes = _set_up(page, base)
    page.context.clear_cookies()

    _sign_in(page, base)
    page.get_by_label("A recovery code (each works once)").fill(codes[0])
    page.get_by_role("button", name="Sign in with a recovery code").click()
    expect(page.locator("h1")).to_have_text("Signed in with a recovery code")
    expect(page.get_by_role("status")).to_contain_text("9 recovery codes left")
    page.get_by_role("link", name="Continue").click()
    expect(page.locator("h1")).to_have_text("Signed in")

    page.context.clear_cookies()
    _sign_in(page, base)
    page.get_by_label("A recovery code (each works once)").fill(codes[0])
    page.get_by_role("button", name="Sign in with a recovery code").click()
    field = page.get_by_label("A recovery code (each works once)")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_be_focused()
