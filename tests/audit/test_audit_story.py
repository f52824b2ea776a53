"""The audit log tells an account's story across the product, read by a support admin."""

from __future__ import annotations

from idp.accounts.emails import email_hmac
from tests.factories import bearer_for, make_org, make_user
from tests.oauth.conftest import BrowserClient, Flow, make_hub_clients, tokens_for


def test_logins_reassignment_revocations_and_disable_are_all_recorded(app, app_ctx):
    make_hub_clients()
    support = make_org("support", "Support")
    admin = make_user("support", support, "admin", email="admin@support.example")
    acme = make_org("partner", "Acme")
    owner = make_user("partner", acme, "owner", email="owner@acme.example")
    admin_auth = bearer_for(admin, support)
    browser = BrowserClient(app)

    failed = Flow(browser).login(owner.email, password="not-the-password")
    assert failed.status_code == 401
    tokens_for(Flow(browser), owner.email, acme.id)
    action = {"ticket": "SUP-9", "reason": "story"}
    browser.post(
        f"/v1/support/accounts/{owner.id}/email",
        json=action | {"email": "new-owner@acme.example"},
        headers=admin_auth,
    )
    browser.post(f"/v1/support/accounts/{owner.id}/disable", json=action, headers=admin_auth)

    about_owner = browser.get(
        "/v1/audit-events", query_string={"target": owner.id}, headers=admin_auth
    ).get_json()["items"]
    assert [e["action"] for e in reversed(about_owner)] == [
        "login.failed",
        "login.succeeded",
        "account.email_reassigned",
        "account.disabled",
    ]
    reassigned = about_owner[1]
    assert (reassigned["actor_id"], reassigned["ticket"], reassigned["reason"]) == (
        admin.id,
        "SUP-9",
        "story",
    )
    assert reassigned["before"]["email_hmac"] == email_hmac("owner@acme.example")
    assert reassigned["after"]["email_hmac"] == email_hmac("new-owner@acme.example")
    assert reassigned["request_id"]

    revoked = browser.get(
        "/v1/audit-events", query_string={"action": "token_family.revoked"}, headers=admin_auth
    ).get_json()["items"]
    assert any(e["after"]["user_id"] == owner.id and e["actor_id"] == admin.id for e in revoked)
