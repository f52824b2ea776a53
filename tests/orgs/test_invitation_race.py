"""Invitations raced on PostgreSQL: revoked while accepted, sent twice at once, and
accepted by an account that support disables or moves to another address meanwhile."""

from __future__ import annotations

import contextlib
import re
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from idp.audit.models import AuditEvent
from idp.errors import Conflict
from idp.extensions import db
from idp.orgs import acceptance, invitations
from idp.orgs.models import Invitation, Membership
from idp.outbox.models import OutboxMessage
from idp.support.controls import disable_account
from idp.support.service import reassign_email
from policies.actor import Actor
from tests.consent.interleave import Competitor, pause_before
from tests.factories import PASSWORD, make_org, make_user
from tests.orgs.test_invitation_accept import NEW_PASSWORD, _invite
from tests.support.test_races import _support_admin


@pytest.mark.postgres
def test_revoking_an_invitation_accepted_meanwhile_is_409_and_keeps_it_accepted(
    app, client, smtp_server
):
    mailbox, smtp_url = smtp_server
    partner_id, link = _invite(app, client, smtp_url, mailbox, "racer@example.com")
    token = parse_qs(urlsplit(link).query)["token"][0]

    def accept():
        with app.app_context():
            acceptance.accept_invitation(token, NEW_PASSWORD, address="192.0.2.1")

    with app.app_context():
        invitation = db.session.scalar(sa.select(Invitation))  # the owner's page loaded it
        owner_id = invitation.invited_by_id
        # the invitee accepts on another connection before the owner's revoke lands
        thread = threading.Thread(target=accept)
        thread.start()
        thread.join(timeout=30)
        owner = Actor(
            hub="partner", organization_id=partner_id, roles=frozenset({"owner"}), user_id=owner_id
        )
        with pytest.raises(Conflict):
            invitations.revoke_invitation(owner, partner_id, invitation.id)
    with app.app_context():
        stored = db.session.scalar(sa.select(Invitation))
        assert stored.accepted_at is not None and stored.revoked_at is None
        assert (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(Membership)
                .where(Membership.organization_id == partner_id)
            )
            == 2
        )  # the owner and the invitee


@pytest.mark.postgres
def test_owners_inviting_one_address_at_once_send_exactly_one_invitation(app):
    with app.app_context():
        partner = make_org("partner", "Acme")
        owners = [make_user("partner", partner, "owner") for _ in range(6)]
        db.session.commit()
        partner_id = partner.id
        actors = [
            Actor(
                hub="partner", organization_id=partner_id, roles=frozenset({"owner"}), user_id=o.id
            )
            for o in owners
        ]
    barrier = threading.Barrier(len(actors))
    outcomes: list[str] = []

    def invite(actor):
        with app.app_context():
            barrier.wait(timeout=10)
            try:
                invitations.create_invitation(actor, partner_id, "Same@Example.com", "member")
                outcomes.append("sent")
            except invitations.InvitationPending:
                outcomes.append("pending")

    threads = [threading.Thread(target=invite, args=(a,)) for a in actors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["pending"] * (len(actors) - 1) + ["sent"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Invitation)) == 1


def _invitation_to_a_partner_user(email: str = "pat@example.com") -> tuple[str, str, str]:
    """A partner user of Globex invited to Acme: (user id, Acme's id, the emailed link's token)."""
    user = make_user("partner", make_org("partner", "Globex"), "owner", email=email)
    acme = make_org("partner", "Acme")
    owner = make_user("partner", acme, "owner")
    db.session.commit()
    user_id, partner_id = user.id, acme.id
    actor = Actor(
        hub="partner", organization_id=partner_id, roles=frozenset({"owner"}), user_id=owner.id
    )
    invitations.create_invitation(actor, partner_id, email, "member")
    body = db.session.scalar(sa.select(OutboxMessage.body).where(OutboxMessage.recipient == email))
    return user_id, partner_id, re.search(r"token=([\w-]+)", body).group(1)


def _occurred(action: str, target_id: str):
    return db.session.scalar(
        sa.select(AuditEvent.occurred_at).where(
            AuditEvent.action == action, AuditEvent.target_id == target_id
        )
    )


def _assert_joined_only_before(change: str, user_id: str, partner_id: str) -> None:
    """The account is a member of the partner only if it accepted before ``change``;
    otherwise the invitation is still open for whoever holds its address."""
    db.session.expire_all()
    invitation = db.session.scalar(sa.select(Invitation))
    member = db.session.scalar(
        sa.select(Membership).where(
            Membership.user_id == user_id, Membership.organization_id == partner_id
        )
    )
    if member is None:
        assert invitation.accepted_at is None, "accepted, yet no membership"
    else:
        joined = _occurred("invitation.accepted", invitation.id)
        assert joined < _occurred(change, user_id), f"the account joined after {change}"


# The acceptance is paused before it proves the account's password (support commits
# first), or after it has claimed the invitation (support comes while it writes).
PAUSES = ["_prove_account", "record_event"]


@pytest.mark.postgres
@pytest.mark.parametrize("pause_at", PAUSES)
def test_an_account_disabled_while_it_accepts_an_invitation_joins_no_partner_after(
    app_ctx, monkeypatch, pause_at
):
    support = _support_admin()
    user_id, partner_id, token = _invitation_to_a_partner_user()

    def disable():
        return disable_account(support, user_id, ticket="SUP-5", reason="compromised").status

    competitor = Competitor(app_ctx, disable)
    pause_before(monkeypatch, acceptance, pause_at, competitor)
    with contextlib.suppress(invitations.AccountDisabled):  # the disabling came first
        acceptance.accept_invitation(token, PASSWORD, address="192.0.2.1")
    assert competitor.finish() == "disabled"
    _assert_joined_only_before("account.disabled", user_id, partner_id)


@pytest.mark.postgres
@pytest.mark.parametrize("pause_at", PAUSES)
def test_an_invitation_is_not_accepted_by_an_account_moved_off_its_address_meanwhile(
    app_ctx, monkeypatch, pause_at
):
    support = _support_admin()
    user_id, partner_id, token = _invitation_to_a_partner_user("pat@example.com")

    def reassign():
        return reassign_email(
            support, user_id, email="pat@elsewhere.example", ticket="SUP-6", reason="duplicate"
        ).email

    competitor = Competitor(app_ctx, reassign)
    pause_before(monkeypatch, acceptance, pause_at, competitor)
    with contextlib.suppress(Conflict):  # the reassignment came first: refused
        acceptance.accept_invitation(token, PASSWORD, address="192.0.2.1")
    assert competitor.finish() == "pat@elsewhere.example"
    _assert_joined_only_before("account.email_reassigned", user_id, partner_id)
