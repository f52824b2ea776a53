"""One account per address under real concurrency: sign-up links and invitation links race.

Browsers (``requests`` sessions) open their links first, then submit at the same
instant through a barrier, against the app served over real HTTP. Whatever the
interleaving, the UNIQUE index on the normalized address leaves exactly one
account, and every loser ends on a clear page with nothing half-created. A newer
sign-up spends the older links of its address, so the latest sign-up link is the
one that races the invitations.
"""

from __future__ import annotations

import re
import threading

import pytest
import requests
import sqlalchemy as sa

from idp.accounts.models import User
from idp.accounts.service import start_signup
from idp.extensions import db
from idp.orgs.invitations import create_invitation
from idp.orgs.models import Invitation, Membership, Organization
from idp.outbox.models import OutboxMessage
from policies.actor import Actor
from tests.accounts.helpers import csrf_of
from tests.factories import make_org, make_user

PASSWORD = "a long shared passphrase"
_LINK = re.compile(r"https?://\S+?(/[a-z/-]+\?token=[\w-]+)")


def _links(app, normalized: str) -> list[str]:
    """Every emailed link (path and query) waiting in the outbox for the address, oldest first."""
    with app.app_context():
        bodies = db.session.scalars(
            sa.select(OutboxMessage.body).order_by(OutboxMessage.created_at, OutboxMessage.id)
        ).all()
    return [m.group(1) for body in bodies for m in _LINK.finditer(body)]


def _prepare(app, signups: list[str], invitations: list[str]) -> list[str]:
    """Start sign-ups and partner invitations for the spellings given; return the live links.

    Those are the invitations' and the latest sign-up's: a newer sign-up spent the others.
    """
    with app.app_context():
        for i, email in enumerate(signups):
            start_signup(email, PASSWORD, f"Client {i}")
        for i, email in enumerate(invitations):
            partner = make_org("partner", f"Partner {i}")
            owner = make_user("partner", partner, "owner")
            db.session.commit()
            actor = Actor(
                hub="partner",
                organization_id=partner.id,
                roles=frozenset({"owner"}),
                user_id=owner.id,
            )
            create_invitation(actor, partner.id, email, "member")
        db.session.remove()
    links = _links(app, "ann@example.com")
    assert len(links) == len(signups) + len(invitations)
    signup_links = [link for link in links if link.startswith("/signup/verify")]
    return signup_links[-1:] + [link for link in links if link not in signup_links]


def _race(base_url: str, links: list[str]) -> list[int]:
    """Open every link in its own browser, then submit all forms at the same instant."""
    barrier = threading.Barrier(len(links))
    statuses: list[int] = [0] * len(links)

    def browse(index: int, link: str) -> None:
        with requests.Session() as browser:
            page = browser.get(base_url + link, timeout=30)
            assert page.status_code == 200, page.text
            path, token = link.split("?token=")
            form = {"csrf_token": csrf_of(page.text), "token": token, "password": PASSWORD}
            if path == "/invitations/accept":
                form["password_confirm"] = PASSWORD
            barrier.wait(timeout=30)
            statuses[index] = browser.post(base_url + path, data=form, timeout=60).status_code

    threads = [threading.Thread(target=browse, args=pair) for pair in enumerate(links)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    return statuses


def _assert_one_account(app) -> User:
    with app.app_context():
        users = db.session.scalars(
            sa.select(User).where(User.email_normalized == "ann@example.com")
        ).all()
        assert len(users) == 1, [u.email for u in users]
        user = users[0]
        memberships = db.session.scalars(
            sa.select(Membership).where(Membership.user_id == user.id)
        ).all()
        clients = db.session.scalars(
            sa.select(Organization).where(Organization.kind == "client")
        ).all()
        accepted = db.session.scalars(
            sa.select(Invitation).where(Invitation.accepted_at.is_not(None))
        ).all()
        if user.hub == "client":  # the sign-up won: one client, no invitation used
            assert len(clients) == 1 and not accepted
        else:  # an invitation won: no client created, one membership per accepted invitation
            assert not clients and len(accepted) == len(memberships) >= 1
        db.session.expunge(user)
        return user


def _run(app, live_server, signups, invitations):
    links = _prepare(app, signups, invitations)
    statuses = _race(live_server.url, links)
    assert statuses.count(200) >= 1 and set(statuses) <= {200, 409}, statuses
    user = _assert_one_account(app)
    if user.hub == "client":
        assert statuses.count(200) == 1
    return user


@pytest.mark.postgres
@pytest.mark.parametrize("round_", range(3))
def test_a_signup_and_an_invitation_for_one_address_end_in_one_account_on_postgresql(
    app, live_server, round_
):
    _run(app, live_server, ["Ann@Example.com"], ["ann@example.COM"])


@pytest.mark.postgres
def test_many_links_for_one_address_racing_end_in_one_account_on_postgresql(app, live_server):
    _run(
        app,
        live_server,
        ["Ann@Example.com", "ANN@example.com", " ann@EXAMPLE.com"],
        ["ann@example.COM", "Ann@Example.Com"],
    )


def test_a_signup_and_an_invitation_for_one_address_end_in_one_account(app, live_server):
    """The same race on whichever database the suite runs on (SQLite by default)."""
    _run(app, live_server, ["Ann@Example.com", "aNN@example.com"], ["ann@example.COM"])


@pytest.mark.postgres
def test_two_signups_of_one_address_at_once_leave_one_live_link(app_ctx, monkeypatch):
    from idp.accounts import service as accounts
    from tests.consent.interleave import Competitor, pause_before

    def other_signup():
        accounts.start_signup("ann@example.com", "another long passphrase", "Ann's Other Shop")

    # This sign-up has spent the address's earlier links; the other one runs now.
    competitor = Competitor(app_ctx, other_signup)
    pause_before(monkeypatch, accounts, "issue_email_token", competitor)
    accounts.start_signup("ann@example.com", PASSWORD, "Ann's Bakery")
    competitor.finish()

    db.session.expire_all()
    bodies = db.session.scalars(
        sa.select(OutboxMessage.body).where(OutboxMessage.recipient == "ann@example.com")
    ).all()
    links = [m.group(1) for body in bodies for m in re.finditer(r"token=([\w-]+)", body)]
    assert len(links) == 2
    live = []
    for raw in links:
        try:
            accounts.pending_signup(raw)
            live.append(raw)
        except accounts.LinkInvalid:
            pass
    assert len(live) == 1
