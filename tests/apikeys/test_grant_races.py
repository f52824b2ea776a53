"""A partner's key generated while the client changes the grant never outlives the change.

Each race test pauses the partner's generation between its grant check and its
insert while the client's change runs on another connection
(``tests.consent.interleave``). On PostgreSQL the generation holds the grant's
row lock, so the change waits and then revokes the new key; without row locks
(SQLite) the change commits first and the gateway and later approvals still
refuse the key.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from idp.apikeys import service as keys
from idp.channels.models import Channel
from idp.consent import service as consent
from idp.consent.models import ConsentGrant, GrantChannel
from idp.extensions import db
from idp.orgs.models import Organization
from tests.consent.factories import (
    bearers_of,
    client_actor,
    make_grant,
    make_key,
    partner_actor,
    people_of,
    two_of_each,
)
from tests.consent.interleave import Competitor, pause_before
from tests.factories import make_channel

CHECK = "/v1/api-keys/check"
MANAGE = "api_keys:manage channels:read"


@pytest.fixture
def world(app_ctx):
    """Client A grants partner P one live number with key management; plain ids only."""
    w = two_of_each()
    channel = make_channel(w["a"], "live")
    grant = make_grant(w["a"], w["p"], [channel], scope=MANAGE)
    people = people_of(w)
    return {
        "a": w["a"].id,
        "p": w["p"].id,
        "ch": channel.id,
        "grant": grant.id,
        "auth": bearers_of(people),
        "actor": client_actor(w["a"], people["a_owner"][0]),
    }


def approve(w, scope: str):
    """The client's consent visit: this scope on the one number."""
    return lambda: consent.approve_consent(
        w["actor"], partner_id=w["p"], oauth_client_id=None, scope=scope, channel_ids=[w["ch"]]
    )


def checks(http, key: str) -> int:
    return http.get(CHECK, headers={"D360-API-KEY": key}).status_code


def client_sees_revoked(http, w, key_id: str) -> bool:
    listed = http.get(
        f"/v1/clients/{w['a']}/channels/{w['ch']}/api-keys", headers=w["auth"]["a_owner"]
    ).get_json()
    return next(k for k in listed if k["id"] == key_id)["revoked_at"] is not None


def partner_key(w) -> str:
    """A key the partner generates on the number, no race."""
    return make_key(db.session.get(Channel, w["ch"]), partner=db.session.get(Organization, w["p"]))


def generate_while(app, http, monkeypatch, w, change) -> tuple[str, str]:
    """The partner generates a key; ``change`` commits between its grant check and its insert."""
    competitor = Competitor(app, change)
    pause_before(monkeypatch, keys, "generate_key", competitor)
    answer = http.post(
        f"/v1/partners/{w['p']}/channels/{w['ch']}/api-keys", headers=w["auth"]["p_owner"]
    )
    competitor.finish()
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()["api_key"], answer.get_json()["id"]


def on_postgres() -> bool:
    return db.engine.dialect.name == "postgresql"


def test_a_key_generated_while_the_client_withdraws_key_management_is_refused(
    app, client, world, monkeypatch
):
    key, key_id = generate_while(app, client, monkeypatch, world, approve(world, "channels:read"))
    assert checks(client, key) == 401
    if on_postgres():
        assert client_sees_revoked(client, world, key_id)
    # Giving the partner key management again does not bring the key back.
    approve(world, MANAGE)()
    assert checks(client, key) == 401


def test_a_key_generated_while_the_client_takes_the_number_out_stays_dead_when_shared_again(
    app, client, world, monkeypatch
):
    def take_the_number_out():
        return consent.revoke_grant_channel(world["actor"], world["a"], world["grant"], world["ch"])

    key, key_id = generate_while(app, client, monkeypatch, world, take_the_number_out)
    assert checks(client, key) == 401
    approve(world, MANAGE)()
    assert checks(client, key) == 401
    assert client_sees_revoked(client, world, key_id)


@pytest.mark.postgres
def test_a_key_generated_while_the_client_revokes_the_grant_is_listed_as_revoked(
    app, client, world, monkeypatch
):
    def revoke():
        return consent.revoke_grant(world["actor"], world["a"], world["grant"])

    key, key_id = generate_while(app, client, monkeypatch, world, revoke)
    assert checks(client, key) == 401
    assert client_sees_revoked(client, world, key_id)


def test_a_partner_key_is_refused_while_its_grant_does_not_allow_key_management(client, world):
    key = partner_key(world)
    assert checks(client, key) == 200
    # However the scope left the grant without its keys (a data fix, a missed revocation) ...
    db.session.execute(
        sa.update(ConsentGrant)
        .where(ConsentGrant.id == world["grant"])
        .values(scope="channels:read")
    )
    db.session.commit()
    assert checks(client, key) == 401
    # ... the client giving it back does not revive the key either.
    approve(world, MANAGE)()
    assert checks(client, key) == 401


def test_sharing_a_number_again_revokes_a_partner_key_left_over_from_before(client, world):
    key = partner_key(world)
    # However the number left the grant without its key ...
    db.session.execute(sa.delete(GrantChannel).where(GrantChannel.grant_id == world["grant"]))
    db.session.commit()
    assert checks(client, key) == 401
    # ... sharing it again does not bring the key back.
    approve(world, MANAGE)()
    assert checks(client, key) == 401


@pytest.mark.postgres
def test_sharing_a_number_while_the_partner_generates_a_key_on_it(app, client, world, monkeypatch):
    """The approval holds the grant and adds the number; the generation holds the number."""
    with app.app_context():
        extra = make_channel(db.session.get(Organization, world["a"]), "live").id
        db.session.commit()
        db.session.remove()
    generation = Competitor(
        app,
        lambda: keys.create_key(
            partner_actor(SimpleNamespace(id=world["p"])), "partner", world["p"], extra
        ),
    )
    pause_before(monkeypatch, consent, "GrantChannel", generation)
    consent.approve_consent(
        world["actor"],
        partner_id=world["p"],
        oauth_client_id=None,
        scope=MANAGE,
        channel_ids=[world["ch"], extra],
    )
    _, key = generation.finish()
    assert checks(client, key) == 200
