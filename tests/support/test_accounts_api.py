"""Account search and email reassignment through ``/v1/support``."""

from __future__ import annotations

import json
import re

import pytest

from idp.accounts.emails import email_hmac
from idp.accounts.models import User
from idp.accounts.reset import reset_link_is_usable
from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.oauth.models import TokenFamily
from tests.factories import bearer_for, make_org, make_user
from tests.support.conftest import emails_to, fresh


def test_search_by_normalized_address_shows_hub_orgs_and_status(client, staff):
    partner = make_org("partner", "Acme")
    user = make_user("partner", partner, "member", email="Ann.Lee@Example.com")

    resp = client.get(
        "/v1/support/accounts",
        query_string={"email": "  ann.lee@EXAMPLE.com "},
        headers=staff.agent_auth,
    )

    assert resp.status_code == 200
    (found,) = resp.json["items"]
    assert found["id"] == user.id
    assert found["hub"] == "partner"
    assert found["status"] == "active"
    assert found["email_verified"] is True
    assert found["created_at"].endswith("Z")
    assert found["last_login_at"] is None
    assert found["memberships"] == [
        {
            "organization_id": partner.id,
            "organization_name": "Acme",
            "organization_kind": "partner",
            "role": "member",
        }
    ]
    assert "password_hash" not in found and "security_stamp" not in found


def test_prefix_search_pages_through_results(client, staff):
    for n in range(5):
        make_user("client", email=f"shop{n}@bakery.example")
    make_user("client", email="other@bakery.example")

    seen, cursor = [], None
    while True:
        args = {"email_prefix": "SHOP", "limit": 2} | ({"cursor": cursor} if cursor else {})
        resp = client.get("/v1/support/accounts", query_string=args, headers=staff.agent_auth)
        assert resp.status_code == 200
        seen += [item["email"] for item in resp.json["items"]]
        cursor = resp.json["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"shop{n}@bakery.example" for n in range(5)]


def test_prefix_search_treats_wildcards_literally(client, staff):
    make_user("client", email="a_b@x.example")
    make_user("client", email="axb@x.example")
    resp = client.get(
        "/v1/support/accounts", query_string={"email_prefix": "a_"}, headers=staff.agent_auth
    )
    assert [i["email"] for i in resp.json["items"]] == ["a_b@x.example"]


def test_search_by_id_and_get_one(client, staff):
    user = make_user("client")
    resp = client.get(
        "/v1/support/accounts", query_string={"id": user.id}, headers=staff.agent_auth
    )
    assert [i["id"] for i in resp.json["items"]] == [user.id]
    assert client.get(f"/v1/support/accounts/{user.id}", headers=staff.agent_auth).json["id"] == (
        user.id
    )
    missing = client.get("/v1/support/accounts/usr_nope", headers=staff.agent_auth)
    assert missing.status_code == 404
    assert missing.json["code"] == "account_not_found"


@pytest.mark.parametrize(
    "args",
    [{}, {"email": "a@b.example", "id": "usr_x"}, {"email": "a@b.example", "colour": "red"}],
)
def test_search_needs_exactly_one_known_criterion(client, staff, args):
    resp = client.get("/v1/support/accounts", query_string=args, headers=staff.agent_auth)
    assert resp.status_code == 422
    assert resp.mimetype == "application/problem+json"


def test_search_rejects_a_forged_cursor(client, staff):
    resp = client.get(
        "/v1/support/accounts",
        query_string={"email_prefix": "ab", "cursor": "not-a-cursor"},
        headers=staff.agent_auth,
    )
    assert resp.status_code == 422
    assert resp.json["code"] == "invalid_cursor"  # as on every other listing
    assert resp.json["errors"] == {"cursor": ["Not valid."]}


def _reassign(client, auth, user_id, email="new.address@example.com", **extra):
    body = {"email": email, "ticket": "SUP-1042", "reason": "customer lost the old mailbox"}
    return client.post(f"/v1/support/accounts/{user_id}/email", json=body | extra, headers=auth)


def test_agent_reassigns_an_email_with_every_consequence(client, staff):
    client_org = make_org("client", "Blue Bakery")
    user = make_user("client", client_org, "owner", email="old@bakery.example")
    user_auth = bearer_for(user, client_org)
    stamp = user.security_stamp
    assert client.get("/v1/support/accounts", headers=user_auth).status_code == 403

    resp = _reassign(client, staff.agent_auth, user.id, email="New.Owner@Bakery.example")

    assert resp.status_code == 200
    assert resp.json["email"] == "New.Owner@bakery.example"
    assert resp.json["email_verified"] is False
    user = fresh(User, user.id)
    assert user.email_normalized == "new.owner@bakery.example"
    assert user.security_stamp != stamp
    # every token family ended: the account's access token stops working at once
    assert (
        db.session.scalars(db.select(TokenFamily).where(TokenFamily.user_id == user.id))
        .all()[0]
        .revoked_at
        is not None
    )
    assert client.get("/v1/support/accounts", headers=user_auth).status_code == 401
    (verification,) = emails_to("New.Owner@bakery.example")
    assert re.search(r"/verify-email\?token=\S+", verification.body)
    (notice,) = emails_to("old@bakery.example")
    assert "SUP-1042" in notice.body and "N***@bakery.example" in notice.body
    assert "token=" not in notice.body
    event = db.session.scalar(
        db.select(AuditEvent).where(AuditEvent.action == "account.email_reassigned")
    )
    assert event.actor_id == staff.agent.id
    assert event.target_id == user.id
    assert event.ticket == "SUP-1042"
    assert event.reason == "customer lost the old mailbox"
    assert event.before["email_hmac"] == email_hmac("old@bakery.example")
    assert event.after["email_hmac"] == email_hmac("new.owner@bakery.example")
    assert "@" not in json.dumps([event.before, event.after])


def test_a_reset_link_sent_to_the_old_address_dies_with_it(client, staff):
    user = make_user("client", email="lost-mailbox@example.com")
    db.session.commit()
    action = {"ticket": "SUP-3", "reason": "mailbox taken over"}
    client.post(
        f"/v1/support/accounts/{user.id}/password-reset", json=action, headers=staff.agent_auth
    )
    (message,) = emails_to("lost-mailbox@example.com")
    token = re.search(r"/password-reset/confirm\?token=(\S+)", message.body).group(1)
    assert reset_link_is_usable(token)

    _reassign(client, staff.agent_auth, user.id, email="safe@example.com")

    db.session.expire_all()
    assert not reset_link_is_usable(token)


def test_reassigning_to_an_address_in_use_is_a_409_problem(client, staff):
    make_user("partner", email="taken@example.com")
    user = make_user("client", email="mine@example.com")
    db.session.commit()
    resp = _reassign(client, staff.agent_auth, user.id, email="TAKEN@example.com")
    assert resp.status_code == 409
    assert resp.mimetype == "application/problem+json"
    assert resp.json["code"] == "email_taken"
    assert fresh(User, user.id).email == "mine@example.com"
    assert emails_to("mine@example.com") == []


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": "x@example.com", "ticket": "T-1"}, "reason"),
        ({"email": "x@example.com", "reason": "because"}, "ticket"),
        ({"ticket": "T-1", "reason": "because"}, "email"),
        ({"email": "not an address", "ticket": "T-1", "reason": "because"}, "email"),
        (
            {"email": "x@example.com", "ticket": "T-1", "reason": "because", "password": "x"},
            "password",
        ),
    ],
)
def test_reassignment_needs_email_ticket_and_reason_and_nothing_else(client, staff, body, field):
    user = make_user("client")
    resp = client.post(f"/v1/support/accounts/{user.id}/email", json=body, headers=staff.agent_auth)
    assert resp.status_code == 422
    assert field in resp.json["errors"]


