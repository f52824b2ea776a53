"""An event about a client's number reaches a partner only if the partner still sees the
number when the event is sent: a grant revoked or narrowed after the event was queued
withholds it, and the partner's delivery log says so."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa

from idp.channels import service as channel_service
from idp.consent import service as consent_service
from idp.extensions import db
from idp.orgs.models import Organization
from idp.outbox import worker
from idp.outbox.models import OutboxMessage
from idp.timeutil import utcnow
from policies.actor import Actor
from tests.consent.factories import client_actor, make_key
from tests.factories import bearer_for, make_channel, make_org
from tests.test_api_problem_codes import reaches


@dataclass
class Shared:
    """A client (not onboarded by the partner) sharing two numbers with the hooked partner."""

    client: object
    grant: object
    shared: object
    other: object
    owner_bearer: dict


@pytest.fixture
def shared(hooked_partner, receiver):
    client = make_org("client", "Blue Bakery")
    shared, other = make_channel(client, "running"), make_channel(client, "running")
    db.session.commit()
    grant = _approve(client, hooked_partner.partner, "api_keys:manage channels:read", shared, other)
    worker.run_once()
    receiver.requests.clear()
    bearer = bearer_for(hooked_partner.owner, hooked_partner.partner)
    return Shared(client, grant, shared, other, bearer)


def _approve(client, partner, scope, *channels):
    return consent_service.approve_consent(
        client_actor(client),
        partner_id=partner.id,
        oauth_client_id=None,
        scope=scope,
        channel_ids=[c.id for c in channels],
    )


def _move(channel, status):
    """The platform's provisioning service changes the number's status."""
    platform = db.session.scalar(sa.select(Organization).where(Organization.kind == "support"))
    if platform is None:
        platform = make_org("support", "Platform")
        db.session.commit()
    provisioning = Actor(
        "support", platform.id, scopes=frozenset({"channels:write"}), client_id="provisioning"
    )
    channel_service.change_status(provisioning, channel.id, status, "moved by the platform")


def _received(receiver) -> list[tuple[str, str | None]]:
    """(type, channel_id) of each event the partner's server got."""
    events = [json.loads(body) for body in receiver.bodies()]
    return [(e["type"], e["data"].get("channel_id")) for e in events]


def _log(client, partner, s: Shared, event_type: str) -> list[dict]:
    """The partner's delivery log of one event type, newest first, as its owner reads it."""
    res = client.get(f"/v1/partners/{partner.id}/webhook-deliveries", headers=s.owner_bearer)
    return [a for a in res.json["items"] if a["event_type"] == event_type]


def _narrow(how: str, s: Shared, partner) -> None:
    actor = client_actor(s.client)
    if how == "grant revoked":
        consent_service.revoke_grant(actor, s.client.id, s.grant.id)
    elif how == "number taken out":
        consent_service.revoke_grant_channel(actor, s.client.id, s.grant.id, s.shared.id)
    elif how == "number unticked":
        _approve(s.client, partner, "api_keys:manage channels:read", s.other)
    else:  # channels:read taken away
        _approve(s.client, partner, "api_keys:manage", s.shared, s.other)


@pytest.mark.parametrize(
    "how", ["grant revoked", "number taken out", "number unticked", "status no longer shared"]
)
def test_an_event_queued_before_the_grant_narrowed_is_not_sent(
    client, hooked_partner, receiver, shared, how
):
    partner = hooked_partner.partner
    receiver.answer(503)  # the first try fails: the event waits for a retry
    _move(shared.shared, "suspended")
    assert worker.run_once() == {"sent": 0, "pending": 1, "failed": 0}

    _narrow(how, shared, partner)
    db.session.execute(
        sa.update(OutboxMessage).values(next_attempt_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()
    worker.run_once()

    status_events = [e for e in _received(receiver) if e[0] == "channel_status_changed"]
    assert status_events == [("channel_status_changed", shared.shared.id)]  # the 503 only
    withheld = _log(client, partner, shared, "channel_status_changed")
    assert [a["status_code"] for a in withheld] == [None, 503]
    assert "not sent" in withheld[0]["error"] and "no longer" in withheld[0]["error"]
    message = db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.subject == "channel_status_changed")
    )
    db.session.refresh(message)
    assert message.status == "failed" and "not sent" in message.last_error


