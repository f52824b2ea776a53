"""Support controls racing what the account's own person does, on PostgreSQL.

Each test pauses the person's request between its read and its write while the
support change runs on its own connection (``tests.consent.interleave``): the
support change must win, whether it commits first or waits for the request.
"""

from __future__ import annotations

import contextlib
import re

import pytest
import sqlalchemy as sa

from idp.accounts import reset
from idp.accounts.models import User
from idp.apikeys import service as keys
from idp.apikeys.models import ChannelApiKey
from idp.errors import Unauthorized
from idp.extensions import db
from idp.outbox.models import OutboxMessage
from idp.support.controls import disable_account
from idp.support.service import reassign_email
from policies.actor import Actor
from tests.consent.interleave import Competitor, pause_before
from tests.factories import make_channel, make_org, make_user

pytestmark = pytest.mark.postgres


def _support_admin() -> Actor:
    support = make_org("support", "Support")
    admin = make_user("support", support, "admin", email="admin@support.example")
    return Actor(
        hub="support", organization_id=support.id, roles=frozenset({"admin"}), user_id=admin.id
    )


def test_a_reset_link_asked_for_during_a_reassignment_does_not_outlive_it(app_ctx, monkeypatch):
    support = _support_admin()
    victim = make_user(
        "client", make_org("client", "Blue Bakery"), "owner", email="old@example.com"
    )
    db.session.commit()
    victim_id = victim.id

    def reassign():
        reassign_email(support, victim_id, email="new@example.com", ticket="SUP-1", reason="asked")

    # The reset request has found the account under old@example.com; support moves
    # the account to new@example.com before the link is written.
    competitor = Competitor(app_ctx, reassign)
    pause_before(monkeypatch, reset, "send_password_reset", competitor)
    reset.request_password_reset("old@example.com")
    competitor.finish()

    db.session.expire_all()
    assert db.session.get(User, victim_id).email_normalized == "new@example.com"
    mailed = db.session.scalars(
        sa.select(OutboxMessage.body).where(OutboxMessage.recipient == "old@example.com")
    ).all()
    links = [m.group(1) for body in mailed for m in re.finditer(r"token=([\w-]+)", body)]
    assert links, "the request mailed the old address nothing"
    assert not any(reset.reset_link_is_usable(raw) for raw in links)


def test_a_key_generated_while_its_person_is_disabled_does_not_outlive_the_disabling(
    app_ctx, monkeypatch
):
    support = _support_admin()
    client = make_org("client", "Blue Bakery")
    owner = make_user("client", client, "owner", email="owner@bakery.example")
    channel = make_channel(client, "live")
    db.session.commit()
    person = Actor(
        hub="client", organization_id=client.id, roles=frozenset({"owner"}), user_id=owner.id
    )
    owner_id, client_id, channel_id = owner.id, client.id, channel.id

    def disable():
        return disable_account(support, owner_id, ticket="SUP-2", reason="compromised").status

    # The generation has passed its checks; support disables the account, which
    # revokes the client's keys, before the new key is written.
    competitor = Competitor(app_ctx, disable)
    pause_before(monkeypatch, keys, "_retire_earlier_keys", competitor)
    try:
        _, text = keys.create_key(person, "client", client_id, channel_id)
    except Unauthorized:
        text = None  # the disabling committed first: no key at all
    assert competitor.finish() == "disabled"

    db.session.expire_all()
    live = db.session.scalars(
        sa.select(ChannelApiKey).where(
            ChannelApiKey.client_id == client_id, ChannelApiKey.revoked_at.is_(None)
        )
    ).all()
    assert live == []
    if text is not None:
        with pytest.raises(keys.InvalidApiKey):
            keys.check_key(text)


def test_a_disabled_person_generates_no_key(app_ctx):
    client = make_org("client", "Blue Bakery")
    owner = make_user("client", client, "owner", email="owner@bakery.example", status="disabled")
    channel = make_channel(client, "live")
    db.session.commit()
    person = Actor(
        hub="client", organization_id=client.id, roles=frozenset({"owner"}), user_id=owner.id
    )
    with pytest.raises(Unauthorized):
        keys.create_key(person, "client", client.id, channel.id)


def test_a_reset_link_support_sends_while_another_agent_disables_the_account_dies(
    app_ctx, monkeypatch
):
    from idp.support import controls
    from idp.support.controls import AccountStateConflict, trigger_password_reset

    support = _support_admin()
    bakery = make_org("client", "Blue Bakery")
    owner = make_user("client", bakery, "owner", email="owner@bakery.example")
    db.session.commit()
    owner_id = owner.id

    def disable():
        return disable_account(support, owner_id, ticket="SUP-3", reason="compromised").status

    competitor = Competitor(app_ctx, disable)
    pause_before(monkeypatch, controls, "send_password_reset", competitor)
    with contextlib.suppress(AccountStateConflict):  # the disabling came first: no link
        trigger_password_reset(support, owner_id, ticket="SUP-4", reason="asked for a link")
    assert competitor.finish() == "disabled"

    db.session.expire_all()
    bodies = db.session.scalars(
        sa.select(OutboxMessage.body).where(OutboxMessage.recipient == "owner@bakery.example")
    ).all()
    links = [m.group(1) for body in bodies for m in re.finditer(r"token=([\w-]+)", body)]
    # Enabled again later, the account must not be opened by a link sent before.
    db.session.get(User, owner_id).status = "active"
    db.session.commit()
    assert not any(reset.reset_link_is_usable(raw) for raw in links)
