"""Support console pages over HTTP: login redirect, hub check, CSRF, account controls."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest

from idp.accounts.models import User
from idp.extensions import db
from tests.factories import PASSWORD, make_org, make_user


def _csrf(page_text: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page_text).group(1)


@pytest.fixture
def browser(app):
    """A cookie-keeping client; each request gets its own context, as in production."""
    return app.test_client()


def _sign_in(browser, hub: str, email: str) -> None:
    form = browser.get(f"/login?hub={hub}")
    resp = browser.post(
        f"/login?hub={hub}",
        data={"csrf_token": _csrf(form.text), "email": email, "password": PASSWORD},
    )
    assert resp.status_code == 302, resp.text


@dataclass
class Person:
    id: str
    email: str


@pytest.fixture
def people(app):
    with app.app_context():
        support = make_org("support", "Support")
        agent = make_user("support", support, "agent", email="agent@support.example")
        bakery = make_org("client", "Blue Bakery")
        owner = make_user("client", bakery, "owner", email="owner@bakery.example")
        db.session.commit()
        return Person(agent.id, agent.email), Person(owner.id, owner.email)


def account(app, user_id: str) -> User:
    """The account as stored now (read in a context of its own)."""
    with app.app_context():
        user = db.session.get(User, user_id)
        db.session.expunge(user)
        return user


def test_anonymous_visitors_are_sent_to_the_support_login(browser, people):
    resp = browser.get("/support/conflicts")
    assert resp.status_code == 302
    target = urlsplit(resp.headers["Location"])
    assert target.path == "/login"
    assert parse_qs(target.query) == {"hub": ["support"], "next": ["/support/conflicts"]}


def test_people_of_other_hubs_are_refused(browser, people):
    _agent, owner = people
    # a client account cannot sign in to the support hub, and has no console either
    form = browser.get("/login?hub=client")
    browser.post(
        "/login?hub=client",
        data={"csrf_token": _csrf(form.text), "email": owner.email, "password": PASSWORD},
    )
    resp = browser.get("/support/", headers={"Accept": "text/html"})
    assert resp.status_code == 403
    assert "support staff only" in resp.text


def test_forms_without_a_csrf_token_are_refused(app, browser, people):
    agent, owner = people
    _sign_in(browser, "support", agent.email)
    resp = browser.post(
        f"/support/accounts/{owner.id}/email",
        data={"email": "new@bakery.example", "ticket": "T-1", "reason": "no token"},
    )
    assert resp.status_code == 400
    assert account(app, owner.id).email == "owner@bakery.example"


def test_account_controls_from_the_console(app, browser, people):
    agent, owner = people
    _sign_in(browser, "support", agent.email)
    page = browser.get(f"/support/accounts/{owner.id}")
    assert page.status_code == 200

    resp = browser.post(
        f"/support/accounts/{owner.id}/controls",
        data={
            "csrf_token": _csrf(page.text),
            "action": "disable",
            "ticket": "SUP-5",
            "reason": "asked by the owner",
        },
        follow_redirects=True,
    )

    assert "The account is disabled and signed out everywhere." in resp.text
    assert account(app, owner.id).status == "disabled"
    assert '<option value="enable">' in resp.text

    refused = browser.post(
        f"/support/accounts/{owner.id}/controls",
        data={"csrf_token": _csrf(resp.text), "action": "enable", "ticket": "SUP-5"},
        follow_redirects=True,
    )
    assert refused.status_code == 422
    assert re.search(r'id="control-reason-error">Reason: ', refused.text)  # named as on the form
    assert account(app, owner.id).status == "disabled"


def test_an_action_the_accounts_state_refuses_marks_the_action(app, browser, people):
    agent, owner = people
    _sign_in(browser, "support", agent.email)
    page = browser.get(f"/support/accounts/{owner.id}")
    refused = browser.post(
        f"/support/accounts/{owner.id}/controls",
        data={
            "csrf_token": _csrf(page.text),
            "action": "enable",  # not offered: the account is active
            "ticket": "SUP-6",
            "reason": "asked by the owner",
        },
    )
    assert refused.status_code == 409
    select = re.search(r"<select [^>]*>", refused.text).group(0)
    assert 'aria-invalid="true" aria-describedby="action-error" autofocus' in select
    assert re.search(r'id="action-error">Only a disabled account can be enabled', refused.text)
    assert refused.text.count('aria-invalid="true"') == 1
    assert account(app, owner.id).status == "active"


def test_search_page_finds_by_address_prefix_and_id(browser, people):
    agent, owner = people
    _sign_in(browser, "support", agent.email)
    assert "owner@bakery.example" in browser.get("/support/?q=OWNER@bakery.example").text
    assert "owner@bakery.example" in browser.get("/support/?q=owner*").text
    assert "owner@bakery.example" in browser.get(f"/support/?q={owner.id}").text
    assert "No account matches." in browser.get("/support/?q=nobody@x.example").text
    invalid = browser.get("/support/?q=owner-at-bakery").text  # neither an address nor a prefix
    assert "owner@bakery.example" not in invalid and "email:" in invalid


def test_search_page_pages_through_many_results(app, browser, people):
    agent, _owner = people
    with app.app_context():
        for n in range(60):
            make_user("client", email=f"shop{n:02d}@many.example")
        db.session.commit()
    _sign_in(browser, "support", agent.email)
    first = browser.get("/support/?q=shop*")
    assert "shop00@many.example" in first.text and "shop50@many.example" not in first.text
    next_link = re.search(r'href="([^"]+)">Next page<', first.text).group(1)
    second = browser.get(next_link.replace("&amp;", "&"))
    assert "shop50@many.example" in second.text and "shop00@many.example" not in second.text


def test_a_bad_verification_link_shows_a_clear_page(client):
    resp = client.get("/verify-email?token=forged")
    assert resp.status_code == 400
    assert "cannot be used" in resp.text
