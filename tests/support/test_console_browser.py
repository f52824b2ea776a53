"""The support console in a real browser: log in, work the conflict queue, search, reassign."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from idp.accounts.models import User
from idp.extensions import db
from idp.support.importer import import_accounts
from tests.factories import PASSWORD, make_org, make_user
from tests.support.conftest import emails_to, fresh
from tests.support.test_import import line

pytestmark = pytest.mark.browser


@pytest.fixture
def conflict_world(app_ctx):
    support = make_org("support", "Support")
    agent = make_user("support", support, "agent", email="agent@support.example")
    acme = make_org("partner", "Acme Messaging")
    holder = make_user("partner", acme, "member", email="jordan@legacy.example")
    db.session.commit()
    import_accounts("client", [line("Jordan@Legacy.example", name="Jordan Client")])
    held = db.session.scalar(db.select(User).where(User.status == "email_conflict"))
    return agent, holder, held


def _log_in(page, email: str) -> None:
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _reassign(page, email: str, ticket: str, reason: str) -> None:
    form = page.get_by_role("form", name="Reassign email")
    form.get_by_label("New email address").fill(email)
    form.get_by_label("Ticket").fill(ticket)
    form.get_by_label("Reason").fill(reason)
    form.get_by_role("button", name="Reassign email").click()


def test_an_agent_resolves_a_conflict_from_the_console(page, live_server, conflict_world):
    agent, holder, held = conflict_world

    page.goto(f"{live_server.url}/support/conflicts")
    assert "Support" in page.title()  # the support login page
    _log_in(page, agent.email)

    page.wait_for_url(re.compile(r"/support/conflicts"))
    table = page.get_by_role("table", name="Email conflicts")
    assert "Jordan@legacy.example" in table.inner_text()
    assert "Partner Hub" in table.inner_text() and "Client Hub" in table.inner_text()

    page.get_by_role("link", name="Client Hub: Jordan Client").click()
    _reassign(page, "jordan.client@legacy.example", "SUP-2001", "same address in both hubs")

    assert "verification link is on its way" in page.get_by_role("status").first.inner_text()
    assert fresh(User, held.id).email == "jordan.client@legacy.example"
    assert len(emails_to("jordan.client@legacy.example")) == 1

    page.get_by_role("link", name="Search accounts").click()
    page.get_by_label("Email address, prefix ending in *, or account id").fill("jordan*")
    page.get_by_role("button", name="Search").click()
    results = page.get_by_role("table", name="Accounts").inner_text()
    assert "jordan@legacy.example" in results and "jordan.client@legacy.example" in results

    # The owner of the held account confirms the new address and is led to the Client Hub.
    (verification,) = emails_to("jordan.client@legacy.example")
    link = re.search(r"/verify-email\?token=\S+", verification.body).group(0)
    page.context.clear_cookies()
    page.goto(f"{live_server.url}{link}")
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("link", name="Log in to the Client Hub").click()
    expect(page).to_have_title("Sign in to Client Hub")


def test_a_taken_address_is_refused_on_the_page(page, live_server, conflict_world):
    agent, holder, held = conflict_world
    page.goto(f"{live_server.url}/support/accounts/{held.id}")
    _log_in(page, agent.email)
    page.wait_for_url(re.compile(rf"/support/accounts/{held.id}"))

    _reassign(page, "JORDAN@legacy.example", "SUP-2002", "trying the taken address")

    assert "already uses this address" in page.get_by_role("alert").inner_text()
    assert fresh(User, held.id).status == "email_conflict"
    # The focus waits in the refused field, which is marked and carries the reason.
    focused = page.locator(":focus")
    expect(focused).to_have_accessible_name("New email address")
    expect(focused).to_have_attribute("aria-invalid", "true")
    expect(focused).to_have_accessible_description(re.compile("already uses this address"))
    expect(focused).to_have_value("JORDAN@legacy.example")


def test_the_console_refuses_other_hubs(page, live_server, conflict_world):
    _agent, holder, _held = conflict_world
    page.goto(f"{live_server.url}/support/conflicts")
    _log_in(page, holder.email)
    assert "Support" in page.content()
    assert "Jordan Client" not in page.content()


def test_an_account_control_refused_keeps_what_the_agent_typed(page, live_server, conflict_world):
    agent, holder, _held = conflict_world
    page.goto(f"{live_server.url}/support/accounts/{holder.id}")
    _log_in(page, agent.email)
    controls = page.get_by_role("form", name="Account controls")
    controls.get_by_label("Action").select_option(label="Disable the account")
    controls.get_by_label("Ticket").fill("SUP-2003")
    controls.get_by_label("Reason").fill("no")  # too short to say why
    controls.get_by_role("button", name="Apply").click()

    refusal = controls.get_by_role("alert").inner_text()
    assert refusal.startswith("Reason:") and "between 3 and 1000" in refusal
    assert controls.get_by_label("Action").input_value() == "disable"
    assert controls.get_by_label("Ticket").input_value() == "SUP-2003"
    assert controls.get_by_label("Reason").input_value() == "no"
    assert fresh(User, holder.id).status == "active"

    controls.get_by_label("Reason").fill("the owner reported a stolen laptop")
    controls.get_by_role("button", name="Apply").click()
    assert "disabled" in page.get_by_role("status").first.inner_text()
    assert fresh(User, holder.id).status == "disabled"
    assert controls.get_by_label("Ticket").input_value() == ""  # a new action starts afresh


def test_an_admin_reads_an_accounts_audit_events(page, live_server, conflict_world):
    _agent, holder, _held = conflict_world
    support = db.session.scalar(db.select(User).where(User.email == "agent@support.example"))
    admin = make_user("support", support.memberships[0].organization, "admin")
    db.session.commit()
    csp_reports: list[str] = []
    page.on(
        "console",
        lambda message: (
            csp_reports.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{live_server.url}/support/accounts/{holder.id}")
    _log_in(page, admin.email)
    page.wait_for_url(re.compile(rf"/support/accounts/{holder.id}"))
    _reassign(page, "jordan.partner@legacy.example", "SUP-3001", '<script>alert("x")</script>')

    page.get_by_role("link", name="Audit events about this account").click()

    events = page.get_by_role("table", name="Audit events")
    first = events.get_by_role("row").nth(1).inner_text()
    assert "account.email_reassigned" in first and "UTC" in first
    assert 'SUP-3001: <script>alert("x")</script>' in first  # shown as typed, never run
    assert "email_hmac" in first and "jordan.partner@legacy.example" not in events.inner_text()

    filters = page.get_by_role("search", name="Filter the audit log")
    filters.get_by_label("Action").select_option("account.email_reassigned")
    filters.get_by_label("From date (UTC)").fill("2026-03-11")
    filters.get_by_label("To date (UTC, included)").fill("2026-03-10")
    filters.get_by_role("button", name="Show events").click()
    assert page.get_by_role("alert").inner_text() == "To date: Must not be before the From date."
    assert page.get_by_role("table", name="Audit events").count() == 0
    assert filters.get_by_label("Action").input_value() == "account.email_reassigned"

    assert csp_reports == [] and dialogs == []


def test_a_refused_control_marks_each_refused_field_and_focuses_the_first(
    page, live_server, conflict_world
):
    agent, holder, _held = conflict_world
    page.goto(f"{live_server.url}/support/accounts/{holder.id}")
    _log_in(page, agent.email)
    controls = page.get_by_role("form", name="Account controls")
    controls.get_by_label("Action").select_option(label="End all sessions")
    controls.get_by_label("Ticket").fill("   ")  # a blank ticket, and too short a reason
    controls.get_by_label("Reason").fill("no")
    controls.get_by_role("button", name="Apply").click()

    ticket, reason = controls.get_by_label("Ticket"), controls.get_by_label("Reason")
    expect(page.locator(":focus")).to_have_attribute("id", "control-ticket")
    for field in (ticket, reason):
        expect(field).to_have_attribute("aria-invalid", "true")
    expect(ticket).to_have_accessible_description(re.compile(r"^Ticket: "))
    expect(reason).to_have_accessible_description(re.compile(r"^Reason: .*between 3 and 1000"))
    expect(controls.get_by_label("Action")).not_to_have_attribute("aria-invalid", "true")
    expect(reason).to_have_value("no")
