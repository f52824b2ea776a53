"""Members API: listing an organization's people; partner owners change roles and remove.

A partner never loses its last owner; a role taken or a membership ended ends the person's
tokens for that partner at once, and an owner who stops being one loses the invitations
they sent there.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from idp.accounts.models import User
from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.keys.service import verify_jwt
from idp.oauth.models import AuthorizationCode, TokenFamily
from idp.orgs.models import Invitation, Membership
from idp.outbox.models import OutboxMessage
from tests.accounts.helpers import deliver_mail
from tests.factories import bearer_for, make_org, make_user
from tests.fixtures.smtp import body_of
from tests.oauth.conftest import (
    BrowserClient,
    Flow,
    make_hub_clients,
    refresh,
    tokens_for,
)


@pytest.fixture
def world(app_ctx):
    """Acme with two owners and a member, Globex with an owner, a client with two people."""
    acme, globex = make_org("partner", "Acme"), make_org("partner", "Globex")
    bakery = make_org("client", "Blue Bakery")
    users = {
        "acme_owner": make_user("partner", acme, "owner", email="olga@acme.example"),
        "acme_owner2": make_user("partner", acme, "owner", email="otto@acme.example"),
        "acme_member": make_user("partner", acme, "member", email="mia@acme.example"),
        "globex_owner": make_user("partner", globex, "owner"),
        "bakery_owner": make_user("client", bakery, "owner"),
        "bakery_member": make_user("client", bakery, "member"),
    }
    db.session.commit()
    return {"orgs": {"acme": acme, "globex": globex, "bakery": bakery}, "users": users}


def _headers(world, who: str) -> dict:
    if who == "anonymous":
        return {}
    if who == "acme_machine":
        return bearer_for(org=world["orgs"]["acme"], scope="clients:read", hub="partner")
    user = world["users"][who]
    return bearer_for(user, user.memberships[0].organization)


def _membership(world, who: str) -> Membership:
    return world["users"][who].memberships[0]


def _url(world, partner="acme", member: str | None = None) -> str:
    url = f"/v1/partners/{world['orgs'][partner].id}/members"
    return f"{url}/{_membership(world, member).id}" if member else url


def _roles(world, partner="acme") -> dict[str, str]:
    db.session.expire_all()
    rows = db.session.execute(
        sa.select(User.email, Membership.role)
        .join(User, User.id == Membership.user_id)
        .where(Membership.organization_id == world["orgs"][partner].id)
    ).all()
    return dict(rows)


def _events(action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


def _mail_to(address: str) -> list[OutboxMessage]:
    return list(
        db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.recipient == address))
    )


# --------------------------------------------------------------------------- listing


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("acme_owner", 200),
        ("acme_member", 200),
        ("acme_machine", 403),
        ("globex_owner", 404),
        ("bakery_owner", 404),
        ("anonymous", 401),
    ],
)
def test_a_partners_people_list_its_members(client, world, who, status):
    resp = client.get(_url(world), headers=_headers(world, who))
    assert resp.status_code == status, resp.get_json()
    if status == 200:
        rows = resp.get_json()["items"]
        assert {(r["email"], r["role"]) for r in rows} == {
            ("olga@acme.example", "owner"),
            ("otto@acme.example", "owner"),
            ("mia@acme.example", "member"),
        }
        assert {r["account_status"] for r in rows} == {"active"}
        assert all(r["organization_id"] == world["orgs"]["acme"].id for r in rows)


def test_members_come_in_pages_that_neither_repeat_nor_skip(client, world):
    headers = _headers(world, "acme_member")
    seen, cursor = [], None
    while True:
        query = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get(_url(world), query_string=query, headers=headers).get_json()
        assert len(page["items"]) <= 2
        seen += [row["id"] for row in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 3


@pytest.mark.parametrize(("who", "status"), [("bakery_member", 200), ("acme_owner", 404)])
def test_a_clients_people_list_its_members(client, world, who, status):
    bakery = world["orgs"]["bakery"]
    resp = client.get(f"/v1/clients/{bakery.id}/members", headers=_headers(world, who))
    assert resp.status_code == status
    if status == 200:
        assert sorted(r["role"] for r in resp.get_json()["items"]) == ["member", "owner"]


# --------------------------------------------------------------------------- changing roles


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("acme_owner", 200),
        ("acme_member", 403),
        ("acme_machine", 403),
        ("globex_owner", 404),
        ("bakery_owner", 404),
        ("anonymous", 401),
    ],
)
def test_only_the_partners_owners_change_roles(client, world, who, status):
    resp = client.patch(
        _url(world, member="acme_member"), json={"role": "owner"}, headers=_headers(world, who)
    )
    assert resp.status_code == status, resp.get_json()
    expected = "owner" if status == 200 else "member"
    assert _roles(world)["mia@acme.example"] == expected
    assert len(_events("membership.role_changed")) == (1 if status == 200 else 0)


def test_another_partners_membership_is_not_found_through_yours(client, world):
    """An owner of Acme names Globex's owner's membership under Acme's path: 404, no change."""
    globex_membership = _membership(world, "globex_owner").id
    resp = client.patch(
        f"{_url(world)}/{globex_membership}",
        json={"role": "member"},
        headers=_headers(world, "acme_owner"),
    )
    assert (resp.status_code, resp.get_json()["code"]) == (404, "not_found")
    resp = client.delete(
        f"{_url(world)}/{globex_membership}", headers=_headers(world, "acme_owner")
    )
    assert resp.status_code == 404
    assert _roles(world, "globex") == {world["users"]["globex_owner"].email: "owner"}