def test_reassigning_to_the_same_address_is_refused(client, staff):
    user = make_user("client", email="same@example.com")
    resp = _reassign(client, staff.agent_auth, user.id, email="SAME@example.com")
    assert resp.status_code == 422
    assert resp.json["code"] == "email_unchanged"


def test_no_route_sets_another_persons_password(app, client, staff):
    user = make_user("client")
    rules = [r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/v1/support")]
    assert not [r for r in rules if "password" in r and "reset" not in r]
    resp = client.post(
        f"/v1/support/accounts/{user.id}/password-reset",
        json={"ticket": "T-1", "reason": "asked by phone", "password": "new-password-123"},
        headers=staff.agent_auth,
    )
    assert resp.status_code == 422


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("ann@bü", ["ann@bücher.example"]),
        ("ANN@BÜCH", ["ann@bücher.example"]),
        ("ann@bücher.", ["ann@bücher.example"]),
        ("ann@bücher.ex", ["ann@bücher.example"]),
        ("ann＠b", ["ann@bücher.example"]),
        ("ann@xn--b", ["ann@bücher.example"]),
        ("ＡＮＮ@", ["ann@bücher.example", "ann@other.example"]),
    ],
)
def test_prefix_search_reads_an_address_typed_as_it_is_shown(client, staff, typed, expected):
    # The console shows ann@bücher.example; the account is stored as ann@xn--bcher-kva.example.
    for email in ("ann@bücher.example", "ann@other.example", "anna@bücher.example"):
        make_user("client", email=email)
    resp = client.get(
        "/v1/support/accounts", query_string={"email_prefix": typed}, headers=staff.agent_auth
    )
    assert resp.status_code == 200
    assert sorted(i["email"] for i in resp.json["items"]) == expected


def test_prefix_search_finds_a_held_account_by_the_address_it_claims_as_shown(client, staff):
    from idp.support.importer import import_accounts
    from tests.support.test_import import line

    holder = make_user("partner", make_org("partner"), "owner", email="jo@straße.example")
    db.session.commit()
    import_accounts("client", [line("Jo@Straße.example", name="Jo", organization="Jo's")])
    held = db.session.scalar(db.select(User).where(User.status == "email_conflict"))
    resp = client.get(
        "/v1/support/accounts", query_string={"email_prefix": "JO@STRAß"}, headers=staff.agent_auth
    )
    assert {i["id"] for i in resp.json["items"]} == {holder.id, held.id}


def test_a_cursor_nested_past_the_json_decoder_s_depth_is_invalid_input():
    # The routes' length limit keeps such cursors out; the decoder refuses them too.
    import base64

    from idp.errors import InvalidInput
    from idp.support.paging import decode_time_cursor

    with pytest.raises(InvalidInput):
        decode_time_cursor(base64.urlsafe_b64encode(b"[" * 100_000).decode())
