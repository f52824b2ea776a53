"""Support staff log in through the Support console client and use the support API."""

from __future__ import annotations

from idp.extensions import db
from tests.factories import make_org, make_user
from tests.oauth.conftest import BrowserClient, Flow, make_hub_clients, tokens_for


def test_an_agent_logs_in_through_the_support_console_and_searches(app, app_ctx):
    make_hub_clients()
    support = make_org("support", "Support")
    agent = make_user("support", support, "agent", email="agent@support.example")
    make_user("client", email="customer@bakery.example")
    db.session.commit()
    browser = BrowserClient(app)

    tokens = tokens_for(Flow(browser, client_id="support-console"), agent.email)

    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    found = browser.get(
        "/v1/support/accounts", query_string={"email": "customer@bakery.example"}, headers=auth
    )
    assert found.status_code == 200, found.get_json()
    assert [a["email"] for a in found.get_json()["items"]] == ["customer@bakery.example"]
    # an agent's token does not open the audit log
    assert browser.get("/v1/audit-events", headers=auth).status_code == 403


def test_a_partner_hub_login_gets_no_support_access(app, app_ctx):
    make_hub_clients()
    acme = make_org("partner", "Acme")
    owner = make_user("partner", acme, "owner", email="owner@acme.example")
    db.session.commit()
    browser = BrowserClient(app)

    tokens = tokens_for(Flow(browser, client_id="partner-hub"), owner.email)

    auth = {"Authorization": f"Bearer {tokens['access_token']}"}
    resp = browser.get("/v1/support/email-conflicts", headers=auth)
    assert resp.status_code == 403
    assert resp.get_json()["code"] == "forbidden"
