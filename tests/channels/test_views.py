"""What partners and clients see: lists, details, and that nobody sees another's accounts."""

from __future__ import annotations

import pytest

from idp.consent import service as consent
from idp.extensions import db
from tests.consent.factories import client_actor, make_grant, make_key
from tests.factories import bearer_for, make_channel, make_org, make_user


def _get(client, world, who, path, **query):
    return client.get(path, query_string=query, headers=world.bearers[who])


def test_a_partner_lists_its_onboarded_and_granting_clients_with_counts(client, world):
    res = _get(client, world, "p_owner", f"/v1/partners/{world.orgs['p'].id}/clients")
    assert res.status_code == 200
    rows = {row["name"]: row for row in res.json["items"]}
    assert set(rows) == {"Alpha Shoes", "Gamma Foods"}
    assert rows["Alpha Shoes"]["onboarded_by_you"] is True
    assert rows["Alpha Shoes"]["grant"]["state"] == "none"
    assert rows["Alpha Shoes"]["channel_counts"] == {"live": 1, "pending": 1}
    assert rows["Gamma Foods"]["onboarded_by_you"] is False
    assert rows["Gamma Foods"]["grant"]["state"] == "active"
    assert rows["Gamma Foods"]["grant"]["channel_count"] == 1
    assert res.json["next_cursor"] is None


def test_clients_filter_by_grant_state_and_search_by_name(client, world):
    path = f"/v1/partners/{world.orgs['p'].id}/clients"
    granted = _get(client, world, "p_owner", path, grant_state="active").json["items"]
    assert [r["name"] for r in granted] == ["Gamma Foods"]
    found = _get(client, world, "p_owner", path, q="alpha").json["items"]
    assert [r["name"] for r in found] == ["Alpha Shoes"]
    assert _get(client, world, "p_owner", path, q="%").json["items"] == []


def test_a_partner_lists_one_row_per_number(client, world):
    res = _get(client, world, "p_server", f"/v1/partners/{world.orgs['p'].id}/channels")
    assert res.status_code == 200
    numbers = {row["phone_number"]: row for row in res.json["items"]}
    expected = {world.channels[k].phone_number for k in ("a1", "a2", "g1")}
    assert set(numbers) == expected
    row = numbers[world.channels["a1"].phone_number]
    assert row["client"]["name"] == "Alpha Shoes"
    assert row["waba"]["id"] == world.channels["a1"].waba_id
    assert row["status"] == "live" and row["account_mode"] == "sandbox"
    assert row["created_at"].endswith("Z") and row["status_changed_at"].endswith("Z")


def test_channels_filter_by_status_client_and_number(client, world):
    path = f"/v1/partners/{world.orgs['p'].id}/channels"
    live = _get(client, world, "p_owner", path, status="live").json["items"]
    assert [r["id"] for r in live] == [world.channels["a1"].id]
    gamma = _get(client, world, "p_owner", path, client_id=world.orgs["g"].id).json["items"]
    assert [r["id"] for r in gamma] == [world.channels["g1"].id]
    digits = world.channels["a2"].phone_number[-7:]
    found = _get(client, world, "p_owner", path, number=digits).json["items"]
    assert [r["id"] for r in found] == [world.channels["a2"].id]


@pytest.mark.parametrize("number", ["abc", "+", "--"])
def test_a_number_search_without_digits_is_422_not_every_number(client, world, number):
    res = _get(
        client, world, "p_owner", f"/v1/partners/{world.orgs['p'].id}/channels", number=number
    )
    assert res.status_code == 422 and "number" in res.json["errors"]


def test_channel_details_show_history_grant_key_and_who_may_act(client, world):
    g1 = world.channels["g1"]
    make_key(g1, partner=world.orgs["p"])
    status = client.post(
        f"/v1/channels/{g1.id}/status",
        json={"status": "live", "reason": "billing started"},
        headers=world.bearers["provisioning"],
    )
    assert status.status_code == 200
    res = _get(client, world, "p_owner", f"/v1/partners/{world.orgs['p'].id}/channels/{g1.id}")
    assert res.status_code == 200
    body = res.json
    assert body["channel"]["status"] == "live"
    assert [(h["from_status"], h["to_status"], h["reason"]) for h in body["history"]] == [
        ("running", "live", "billing started")
    ]
    assert body["channel"]["waba"]["verification_state"] == "unverified"
    assert body["grant"] == {
        "state": "active",
        "scopes": ["api_keys:manage", "channels:read"],
        "covers_channel": True,
    }
    assert body["has_api_key"] is True
    assert "api_key" not in str(body).replace("has_api_key", "").replace("api_keys", "")
    assert body["may_act"]["partner_manage_api_keys"]["allowed"] is True


