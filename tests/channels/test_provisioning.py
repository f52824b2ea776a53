"""The provisioning service registers WABAs and numbers; nobody else can."""

from __future__ import annotations

import pytest

from idp.audit.models import AuditEvent
from idp.extensions import db


def _waba(client, world, name="Main WABA"):
    res = client.post(
        f"/v1/clients/{world.orgs['a'].id}/wabas",
        json={"name": name},
        headers=world.bearers["provisioning"],
    )
    assert res.status_code == 201, res.json
    return res.json


def _register(client, world, waba_id, number, **extra):
    return client.post(
        f"/v1/wabas/{waba_id}/channels",
        json={"phone_number": number, "display_name": "Support line", **extra},
        headers=world.bearers["provisioning"],
    )


def test_numbers_are_stored_in_e164(client, world):
    waba = _waba(client, world)
    res = _register(client, world, waba["id"], "+1 (415) 555-2671")
    assert res.status_code == 201
    assert res.json["phone_number"] == "+14155552671"
    assert res.json["status"] == "created"
    assert res.json["account_mode"] == "sandbox"
    national = _register(client, world, waba["id"], "030 123456", region="DE")
    assert national.json["phone_number"] == "+4930123456"


@pytest.mark.parametrize("number", ["hello", "+1 555", "+999 1234567"])
def test_invalid_numbers_are_refused_with_the_field(client, world, number):
    waba = _waba(client, world)
    res = _register(client, world, waba["id"], number)
    assert res.status_code == 422
    assert res.json["code"] == "invalid_phone_number"
    assert "phone_number" in res.json["errors"]


def test_one_active_channel_per_number_and_reusable_after_termination(client, world):
    waba = _waba(client, world)
    first = _register(client, world, waba["id"], "+14155552671").json
    again = _register(client, world, waba["id"], "+1 415 555 2671")
    assert again.status_code == 409
    assert again.json["code"] == "number_in_use"

    done = client.post(
        f"/v1/channels/{first['id']}/status",
        json={"status": "terminated", "reason": "client left"},
        headers=world.bearers["provisioning"],
    )
    assert done.status_code == 200
    reused = _register(client, world, waba["id"], "+14155552671")
    assert reused.status_code == 201
    assert reused.json["id"] != first["id"]


def test_the_database_itself_refuses_a_second_active_channel(app_ctx, world):
    from sqlalchemy.exc import IntegrityError

    from idp.channels.models import Channel

    a1 = world.channels["a1"]
    db.session.add(Channel.create(a1.waba, a1.phone_number, "copy"))
    with pytest.raises(IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_registration_is_audited(client, world):
    waba = _waba(client, world)
    channel = _register(client, world, waba["id"], "+14155552671").json
    actions = set(db.session.scalars(db.select(AuditEvent.action)))
    assert {"waba.created", "channel.created"} <= actions
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.target_id == channel["id"]))
    assert event.actor_id == "provisioning"


@pytest.mark.parametrize("who", ["p_owner", "p_server", "a_owner", "support_admin", "q_owner"])
def test_only_the_provisioning_service_registers_numbers(client, world, who):
    res = client.post(
        f"/v1/clients/{world.orgs['a'].id}/wabas",
        json={"name": "Sneaky"},
        headers=world.bearers[who],
    )
    assert res.status_code == 403
    waba_id = world.channels["a1"].waba_id
    res = client.post(
        f"/v1/wabas/{waba_id}/channels",
        json={"phone_number": "+14155552671", "display_name": "x"},
        headers=world.bearers[who],
    )
    assert res.status_code == 403
    res = client.post(
        f"/v1/channels/{world.channels['a1'].id}/status",
        json={"status": "suspended"},
        headers=world.bearers[who],
    )
    assert res.status_code == 403


def test_unknown_fields_and_clients_are_refused(client, world):
    res = client.post(
        f"/v1/clients/{world.orgs['a'].id}/wabas",
        json={"name": "x", "owner": "me"},
        headers=world.bearers["provisioning"],
    )
    assert res.status_code == 422
    res = client.post(
        "/v1/clients/cl_nope/wabas", json={"name": "x"}, headers=world.bearers["provisioning"]
    )
    assert res.status_code == 404
    res = client.post(
        f"/v1/clients/{world.orgs['p'].id}/wabas",
        json={"name": "x"},
        headers=world.bearers["provisioning"],
    )
    assert res.status_code == 404


def test_waba_verification_is_recorded(client, world):
    waba = _waba(client, world)
    res = client.post(
        f"/v1/wabas/{waba['id']}/verification",
        json={"verification_state": "verified"},
        headers=world.bearers["provisioning"],
    )
    assert res.status_code == 200
    assert res.json["verification_state"] == "verified"


@pytest.mark.parametrize("name", ["\ud800", "Line \udfff"])
def test_text_that_is_not_valid_unicode_is_422_and_registers_nothing(client, world, name):
    waba = _waba(client, world)
    res = client.post(
        f"/v1/wabas/{waba['id']}/channels",
        json={"phone_number": "+14155552671", "display_name": name},
        headers=world.bearers["provisioning"],
    )
    assert res.status_code == 422 and res.mimetype == "application/problem+json"
    assert res.json["code"] == "invalid_input"
    # the number is still free: nothing of the refused request was kept
    assert _register(client, world, waba["id"], "+14155552671").status_code == 201
