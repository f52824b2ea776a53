"""The demo shows every status with history, and Acme's webhook reaches the demo receiver."""

from __future__ import annotations

import sqlalchemy as sa

from idp.channels.models import Channel, ChannelStatusChange
from idp.demo import load_demo
from idp.extensions import db
from idp.outbox import worker
from idp.webhooks.models import WebhookAttempt
from policies.channels import CHANNEL_STATUSES


def test_the_demo_has_every_status_a_history_and_a_reused_number(app_ctx):
    first = load_demo()
    second = load_demo()
    assert first["webhooks"] == second["webhooks"]
    statuses = set(db.session.scalars(sa.select(Channel.status)))
    assert statuses == set(CHANNEL_STATUSES)
    reused = second["webhooks"]["reused_number"]
    old = db.session.get(Channel, reused["terminated"])
    steps = db.session.scalars(
        sa.select(ChannelStatusChange.to_status)
        .where(ChannelStatusChange.channel_id == old.id)
        .order_by(ChannelStatusChange.created_at)
    )
    assert list(steps)[-1] == "terminated"
    assert db.session.get(Channel, reused["active"]).phone_number == old.phone_number


def test_the_worker_delivers_demo_events_to_the_receiver_page(app, live_server, client):
    with app.app_context():
        data = load_demo()
        assert data["webhooks"]["url"] == live_server.url + "/demo/webhooks"
        counts = worker.run_once()
        assert counts["sent"] >= 1 and counts["failed"] == 0
        codes = set(db.session.scalars(sa.select(WebhookAttempt.status_code)))
        db.session.remove()
    assert codes == {204}
    page = client.get("/demo/webhooks").get_data(as_text=True)
    assert "channel_status_changed" in page and "valid" in page
    assert "whsec_" not in page


def test_the_receiver_refuses_an_unsigned_event(client):
    res = client.post(
        "/demo/webhooks",
        data='{"type":"client_created","data":{}}',
        headers={"content-type": "application/json", "webhook-id": "msg_x"},
    )
    assert res.status_code == 400
