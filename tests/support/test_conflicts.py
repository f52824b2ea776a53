"""The conflict queue: both sides listed, resolved by a reassignment and its verification."""

from __future__ import annotations

import json
import re
from datetime import timedelta

from idp.accounts.emails import email_hmac
from idp.accounts.models import EmailToken, User
from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.support.importer import import_accounts
from idp.timeutil import utcnow
from tests.factories import make_org, make_user
from tests.support.conftest import emails_to, fresh
from tests.support.test_import import line


def _held_pair():
    acme = make_org("partner", "Acme")
    holder = make_user("partner", acme, "owner", email="sam@legacy.example")
    db.session.commit()
    import_accounts("client", [line("Sam@Legacy.example", name="Sam Client", organization="Sam's")])
    held = db.session.scalar(db.select(User).where(User.status == "email_conflict"))
    return holder, held


def _token_from(body: str) -> str:
    return re.search(r"/verify-email\?token=(\S+)", body).group(1)


def _confirm(client, token):
    page = client.get(f"/verify-email?token={token}")
    assert page.status_code == 200
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post("/verify-email", data={"csrf_token": csrf, "token": token})


def test_the_queue_lists_both_sides(client, staff):
    holder, held = _held_pair()

    resp = client.get("/v1/support/email-conflicts", headers=staff.agent_auth)

    assert resp.status_code == 200
    (item,) = resp.json["items"]
    assert item["email"] == "Sam@legacy.example"
    assert item["state"] == "held"
    assert item["held"]["id"] == held.id and item["held"]["hub"] == "client"
    assert item["held"]["status"] == "email_conflict"
    assert item["holder"]["id"] == holder.id and item["holder"]["hub"] == "partner"
    assert "import-accounts --hub client, line 1" in item["source"]


def test_search_by_the_claimed_address_finds_both_accounts(client, staff):
    holder, held = _held_pair()
    resp = client.get(
        "/v1/support/accounts",
        query_string={"email": "sam@legacy.example"},
        headers=staff.agent_auth,
    )
    assert {i["id"] for i in resp.json["items"]} == {holder.id, held.id}
    found = {i["id"]: i for i in resp.json["items"]}
    assert found[held.id]["email"] == "Sam@legacy.example"


def test_reassigning_the_held_account_then_verifying_activates_it(client, staff):
    holder, held = _held_pair()

    resp = client.post(
        f"/v1/support/accounts/{held.id}/email",
        json={
            "email": "sam.shop@legacy.example",
            "ticket": "SUP-7",
            "reason": "duplicate at import",
        },
        headers=staff.agent_auth,
    )

    assert resp.status_code == 200
    assert resp.json["status"] == "email_conflict"  # held until the new address is proven
    # the claimed address belongs to the partner account: it gets no notice about someone else
    assert emails_to("sam@legacy.example") == []
    queue = client.get("/v1/support/email-conflicts", headers=staff.agent_auth).json["items"]
    assert queue[0]["state"] == "awaiting_verification"
    (verification,) = emails_to("sam.shop@legacy.example")

    confirmed = _confirm(client, _token_from(verification.body))

    assert confirmed.status_code == 200
    assert "confirmed" in confirmed.text
    held = fresh(User, held.id)
    assert held.status == "active" and held.email_verified is True
    assert fresh(User, holder.id).status == "active"
    assert client.get("/v1/support/email-conflicts", headers=staff.agent_auth).json["items"] == []
    resolved = client.get(
        "/v1/support/email-conflicts", query_string={"state": "resolved"}, headers=staff.agent_auth
    ).json["items"]
    assert resolved[0]["state"] == "resolved"
    event = db.session.scalar(
        db.select(AuditEvent).where(AuditEvent.action == "email_conflict.resolved")
    )
    assert event.target_id == held.id
    # Both addresses by their digest, as every other event names one; neither in clear.
    assert event.before["claimed_email_hmac"] == email_hmac("sam@legacy.example")
    assert event.after["email_hmac"] == email_hmac("sam.shop@legacy.example")
    assert "@" not in json.dumps([event.before, event.after])


def test_a_verification_link_works_once(client, staff):
    _holder, held = _held_pair()
    client.post(
        f"/v1/support/accounts/{held.id}/email",
        json={"email": "once@legacy.example", "ticket": "SUP-8", "reason": "duplicate at import"},
        headers=staff.agent_auth,
    )
    token = _token_from(emails_to("once@legacy.example")[0].body)
    assert _confirm(client, token).status_code == 200
    again = client.get(f"/verify-email?token={token}")
    assert again.status_code == 400
    assert "cannot be used" in again.text


