"""An owner sets the webhook URL, sees the secret once and rotates it; members read deliveries."""

from __future__ import annotations

import pytest
from standardwebhooks import Webhook

from idp.extensions import db
from idp.outbox import worker
from idp.webhooks.models import WebhookEndpoint
from idp.webhooks.service import emit_partner_event
from tests.factories import bearer_for, make_org, make_user


@pytest.fixture
def partners(app_ctx):
    p, q = make_org("partner", "Partner P"), make_org("partner", "Partner Q")
    people = {
        "p_owner": (make_user("partner", p, "owner"), p),
        "p_member": (make_user("partner", p, "member"), p),
        "q_owner": (make_user("partner", q, "owner"), q),
    }
    db.session.commit()
    bearers = {name: bearer_for(user, org) for name, (user, org) in people.items()}
    bearers["p_server"] = bearer_for(
        None, p, client_id="p-server", hub="partner", scope="webhook_deliveries:read"
    )
    return p, q, bearers


def _put(client, partner, headers, url):
    return client.put(f"/v1/partners/{partner.id}/webhook", json={"url": url}, headers=headers)


def test_the_secret_is_shown_once_and_stored_encrypted(client, partners, receiver):
    p, _, bearers = partners
    res = _put(client, p, bearers["p_owner"], receiver.url)
    assert res.status_code == 200
    secret = res.json["secret"]
    assert secret.startswith("whsec_")
    stored = db.session.scalar(db.select(WebhookEndpoint))
    assert secret not in stored.secret_encrypted
    again = _put(client, p, bearers["p_owner"], receiver.url + "/v2")
    assert again.json["secret"] is None
    shown = client.get(f"/v1/partners/{p.id}/webhook", headers=bearers["p_member"])
    assert shown.json["url"] == receiver.url + "/v2"
    assert "secret" not in shown.json


def test_rotation_signs_new_events_with_the_new_secret(client, partners, receiver):
    p, _, bearers = partners
    old = _put(client, p, bearers["p_owner"], receiver.url).json["secret"]
    new = client.post(f"/v1/partners/{p.id}/webhook/rotate-secret", headers=bearers["p_owner"])
    assert new.status_code == 200 and new.json["secret"] != old
    emit_partner_event(p.id, "client_created", {"client_id": "cl_x"})
    db.session.commit()
    worker.run_once()
    [got] = receiver.requests
    Webhook(new.json["secret"]).verify(got.body, got.headers)
    with pytest.raises(Exception):  # noqa: B017 (the old secret no longer verifies)
        Webhook(old).verify(got.body, got.headers)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://hooks.partner.example/idp", True),
        ("http://127.0.0.1:9000/hook", True),
        ("http://localhost/hook", True),
        ("http://hooks.partner.example/idp", False),
        ("ftp://hooks.partner.example/idp", False),
        ("https://user:pw@hooks.partner.example/idp", False),
        ("https:///nohost", False),
    ],
)
def test_only_https_or_loopback_http_is_accepted(client, partners, url, ok):
    p, _, bearers = partners
    res = _put(client, p, bearers["p_owner"], url)
    assert res.status_code == (200 if ok else 422), res.json
    if not ok:
        assert "url" in res.json["errors"]


def test_production_refuses_plain_http_even_on_loopback():
    from idp.webhooks.urls import check_webhook_url

    assert check_webhook_url("http://127.0.0.1/hook", production=True) is not None
    assert check_webhook_url("https://partner.example/hook", production=True) is None


MATRIX = [
    ("p_owner", "put", 200),
    ("p_member", "put", 403),
    ("p_server", "put", 403),
    ("q_owner", "put", 404),
    ("p_member", "deliveries", 200),
    ("p_server", "deliveries", 200),
    ("q_owner", "deliveries", 404),
    ("q_owner", "rotate", 404),
    ("p_member", "rotate", 403),
    ("q_owner", "get", 404),
]


@pytest.mark.parametrize(("who", "action", "expected"), MATRIX)
def test_only_the_partner_itself_manages_or_reads_its_webhooks(
    client, partners, receiver, who, action, expected
):
    p, _, bearers = partners
    _put(client, p, bearers["p_owner"], receiver.url)
    headers = bearers[who]
    if action == "put":
        res = _put(client, p, headers, receiver.url)
    elif action == "rotate":
        res = client.post(f"/v1/partners/{p.id}/webhook/rotate-secret", headers=headers)
    elif action == "get":
        res = client.get(f"/v1/partners/{p.id}/webhook", headers=headers)
    else:
        res = client.get(f"/v1/partners/{p.id}/webhook-deliveries", headers=headers)
    assert res.status_code == expected


