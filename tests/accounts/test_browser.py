"""A person signs up and resets a password in a real browser, following the real emails."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from idp.demo import load_demo
from idp.extensions import db
from tests.accounts.helpers import deliver_mail
from tests.fixtures.smtp import first_link

PASSWORD = "sunny bakery morning bread"


def _sign_up(page, server, email: str) -> None:
    page.goto(f"{server.url}/signup")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.fill("#business_name", "Bea's Bakery")
    page.click("button[type=submit]")


@pytest.mark.browser
def test_sign_up_then_reset_the_password_in_a_browser(app, live_server, smtp_server, page):
    mailbox, smtp_url = smtp_server
    _sign_up(page, live_server, "Bea@Bakery.example")
    assert page.locator("h1").inner_text() == "Check your inbox"

    deliver_mail(app, smtp_url)
    page.goto(first_link(mailbox.wait_for("bea@bakery.example")[0]))
    assert "Bea's Bakery" in page.content()
    # The link alone is not enough: the page asks for the password chosen at sign-up.
    page.fill("#password", "not the password I chose")
    page.click("button[type=submit]")
    assert "not the password chosen" in page.locator("#password-error").inner_text()
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    assert page.locator("h1").inner_text() == "Your account is ready"

    page.goto(f"{live_server.url}/password-reset")
    page.fill("#email", "bea@bakery.example")
    page.click("button[type=submit]")
    assert page.locator("h1").inner_text() == "Check your inbox"
    deliver_mail(app, smtp_url)
    page.goto(first_link(mailbox.wait_for("bea@bakery.example", count=2)[1]))
    page.fill("#password", "password")
    page.fill("#password_confirm", "password")
    page.click("button[type=submit]")
    assert "too common" in page.locator("#password-error").inner_text()
    page.fill("#password", "a fresher longer passphrase")
    page.fill("#password_confirm", "a fresher longer passphrase")
    page.click("button[type=submit]")
    assert page.locator("h1").inner_text() == "Password changed"


@pytest.mark.browser
def test_each_end_of_sign_up_and_reset_leads_on(app, live_server, smtp_server, page):
    mailbox, smtp_url = smtp_server
    _sign_up(page, live_server, "bea@bakery.example")
    deliver_mail(app, smtp_url)
    signup_link = first_link(mailbox.wait_for("bea@bakery.example")[0])
    page.goto(signup_link)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.get_by_role("link", name="Go to your account").click()
    expect(page).to_have_title("Signed in")

    # The used link, opened again from the email, says so and leads to the sign-in.
    page.context.clear_cookies()
    page.goto(signup_link)
    assert "If you created your account with it" in page.get_by_role("status").inner_text()
    page.get_by_role("link", name="Sign in to the Client Hub").click()
    expect(page).to_have_title("Sign in to Client Hub")

    page.goto(f"{live_server.url}/password-reset")
    page.fill("#email", "bea@bakery.example")
    page.click("button[type=submit]")
    deliver_mail(app, smtp_url)
    page.goto(first_link(mailbox.wait_for("bea@bakery.example", count=2)[1]))
    page.fill("#password", "a fresher longer passphrase")
    page.fill("#password_confirm", "a fresher longer passphrase")
    page.click("button[type=submit]")
    page.get_by_role("link", name="Sign in to the Client Hub").click()
    page.get_by_label("Email").fill("bea@bakery.example")
    page.get_by_label("Password").fill("a fresher longer passphrase")
    page.get_by_role("button", name="Sign in").click()
    assert "signed in as bea@bakery.example" in page.get_by_role("status").inner_text()

    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("link", name="Sign in again").click()
    expect(page).to_have_title("Sign in to your account")


@pytest.mark.browser
def test_a_field_refused_carries_its_error_for_screen_readers(app, live_server, page):
    page.goto(f"{live_server.url}/signup")
    page.get_by_label("Email").fill("bea-at-bakery.example")
    page.get_by_label("Password").fill("password")
    page.get_by_label("Business name").fill("Bea's Bakery")
    page.get_by_role("button", name="Sign up").click()

    email = page.get_by_label("Email")
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_accessible_description(re.compile("must have an @-sign"))
    expect(page.get_by_label("Business name")).not_to_have_attribute("aria-invalid", "true")
    assert email.input_value() == "bea-at-bakery.example"

    with app.app_context():
        link = load_demo()["consent"]["link"]["url"]
        db.session.remove()
    page.goto(f"{live_server.url}{urlsplit(link).path}")
    page.get_by_label("Work email").fill("")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_label("Work email")).to_have_accessible_description(re.compile("required"))