@pytest.mark.parametrize("body", [{"role": "admin"}, {"role": ""}, {}, {"role": ["owner"]}])
def test_a_role_that_is_not_a_partner_role_changes_nothing(client, world, body):
    resp = client.patch(
        _url(world, member="acme_member"), json=body, headers=_headers(world, "acme_owner")
    )
    assert resp.status_code == 422
    assert _roles(world)["mia@acme.example"] == "member"


def test_a_promotion_is_recorded_told_and_taken_up_at_the_next_refresh(client, world):
    resp = client.patch(
        _url(world, member="acme_member"),
        json={"role": "owner"},
        headers=_headers(world, "acme_owner"),
    )
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["email"], body["role"]) == ("mia@acme.example", "owner")
    [event] = _events("membership.role_changed")
    mia = world["users"]["acme_member"]
    assert (event.actor_id, event.target_id) == (world["users"]["acme_owner"].id, mia.id)
    assert (event.before["role"], event.after["role"]) == ("member", "owner")
    [mail] = _mail_to("mia@acme.example")
    assert "is now owner" in mail.subject
    # Nothing of hers is revoked: she gains a role, and her next token carries it.
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(TokenFamily)
            .where(TokenFamily.revoked_at.is_not(None))
        )
        == 0
    )


def test_the_same_role_again_writes_nothing(client, world):
    resp = client.patch(
        _url(world, member="acme_owner2"),
        json={"role": "owner"},
        headers=_headers(world, "acme_owner"),
    )
    assert (resp.status_code, resp.get_json()["role"]) == (200, "owner")
    assert _events("membership.role_changed") == []
    assert _mail_to("otto@acme.example") == []


def test_the_last_owner_can_neither_be_demoted_nor_removed(client, world):
    headers = _headers(world, "acme_owner")
    assert client.delete(_url(world, member="acme_owner2"), headers=headers).status_code == 204
    for resp in (
        client.patch(_url(world, member="acme_owner"), json={"role": "member"}, headers=headers),
        client.delete(_url(world, member="acme_owner"), headers=headers),
    ):
        assert (resp.status_code, resp.get_json()["code"]) == (409, "last_owner")
    assert _roles(world) == {"olga@acme.example": "owner", "mia@acme.example": "member"}


def test_an_owner_may_step_down_while_another_owner_remains(client, world):
    resp = client.patch(
        _url(world, member="acme_owner"),
        json={"role": "member"},
        headers=_headers(world, "acme_owner"),
    )
    assert resp.status_code == 200
    assert _roles(world)["olga@acme.example"] == "member"


