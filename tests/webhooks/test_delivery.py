"""Events reach a real loopback endpoint, signed per Standard Webhooks, retried and in order."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from standardwebhooks import Webhook

from idp.extensions import db
from idp.outbox import worker
from idp.outbox.models import OutboxMessage
from idp.timeutil import utcnow
from idp.webhooks.models import WebhookAttempt, WebhookEndpoint
from idp.webhooks.service import emit_partner_event
from tests.factories import make_channel, make_org


def _make_due() -> None:
    """Let every pending message be due now (skips the backoff wait)."""
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.status == "pending")
        .values(next_attempt_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()


def _status_of(message_id: str) -> str:
    db.session.expire_all()
    return db.session.get(OutboxMessage, message_id).status


@pytest.fixture
def numbers(hooked_partner, receiver):
    """Event data of three numbers of a client the partner onboarded (so it hears of them)."""
    client = make_org("client", "Bakery", onboarding_partner_id=hooked_partner.partner.id)
    channels = [make_channel(client) for _ in range(3)]
    db.session.commit()
    worker.run_once()
    receiver.requests.clear()
    return [{"channel_id": c.id, "client_id": client.id} for c in channels]


def test_an_event_arrives_signed_so_the_standard_library_verifies_it(
    hooked_partner, receiver, numbers
):
    data = numbers[0]
    message = emit_partner_event(
        hooked_partner.partner.id, "channel_created", data, ordering_key=data["channel_id"]
    )
    db.session.commit()

    assert worker.run_once() == {"sent": 1, "pending": 0, "failed": 0}

    [got] = receiver.requests
    payload = Webhook(hooked_partner.secret).verify(got.body, got.headers)
    assert payload["type"] == "channel_created"
    assert payload["data"] == data
    assert got.headers["webhook-id"] == message.id
    forged = got.body.replace(data["channel_id"], numbers[1]["channel_id"])
    with pytest.raises(Exception):  # noqa: B017 (any verification failure)
        Webhook(hooked_partner.secret).verify(forged, got.headers)


def test_no_endpoint_means_nothing_is_queued(app_ctx):
    partner = make_org("partner")
    assert emit_partner_event(partner.id, "client_created", {"client_id": "cl_1"}) is None
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0


def test_an_unknown_event_type_is_refused(hooked_partner):
    with pytest.raises(ValueError):
        emit_partner_event(hooked_partner.partner.id, "channel_exploded", {})


def test_a_500_is_retried_and_then_delivered(hooked_partner, receiver):
    receiver.answer(500)
    message = emit_partner_event(hooked_partner.partner.id, "client_created", {"client_id": "c"})
    db.session.commit()

    assert worker.run_once()["pending"] == 1
    assert _status_of(message.id) == "pending"
    _make_due()
    assert worker.run_once()["sent"] == 1

    codes = [
        a.status_code
        for a in db.session.scalars(sa.select(WebhookAttempt).order_by(WebhookAttempt.created_at))
    ]
    assert codes == [500, 204]
    assert receiver.requests[0].headers["webhook-id"] == receiver.requests[1].headers["webhook-id"]


def test_a_timeout_is_retried(app, hooked_partner, receiver):
    app.config["IDP_WEBHOOK_TIMEOUT"] = 0.3
    try:
        receiver.answer(1.0)
        emit_partner_event(hooked_partner.partner.id, "client_created", {"client_id": "c"})
        db.session.commit()
        assert worker.run_once()["pending"] == 1
        _make_due()
        assert worker.run_once()["sent"] == 1
    finally:
        app.config.pop("IDP_WEBHOOK_TIMEOUT")
    attempts = list(
        db.session.scalars(sa.select(WebhookAttempt).order_by(WebhookAttempt.created_at))
    )
    assert attempts[0].status_code is None and "Timeout" in attempts[0].error
    assert attempts[1].status_code == 204


def _status_event(partner_id: str, number: dict, n: int):
    data = {**number, "n": n}
    return emit_partner_event(
        partner_id, "channel_status_changed", data, ordering_key=number["channel_id"]
    )


def test_events_of_one_channel_wait_for_the_earlier_one(hooked_partner, receiver, numbers):
    partner_id = hooked_partner.partner.id
    receiver.answer(503)
    first = _status_event(partner_id, numbers[0], 1)
    second = _status_event(partner_id, numbers[0], 2)
    other = _status_event(partner_id, numbers[1], 9)
    db.session.commit()

    worker.run_once()
    # The first failed, so the second waits; another channel's event is not held back.
    assert [json.loads(b)["data"]["n"] for b in receiver.bodies()] == [1, 9]
    assert _status_of(second.id) == "pending"
    assert _status_of(other.id) == "sent"

    _make_due()
    worker.run_once()
    assert [json.loads(b)["data"]["n"] for b in receiver.bodies()] == [1, 9, 1, 2]
    assert _status_of(first.id) == _status_of(second.id) == "sent"


def test_a_waiting_event_is_looked_at_again_within_seconds(hooked_partner, receiver):
    partner_id = hooked_partner.partner.id
    first = emit_partner_event(partner_id, "channel_status_changed", {"n": 1}, ordering_key="ch_a")
    second = emit_partner_event(partner_id, "channel_status_changed", {"n": 2}, ordering_key="ch_a")
    # Another worker holds the first one (its lease), as when two workers run.
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.id == first.id)
        .values(next_attempt_at=utcnow() + timedelta(seconds=worker.LEASE_SECONDS))
    )
    db.session.commit()

    assert worker.run_once() == {"sent": 0, "pending": 1, "failed": 0}

    db.session.expire_all()
    wait = db.session.get(OutboxMessage, second.id).next_attempt_at - utcnow()
    # not the worker's five-minute default: the partner hears of it within seconds
    assert wait <= timedelta(seconds=5)


def test_retries_end_in_failed_after_three_days(hooked_partner, receiver):
    receiver.answer(500, 500)
    message = emit_partner_event(hooked_partner.partner.id, "client_created", {"client_id": "c"})
    db.session.commit()
    worker.run_once()
    assert _status_of(message.id) == "pending"

    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.id == message.id)
        .values(created_at=utcnow() - timedelta(days=3, minutes=1))
    )
    _make_due()
    worker.run_once()
    assert _status_of(message.id) == "failed"


def test_email_keeps_its_own_retry_limit_while_webhooks_retry_longer(app_ctx):
    assert worker.MAX_ATTEMPTS_BY_KIND["webhook"] > worker.MAX_ATTEMPTS
    assert "email" not in worker.MAX_ATTEMPTS_BY_KIND


def test_a_burst_of_events_for_one_channel_arrives_in_emission_order(
    hooked_partner, receiver, numbers
):
    partner_id = hooked_partner.partner.id
    for n in range(25):
        _status_event(partner_id, numbers[2], n)
    db.session.commit()
    while worker.run_once(limit=7)["sent"]:
        pass
    assert [json.loads(b)["data"]["n"] for b in receiver.bodies()] == list(range(25))


def test_production_never_posts_to_a_url_that_now_reaches_inside(
    app, hooked_partner, receiver, monkeypatch
):
    # An https URL accepted earlier whose host now resolves to a loopback address.
    monkeypatch.setitem(app.config, "IDP_ENV", "production")
    inside = receiver.url.replace("http://127.0.0.1", "https://localhost")
    db.session.execute(sa.update(WebhookEndpoint).values(url=inside))
    message = emit_partner_event(hooked_partner.partner.id, "client_created", {"client_id": "c"})
    db.session.commit()

    assert worker.run_once() == {"sent": 0, "pending": 1, "failed": 0}

    assert receiver.requests == []
    [attempt] = db.session.scalars(
        sa.select(WebhookAttempt).where(WebhookAttempt.message_id == message.id)
    )
    assert attempt.status_code is None and "internal address" in attempt.error
