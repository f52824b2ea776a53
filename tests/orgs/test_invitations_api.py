"""Partner invitations API: who may invite, list and revoke, and what the invitee receives."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from idp.accounts.emails import email_hmac
from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.orgs.models import Invitation
from idp.outbox.models import OutboxMessage
from tests.factories import bearer_for, make_org, make_user


@pytest.fixture
def world(app_ctx):
    """Two partners with an owner and a member each, a client owner and a support agent."""
    acme, globex = make_org("partner", "Acme"), make_org("partner", "Globex")
    client = make_org("client", "Blue Bakery")
    users = {
        "acme_owner": make_user("partner", acme, "owner"),
        "acme_member": make_user("partner", acme, "member"),
        "globex_owner": make_user("partner", globex, "owner"),
        "client_owner": make_user("client", client, "owner"),
        "support": make_user("support", make_org("support", "Support"), "admin"),
    }
    db.session.commit()
    orgs = {"acme": acme, "globex": globex, "client": client}
    return {"orgs": orgs, "users": users}


def _headers(world, who: str):
    if who == "anonymous":
        return {}
    if who == "acme_machine":
        return bearer_for(org=world["orgs"]["acme"], scope="clients:read", hub="partner")
    user = world["users"][who]
    return bearer_for(user, user.memberships[0].organization)


def _invite(
    client, world, who="acme_owner", partner="acme", email="new@example.com", role="member"
):
    return client.post(
        f"/v1/partners/{world['orgs'][partner].id}/invitations",
        json={"email": email, "role": role},
        headers=_headers(world, who),
    )


@pytest.mark.parametrize(
    ("who", "partner", "status"),
    [
        ("acme_owner", "acme", 201),
        ("acme_member", "acme", 403),
        ("acme_machine", "acme", 403),
        ("globex_owner", "acme", 404),  # another partner's: not even its existence
        ("client_owner", "acme", 404),
        ("support", "acme", 404),
        ("anonymous", "acme", 401),
        ("acme_owner", "globex", 404),
    ],
)
def test_only_the_partners_owner_may_invite(client, world, who, partner, status):
    resp = _invite(client, world, who=who, partner=partner)
    assert resp.status_code == status, resp.get_json()
    invited = db.session.scalar(sa.select(sa.func.count()).select_from(Invitation))
    assert invited == (1 if status == 201 else 0)


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("acme_owner", 200),
        ("acme_member", 403),
        ("globex_owner", 404),
        ("client_owner", 404),
        ("anonymous", 401),
    ],
)
def test_only_the_owner_lists_pending_invitations(client, world, who, status):
    _invite(client, world)
    resp = client.get(
        f"/v1/partners/{world['orgs']['acme'].id}/invitations", headers=_headers(world, who)
    )
    assert resp.status_code == status
    if status == 200:
        (row,) = resp.get_json()
        assert row["email"] == "new@example.com" and row["role"] == "member"
        assert row["partner_id"] == world["orgs"]["acme"].id
        assert row["expires_at"].endswith("Z")
        assert "token" not in str(row)


@pytest.mark.parametrize(
    ("who", "status"),
    [("acme_owner", 204), ("acme_member", 403), ("globex_owner", 404), ("anonymous", 401)],
)
def test_only_the_owner_revokes(client, world, who, status):
    invitation_id = _invite(client, world).get_json()["id"]
    url = f"/v1/partners/{world['orgs']['acme'].id}/invitations/{invitation_id}"
    resp = client.delete(url, headers=_headers(world, who))
    assert resp.status_code == status
    db.session.expire_all()
    revoked = db.session.get(Invitation, invitation_id).revoked_at is not None
    assert revoked == (status == 204)


def test_an_invitation_of_another_partner_cannot_be_revoked_through_mine(client, world):
    invitation_id = _invite(client, world).get_json()["id"]
    url = f"/v1/partners/{world['orgs']['globex'].id}/invitations/{invitation_id}"
    resp = client.delete(url, headers=_headers(world, "globex_owner"))
    assert resp.status_code == 404


def test_the_invitee_gets_an_email_and_the_creation_is_audited(client, world):
    resp = _invite(client, world, email=" New@Example.com ")
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["id"].startswith("inv_") and body["email"] == "New@example.com"
    message = db.session.scalar(sa.select(OutboxMessage))
    assert message.recipient == "New@example.com"
    assert "Acme" in message.subject and "/invitations/accept?token=" in message.body
    event = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "invitation.created")
    )
    assert event.actor_id == world["users"]["acme_owner"].id
    assert event.organization_id == world["orgs"]["acme"].id
    assert event.after == {"email_hmac": email_hmac("new@example.com"), "role": "member"}


def test_a_second_pending_invitation_and_an_existing_member_are_refused(client, world):
    assert _invite(client, world).status_code == 201
    again = _invite(client, world, email="NEW@example.com", role="owner")
    assert again.status_code == 409 and again.get_json()["code"] == "invitation_pending"
    member = world["users"]["acme_member"]
    resp = _invite(client, world, email=member.email)
    assert resp.status_code == 409 and resp.get_json()["code"] == "already_member"


def test_revoked_invitations_leave_the_pending_list_and_can_be_sent_again(client, world):
    invitation_id = _invite(client, world).get_json()["id"]
    base = f"/v1/partners/{world['orgs']['acme'].id}/invitations"
    headers = _headers(world, "acme_owner")
    assert client.delete(f"{base}/{invitation_id}", headers=headers).status_code == 204
    assert client.delete(f"{base}/{invitation_id}", headers=headers).status_code == 204
    assert client.get(base, headers=headers).get_json() == []
    assert _invite(client, world).status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "nope", "role": "member"}, "email"),
        ({"email": "a@example.com", "role": "admin"}, "role"),
        ({"email": "a@example.com"}, "role"),
        ({"email": "a@example.com", "role": "member", "extra": 1}, "extra"),
    ],
)
def test_invalid_invitations_name_the_failing_field(client, world, body, field):
    resp = client.post(
        f"/v1/partners/{world['orgs']['acme'].id}/invitations",
        json=body,
        headers=_headers(world, "acme_owner"),
    )
    assert resp.status_code == 422
    assert field in resp.get_json()["errors"]


def test_an_expired_invitation_does_not_block_a_new_one(client, world):
    from datetime import timedelta

    from idp.timeutil import utcnow

    first_id = _invite(client, world).get_json()["id"]
    first = db.session.get(Invitation, first_id)
    first.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    second = _invite(client, world)
    assert second.status_code == 201
    db.session.expire_all()
    assert db.session.get(Invitation, first_id).revoked_at is not None  # closed, not reopened
    # The write is on the audit log, by the owner whose new invitation closed it, and why.
    closed = db.session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.action == "invitation.revoked", AuditEvent.target_id == first_id
        )
    )
    assert closed.actor_id == world["users"]["acme_owner"].id
    assert closed.reason == "expired; a new invitation to the address replaces it"


def test_disabling_an_account_revokes_the_invitations_it_sent(client, world):
    """A taken-over owner may have invited its taker: once support disables the account,
    none of its open invitations lets anyone in; another owner's stays open."""
    from idp.orgs import invitations
    from idp.support.controls import disable_account
    from policies.actor import Actor

    mine = _invite(client, world, email="taker@evil.example", role="owner").get_json()["id"]
    another_owner = make_user("partner", world["orgs"]["acme"], "owner")
    db.session.commit()
    theirs = client.post(
        f"/v1/partners/{world['orgs']['acme'].id}/invitations",
        json={"email": "colleague@example.com", "role": "member"},
        headers=bearer_for(another_owner, world["orgs"]["acme"]),
    ).get_json()["id"]
    support = world["users"]["support"]
    agent = Actor(
        hub="support",
        organization_id=support.memberships[0].organization_id,
        roles=frozenset({"admin"}),
        user_id=support.id,
    )

    disable_account(agent, world["users"]["acme_owner"].id, ticket="SUP-5", reason="taken over")

    db.session.expire_all()
    assert db.session.get(Invitation, mine).revoked_at is not None
    assert db.session.get(Invitation, theirs).revoked_at is None
    pending = invitations.list_pending_invitations(world["orgs"]["acme"].id)
    assert [i.id for i in pending] == [theirs]
    revoked = db.session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.action == "invitation.revoked", AuditEvent.target_id == mine
        )
    )
    assert (revoked.actor_id, revoked.reason) == (support.id, "the inviting account was disabled")


def test_the_database_refuses_a_second_open_invitation_for_an_address(client, world):
    from sqlalchemy.exc import IntegrityError

    from idp.timeutil import utcnow

    assert _invite(client, world).status_code == 201
    existing = db.session.scalar(sa.select(Invitation))
    db.session.add(
        Invitation(
            id="inv_duplicate",
            organization_id=existing.organization_id,
            email=existing.email,
            email_normalized=existing.email_normalized,
            role="member",
            token_hash="0" * 64,
            expires_at=utcnow(),
        )
    )
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_an_account_disabled_meanwhile_invites_nobody(client, world):
    """Its token was valid when the request began; the account is read again, held until
    the invitation commits, so a disabling either comes first (refused) or revokes it."""
    from idp.errors import Unauthorized
    from idp.orgs import invitations
    from policies.actor import Actor

    owner = world["users"]["acme_owner"]
    actor = Actor(
        hub="partner",
        organization_id=world["orgs"]["acme"].id,
        roles=frozenset({"owner"}),
        user_id=owner.id,
    )
    owner.status = "disabled"
    db.session.commit()

    with pytest.raises(Unauthorized):
        invitations.create_invitation(actor, world["orgs"]["acme"].id, "x@example.com", "owner")

    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invitation)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0