def test_an_old_link_stops_working_after_another_reassignment_even_back_to_its_address(
    client, staff
):
    user = make_user("client", email="first@x.example", verified=False)
    db.session.commit()
    body = {"ticket": "SUP-9", "reason": "typo in the address"}
    client.post(
        f"/v1/support/accounts/{user.id}/email",
        json=body | {"email": "second@x.example"},
        headers=staff.agent_auth,
    )
    old_token = _token_from(emails_to("second@x.example")[0].body)
    client.post(
        f"/v1/support/accounts/{user.id}/email",
        json=body | {"email": "third@x.example"},
        headers=staff.agent_auth,
    )
    assert client.get(f"/verify-email?token={old_token}").status_code == 400
    # Back to the second address: only the link mailed for this move confirms it.
    client.post(
        f"/v1/support/accounts/{user.id}/email",
        json=body | {"email": "second@x.example"},
        headers=staff.agent_auth,
    )
    assert client.get(f"/verify-email?token={old_token}").status_code == 400
    newest = _token_from(emails_to("second@x.example")[-1].body)
    assert newest != old_token
    assert _confirm(client, newest).status_code == 200
    assert fresh(User, user.id).email_verified is True


def test_moving_the_holder_away_frees_the_address_for_the_held_account(client, staff):
    holder, held = _held_pair()
    body = {"ticket": "SUP-10", "reason": "partner side takes a new address"}
    moved = client.post(
        f"/v1/support/accounts/{holder.id}/email",
        json=body | {"email": "sam.partner@legacy.example"},
        headers=staff.agent_auth,
    )
    assert moved.status_code == 200
    queue = client.get("/v1/support/email-conflicts", headers=staff.agent_auth).json["items"]
    assert queue[0]["holder"] is None

    resp = client.post(
        f"/v1/support/accounts/{held.id}/email",
        json=body | {"email": "sam@legacy.example"},
        headers=staff.agent_auth,
    )

    assert resp.status_code == 200
    _confirm(client, _token_from(emails_to("sam@legacy.example")[-1].body))
    assert fresh(User, held.id).status == "active"


def test_an_expired_link_is_replaced_by_a_new_one(client, staff):
    _holder, held = _held_pair()
    action = {"ticket": "SUP-11", "reason": "import duplicate"}
    nothing_to_confirm = client.post(
        f"/v1/support/accounts/{held.id}/resend-verification", json=action, headers=staff.agent_auth
    )
    assert nothing_to_confirm.status_code == 409  # no address of its own yet
    client.post(
        f"/v1/support/accounts/{held.id}/email",
        json=action | {"email": "late@legacy.example"},
        headers=staff.agent_auth,
    )
    first = _token_from(emails_to("late@legacy.example")[0].body)
    db.session.execute(db.update(EmailToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert client.get(f"/verify-email?token={first}").status_code == 400

    resp = client.post(
        f"/v1/support/accounts/{held.id}/resend-verification", json=action, headers=staff.agent_auth
    )

    assert resp.status_code == 202
    second = _token_from(emails_to("late@legacy.example")[1].body)
    assert _confirm(client, second).status_code == 200
    assert fresh(User, held.id).status == "active"
    again = client.post(
        f"/v1/support/accounts/{held.id}/resend-verification", json=action, headers=staff.agent_auth
    )
    assert again.status_code == 409  # verified now


def test_a_held_partner_person_keeps_every_partner_membership_when_resolved(client, staff):
    make_user("client", make_org("client", "Bakery"), "owner", email="pat@legacy.example")
    db.session.commit()
    import_accounts(
        "partner",
        [
            line("pat@legacy.example", organization="Acme"),
            line("pat@legacy.example", organization="Globex", role="member"),
        ],
    )
    (held,) = db.session.scalars(db.select(User).where(User.status == "email_conflict"))
    client.post(
        f"/v1/support/accounts/{held.id}/email",
        json={"email": "pat.partner@legacy.example", "ticket": "SUP-12", "reason": "duplicate"},
        headers=staff.agent_auth,
    )

    _confirm(client, _token_from(emails_to("pat.partner@legacy.example")[0].body))

    held = fresh(User, held.id)
    assert held.status == "active"
    assert sorted(m.organization.name for m in held.memberships) == ["Acme", "Globex"]