def test_deliveries_list_status_codes_and_redeliver_resends(client, partners, receiver):
    p, q, bearers = partners
    _put(client, p, bearers["p_owner"], receiver.url)
    receiver.answer(500)
    emit_partner_event(p.id, "client_created", {"client_id": "cl_x"})
    db.session.commit()
    worker.run_once()

    listed = client.get(f"/v1/partners/{p.id}/webhook-deliveries", headers=bearers["p_member"])
    [attempt] = listed.json["items"]
    assert attempt["status_code"] == 500 and attempt["event_type"] == "client_created"

    other = client.post(
        f"/v1/partners/{q.id}/webhook-deliveries/{attempt['id']}/redeliver",
        headers=bearers["q_owner"],
    )
    assert other.status_code == 404
    again = client.post(
        f"/v1/partners/{p.id}/webhook-deliveries/{attempt['id']}/redeliver",
        headers=bearers["p_owner"],
    )
    assert again.status_code == 202
    assert again.json["event_id"] == attempt["event_id"]
    worker.run_once()
    assert [r.headers["webhook-id"] for r in receiver.requests] == [attempt["event_id"]] * 2
    codes = [
        a["status_code"]
        for a in client.get(
            f"/v1/partners/{p.id}/webhook-deliveries", headers=bearers["p_member"]
        ).json["items"]
    ]
    assert sorted(codes) == [204, 500]


def test_deleting_the_endpoint_stops_events(client, partners, receiver):
    p, _, bearers = partners
    _put(client, p, bearers["p_owner"], receiver.url)
    assert (
        client.delete(f"/v1/partners/{p.id}/webhook", headers=bearers["p_owner"]).status_code == 204
    )
    assert emit_partner_event(p.id, "client_created", {"client_id": "cl_x"}) is None


@pytest.mark.parametrize("host", ["10.0.0.5", "169.254.169.254", "[::1]", "192.168.1.1"])
def test_production_refuses_internal_ip_addresses(host):
    from idp.webhooks.urls import check_webhook_url

    assert check_webhook_url(f"https://{host}/hook", production=True) is not None


def test_a_partner_never_lists_another_partners_deliveries(client, partners, receiver):
    p, q, bearers = partners
    _put(client, p, bearers["p_owner"], receiver.url)
    _put(client, q, bearers["q_owner"], receiver.url)
    emit_partner_event(p.id, "client_created", {"client_id": "cl_for_p"})
    db.session.commit()
    worker.run_once()
    mine = client.get(f"/v1/partners/{q.id}/webhook-deliveries", headers=bearers["q_owner"])
    assert mine.status_code == 200 and mine.json["items"] == []


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "127.1",
        "2130706433",
        "0x7f000001",
        "[::ffff:10.0.0.1]",
        "[::7f00:1]",  # IPv4-compatible 127.0.0.1
        "[2002:7f00:1::]",  # 6to4 of 127.0.0.1
        "[2002:a9fe:a9fe::]",  # 6to4 of the cloud metadata address 169.254.169.254
        "[64:ff9b::7f00:1]",  # NAT64 of 127.0.0.1
        "[64:ff9b::a00:1]",  # NAT64 of 10.0.0.1
        "[64:ff9b:1::7f00:1]",  # local-use NAT64 (RFC 8215) of 127.0.0.1
        "[64:ff9b:1::a00:1]",  # local-use NAT64 of 10.0.0.1
        "[64:ff9b:1::808:808]",  # local-use NAT64: 8.8.8.8 only if its translator uses /96
        "[64:ff9b:1:7f00:0:1:808:808]",  # local-use NAT64: 127.0.0.1 to a /48 translator
        "[2001:0:4136:e378:8000:63bf:f5ff:fffe]",  # Teredo to client 10.0.0.1
    ],
)
def test_production_refuses_names_and_numbers_that_reach_inside(host):
    from idp.webhooks.urls import check_webhook_url

    assert check_webhook_url(f"https://{host}/hook", production=True) is not None


@pytest.mark.parametrize(
    "host", ["8.8.8.8", "[2606:4700:4700::1111]", "[2002:808:808::]", "[64:ff9b::808:808]"]
)
def test_production_accepts_public_addresses_in_any_form(host):
    from idp.webhooks.urls import check_webhook_url

    assert check_webhook_url(f"https://{host}/hook", production=True) is None
