"""Accepting an emailed invitation: new password, new membership of the same account, or refusal."""

from __future__ import annotations

import re

import sqlalchemy as sa

from idp.accounts.models import User
from idp.accounts.passwords import verify_password
from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.orgs.models import Membership
from tests.accounts.helpers import csrf_of, deliver_mail, received_link, submit_form
from tests.factories import PASSWORD, bearer_for, make_org, make_user
from tests.oauth.conftest import csrf_from

NEW_PASSWORD = "my own partner passphrase"


def _invite(app, client, smtp_url, mailbox, email, partner_name="Acme", role="member"):
    """Invite ``email`` to a new partner (by its owner) and return the emailed link."""
    with app.app_context():
        partner = make_org("partner", partner_name)
        owner = make_user("partner", partner, "owner")
        headers = bearer_for(owner, partner)
        partner_id = partner.id
    resp = client.post(
        f"/v1/partners/{partner_id}/invitations",
        json={"email": email, "role": role},
        headers=headers,
    )
    assert resp.status_code == 201
    deliver_mail(app, smtp_url)
    return partner_id, received_link(mailbox, email.strip().lower(), index=-1)


def test_a_new_address_sets_a_password_and_becomes_a_partner_user(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    partner_id, link = _invite(app, client, smtp_url, mailbox, "newbie@example.com")
    page = client.get(link)
    assert "Choose a password" in page.get_data(as_text=True)
    resp = submit_form(client, link, password=NEW_PASSWORD, password_confirm=NEW_PASSWORD)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert "Welcome to Acme" in resp.get_data(as_text=True)
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == "newbie@example.com"))
        assert user.hub == "partner" and user.email_verified
        assert verify_password(user.password_hash, NEW_PASSWORD)
        assert [(m.organization_id, m.role) for m in user.memberships] == [(partner_id, "member")]
        actions = set(db.session.scalars(sa.select(AuditEvent.action)))
        assert {"invitation.accepted", "account.created"} <= actions
    assert client.get(link).status_code == 400  # the link works once


def test_an_existing_partner_user_gets_a_new_membership_of_the_same_account(
    app, client, smtp_server
):
    mailbox, smtp_url = smtp_server
    with app.app_context():
        first = make_org("partner", "Globex")
        user = make_user("partner", first, "owner", email="pat@example.com")
        db.session.commit()
        user_id, old_hash = user.id, user.password_hash
    partner_id, link = _invite(app, client, smtp_url, mailbox, "PAT@example.com", role="owner")
    html = client.get(link).get_data(as_text=True)
    assert "already have a Partner Hub account" in html and "password_confirm" not in html

    wrong = submit_form(client, link, password="not the password at all")
    assert wrong.status_code == 422 and "wrong password" in wrong.get_data(as_text=True)
    resp = submit_form(client, link, password=PASSWORD)
    assert resp.status_code == 200
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 2  # no new one
        user = db.session.get(User, user_id)
        assert user.password_hash == old_hash  # no new password
        assert sorted(m.role for m in user.memberships) == ["owner", "owner"]
        assert partner_id in {m.organization_id for m in user.memberships}


def test_a_client_address_cannot_accept_and_nothing_changes(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    with app.app_context():
        make_user("client", make_org("client"), email="bea@example.com")
        db.session.commit()
    _, link = _invite(app, client, smtp_url, mailbox, "bea@example.com")
    page = client.get(link)
    html = page.get_data(as_text=True)
    assert "belongs to an account in another hub" in html and "<form" not in html
    # Posting anyway (with a valid CSRF token of this browser session) changes nothing.
    csrf = csrf_of(client.get("/signup").get_data(as_text=True))
    resp = client.post(
        "/invitations/accept",
        data={
            "csrf_token": csrf,
            "token": link.split("token=")[1],
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
        },
    )
    assert resp.status_code == 409
    assert "Client Hub" in resp.get_data(as_text=True)
    with app.app_context():
        assert (
            db.session.scalar(
                sa.select(sa.func.count())
                .select_from(Membership)
                .where(Membership.role == "member")
            )
            == 0
        )


def test_a_member_invited_again_is_told_so(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    partner_id, link = _invite(app, client, smtp_url, mailbox, "sam@example.com")
    with app.app_context():
        # Sam joined through another path meanwhile (e.g. a second invitation).
        from idp.orgs.models import Organization

        partner = db.session.get(Organization, partner_id)
        make_user("partner", partner, "member", email="sam@example.com")
        db.session.commit()
    html = client.get(link).get_data(as_text=True)
    assert "already a member of Acme" in html and "<form" not in html


def test_a_member_who_joined_while_the_page_was_open_is_led_to_the_partner_hub(
    app, client, smtp_server
):
    mailbox, smtp_url = smtp_server
    partner_id, link = _invite(app, client, smtp_url, mailbox, "sam@example.com")
    page = client.get(link).get_data(as_text=True)
    assert "Choose a password" in page
    with app.app_context():
        from idp.orgs.models import Organization

        make_user(
            "partner", db.session.get(Organization, partner_id), "member", email="sam@example.com"
        )
        db.session.commit()
    token = link.split("token=", 1)[1]
    form = {"token": token, "password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}
    resp = client.post("/invitations/accept", data=form | {"csrf_token": csrf_from(page)})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 409 and "already a member of Acme" in html
    assert '<a href="/login?hub=partner">Log in to the Partner Hub</a>' in html


def test_a_revoked_invitation_link_stops_working(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    partner_id, link = _invite(app, client, smtp_url, mailbox, "late@example.com")
    with app.app_context():
        from idp.orgs.models import Invitation
        from idp.timeutil import utcnow

        db.session.scalar(sa.select(Invitation)).revoked_at = utcnow()
        db.session.commit()
    resp = client.get(link)
    assert resp.status_code == 400
    assert "invalid or has expired" in resp.get_data(as_text=True)


def test_the_new_password_follows_the_rules(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    _, link = _invite(app, client, smtp_url, mailbox, "weak@example.com")
    resp = submit_form(client, link, password="12345678", password_confirm="12345678")
    assert resp.status_code == 422
    own = submit_form(
        client, link, password=" Weak@Example.com", password_confirm=" Weak@Example.com"
    )
    assert own.status_code == 422 and "email address" in own.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(User).where(User.email == "weak@example.com")) is None


def test_the_new_password_may_not_be_the_inviting_partner_name(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    _, link = _invite(app, client, smtp_url, mailbox, "ann@example.com", "Northwind Traders")

    resp = submit_form(
        client, link, password="northwind traders 2026", password_confirm="northwind traders 2026"
    )

    assert resp.status_code == 422 and "your business" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(User).where(User.email == "ann@example.com")) is None


def test_a_partner_name_with_a_line_break_still_reaches_the_invitee_on_one_subject_line(
    app, client, smtp_server
):
    mailbox, smtp_url = smtp_server
    name = "Acme\u2028Bcc: mallory@evil.example"
    _, link = _invite(app, client, smtp_url, mailbox, "newbie@example.com", partner_name=name)
    [received] = mailbox.messages
    unfolded = re.sub(r"\r\n(?=[ \t])", "", received["Subject"]).strip()  # RFC 5322 2.2.3
    assert unfolded == "You are invited to join Acme Bcc: mallory@evil.example on the Partner Hub"
    assert received["Bcc"] is None and received["X-Envelope-To"] == "newbie@example.com"
    resp = submit_form(client, link, password=NEW_PASSWORD, password_confirm=NEW_PASSWORD)
    assert resp.status_code == 200
