"""The demo's two imported accounts in conflict, found and resolved by an agent."""

from __future__ import annotations

import re

from idp.accounts.models import User
from idp.accounts.passwords import verify_password
from idp.demo import DEMO_PASSWORD, load_demo
from idp.extensions import db
from tests.factories import bearer_for
from tests.support.conftest import emails_to, fresh
from tests.support.test_conflicts import _confirm


def test_the_demo_conflict_can_be_found_and_resolved(client, app_ctx):
    data = load_demo()
    assert load_demo()["email_conflicts"] == data["email_conflicts"]  # idempotent
    (conflict,) = data["email_conflicts"]
    assert (conflict["held_account"]["hub"], conflict["holder_account"]["hub"]) == (
        "client",
        "partner",
    )
    agent = db.session.scalar(db.select(User).where(User.email == "agent@support.example"))
    auth = bearer_for(agent, agent.memberships[0].organization)

    found = client.get(
        "/v1/support/accounts", query_string={"email": conflict["email"]}, headers=auth
    ).json["items"]
    assert {a["hub"] for a in found} == {"partner", "client"}

    held_id = conflict["held_account"]["id"]
    resp = client.post(
        f"/v1/support/accounts/{held_id}/email",
        json={"email": "jordan.client@legacy.example", "ticket": "DEMO-1", "reason": "demo"},
        headers=auth,
    )
    assert resp.status_code == 200
    (message,) = emails_to("jordan.client@legacy.example")
    token = re.search(r"/verify-email\?token=(\S+)", message.body).group(1)
    assert _confirm(client, token).status_code == 200

    held = fresh(User, held_id)
    holder = fresh(User, conflict["holder_account"]["id"])
    for account in (held, holder):
        assert account.is_active
        assert verify_password(account.password_hash, DEMO_PASSWORD)


def _sign_in(app, hub: str, email: str):
    """Sign in through the login page like a fresh browser (its own cookies and context)."""
    with app.app_context():
        browser = app.test_client()
        form = browser.get(f"/login?hub={hub}")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
        return browser.post(
            f"/login?hub={hub}",
            data={"csrf_token": csrf, "email": email, "password": DEMO_PASSWORD},
        )


def test_after_resolution_both_demo_accounts_log_in_to_their_own_hubs(app, client, app_ctx):
    (conflict,) = load_demo()["email_conflicts"]
    assert _sign_in(app, "client", "jordan@legacy.example").status_code == 403  # wrong hub
    agent = db.session.scalar(db.select(User).where(User.email == "agent@support.example"))
    auth = bearer_for(agent, agent.memberships[0].organization)
    client.post(
        f"/v1/support/accounts/{conflict['held_account']['id']}/email",
        json={"email": "jordan.client@legacy.example", "ticket": "DEMO-2", "reason": "demo"},
        headers=auth,
    )
    # held until the new address is confirmed
    held_try = _sign_in(app, "client", "jordan.client@legacy.example")
    assert held_try.status_code == 403, held_try.text
    (message,) = emails_to("jordan.client@legacy.example")
    _confirm(client, re.search(r"/verify-email\?token=(\S+)", message.body).group(1))

    partner = _sign_in(app, "partner", "jordan@legacy.example")
    client_side = _sign_in(app, "client", "jordan.client@legacy.example")

    assert partner.status_code == 302 and client_side.status_code == 302
    # the legacy bcrypt hashes were replaced by argon2id at first login
    db.session.expire_all()
    for account_id in (conflict["held_account"]["id"], conflict["holder_account"]["id"]):
        assert db.session.get(User, account_id).password_hash.startswith("$argon2id$")
