"""Channel API keys over HTTP: who may generate, list and revoke, and what the gateway says."""

from __future__ import annotations

import pytest

from idp.extensions import db
from tests.consent.factories import bearers_of, make_grant, people_of, two_of_each
from tests.factories import bearer_for, make_channel, make_org

CHECK = "/v1/api-keys/check"


@pytest.fixture
def world(app_ctx):
    """Client A (3 channels) grants partner P two; client B and partner Q are strangers."""
    w = two_of_each()
    a, b, p = w["a"], w["b"], w["p"]
    w.update(
        a_granted=make_channel(a, "live"),
        a_pending=make_channel(a, "pending"),
        a_ungranted=make_channel(a, "running"),
        b_channel=make_channel(b, "live"),
    )
    make_grant(a, p, [w["a_granted"], w["a_pending"]])
    w["auth"] = bearers_of(people_of(w))
    w["auth"]["p_machine"] = bearer_for(
        None, p, client_id="oc_p", scope="api_keys:create api_keys:read api_keys:revoke"
    )
    w["auth"]["p_machine_readonly"] = bearer_for(None, p, client_id="oc_p2", scope="api_keys:read")
    return w


def keys_url(w, side: str, channel: str) -> str:
    org = w[side]
    plural = "clients" if org.kind == "client" else "partners"
    return f"/v1/{plural}/{org.id}/channels/{w[channel].id}/api-keys"


# actor, path side, channel -> expected status of POST (generate)
GENERATE = [
    ("a_owner", "a", "a_granted", 201),
    ("a_member", "a", "a_ungranted", 201),
    ("a_owner", "a", "a_pending", 403),  # status does not allow keys
    ("a_owner", "a", "b_channel", 404),  # another client's channel through my path
    ("b_owner", "a", "a_granted", 404),  # another client's path
    ("b_owner", "b", "a_granted", 404),
    ("p_owner", "a", "a_granted", 404),  # partner users never use the client path
    ("p_owner", "p", "a_granted", 201),
    ("p_member", "p", "a_granted", 201),
    ("p_machine", "p", "a_granted", 201),
    ("p_machine_readonly", "p", "a_granted", 403),
    ("p_owner", "p", "a_ungranted", 403),  # same client, channel not granted
    ("p_owner", "p", "a_pending", 403),  # granted but status does not allow keys
    ("p_owner", "p", "b_channel", 404),  # no grant from that client at all
    ("q_owner", "q", "a_granted", 404),
    ("q_owner", "p", "a_granted", 404),  # another partner's path
    ("support", "a", "a_granted", 404),
    ("support", "p", "a_granted", 404),
]


@pytest.mark.parametrize(("actor", "side", "channel", "status"), GENERATE)
def test_who_may_generate_a_key(client, world, actor, side, channel, status):
    resp = client.post(keys_url(world, side, channel), headers=world["auth"][actor])
    assert resp.status_code == status, resp.get_json()
    if status == 201:
        body = resp.get_json()
        assert set(body) == {"id", "api_key", "channel_id", "created_at"}
        assert body["channel_id"] == world[channel].id
        assert body["api_key"].startswith("d360_")
        assert client.get(CHECK, headers={"D360-API-KEY": body["api_key"]}).status_code == 200


@pytest.mark.parametrize(
    ("actor", "side", "channel", "status"),
    [
        (a, s, c, 200 if st == 201 or (st == 403 and c == "a_pending") else st)
        for a, s, c, st in GENERATE
        if a != "p_machine_readonly"
    ]
    + [("p_machine_readonly", "p", "a_granted", 200)],
)
def test_who_may_list_keys(client, world, actor, side, channel, status):
    resp = client.get(keys_url(world, side, channel), headers=world["auth"][actor])
    assert resp.status_code == status, resp.get_json()


def test_denials_explain_themselves(client, world):
    resp = client.post(keys_url(world, "p", "a_ungranted"), headers=world["auth"]["p_owner"])
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["code"] == "grant_required"
    resp = client.post(keys_url(world, "p", "a_pending"), headers=world["auth"]["p_owner"])
    assert resp.get_json()["code"] == "channel_status"


def test_a_grant_without_the_key_scope_lets_the_partner_generate_nothing(client, world):
    c = make_org("client")
    channel = make_channel(c)
    make_grant(c, world["p"], [channel], scope="channels:read")
    url = f"/v1/partners/{world['p'].id}/channels/{channel.id}/api-keys"
    resp = client.post(url, headers=world["auth"]["p_owner"])
    assert resp.status_code == 403 and resp.get_json()["code"] == "scope_required"


def test_no_token_no_keys(client, world):
    resp = client.post(keys_url(world, "a", "a_granted"))
    assert resp.status_code == 401
    assert client.get(keys_url(world, "a", "a_granted")).status_code == 401


def test_a_new_key_revokes_the_earlier_one_at_once(client, world):
    url, auth = keys_url(world, "a", "a_granted"), world["auth"]["a_owner"]
    first = client.post(url, headers=auth).get_json()["api_key"]
    second = client.post(url, headers=auth).get_json()["api_key"]
    assert client.get(CHECK, headers={"D360-API-KEY": first}).status_code == 401
    assert client.get(CHECK, headers={"D360-API-KEY": second}).status_code == 200
    listed = client.get(url, headers=auth).get_json()
    assert [k["revoked_at"] is None for k in listed] == [True, False]
    assert all("api_key" not in k and "secret_hash" not in k for k in listed)
    assert listed[0]["prefix"] == second[:17] and listed[0]["last_four"] == second[-4:]
    assert listed[0]["created_by"]["type"] == "user"


