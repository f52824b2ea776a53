"""Revoking an invitation while its invitee accepts it (PostgreSQL, two connections)."""

from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from idp.errors import Conflict
from idp.extensions import db
from idp.orgs import invitations
from idp.orgs.models import Invitation, Membership
from policies.actor import Actor
from tests.orgs.test_invitation_accept import NEW_PASSWORD, _invite


@pytest.mark.postgres
def test_revoking_an_invitation_accepted_meanwhile_is_409_and_keeps_it_accepted(
    app, client, smtp_server
):
    mailbox, smtp_url = smtp_server
    partner_id, link = _invite(app, client, smtp_url, mailbox, "racer@example.com")
    token = parse_qs(urlsplit(link).query)["token"][0]

    def accept():
        with app.app_context():
            invitations.accept_invitation(token, NEW_PASSWORD, address="192.0.2.1")

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
    from tests.factories import make_org, make_user

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
