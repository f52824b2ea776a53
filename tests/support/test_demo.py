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