def test_a_grace_period_keeps_the_earlier_key_working_for_a_while(client, world):
    url, auth = keys_url(world, "a", "a_granted"), world["auth"]["a_owner"]
    first = client.post(url, headers=auth).get_json()["api_key"]
    resp = client.post(url, json={"grace_period_seconds": 3600}, headers=auth)
    assert resp.status_code == 201
    assert client.get(CHECK, headers={"D360-API-KEY": first}).status_code == 200
    listed = client.get(url, headers=auth).get_json()
    assert listed[1]["expires_at"] is not None and listed[1]["revoked_at"] is None


def test_grace_periods_are_capped_at_a_day_and_unknown_fields_refused(client, world):
    url, auth = keys_url(world, "a", "a_granted"), world["auth"]["a_owner"]
    resp = client.post(url, json={"grace_period_seconds": 86401}, headers=auth)
    assert resp.status_code == 422 and "grace_period_seconds" in resp.get_json()["errors"]
    resp = client.post(url, json={"scope": "everything"}, headers=auth)
    assert resp.status_code == 422


@pytest.mark.parametrize(
    ("actor", "side", "status"),
    [
        ("a_owner", "a", 204),
        ("a_member", "a", 204),
        ("p_owner", "p", 204),
        ("b_owner", "b", 404),
        ("b_owner", "a", 404),
        ("q_owner", "q", 404),
        ("q_owner", "p", 404),
        ("support", "a", 404),
    ],
)
def test_who_may_revoke_a_key(client, world, actor, side, status):
    created = client.post(
        keys_url(world, "p", "a_granted"), headers=world["auth"]["p_owner"]
    ).get_json()
    url = keys_url(world, side, "a_granted") + "/" + created["id"]
    resp = client.delete(url, headers=world["auth"][actor])
    assert resp.status_code == status
    check = client.get(CHECK, headers={"D360-API-KEY": created["api_key"]})
    assert check.status_code == (401 if status == 204 else 200)


def test_a_key_of_another_channel_cannot_be_revoked_through_this_one(client, world):
    created = client.post(
        keys_url(world, "a", "a_ungranted"), headers=world["auth"]["a_owner"]
    ).get_json()
    url = keys_url(world, "p", "a_granted") + "/" + created["id"]
    assert client.delete(url, headers=world["auth"]["p_owner"]).status_code == 404


def test_the_gateway_check_names_channel_client_and_partner(client, world):
    created = client.post(
        keys_url(world, "p", "a_granted"), headers=world["auth"]["p_owner"]
    ).get_json()
    resp = client.get(CHECK, headers={"D360-API-KEY": created["api_key"]})
    assert resp.status_code == 200
    ids = (world["a_granted"].id, world["a"].id, world["p"].id)
    assert resp.get_json() == dict(zip(("channel_id", "client_id", "partner_id"), ids))
    assert (
        resp.headers["X-Channel-Id"],
        resp.headers["X-Client-Id"],
        resp.headers["X-Partner-Id"],
    ) == ids


@pytest.mark.parametrize("header", [None, "", "d360_nonsense", "Bearer abc"])
def test_the_gateway_check_refuses_missing_or_malformed_keys(client, world, header):
    headers = {} if header is None else {"D360-API-KEY": header}
    resp = client.get(CHECK, headers=headers)
    assert resp.status_code == 401
    assert resp.get_json()["code"] == "invalid_api_key"


def test_the_gateway_check_refuses_a_key_whose_secret_is_wrong(client, world):
    from idp.apikeys.keyformat import CHECKSUM_LENGTH, _checksum

    created = client.post(
        keys_url(world, "a", "a_granted"), headers=world["auth"]["a_owner"]
    ).get_json()
    body = created["api_key"][:-CHECKSUM_LENGTH]
    forged = body[:30] + ("x" if body[30] != "x" else "y") + body[31:]
    forged += _checksum(forged)  # a well-formed key with the real lookup id and a wrong secret
    assert client.get(CHECK, headers={"D360-API-KEY": forged}).status_code == 401


def test_suspending_or_terminating_the_channel_refuses_the_key_at_once(client, world):
    created = client.post(
        keys_url(world, "a", "a_granted"), headers=world["auth"]["a_owner"]
    ).get_json()
    channel = world["a_granted"]
    for status, expected in (("suspended", 401), ("live", 200), ("terminated", 401)):
        channel.status = status
        db.session.commit()
        resp = client.get(CHECK, headers={"D360-API-KEY": created["api_key"]})
        assert resp.status_code == expected, status


def test_key_changes_are_audited_without_the_secret(client, world):
    from idp.audit.models import AuditEvent

    url, auth = keys_url(world, "a", "a_granted"), world["auth"]["a_owner"]
    created = client.post(url, headers=auth, environ_base={"REMOTE_ADDR": "10.0.0.7"})
    key = created.get_json()
    client.delete(f"{url}/{key['id']}", headers={**auth, "X-Request-Id": "req-42"})
    events = db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.occurred_at)).all()
    assert [e.action for e in events] == ["api_key.created", "api_key.revoked"]
    assert events[1].request_id == "req-42"
    assert events[1].before["revoked_at"] is None and events[1].after["revoked_at"]
    assert all(key["api_key"] not in repr((e.before, e.after)) for e in events)
