"""An invitee accepts in a real browser: first as a new partner user, then into a second partner."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from idp.extensions import db
from idp.orgs.invitations import create_invitation
from policies.actor import Actor
from tests.accounts.helpers import deliver_mail
from tests.factories import make_org, make_user
from tests.fixtures.smtp import first_link

PASSWORD = "partner person passphrase"


def _invite(app, partner_name: str, email: str) -> None:
    with app.app_context():
        partner = make_org("partner", partner_name)
        owner = make_user("partner", partner, "owner")
        db.session.commit()
        actor = Actor("partner", partner.id, frozenset({"owner"}), user_id=owner.id)
        create_invitation(actor, partner.id, email, "member")
        db.session.remove()


@pytest.mark.browser
def test_one_person_joins_two_partners_with_one_account(app, live_server, smtp_server, page):
    mailbox, smtp_url = smtp_server
    _invite(app, "Acme", "pat@partners.example")
    deliver_mail(app, smtp_url)
    page.goto(first_link(mailbox.wait_for("pat@partners.example")[0]))
    page.fill("#password", PASSWORD)
    page.fill("#password_confirm", PASSWORD)
    page.click("button[type=submit]")
    assert page.locator("h1").inner_text() == "Welcome to Acme"

    _invite(app, "Globex", "Pat@Partners.example")
    deliver_mail(app, smtp_url)
    page.goto(first_link(mailbox.wait_for("pat@partners.example", count=2)[1]))
    assert "already have a Partner Hub account" in page.content()
    assert page.locator("#password_confirm").count() == 0  # no new password
    page.fill("#password", "a guess that is wrong")
    page.click("button[type=submit]")
    assert "wrong password" in page.locator("#password-error").inner_text()
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    assert page.locator("h1").inner_text() == "Welcome to Globex"
    assert "member of Globex" in page.content()


@pytest.mark.browser
def test_the_welcome_page_leads_to_the_partner_hub_login(app, live_server, smtp_server, page):
    mailbox, smtp_url = smtp_server
    _invite(app, "Acme", "pat@partners.example")
    deliver_mail(app, smtp_url)
    invitation = first_link(mailbox.wait_for("pat@partners.example")[0])
    page.goto(invitation)
    page.fill("#password", PASSWORD)
    page.fill("#password_confirm", PASSWORD)
    page.click("button[type=submit]")

    page.get_by_role("link", name="Log in to the Partner Hub").click()
    expect(page).to_have_title("Sign in to Partner Hub")
    page.get_by_label("Email").fill("pat@partners.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    assert "signed in as pat@partners.example" in page.get_by_role("status").inner_text()

    # The link opened again later says it was used, not that it is invalid, and leads in too.
    page.goto(invitation)
    assert page.locator("h1").inner_text() == "This invitation was accepted already"
    page.get_by_role("link", name="Log in to the Partner Hub").click()
    expect(page).to_have_title("Signed in")
