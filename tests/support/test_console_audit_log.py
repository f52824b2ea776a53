"""The audit log in the support console: admins filter and page it, agents are refused."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from urllib.parse import urlencode

import pytest
from markupsafe import escape

from idp.audit.actions import KNOWN_ACTIONS
from idp.audit.service import record_event
from idp.extensions import db
from idp.support.paging import encode_cursor
from tests.support.test_console_pages import _sign_in
from tests.support.test_refusals_on_record import _console_denials, people  # noqa: F401
from tests.test_every_write_is_audited import documented_actions

NOON = datetime(2026, 3, 10, 12, 0, 0)  # naive UTC, as stored


@pytest.fixture
def ids(app, people):  # noqa: F811
    """A support agent and admin, a client owner, and events on three days about them."""
    agent, admin, owner = people["agent"], people["admin"], people["owner"]
    with app.app_context():
        _event("account.disabled", agent, owner, NOON - timedelta(days=1), "SUP-7")
        _event("account.enabled", admin, owner, NOON, "SUP-8", reason="owner called back")
        _event("account.sessions_ended", agent, admin, NOON + timedelta(days=1), "SUP-9")
        db.session.commit()
    return people


def _event(action, actor, target, at, ticket=None, **fields) -> None:
    event = record_event(
        action,
        actor_type="user",
        actor_id=actor,
        target_type="user",
        target_id=target,
        ticket=ticket,
        **fields,
    )
    event.occurred_at = at


def _tickets(page_text: str) -> list[str]:
    """The tickets of the listed events, top to bottom."""
    return re.findall(r"<bdi>(SUP-\d+)</bdi>", page_text)


def _audit(browser, **filters):
    return browser.get("/support/audit?" + urlencode(filters))


def test_an_admin_filters_the_audit_log(app, ids):
    browser = app.test_client()
    _sign_in(browser, "support", "admin@support.example")

    everything = _audit(browser)
    assert everything.status_code == 200
    assert _tickets(everything.text) == ["SUP-9", "SUP-8", "SUP-7"]  # newest first
    assert "Time (UTC)" in everything.text and "2026-03-10 12:00:00 UTC" in everything.text
    assert "SUP-8</bdi>: <bdi>owner called back</bdi>" in everything.text

    assert _tickets(_audit(browser, actor=ids["agent"]).text) == ["SUP-9", "SUP-7"]
    assert _tickets(_audit(browser, target=ids["owner"]).text) == ["SUP-8", "SUP-7"]
    assert _tickets(_audit(browser, action="account.disabled").text) == ["SUP-7"]
    # whole UTC days, both included
    assert _tickets(_audit(browser, since="2026-03-10").text) == ["SUP-9", "SUP-8"]
    assert _tickets(_audit(browser, until="2026-03-10").text) == ["SUP-8", "SUP-7"]
    one_day = _audit(browser, since="2026-03-10", until="2026-03-10", actor=ids["admin"])
    assert _tickets(one_day.text) == ["SUP-8"]
    # the form shows the filters it applied
    assert 'name="since" value="2026-03-10"' in one_day.text
    nothing = _audit(browser, actor="usr_nobody")
    assert nothing.status_code == 200 and "No event matches." in nothing.text


def test_an_event_shows_every_field(app, ids):
    with app.app_context():
        record_event(
            "account.email_reassigned",
            actor_type="user",
            actor_id=ids["admin"],
            target_type="user",
            target_id=ids["owner"],
            organization_id="cl_bakery",
            before={"email_hmac": "ab12", "status": "active"},
            after={"email_hmac": "cd34", "status": "active"},
            ticket="SUP-10",
            reason="new address",
        )
        db.session.commit()
    browser = app.test_client()
    _sign_in(browser, "support", "admin@support.example")

    text = _audit(browser, action="account.email_reassigned").text

    row = re.search(r"<tbody>(.*)</tbody>", text, re.S).group(1)
    assert f'href="/support/accounts/{ids["admin"]}"' in row  # the actor's account
    assert f'href="/support/accounts/{ids["owner"]}"' in row  # the target's account
    for shown in ("cl_bakery", "SUP-10", "new address", "&#34;email_hmac&#34;: &#34;ab12&#34;"):
        assert shown in row
    assert "&#34;email_hmac&#34;: &#34;cd34&#34;" in row
    assert "127.0.0.1" not in row  # recorded outside a request: no client address, said so
    assert "Client address</dt><dd>none" in row


def test_user_provided_text_is_escaped(app, ids):
    hostile = '<script>alert("owned")</script>'
    with app.app_context():
        _event(
            "account.disabled",
            ids["agent"],
            ids["owner"],
            NOON,
            "SUP-11<b>",
            reason=hostile,
            after={"name": "<img src=x onerror=alert(1)>"},
        )
        db.session.commit()
    browser = app.test_client()
    _sign_in(browser, "support", "admin@support.example")

    text = _audit(browser, action="account.disabled").text

    assert "<script>alert" not in text and "<img src=x" not in text and "SUP-11<b>" not in text
    assert str(escape(hostile)) in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text and "SUP-11&lt;b&gt;" in text


def test_pages_follow_the_cursor_with_the_same_filters(app, ids):
    with app.app_context():
        for n in range(60):
            at = NOON + timedelta(seconds=n)
            _event("account.sessions_ended", ids["agent"], ids["owner"], at, f"SUP-{1000 + n}")
        db.session.commit()
    browser = app.test_client()
    _sign_in(browser, "support", "admin@support.example")

    first = _audit(browser, target=ids["owner"], action="account.sessions_ended")
    older = re.search(r'href="([^"]+)">Older events<', first.text).group(1)
    second = browser.get(html.unescape(older))

    assert _tickets(first.text) == [f"SUP-{1000 + n}" for n in reversed(range(10, 60))]
    assert _tickets(second.text) == [f"SUP-{1000 + n}" for n in reversed(range(10))]
    assert "Older events" not in second.text
    assert 'value="account.sessions_ended" selected' in second.text


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"since": "10/03/2026"}, "From date: Not a valid date; use YYYY-MM-DD."),
        ({"until": "2026-02-30"}, "To date: Not a valid date; use YYYY-MM-DD."),
        ({"since": "2026-03-11", "until": "2026-03-10"}, "To date: Must not be before the From"),
        ({"action": "account.deleted"}, "Action: Choose an action from the list."),
        ({"actor": "usr_\u00e9\u0000"}, "Actor: Not an id"),
        ({"target": "x" * 81}, "Target: Longer than maximum length 80."),
        ({"cursor": "not-a-cursor"}, "Page link: Not valid."),
        ({"cursor": encode_cursor(["yesterday", "evt_1"])}, "Page link: Not valid."),
        ({"cursor": encode_cursor(["2026-03-10T12:00:00", "evt_\u0000"])}, "Page link: Not valid."),
    ],
)
def test_bad_filters_show_what_to_fix_and_list_nothing(app, ids, filters, message):
    browser = app.test_client()
    _sign_in(browser, "support", "admin@support.example")

    resp = _audit(browser, **filters)

    assert resp.status_code == 422
    assert re.search(r'role="alert">([^<]*)<', resp.text).group(1).startswith(html.escape(message))
    assert "<table" not in resp.text and "SUP-" not in resp.text


def test_agents_are_refused_and_the_refusal_is_on_record(app, ids):
    browser = app.test_client()
    _sign_in(browser, "support", "agent@support.example")

    resp = browser.get(f"/support/audit?target={ids['owner']}", headers={"Accept": "text/html"})

    assert resp.status_code == 403
    assert "SUP-" not in resp.text
    assert [(e.actor_id, e.target_id, e.after, e.reason) for e in _console_denials(app)] == [
        (
            ids["agent"],
            None,
            {"permission": "audit:read", "endpoint": "support.audit_log", "method": "GET"},
            "your role does not allow audit:read",
        )
    ]
    # no way there on the agent's pages
    account_page = browser.get(f"/support/accounts/{ids['owner']}").text
    assert "/support/audit" not in account_page


def test_anonymous_visitors_are_sent_to_the_support_login(client, ids):
    resp = client.get("/support/audit?action=account.disabled")
    assert resp.status_code == 302
    assert "/login?hub=support" in resp.headers["Location"]


def test_an_account_page_links_to_its_audit_events(app, ids):
    browser = app.test_client()
    _sign_in(browser, "support", "admin@support.example")
    owner_page = browser.get(f"/support/accounts/{ids['owner']}").text
    agent_page = browser.get(f"/support/accounts/{ids['agent']}").text

    about = re.search(r'href="([^"]+)">Audit events about this account<', owner_page).group(1)
    by = re.search(r'href="([^"]+)">Audit events by this account<', agent_page).group(1)

    assert _tickets(browser.get(html.unescape(about)).text) == ["SUP-8", "SUP-7"]
    assert _tickets(browser.get(html.unescape(by)).text) == ["SUP-9", "SUP-7"]
    assert 'href="/support/audit">Audit log<' in owner_page  # in the console's menu


def test_the_action_list_is_the_documented_one():
    assert set(KNOWN_ACTIONS) == documented_actions()
    assert list(KNOWN_ACTIONS) == sorted(KNOWN_ACTIONS)
