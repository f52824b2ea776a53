"""Every page a person meets passes axe-core's WCAG 2.2 A/AA rules in chromium.

Each walk goes through the pages as a person would (the real emails, the real
forms) and checks each state met on the way: the empty form, the form shown
again with its errors, the refusal, the result. A serious or critical
violation anywhere fails the walk, naming every state's violations.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from idp.accounts.models import User
from idp.extensions import db
from idp.oauth.clients import register_hub_client
from idp.orgs.models import Membership, Organization
from idp.support.importer import import_accounts
from tests.accounts.helpers import deliver_mail
from tests.accounts.test_password_change import signed_in_elsewhere
from tests.consent.factories import make_grant
from tests.factories import PASSWORD, make_channel, make_org, make_user
from tests.fixtures.accessibility import Audit
from tests.fixtures.smtp import first_link
from tests.flows.live_client import authorize_url
from tests.flows.test_consent_story import Partner
from tests.mfa.helpers import code_at
from tests.oauth.conftest import pkce_pair
from tests.orgs.test_browser import _invite
from tests.support.test_import import line

pytestmark = pytest.mark.browser

NEW_PASSWORD = "sunny bakery morning bread"


@pytest.fixture
def audit():
    return Audit()


def _sign_in(page, email: str, password: str = PASSWORD) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def _submit(page) -> None:
    """Press the page's own form's button, not the Sign out form that may follow it."""
    page.locator("main form").first.locator("button[type=submit]").last.click()


def test_sign_in_sign_up_and_password_pages(app, live_server, smtp_server, page, audit):
    mailbox, smtp_url = smtp_server
    base = live_server.url

    page.goto(f"{base}/login?hub=client")
    audit.check(page, "sign-in")
    _sign_in(page, "nobody@bakery.example", "not the password")
    audit.check(page, "sign-in, wrong password", "[role=alert]")

    page.goto(f"{base}/signup")
    audit.check(page, "sign-up")
    _submit(page)
    audit.check(page, "sign-up, field errors", "[aria-invalid=true]")
    page.fill("#email", "bea@bakery.example")
    page.fill("#password", NEW_PASSWORD)
    page.fill("#business_name", "Bea's Bakery")
    _submit(page)
    audit.check(page, "sign-up, check your inbox", "text=Check your inbox")

    deliver_mail(app, smtp_url)
    page.goto(first_link(mailbox.wait_for("bea@bakery.example")[0]))
    audit.check(page, "sign-up confirmation")
    page.fill("#password", "not the password I chose")
    _submit(page)
    audit.check(page, "sign-up confirmation, wrong password", "[aria-invalid=true]")
    page.fill("#password", NEW_PASSWORD)
    _submit(page)
    audit.check(page, "account ready", "text=Your account is ready")

    page.goto(f"{base}/login/done")
    audit.check(page, "signed in")
    page.goto(f"{base}/account/password")
    audit.check(page, "change password")
    _submit(page)
    audit.check(page, "change password, field errors", "[aria-invalid=true]")
    page.goto(f"{base}/logout")
    audit.check(page, "sign out?")
    _submit(page)
    audit.check(page, "signed out")

    page.goto(f"{base}/password-reset")
    audit.check(page, "password reset")
    _submit(page)
    audit.check(page, "password reset, field errors", "[aria-invalid=true]")
    page.fill("#email", "bea@bakery.example")
    _submit(page)
    deliver_mail(app, smtp_url)
    page.goto(first_link(mailbox.wait_for("bea@bakery.example", count=2)[1]))
    audit.check(page, "new password")
    page.fill("#password", "a fresher longer passphrase")
    page.fill("#password_confirm", "a different passphrase")
    _submit(page)
    audit.check(page, "new password, field errors", "[aria-invalid=true]")

    page.goto(f"{base}/no-such-page")
    audit.check(page, "error page (not found)")
    audit.assert_clean()


def test_two_step_sign_in_pages(app, live_server, page, audit):
    base = live_server.url
    with app.app_context():
        make_user("client", make_org("client", "Blue Bakery"), email="bea@bakery.example")
        db.session.commit()
        db.session.remove()
    page.goto(f"{base}/login")
    _sign_in(page, "bea@bakery.example")

    page.goto(f"{base}/account/two-step")
    audit.check(page, "two-step, off")
    _submit(page)
    audit.check(page, "two-step, off, field errors", "[aria-invalid=true]")
    page.fill("#current_password", PASSWORD)
    _submit(page)
    audit.check(page, "two-step, scan the QR code", "#secret")
    secret = page.locator("#secret").inner_text()
    page.fill("#code", "12")
    _submit(page)
    audit.check(page, "two-step, wrong first code", "[aria-invalid=true]")
    page.fill("#code", code_at(secret, -1))
    _submit(page)
    audit.check(page, "two-step, recovery codes", ".recovery-codes")
    codes = page.locator(".recovery-codes code").all_inner_texts()
    page.goto(f"{base}/account/two-step")
    audit.check(page, "two-step, on", "text=recovery codes left")
    page.get_by_role("button", name="Make new recovery codes").click()
    audit.check(page, "two-step, on, field errors", "[aria-invalid=true]")

    page.context.clear_cookies()
    page.goto(f"{base}/login")
    _sign_in(page, "bea@bakery.example")
    audit.check(page, "second step", "#code")
    page.fill("#code", "1")
    page.get_by_role("button", name="Sign in", exact=True).click()
    audit.check(page, "second step, wrong code", "[aria-invalid=true]")
    page.fill("#recovery_code", codes[0])
    page.get_by_role("button", name="Sign in with a recovery code").click()
    audit.check(page, "signed in with a recovery code", "text=recovery codes left")
    audit.assert_clean()


def test_hub_login_pages(app, live_server, page, audit):
    with app.app_context():
        register_hub_client("partner", [f"{live_server.url}/demo/callback"])
        acme = make_org("partner", "Acme Messaging")
        globex = make_org("partner", "Globex Solutions")
        consultant = make_user("partner", acme, "member", email="pat@partners.example")
        db.session.add(Membership.create(consultant, globex, "owner"))
        make_user("partner", None, email="lonely@partners.example")
        make_user("client", make_org("client", "Blue Bakery"), email="bea@bakery.example")
        db.session.commit()
        db.session.remove()

    _, challenge = pkce_pair()
    page.goto(authorize_url(live_server, "partner-hub", challenge, "st"))
    audit.check(page, "hub sign-in")
    _sign_in(page, "pat@partners.example")
    page.wait_for_selector("text=Which partner do you want to work in?")
    audit.check(page, "partner picker")
    page.locator("button[name=organization_id]").first.evaluate("b => b.value = 'pa_tampered'")
    page.locator("button[name=organization_id]").first.click()
    audit.check(page, "partner picker, refused choice", "[role=alert]")

    page.get_by_role("button", name="Use another account").click()
    _sign_in(page, "lonely@partners.example")
    audit.check(page, "no organization", "text=No organization to enter")
    page.context.clear_cookies()
    page.goto(authorize_url(live_server, "partner-hub", challenge, "st"))
    _sign_in(page, "bea@bakery.example")
    audit.check(page, "wrong hub", "text=This account belongs to the Client Hub")

    page.goto(authorize_url(live_server, "no-such-client", challenge, "st"))
    audit.check(page, "sign-in request refused", "text=Sign-in request refused")
    audit.assert_clean()


def test_consent_pages(app, live_server, smtp_server, page, audit):
    mailbox, smtp_url = smtp_server
    base = live_server.url
    partner = Partner.acme(app, base)

    page.goto(partner.consent_link("owner@new-bakery.example"))
    audit.check(page, "consent link")
    page.fill("#email", "")
    page.get_by_role("button", name="Create account").click()
    audit.check(page, "consent link, field errors", "[aria-invalid=true]")
    page.fill("#email", "owner@new-bakery.example")
    page.fill("#password", NEW_PASSWORD)
    page.fill("#business_name", "New Bakery")
    page.get_by_role("button", name="Create account").click()
    audit.check(page, "consent link, check your email", "text=Check your email")
    deliver_mail(app, smtp_url)
    page.goto(first_link(mailbox.wait_for("owner@new-bakery.example")[0]))
    page.fill("#password", NEW_PASSWORD)
    page.get_by_role("button", name="Create my account").click()
    page.wait_for_selector("text=Acme Messaging wants to connect to New Bakery")
    audit.check(page, "consent, no numbers")

    with app.app_context():
        user = db.session.scalar(db.select(User).where(User.email == "owner@new-bakery.example"))
        shop = db.session.get(Organization, user.memberships[0].organization_id)
        for _ in range(3):
            make_channel(shop, "live")
        db.session.commit()
        db.session.remove()
    page.reload()
    audit.check(page, "consent, numbers to pick", "input[name=channels]")
    page.locator("input[name=channels]").first.evaluate("box => box.value = 'ch_unknown'")
    page.locator("input[name=channels]").first.check()
    page.get_by_role("button", name="Allow").click()
    audit.check(page, "consent, refused pick", "[role=alert]")
    page.locator("input[name=channels]").first.check()
    with page.expect_navigation(url=re.compile(re.escape(partner.redirect_uri))):
        page.get_by_role("button", name="Allow").click()

    page.goto(f"{base}/client/connected-partners")
    audit.check(page, "connected partners", "text=Revoke Acme Messaging")
    page.get_by_role("button", name="Revoke Acme Messaging").click()
    audit.check(page, "connected partners, revoked", "text=No partner can act on your numbers.")

    # A request asking for nothing a client can grant is refused on the screen.
    page.goto(
        authorize_url(
            live_server,
            partner.client_id,
            partner.challenge,
            "st",
            redirect_uri=partner.redirect_uri,
        )
    )
    audit.check(page, "consent refused", "[role=alert]")
    audit.assert_clean()


def test_sessions_pages(app, live_server, page, _browser, audit):
    base = live_server.url
    with app.app_context():
        make_user("client", make_org("client", "Blue Bakery"), email="bea@bakery.example")
        db.session.commit()
        db.session.remove()
    page.goto(f"{base}/account/sessions")
    _sign_in(page, "bea@bakery.example")
    audit.check(page, "sessions, this browser only", "text=This browser")
    page.context.clear_cookies()

    other = signed_in_elsewhere(app, live_server, _browser)
    page.goto(f"{base}/account/sessions")
    _sign_in(page, "cleo@bakery.example")
    audit.check(page, "sessions, another browser", "text=Sign out every other browser")
    page.get_by_label("Your password, to sign a browser out").fill("not my password")
    page.get_by_role("button", name="Sign out every other browser").click()
    audit.check(page, "sessions, wrong password", "[aria-invalid=true]")

    other.goto(f"{base}/logout")
    other.locator("main form button[type=submit]").click()
    other.wait_for_selector("text=You are signed out.")
    page.get_by_label("Your password, to sign a browser out").fill(PASSWORD)
    page.get_by_role("button", name="Sign out", exact=True).first.click()
    already = "[role=alert]:has-text('That browser is signed out already.')"
    audit.check(page, "sessions, browser signed out already", already)

    other.goto(f"{base}/login")
    _sign_in(other, "cleo@bakery.example")
    page.reload()
    page.get_by_label("Your password, to sign a browser out").fill(PASSWORD)
    page.get_by_role("button", name="Sign out every other browser").click()
    audit.check(page, "sessions, others signed out", "text=Signed out elsewhere")
    other.context.close()
    audit.assert_clean()


def test_invitation_pages(app, live_server, smtp_server, page, audit):
    mailbox, smtp_url = smtp_server
    _invite(app, "Acme", "pat@partners.example")
    deliver_mail(app, smtp_url)
    page.goto(first_link(mailbox.wait_for("pat@partners.example")[0]))
    audit.check(page, "invitation, new account")
    page.fill("#password", NEW_PASSWORD)
    page.fill("#password_confirm", "another passphrase")
    _submit(page)
    audit.check(page, "invitation, field errors", "[aria-invalid=true]")
    audit.assert_clean()


def test_support_console_pages(app, live_server, page, audit):
    with app.app_context():
        support = make_org("support", "Support")
        make_user("support", support, "admin", email="admin@support.example")
        acme = make_org("partner", "Acme Messaging")
        make_user("partner", acme, "member", email="jordan@legacy.example")
        db.session.commit()
        import_accounts("client", [line("Jordan@Legacy.example", name="Jordan Client")])
        db.session.remove()
    base = live_server.url

    page.goto(f"{base}/support/")
    audit.check(page, "support sign-in")
    _sign_in(page, "admin@support.example")
    page.wait_for_url(re.compile(r"/support/"))
    audit.check(page, "support search")
    page.get_by_label("Email address, prefix ending in *, or account id").fill("jordan*")
    page.get_by_role("button", name="Search").click()
    audit.check(page, "support search, results", "role=table[name='Accounts']")
    page.get_by_label("Email address, prefix ending in *, or account id").fill("nobody*")
    page.get_by_role("button", name="Search").click()
    audit.check(page, "support search, no match", "text=No account matches.")

    page.get_by_role("link", name="Email conflicts").click()
    audit.check(page, "support conflicts")
    page.get_by_role("link", name="Client Hub: Jordan Client").click()
    audit.check(page, "support account")
    form = page.get_by_role("form", name="Reassign email")
    form.get_by_label("New email address").fill("JORDAN@legacy.example")
    form.get_by_label("Ticket").fill("SUP-1")
    form.get_by_label("Reason").fill("the same address in both hubs")
    form.get_by_role("button", name="Reassign email").click()
    audit.check(page, "support account, reassign refused", "[role=alert]")
    controls = page.get_by_role("form", name="Account controls")
    controls.get_by_label("Ticket").fill("SUP-2")
    controls.get_by_label("Reason").fill("no")
    controls.get_by_role("button", name="Apply").click()
    audit.check(page, "support account, control refused", "[role=alert]")
    controls.get_by_label("Ticket").fill("SUP-2")
    controls.get_by_label("Reason").fill("the owner asked for it")
    controls.get_by_role("button", name="Apply").click()
    audit.check(page, "support account, control applied", "[role=status]")

    page.get_by_role("link", name="Audit log").click()
    audit.check(page, "support audit log", "role=table[name='Audit events']")
    filters = page.get_by_role("search", name="Filter the audit log")
    filters.get_by_label("From date (UTC)").fill("2026-03-11")
    filters.get_by_label("To date (UTC, included)").fill("2026-03-10")
    filters.get_by_role("button", name="Show events").click()
    audit.check(page, "support audit log, refused filter", "[role=alert]")
    audit.assert_clean()


def test_the_check_fails_on_a_serious_violation(page, audit):
    page.set_content('<html lang="en"><title>Form</title><main><input type="text"></main></html>')
    audit.check(page, "a field without a label")
    with pytest.raises(AssertionError, match=r"label \(critical\)"):
        audit.assert_clean()


def test_connected_partners_names_the_number_each_button_removes(app, live_server, page, audit):
    with app.app_context():
        bakery = make_org("client", "Blue Bakery")
        make_user("client", bakery, "owner", email="bea@bakery.example")
        channels = [make_channel(bakery, "live") for _ in range(2)]
        make_grant(bakery, make_org("partner", "Acme Messaging"), channels)
        numbers = [channel.phone_number for channel in channels]
        db.session.remove()
    page.goto(f"{live_server.url}/client/connected-partners")
    _sign_in(page, "bea@bakery.example")

    for number in numbers:
        button = page.get_by_role("button", name=f"Remove this number {number}", exact=True)
        expect(button).to_have_count(1)
    audit.check(page, "connected partners, two numbers")
    assert audit.found_ids() == set()  # not even a minor finding (an empty column header)
