"""Account controls: disable/enable, password-reset link, end all sessions."""

from __future__ import annotations

import re

import pytest

from idp.accounts.models import EmailToken, User
from idp.audit.models import AuditEvent
from idp.extensions import db
from tests.factories import bearer_for, make_channel, make_org, make_user
from tests.support.conftest import emails_to, fresh

ACTION = {"ticket": "SUP-77", "reason": "account reported compromised"}


def _post(client, auth, user_id, action, body=ACTION):
    return client.post(f"/v1/support/accounts/{user_id}/{action}", json=body, headers=auth)


def test_disabling_a_client_ends_tokens_and_stops_its_channels_keys(client, staff):
    bakery = make_org("client", "Blue Bakery")
    owner = make_user("client", bakery, "owner")
    channel = make_channel(bakery, "live")
    owner_auth = bearer_for(owner, bakery)
    created = client.post(
        f"/v1/clients/{bakery.id}/channels/{channel.id}/api-keys", json={}, headers=owner_auth
    )
    assert created.status_code == 201
    key = {"D360-API-KEY": created.json["api_key"]}
    assert client.get("/v1/api-keys/check", headers=key).status_code == 200

    resp = _post(client, staff.agent_auth, owner.id, "disable")

    assert resp.status_code == 200
    assert resp.json["status"] == "disabled"
    assert client.get("/v1/api-keys/check", headers=key).status_code == 401
    assert (
        client.get(f"/v1/clients/{bakery.id}/channels/{channel.id}/api-keys", headers=owner_auth)
    ).status_code == 401
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "account.disabled"))
    assert (event.before, event.after) == ({"status": "active"}, {"status": "disabled"})
    assert (event.ticket, event.reason, event.actor_id) == (
        "SUP-77",
        "account reported compromised",
        staff.agent.id,
    )


def test_disable_then_enable(client, staff):
    user = make_user("partner")
    db.session.commit()
    assert _post(client, staff.agent_auth, user.id, "disable").status_code == 200
    again = _post(client, staff.agent_auth, user.id, "disable")
    assert again.status_code == 409 and again.json["code"] == "account_state"
    enabled = _post(client, staff.agent_auth, user.id, "enable")
    assert enabled.status_code == 200 and enabled.json["status"] == "active"
    assert fresh(User, user.id).is_active


def test_staff_cannot_disable_themselves(client, staff):
    resp = _post(client, staff.admin_auth, staff.admin.id, "disable")
    assert resp.status_code == 409


def test_password_reset_sends_a_link_and_changes_nothing_else(client, staff):
    user = make_user("client", email="forgot@x.example")
    db.session.commit()
    old_hash = user.password_hash

    resp = _post(client, staff.agent_auth, user.id, "password-reset")

    assert resp.status_code == 202
    (message,) = emails_to("forgot@x.example")
    token = re.search(r"/password-reset/confirm\?token=(\S+)", message.body).group(1)
    assert len(token) >= 40
    row = db.session.scalar(db.select(EmailToken).where(EmailToken.user_id == user.id))
    assert row.purpose == "password_reset" and token not in row.token_hash
    assert fresh(User, user.id).password_hash == old_hash


def test_end_sessions_revokes_tokens_and_browser_sessions(client, staff):
    org = make_org("partner")
    user = make_user("partner", org, "member")
    auth = bearer_for(user, org)
    stamp = user.security_stamp
    assert (
        client.get(f"/v1/partners/{org.id}/channels/ch_x/api-keys", headers=auth).status_code != 401
    )

    resp = _post(client, staff.agent_auth, user.id, "end-sessions")

    assert resp.status_code == 200
    assert (
        client.get(f"/v1/partners/{org.id}/channels/ch_x/api-keys", headers=auth).status_code == 401
    )
    assert fresh(User, user.id).security_stamp != stamp


@pytest.mark.parametrize("action", ["disable", "enable", "password-reset", "end-sessions"])
def test_every_control_needs_ticket_and_reason(client, staff, action):
    user = make_user("client")
    db.session.commit()
    resp = _post(client, staff.agent_auth, user.id, action, body={"ticket": "T-1"})
    assert resp.status_code == 422
    assert "reason" in resp.json["errors"]


def test_a_reset_link_sent_before_a_disable_is_dead_after_the_enable(
    app, client, staff, smtp_server
):
    from tests.accounts.helpers import deliver_mail, received_link

    mailbox, smtp_url = smtp_server
    user = make_user("partner", email="rae@example.com")
    db.session.commit()
    assert client.post("/v1/password-reset", json={"email": user.email}).status_code == 202
    deliver_mail(app, smtp_url)
    link = received_link(mailbox, user.email)
    changed_at = user.password_changed_at
    # Support stops the account (reported compromised), then lets its owner back in.
    assert _post(client, staff.agent_auth, user.id, "disable").status_code == 200
    assert _post(client, staff.agent_auth, user.id, "enable").status_code == 200
    page = client.get(link).get_data(as_text=True)
    assert "This link is invalid or has expired" in page
    assert fresh(User, user.id).password_changed_at == changed_at
