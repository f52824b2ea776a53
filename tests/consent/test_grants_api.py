"""Grants over HTTP: who sees them, who revokes them, and what revocation does to keys."""

from __future__ import annotations

import pytest

from idp.audit.models import AuditEvent
from idp.consent import service
from idp.extensions import db
from tests.consent.factories import (
    bearers_of,
    client_actor,
    make_grant,
    make_key,
    people_of,
    two_of_each,
)
from tests.factories import bearer_for, make_channel

CHECK = "/v1/api-keys/check"


@pytest.fixture
def world(app_ctx):
    """Client A grants partners P (2 channels) and Q (1); client B grants Q."""
    w = two_of_each()
    a, b, p, q = w["a"], w["b"], w["p"], w["q"]
    a1, a2, b1 = make_channel(a), make_channel(a), make_channel(b)
    w.update(a1=a1, a2=a2, b1=b1)
    w["grant_ap"] = make_grant(a, p, [a1, a2])
    w["grant_aq"] = make_grant(a, q, [a1])
    w["grant_bq"] = make_grant(b, q, [b1])
    w["users"] = people_of(w)
    w["auth"] = bearers_of(w["users"])
    w["auth"]["p_machine"] = bearer_for(None, p, client_id="oc_p", scope="grants:read")
    w["auth"]["p_machine_noscope"] = bearer_for(None, p, client_id="oc_p2", scope="clients:read")
    return w


READ = [
    ("p_owner", "partners", "p", 200, ["grant_ap"]),
    ("p_member", "partners", "p", 200, ["grant_ap"]),
    ("p_machine", "partners", "p", 200, ["grant_ap"]),
    ("p_machine_noscope", "partners", "p", 403, None),
    ("q_owner", "partners", "q", 200, ["grant_aq", "grant_bq"]),
    ("q_owner", "partners", "p", 404, None),
    ("p_owner", "partners", "q", 404, None),
    ("a_owner", "clients", "a", 200, ["grant_ap", "grant_aq"]),
    ("a_member", "clients", "a", 200, ["grant_ap", "grant_aq"]),
    ("b_owner", "clients", "b", 200, ["grant_bq"]),
    ("b_owner", "clients", "a", 404, None),
    ("a_owner", "clients", "b", 404, None),
    ("p_owner", "clients", "a", 404, None),
    ("a_owner", "partners", "p", 404, None),
    ("support", "clients", "a", 404, None),
    ("support", "partners", "p", 404, None),
]


@pytest.mark.parametrize(("actor", "plural", "org", "status", "grants"), READ)
def test_who_sees_which_grants(client, world, actor, plural, org, status, grants):
    resp = client.get(f"/v1/{plural}/{world[org].id}/grants", headers=world["auth"][actor])
    assert resp.status_code == status, resp.get_json()
    if grants is not None:
        assert sorted(g["id"] for g in resp.get_json()) == sorted(world[g].id for g in grants)


def test_a_grant_reads_plainly(client, world):
    resp = client.get(f"/v1/partners/{world['p'].id}/grants", headers=world["auth"]["p_owner"])
    (grant,) = resp.get_json()
    assert grant["client"] == world["a"].id and grant["client_name"] == "Client A"
    assert grant["partner"] == world["p"].id and grant["partner_name"] == "Partner P"
    assert sorted(grant["channels"]) == sorted([world["a1"].id, world["a2"].id])
    assert grant["scope"] == "api_keys:manage channels:read"
    assert grant["revoked_at"] is None


REVOKE = [
    ("a_owner", "a", "grant_ap", 204),
    ("a_member", "a", "grant_ap", 204),
    ("b_owner", "b", "grant_ap", 404),  # someone else's grant through my path
    ("b_owner", "a", "grant_ap", 404),
    ("a_owner", "a", "grant_bq", 404),
    ("p_owner", "a", "grant_ap", 404),  # the partner cannot revoke what it was given
    ("q_owner", "a", "grant_ap", 404),
    ("support", "a", "grant_ap", 404),
]


@pytest.mark.parametrize(("actor", "org", "grant", "status"), REVOKE)
def test_who_may_revoke_a_grant(client, world, actor, org, grant, status):
    url = f"/v1/clients/{world[org].id}/grants/{world[grant].id}"
    assert client.delete(url, headers=world["auth"][actor]).status_code == status


@pytest.mark.parametrize(("actor", "org", "grant", "status"), REVOKE)
def test_who_may_revoke_a_channel_of_a_grant(client, world, actor, org, grant, status):
    channel = world["a1"] if world[grant].client_id == world["a"].id else world["b1"]
    url = f"/v1/clients/{world[org].id}/grants/{world[grant].id}/channels/{channel.id}"
    assert client.delete(url, headers=world["auth"][actor]).status_code == status


def test_revoking_a_grant_stops_the_partners_keys_at_once_but_not_the_clients(client, world):
    partner_key = make_key(world["a1"], partner=world["p"])
    client_key = make_key(world["a2"])
    assert client.get(CHECK, headers={"D360-API-KEY": partner_key}).status_code == 200
    url = f"/v1/clients/{world['a'].id}/grants/{world['grant_ap'].id}"
    assert client.delete(url, headers=world["auth"]["a_owner"]).status_code == 204
    assert client.get(CHECK, headers={"D360-API-KEY": partner_key}).status_code == 401
    assert client.get(CHECK, headers={"D360-API-KEY": client_key}).status_code == 200
    # ... and the partner can no longer generate
    gen = f"/v1/partners/{world['p'].id}/channels/{world['a1'].id}/api-keys"
    assert client.post(gen, headers=world["auth"]["p_owner"]).status_code == 404
    # a second revocation says it is already done
    resp = client.delete(url, headers=world["auth"]["a_owner"])
    assert resp.status_code == 403 and resp.get_json()["code"] == "grant_revoked"
    listed = client.get(
        f"/v1/clients/{world['a'].id}/grants?include_revoked=true",
        headers=world["auth"]["a_owner"],
    ).get_json()
    assert any(g["id"] == world["grant_ap"].id and g["revoked_at"] for g in listed)


