"""Two registrations of one number racing on PostgreSQL: the database lets exactly one win."""

from __future__ import annotations

import threading

import pytest
import requests

from idp.channels.models import Channel
from idp.extensions import db
from tests.channels.conftest import provisioning_bearer
from tests.factories import make_channel, make_org


@pytest.mark.postgres
def test_racing_registrations_of_one_number_give_one_channel_and_one_409(app, live_server):
    with app.app_context():
        client_org = make_org("client", "Racer")
        waba_id = make_channel(client_org, "created").waba_id
        bearer = provisioning_bearer(make_org("support", "Platform"))
        db.session.commit()
        db.session.remove()
    start = threading.Barrier(8)
    codes: list[int] = []

    def register():
        start.wait()
        res = requests.post(
            f"{live_server.url}/v1/wabas/{waba_id}/channels",
            json={"phone_number": "+14155552671", "display_name": "Race"},
            headers=bearer,
            timeout=30,
        )
        codes.append(res.status_code)

    threads = [threading.Thread(target=register) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(codes) == [201] + [409] * 7


@pytest.mark.postgres
def test_racing_status_changes_keep_one_legal_history(app, live_server):
    with app.app_context():
        channel_id = make_channel(make_org("client", "Racer"), "live").id
        bearer = provisioning_bearer(make_org("support", "Platform"))
        db.session.commit()
        db.session.remove()
    targets = ["suspended", "terminated"] * 4
    start = threading.Barrier(len(targets))
    codes: list[int] = []

    def change(status):
        start.wait()
        res = requests.post(
            f"{live_server.url}/v1/channels/{channel_id}/status",
            json={"status": status, "reason": "race"},
            headers=bearer,
            timeout=30,
        )
        codes.append(res.status_code)

    threads = [threading.Thread(target=change, args=(status,)) for status in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert set(codes) <= {200, 409} and 200 in codes
    with app.app_context():
        channel = db.session.get(Channel, channel_id)
        steps = sorted(channel.history, key=lambda step: step.created_at)
        # every change starts where the previous one ended: none was lost
        for previous, step in zip(steps, steps[1:], strict=False):
            assert step.from_status == previous.to_status, [
                (s.from_status, s.to_status) for s in steps
            ]
        assert steps[0].from_status == "live" and steps[-1].to_status == channel.status
        assert len(steps) == codes.count(200)