def test_a_demoted_owner_is_signed_out_of_the_partner_and_loses_their_invitations(client, world):
    olga = _headers(world, "acme_owner")
    invited = client.post(
        f"/v1/partners/{world['orgs']['acme'].id}/invitations",
        json={"email": "her.friend@example.com", "role": "owner"},
        headers=olga,
    )
    assert invited.status_code == 201
    globex_tokens = bearer_for(world["users"]["globex_owner"], world["orgs"]["globex"])

    resp = client.patch(
        _url(world, member="acme_owner"),
        json={"role": "member"},
        headers=_headers(world, "acme_owner2"),
    )

    assert resp.status_code == 200
    # Her token said owner: it no longer opens anything, not even what members may do.
    assert client.get(_url(world), headers=olga).status_code == 401
    invitation = db.session.get(Invitation, invited.get_json()["id"])
    assert invitation.revoked_at is not None
    [revoked] = _events("invitation.revoked")
    assert "no longer an owner" in revoked.reason
    # Nobody else's tokens end.
    assert client.get(_url(world, "globex"), headers=globex_tokens).status_code == 200
    [mail] = _mail_to("olga@acme.example")
    assert "signed out" in mail.body


# --------------------------------------------------------------------------- removing


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("acme_owner", 204),
        ("acme_member", 204),  # her own membership: she leaves
        ("acme_machine", 403),
        ("globex_owner", 404),
        ("anonymous", 401),
    ],
)
def test_owners_remove_members_and_members_leave(client, world, who, status):
    resp = client.delete(_url(world, member="acme_member"), headers=_headers(world, who))
    assert resp.status_code == status, resp.get_json()
    assert ("mia@acme.example" in _roles(world)) is (status != 204)
    if status == 204:
        [event] = _events("membership.removed")
        assert event.target_id == world["users"]["acme_member"].id
        assert event.before["role"] == "member"
        assert event.after == {"left": who == "acme_member"}


def test_a_member_cannot_remove_another_member(client, world):
    resp = client.delete(_url(world, member="acme_owner2"), headers=_headers(world, "acme_member"))
    assert resp.status_code == 403
    assert _roles(world)["otto@acme.example"] == "owner"
    assert _events("membership.removed") == []


def test_removing_twice_is_not_found_the_second_time(client, world):
    headers, url = _headers(world, "acme_owner"), _url(world, member="acme_member")
    assert client.delete(url, headers=headers).status_code == 204
    assert client.delete(url, headers=headers).status_code == 404
    assert len(_events("membership.removed")) == 1


def test_the_removed_person_is_told_and_keeps_their_account(app, client, world, smtp_server):
    mailbox, smtp_url = smtp_server
    mia = world["users"]["acme_member"]
    db.session.add(Membership.create(mia, world["orgs"]["globex"], "member"))
    mia.last_organization_id = world["orgs"]["acme"].id
    db.session.commit()

    assert (
        client.delete(
            _url(world, member="acme_member"), headers=_headers(world, "acme_owner")
        ).status_code
        == 204
    )

    db.session.expire_all()
    mia = db.session.get(User, mia.id)
    assert mia.is_active and mia.last_organization_id is None
    assert [m.organization_id for m in mia.memberships] == [world["orgs"]["globex"].id]
    deliver_mail(app, smtp_url)
    [mail] = mailbox.wait_for("mia@acme.example")
    assert mail["Subject"] == "You were removed from Acme"
    assert "signed out of it in every app" in body_of(mail)


# --------------------------------------------------------------------------- real tokens


@pytest.fixture
def hub(app, world):
    make_hub_clients()
    return Flow(BrowserClient(app))


def test_a_removed_members_hub_tokens_end_at_once(app, client, world, hub):
    acme = world["orgs"]["acme"]
    tokens = tokens_for(hub, "mia@acme.example", acme.id)
    assert verify_jwt(tokens["access_token"], typ="at+jwt")["roles"] == ["member"]
    mine = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert client.get(_url(world), headers=mine).status_code == 200

    assert (
        client.delete(
            _url(world, member="acme_member"), headers=_headers(world, "acme_owner")
        ).status_code
        == 204
    )

    assert client.get(_url(world), headers=mine).status_code == 401
    refused = refresh(hub.http, tokens["refresh_token"])
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    [family] = db.session.scalars(
        sa.select(TokenFamily).where(TokenFamily.user_id == world["users"]["acme_member"].id)
    ).all()
    assert family.revoked_reason == "membership_removed"