def test_revoking_one_channel_keeps_the_rest_of_the_grant(client, world):
    key1 = make_key(world["a1"], partner=world["p"])
    key2_first = make_key(world["a2"], partner=world["p"])
    url = f"/v1/clients/{world['a'].id}/grants/{world['grant_ap'].id}/channels/{world['a1'].id}"
    assert client.delete(url, headers=world["auth"]["a_owner"]).status_code == 204
    assert client.get(CHECK, headers={"D360-API-KEY": key1}).status_code == 401
    assert client.get(CHECK, headers={"D360-API-KEY": key2_first}).status_code == 200
    gen = f"/v1/partners/{world['p'].id}/channels/{{}}/api-keys"
    auth = world["auth"]["p_owner"]
    assert client.post(gen.format(world["a1"].id), headers=auth).status_code == 403
    assert client.post(gen.format(world["a2"].id), headers=auth).status_code == 201
    assert client.delete(url, headers=world["auth"]["a_owner"]).status_code == 404


def test_a_later_approval_that_unticks_a_channel_removes_it_and_its_keys(app_ctx, world):
    from idp.apikeys import service as keys

    key1 = make_key(world["a1"], partner=world["p"])
    actor = client_actor(world["a"], world["users"]["a_member"][0], "member")
    grant = service.approve_consent(
        actor,
        partner_id=world["p"].id,
        oauth_client_id="oc_p",
        scope="api_keys:manage channels:read",
        channel_ids=[world["a2"].id],
    )
    assert grant.id == world["grant_ap"].id and grant.channel_ids == [world["a2"].id]
    # The grant names who changed it last, through which of the partner's applications.
    assert grant.granted_by_id == world["users"]["a_member"][0].id
    assert grant.oauth_client_id == "oc_p"
    with pytest.raises(keys.InvalidApiKey):
        keys.check_key(key1)
    actions = db.session.scalars(db.select(AuditEvent.action)).all()
    assert "grant.changed" in actions and "api_key.revoked" in actions


def test_approving_exactly_what_is_granted_changes_nothing(app_ctx, world):
    """Who gave the grant, through which application and when stay as the audit log says."""
    from idp.apikeys import service as keys

    granted = world["grant_ap"]
    before = (granted.granted_by_id, granted.oauth_client_id, granted.updated_at)
    key = make_key(world["a1"], partner=world["p"])
    events = db.session.scalar(db.select(db.func.count()).select_from(AuditEvent))

    grant = service.approve_consent(
        client_actor(world["a"], world["users"]["a_member"][0], "member"),
        partner_id=world["p"].id,
        oauth_client_id="oc_other_app",
        scope=granted.scope,
        channel_ids=[world["a2"].id, world["a1"].id],
    )

    db.session.expire_all()
    assert grant.id == granted.id
    assert (grant.granted_by_id, grant.oauth_client_id, grant.updated_at) == before
    assert db.session.scalar(db.select(db.func.count()).select_from(AuditEvent)) == events
    assert keys.check_key(key).partner_id == world["p"].id  # the partner's key still works


def test_approval_refuses_channels_of_another_client(app_ctx, world):
    from idp.errors import InvalidInput

    with pytest.raises(InvalidInput):
        service.approve_consent(
            client_actor(world["a"]),
            partner_id=world["p"].id,
            oauth_client_id=None,
            scope="api_keys:manage",
            channel_ids=[world["b1"].id],
        )


def test_grant_changes_are_audited(client, world):
    url = f"/v1/clients/{world['a'].id}/grants/{world['grant_ap'].id}"
    client.delete(url, headers={**world["auth"]["a_owner"], "X-Request-Id": "req-7"})
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "grant.revoked"))
    assert event.target_id == world["grant_ap"].id and event.request_id == "req-7"
    assert event.before["revoked_at"] is None and event.after["revoked_at"]
    assert event.actor_type == "user" and event.actor_id


def test_an_identical_approval_still_revokes_a_key_that_slipped_past_a_change(app_ctx, world):
    """A key unrevoked under a grant that no longer allows keys (as if it had raced the
    change): approving the grant again, unchanged, revokes it as any approval does."""
    from idp.apikeys.models import ChannelApiKey

    make_key(world["a1"], partner=world["p"])
    granted = world["grant_ap"]
    granted.scope = "channels:read"  # written around the service: no key revoked
    db.session.commit()

    service.approve_consent(
        client_actor(world["a"]),
        partner_id=world["p"].id,
        oauth_client_id=None,
        scope="channels:read",
        channel_ids=[world["a1"].id, world["a2"].id],
    )

    db.session.expire_all()
    (revoked_at,) = db.session.scalars(
        db.select(ChannelApiKey.revoked_at).where(ChannelApiKey.grant_id == granted.id)
    )
    assert revoked_at is not None  # the gateway refused it already; now it is revoked too