def test_an_onboarded_client_without_grant_is_visible_but_keys_need_a_grant(client, world):
    a1 = world.channels["a1"]
    res = _get(client, world, "p_owner", f"/v1/partners/{world.orgs['p'].id}/channels/{a1.id}")
    assert res.status_code == 200
    assert res.json["grant"]["state"] == "none"
    assert res.json["has_api_key"] is False
    partner_keys = res.json["may_act"]["partner_manage_api_keys"]
    assert partner_keys["allowed"] is False and "granted" in partner_keys["reason"]


def test_a_client_sees_its_wabas_and_numbers(client, world):
    a = world.orgs["a"]
    wabas = _get(client, world, "a_member", f"/v1/clients/{a.id}/wabas")
    assert wabas.status_code == 200
    [waba] = wabas.json
    assert {c["id"] for c in waba["channels"]} == {world.channels["a1"].id, world.channels["a2"].id}
    rows = _get(client, world, "a_owner", f"/v1/clients/{a.id}/channels").json["items"]
    assert len(rows) == 2
    detail = _get(
        client, world, "a_owner", f"/v1/clients/{a.id}/channels/{world.channels['a1'].id}"
    )
    assert detail.status_code == 200
    assert detail.json["granted_partners"] == []
    g = world.orgs["g"]

    g_owner = make_user("client", g, "owner")
    granted = client.get(
        f"/v1/clients/{g.id}/channels/{world.channels['g1'].id}", headers=bearer_for(g_owner, g)
    )
    assert granted.json["granted_partners"][0]["partner_name"] == "Partner P"


# Cross-partner and cross-client matrix: (who, path template, expected status).
MATRIX = [
    ("q_owner", "/v1/partners/{p}/clients", 404),
    ("q_owner", "/v1/partners/{p}/channels", 404),
    ("q_owner", "/v1/partners/{p}/channels/{a1}", 404),
    ("q_owner", "/v1/partners/{q}/channels/{a1}", 404),
    ("q_owner", "/v1/partners/{q}/channels/{g1}", 404),
    ("q_server", "/v1/partners/{q}/channels/{a1}", 404),
    ("p_owner", "/v1/partners/{p}/channels/{b1}", 404),
    ("p_server", "/v1/partners/{p}/channels/{b1}", 404),
    ("p_member", "/v1/partners/{p}/channels/{a1}", 200),
    ("a_owner", "/v1/partners/{p}/channels", 404),
    ("a_owner", "/v1/clients/{b}/wabas", 404),
    ("a_owner", "/v1/clients/{b}/channels", 404),
    ("a_owner", "/v1/clients/{a}/channels/{b1}", 404),
    ("b_owner", "/v1/clients/{b}/channels/{b1}", 200),
    ("p_owner", "/v1/clients/{a}/wabas", 404),
    ("support_admin", "/v1/partners/{p}/channels", 404),
    ("provisioning", "/v1/partners/{p}/clients", 404),
]


@pytest.mark.parametrize(("who", "template", "expected"), MATRIX)
def test_nobody_sees_another_organizations_accounts(client, world, who, template, expected):
    ids = {k: v.id for k, v in world.orgs.items()} | {k: v.id for k, v in world.channels.items()}
    res = _get(client, world, who, template.format(**ids))
    assert res.status_code == expected, res.json


def test_partner_q_lists_only_its_own(client, world):
    q = world.orgs["q"]
    clients = _get(client, world, "q_owner", f"/v1/partners/{q.id}/clients").json["items"]
    assert [c["name"] for c in clients] == ["Beta Cars"]
    channels = _get(client, world, "q_owner", f"/v1/partners/{q.id}/channels").json["items"]
    assert [c["id"] for c in channels] == [world.channels["b1"].id]


def test_lists_need_a_token(client, world):
    assert client.get(f"/v1/partners/{world.orgs['p'].id}/channels").status_code == 401


def _seen(client, world, who="p_owner"):
    """What partner P sees: its clients with their counts, and the ids of its numbers."""
    p = world.orgs["p"].id
    clients = _get(client, world, who, f"/v1/partners/{p}/clients").json["items"]
    channels = _get(client, world, who, f"/v1/partners/{p}/channels").json["items"]
    return {c["name"]: c["channel_counts"] for c in clients}, {c["id"] for c in channels}