def test_events_the_partner_still_may_see_are_sent(hooked_partner, receiver, shared):
    """Taking one number out withholds only that number's events; the grant events go out."""
    partner = hooked_partner.partner
    _move(shared.shared, "suspended")
    _move(shared.other, "suspended")
    _narrow("number taken out", shared, partner)
    worker.run_once()

    assert sorted(_received(receiver), key=str) == sorted(
        [("channel_status_changed", shared.other.id), ("grant_changed", None)], key=str
    )


def test_the_onboarding_partner_still_hears_of_every_number(hooked_partner, receiver):
    """A grant narrowed does not hide the numbers of a client the partner onboarded."""
    partner = hooked_partner.partner
    client = make_org("client", "Own Bakery", onboarding_partner_id=partner.id)
    channel = make_channel(client, "running")
    db.session.commit()
    grant = _approve(client, partner, "channels:read", channel)
    worker.run_once()
    receiver.requests.clear()

    _move(channel, "suspended")
    consent_service.revoke_grant(client_actor(client), client.id, grant.id)
    worker.run_once()

    assert sorted(_received(receiver), key=str) == sorted(
        [("channel_status_changed", channel.id), ("grant_revoked", None)], key=str
    )


def test_a_key_event_of_a_number_taken_out_is_not_sent(hooked_partner, receiver, shared):
    """Key events reach the partners granted the number: taken out, the partner hears none."""
    partner = hooked_partner.partner
    make_key(shared.shared)  # the client's own key, told to the partner granted the number
    _narrow("number taken out", shared, partner)
    worker.run_once()

    assert _received(receiver) == [("grant_changed", None)]


def test_the_partner_still_hears_of_its_own_keys_after_the_grant_ends(
    hooked_partner, receiver, shared
):
    partner = hooked_partner.partner
    make_key(shared.shared, partner=partner)
    _narrow("grant revoked", shared, partner)
    worker.run_once()

    assert sorted(_received(receiver), key=str) == sorted(
        [
            ("api_key_created", shared.shared.id),
            ("api_key_revoked", shared.shared.id),
            ("grant_revoked", None),
        ],
        key=str,
    )


def _redeliver_status_event(client, partner, s: Shared):
    """Ask, as the partner's owner, to send the last status event of the shared number again."""
    attempt = _log(client, partner, s, "channel_status_changed")[0]
    return client.post(
        f"/v1/partners/{partner.id}/webhook-deliveries/{attempt['id']}/redeliver",
        headers=s.owner_bearer,
    )


@reaches(
    "POST /v1/partners/{partner_id}/webhook-deliveries/{attempt_id}/redeliver 403"
    " event_no_longer_shared"
)
def test_redelivery_of_a_number_no_longer_shared_is_refused(
    client, hooked_partner, receiver, shared
):
    partner = hooked_partner.partner
    _move(shared.shared, "suspended")
    worker.run_once()
    _narrow("grant revoked", shared, partner)
    worker.run_once()
    receiver.requests.clear()
    queued = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage))

    res = _redeliver_status_event(client, partner, shared)

    assert res.status_code == 403, res.json
    assert res.json["code"] == "event_no_longer_shared"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == queued
    worker.run_once()
    assert receiver.requests == []


def test_a_redelivery_queued_before_the_grant_ended_is_not_sent(
    client, hooked_partner, receiver, shared
):
    partner = hooked_partner.partner
    _move(shared.shared, "suspended")
    worker.run_once()
    assert _redeliver_status_event(client, partner, shared).status_code == 202
    _narrow("grant revoked", shared, partner)
    receiver.requests.clear()
    worker.run_once()

    assert _received(receiver) == [("grant_revoked", None)]
