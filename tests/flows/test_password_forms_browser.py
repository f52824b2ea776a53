"""Every form that asks for a password tells password managers which account it is for.

A password manager files a password under the username field of its form
(``autocomplete="username"``). A form without one saves a new password under
no account, or offers every saved one for the site.
"""

from __future__ import annotations

import pytest

from tests.accounts.helpers import deliver_mail
from tests.fixtures.smtp import first_link
from tests.orgs.test_browser import _invite

pytestmark = pytest.mark.browser

PASSWORD = "sunny bakery morning bread"

USERNAMES_OF_PASSWORD_FIELDS = """
() => [...document.querySelectorAll("input[type=password]")].map((field) => {
  const username = field.form && field.form.querySelector("input[autocomplete=username]");
  return username ? username.value : null;
})
"""


def _usernames(page) -> list:
    """For each password field of the page, the username its form names (None: none)."""
    return page.evaluate(USERNAMES_OF_PASSWORD_FIELDS)


def test_each_password_form_names_its_account(app, live_server, smtp_server, page):
    mailbox, smtp_url = smtp_server
    page.goto(f"{live_server.url}/signup")
    page.fill("#email", "bea@bakery.example")
    page.fill("#password", PASSWORD)
    page.fill("#business_name", "Bea's Bakery")
    page.click("button[type=submit]")
    deliver_mail(app, smtp_url)
    page.goto(first_link(mailbox.wait_for("bea@bakery.example")[0]))
    assert _usernames(page) == ["bea@bakery.example"]  # the sign-up's confirmation
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")

    page.goto(f"{live_server.url}/account/password")
    assert _usernames(page) == ["bea@bakery.example"] * 3

    page.goto(f"{live_server.url}/password-reset")
    page.fill("#email", "Bea@Bakery.example")
    page.click("button[type=submit]")
    deliver_mail(app, smtp_url)
    page.goto(first_link(mailbox.wait_for("bea@bakery.example", count=2)[1]))
    assert _usernames(page) == ["bea@bakery.example"] * 2
    # A wrong repetition keeps the name on the page shown again.
    page.fill("#password", "a fresher longer passphrase")
    page.fill("#password_confirm", "a different passphrase")
    page.click("button[type=submit]")
    assert _usernames(page) == ["bea@bakery.example"] * 2

    _invite(app, "Acme", "pat@partners.example")
    deliver_mail(app, smtp_url)
    page.goto(first_link(mailbox.wait_for("pat@partners.example")[0]))
    assert _usernames(page) == ["pat@partners.example"] * 2  # a new account
    page.fill("#password", PASSWORD)
    page.fill("#password_confirm", PASSWORD)
    page.click("button[type=submit]")

    _invite(app, "Globex", "pat@partners.example")
    deliver_mail(app, smtp_url)
    page.goto(first_link(mailbox.wait_for("pat@partners.example", count=2)[1]))
    assert _usernames(page) == ["pat@partners.example"]  # the existing account's password