def _detail(client, world, channel, who="p_owner"):
    path = f"/v1/partners/{world.orgs['p'].id}/channels/{channel.id}"
    return _get(client, world, who, path).status_code


def test_a_granting_client_shows_only_the_numbers_it_shared(client, world):
    """The client ticks the numbers to share: its other numbers do not exist for the partner."""
    g2 = make_channel(world.orgs["g"], "live")
    db.session.commit()
    counts, ids = _seen(client, world)
    assert counts["Gamma Foods"] == {"running": 1}
    assert world.channels["g1"].id in ids and g2.id not in ids
    gamma = _get(
        client,
        world,
        "p_server",
        f"/v1/partners/{world.orgs['p'].id}/channels",
        client_id=world.orgs["g"].id,
    ).json["items"]
    assert [r["id"] for r in gamma] == [world.channels["g1"].id]
    assert _detail(client, world, g2) == 404
    assert _detail(client, world, world.channels["g1"]) == 200


def test_a_grant_to_manage_keys_alone_shows_no_channel_status(client, world):
    """`api_keys:manage` without `channels:read`: the partner manages the keys of its number
    but neither lists it, opens it, nor learns how many numbers the client has."""
    delta = make_org("client", "Delta Deli")
    shared, other = make_channel(delta, "live"), make_channel(delta, "running")
    db.session.commit()
    make_grant(delta, world.orgs["p"], [shared], scope="api_keys:manage")

    counts, ids = _seen(client, world)
    assert counts["Delta Deli"] == {}
    assert not {shared.id, other.id} & ids
    assert _detail(client, world, shared) == 404
    assert _detail(client, world, other) == 404
    grants = _get(client, world, "p_owner", f"/v1/partners/{world.orgs['p'].id}/clients").json
    [row] = [r for r in grants["items"] if r["name"] == "Delta Deli"]
    assert row["grant"]["state"] == "active" and row["grant"]["scopes"] == ["api_keys:manage"]

    keys = f"/v1/partners/{world.orgs['p'].id}/channels/{{}}/api-keys"
    made = client.post(keys.format(shared.id), json={}, headers=world.bearers["p_owner"])
    assert made.status_code == 201, made.json
    listed = client.get(keys.format(shared.id), headers=world.bearers["p_owner"])
    assert [k["id"] for k in listed.json] == [made.json["id"]]
    refused = client.post(keys.format(other.id), json={}, headers=world.bearers["p_owner"])
    assert refused.status_code in (403, 404)


def test_an_onboarded_client_shows_every_number_whatever_it_granted(client, world):
    a1, a2 = world.channels["a1"], world.channels["a2"]
    make_grant(world.orgs["a"], world.orgs["p"], [a1], scope="api_keys:manage")
    counts, ids = _seen(client, world)
    assert counts["Alpha Shoes"] == {"live": 1, "pending": 1}
    assert {a1.id, a2.id} <= ids
    assert _detail(client, world, a2) == 200


def test_a_changed_or_revoked_grant_changes_what_the_partner_sees_at_once(client, world):
    g, p, g1 = world.orgs["g"], world.orgs["p"], world.channels["g1"]
    g2 = make_channel(g, "live")
    owner = make_user("client", g, "owner")
    db.session.commit()
    actor = client_actor(g, owner)

    def approve(scope, channels):
        return consent.approve_consent(
            actor, partner_id=p.id, oauth_client_id=None, scope=scope, channel_ids=channels
        )

    approve("api_keys:manage channels:read", [g1.id, g2.id])
    assert _seen(client, world)[0]["Gamma Foods"] == {"running": 1, "live": 1}
    assert _detail(client, world, g2) == 200

    grant = approve("api_keys:manage", [g1.id, g2.id])  # status no longer shared
    counts, ids = _seen(client, world)
    assert counts["Gamma Foods"] == {} and not {g1.id, g2.id} & ids
    assert _detail(client, world, g1) == 404

    approve("channels:read", [g1.id, g2.id])  # shared again
    consent.revoke_grant_channel(actor, g.id, grant.id, g2.id)
    counts, ids = _seen(client, world)
    assert counts["Gamma Foods"] == {"running": 1}
    assert g1.id in ids and g2.id not in ids
    assert _detail(client, world, g2) == 404

    consent.revoke_grant(actor, g.id, grant.id)
    counts, ids = _seen(client, world)
    assert "Gamma Foods" not in counts and g1.id not in ids
    assert _detail(client, world, g1) == 404