def test_a_code_issued_before_the_removal_is_worth_nothing(app, client, world, hub):
    code = hub.code_for("mia@acme.example", world["orgs"]["acme"].id)
    assert (
        client.delete(
            _url(world, member="acme_member"), headers=_headers(world, "acme_owner")
        ).status_code
        == 204
    )
    assert db.session.scalar(sa.select(AuthorizationCode.used_at)) is not None

    resp = hub.exchange(code)

    assert resp.status_code == 400 and resp.get_json()["error"] == "invalid_grant"


def test_the_removed_partner_is_gone_from_the_hub_login(app, world, hub):
    tokens_for(hub, "mia@acme.example", world["orgs"]["acme"].id)
    with app.test_client() as owner_http:
        resp = owner_http.delete(
            _url(world, member="acme_member"), headers=_headers(world, "acme_owner")
        )
        assert resp.status_code == 204
    # Still signed in to the service, the browser asks for the Partner Hub again: she
    # belongs to no partner now, so no code is issued.
    again = Flow(hub.http)
    resp = again.authorize()
    assert resp.status_code == 403
    assert "not a member of any organization" in resp.get_data(as_text=True)


def _switch(http, access_token: str, organization: str):
    return http.post(
        "/oauth/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "client_id": "partner-hub",
            "subject_token": access_token,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "organization": organization,
        },
    )


def test_a_consultant_removed_from_one_partner_keeps_the_other(app, client, world, hub):
    """Switched from Acme to Globex, then removed from Acme: Globex's tokens live on,
    and switching back to Acme is refused."""
    acme, globex = world["orgs"]["acme"], world["orgs"]["globex"]
    mia = world["users"]["acme_member"]
    db.session.add(Membership.create(mia, globex, "member"))
    db.session.commit()
    acme_tokens = tokens_for(hub, "mia@acme.example", acme.id)
    switched = _switch(hub.http, acme_tokens["access_token"], globex.id)
    assert switched.status_code == 200, switched.get_data(as_text=True)
    globex_token = switched.get_json()["access_token"]

    assert (
        client.delete(
            _url(world, member="acme_member"), headers=_headers(world, "acme_owner")
        ).status_code
        == 204
    )

    globex_members = f"/v1/partners/{globex.id}/members"
    assert (
        client.get(globex_members, headers={"Authorization": f"Bearer {globex_token}"}).status_code
        == 200
    )
    back = _switch(hub.http, globex_token, acme.id)
    assert (back.status_code, back.get_json()["error"]) == (400, "invalid_target")


# --------------------------------------------------------------------------- inactive accounts


def test_a_disabled_owner_does_not_count_as_the_owner_who_stays(client, world):
    """Otto's account is disabled: Olga is the only owner who can sign in, so she may not
    leave or step down (nobody would be left to manage Acme)."""
    world["users"]["acme_owner2"].status = "disabled"
    db.session.commit()
    headers = _headers(world, "acme_owner")
    for resp in (
        client.delete(_url(world, member="acme_owner"), headers=headers),
        client.patch(_url(world, member="acme_owner"), json={"role": "member"}, headers=headers),
    ):
        assert (resp.status_code, resp.get_json()["code"]) == (409, "last_owner")
    assert _roles(world)["olga@acme.example"] == "owner"


@pytest.mark.parametrize("status", ["disabled", "email_conflict"])
def test_an_account_that_is_not_active_cannot_be_made_owner(client, world, status):
    world["users"]["acme_member"].status = status
    db.session.commit()
    resp = client.patch(
        _url(world, member="acme_member"),
        json={"role": "owner"},
        headers=_headers(world, "acme_owner"),
    )
    assert (resp.status_code, resp.get_json()["code"]) == (409, "member_inactive")
    assert _roles(world)["mia@acme.example"] == "member"
    assert _events("membership.role_changed") == []


def test_a_held_account_is_removed_without_mail_to_its_placeholder(client, world):
    from idp.support.service import held_address

    mia = world["users"]["acme_member"]
    mia.status = "email_conflict"
    mia.email = mia.email_normalized = held_address(mia.id)
    db.session.commit()
    resp = client.delete(_url(world, member="acme_member"), headers=_headers(world, "acme_owner"))
    assert resp.status_code == 204
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0
    assert len(_events("membership.removed")) == 1
