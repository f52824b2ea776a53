"""With Redis, instances keep OAuth clients in memory; a change anywhere is seen everywhere at once.

Two applications over one database and one Redis stand for two instances.
Each change goes through one of them (or straight to the database through
the ORM, as a support script would), and the very next request to the other
must see it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import jwt
import pytest

from idp.extensions import db
from idp.oauth.models import OAuthClient, TokenFamily
from idp.timeutil import epoch_seconds, utcnow
from tests.factories import bearer_for, make_org, make_user
from tests.instances import Reads, dispose, make_instance
from tests.oauth.conftest import basic, introspect, make_partner_client, make_platform_client

pytestmark = pytest.mark.redis


@pytest.fixture
def world(app):
    with app.app_context():
        acme = make_org("partner", "Acme")
        support = make_org("support", "Support")
        client, secret = make_partner_client(acme)
        platform, platform_secret = make_platform_client(support)
        owner = bearer_for(make_user("partner", acme, "owner"), acme)
        world = {
            "acme": acme.id,
            "client": client.client_id,
            "secret": secret,
            "platform": (platform.client_id, platform_secret),
            "owner": owner,
        }
        db.session.remove()
    return world


def _token(http, client_id: str, secret: str):
    return http.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=basic(client_id, secret)
    )


def _warm(http, client_id: str, secret: str):
    """Token requests until the instance keeps the client, its family and the request itself
    (``idp.oauth.machine_requests``: from a request's second time on); the last answer."""
    for _ in range(3):
        answer = _token(http, client_id, secret)
        assert answer.status_code == 200, answer.text
    return answer


def test_a_warm_instance_signs_a_known_request_without_authenticating_it_again(
    redis_instances, world, monkeypatch
):
    from idp.oauth import hot_paths

    _, two = redis_instances
    http = two.test_client()
    first = _warm(http, world["client"], world["secret"]).get_json()
    checked = []
    authenticate = hot_paths._basic_authentication

    def counted(endpoint):
        checked.append(endpoint)
        return authenticate(endpoint)

    monkeypatch.setattr(hot_paths, "_basic_authentication", counted)
    again = _token(http, world["client"], world["secret"])
    assert again.status_code == 200
    assert again.get_json()["access_token"] != first["access_token"]
    assert again.get_json()["scope"] == first["scope"]
    assert checked == []
    # Other credentials are never answered from what was kept.
    assert _token(http, world["client"], "not-the-secret").status_code == 401
    assert checked == ["token"]


def test_a_scope_sent_with_its_words_repeated_is_checked_every_time(
    redis_instances, world, monkeypatch
):
    from idp.oauth import hot_paths

    http = redis_instances[1].test_client()
    word = _token(http, world["client"], world["secret"]).get_json()["scope"].split()[0]
    repeated = {"grant_type": "client_credentials", "scope": " ".join([word] * 100)}
    headers = basic(world["client"], world["secret"])
    for _ in range(3):
        assert http.post("/oauth/token", data=repeated, headers=headers).status_code == 200
    checked = []
    authenticate = hot_paths._basic_authentication
    monkeypatch.setattr(
        hot_paths, "_basic_authentication", lambda e: checked.append(e) or authenticate(e)
    )
    assert http.post("/oauth/token", data=repeated, headers=headers).status_code == 200
    assert checked == ["token"]  # not kept: what is kept stays as small as the client's scopes


def test_a_warm_instance_issues_machine_tokens_without_reading_the_client(redis_instances, world):
    one, _ = redis_instances
    http = one.test_client()
    assert _token(http, world["client"], world["secret"]).status_code == 200
    assert _token(http, world["client"], world["secret"]).status_code == 200
    with Reads(one, "oauth_clients") as reads:
        for _ in range(3):
            assert _token(http, world["client"], world["secret"]).status_code == 200
    assert reads.count == 0


def test_a_deleted_client_is_refused_by_every_instance_on_its_next_request(redis_instances, world):
    one, two = redis_instances
    token = _warm(two.test_client(), world["client"], world["secret"]).get_json()["access_token"]

    url = f"/v1/partners/{world['acme']}/oauth-clients/{world['client']}"
    assert one.test_client().delete(url, headers=world["owner"]).status_code == 204

    refused = _token(two.test_client(), world["client"], world["secret"])
    assert refused.status_code == 401
    assert refused.get_json()["error"] == "invalid_client"
    platform_id, platform_secret = world["platform"]
    answer = introspect(two.test_client(), token, platform_id, platform_secret).get_json()
    assert answer == {"active": False}


def test_a_rotated_secret_works_at_once_everywhere_and_the_old_one_nowhere(redis_instances, world):
    one, two = redis_instances
    _warm(two.test_client(), world["client"], world["secret"])

    url = f"/v1/partners/{world['acme']}/oauth-clients/{world['client']}/secret"
    rotated = one.test_client().post(url, headers=world["owner"])
    assert rotated.status_code == 201, rotated.text
    new_secret = rotated.get_json()["client_secret"]

    assert _token(two.test_client(), world["client"], world["secret"]).status_code == 401
    assert _token(two.test_client(), world["client"], new_secret).status_code == 200


def test_an_edit_committed_straight_to_the_database_is_seen_at_once(redis_instances, world):
    one, two = redis_instances
    _warm(two.test_client(), world["client"], world["secret"])
    with one.app_context():
        db.session.get(OAuthClient, world["client"]).scope = "channels:read"
        db.session.commit()
    body = _token(two.test_client(), world["client"], world["secret"]).get_json()
    assert body["scope"] == "channels:read"


def test_revoking_a_machine_token_on_one_instance_gives_fresh_tokens_on_the_other(
    redis_instances, world
):
    one, two = redis_instances
    platform_id, platform_secret = world["platform"]
    old = _token(two.test_client(), world["client"], world["secret"]).get_json()["access_token"]
    # The other instance remembers the client's standing family, and the request, now.
    again = _warm(two.test_client(), world["client"], world["secret"]).get_json()["access_token"]

    revoked = one.test_client().post(
        "/oauth/revoke", data={"token": old}, headers=basic(world["client"], world["secret"])
    )
    assert revoked.status_code == 200
    assert introspect(one.test_client(), again, platform_id, platform_secret).get_json() == {
        "active": False
    }

    fresh = _token(two.test_client(), world["client"], world["secret"]).get_json()["access_token"]
    answer = introspect(two.test_client(), fresh, platform_id, platform_secret).get_json()
    assert answer["active"] is True
    assert _family(fresh) != _family(again)


def test_a_kept_request_whose_family_ends_within_a_token_lifetime_moves_to_a_new_family(
    redis_instances, world, monkeypatch
):
    one, two = redis_instances
    ttl = two.config["IDP_ACCESS_TOKEN_TTL"]
    first = _token(one.test_client(), world["client"], world["secret"]).get_json()["access_token"]
    with one.app_context():  # the standing family now ends a minute after a token's lifetime
        family = db.session.get(TokenFamily, _family(first))
        family.expires_at = utcnow() + timedelta(seconds=ttl + 60)
        ends = epoch_seconds(family.expires_at)
        db.session.commit()
    kept = _warm(two.test_client(), world["client"], world["secret"]).get_json()["access_token"]
    assert _family(kept) == _family(first)

    # Two minutes on, nothing has changed, so the kept request is still current; but a
    # token signed in that family would outlive it.
    later = time.time() + 120
    monkeypatch.setattr("idp.oauth.client_cache.time", SimpleNamespace(time=lambda: later))
    monkeypatch.setattr("idp.oauth.tokens.time", SimpleNamespace(time=lambda: later))
    monkeypatch.setattr(
        "idp.oauth.tokens.utcnow", lambda: datetime.fromtimestamp(later, UTC).replace(tzinfo=None)
    )
    fresh = _token(two.test_client(), world["client"], world["secret"]).get_json()["access_token"]
    claims = jwt.decode(fresh, options={"verify_signature": False})
    assert claims["exp"] > ends
    assert claims["sid"] != _family(first)
    with two.app_context():
        assert epoch_seconds(db.session.get(TokenFamily, claims["sid"]).expires_at) > claims["exp"]


def _family(access_token: str) -> str:
    return jwt.decode(access_token, options={"verify_signature": False})["sid"]


def test_without_a_reachable_redis_clients_are_read_from_the_database(app, database_url, world):
    # Nothing listens on port 9: every counter read fails, and nothing is cached.
    down = make_instance(database_url, "idp-test-down:", "redis://127.0.0.1:9/0")
    try:
        http = down.test_client()
        assert _token(http, world["client"], world["secret"]).status_code == 200
        with down.app_context():
            db.session.get(OAuthClient, world["client"]).deleted_at = utcnow()
            db.session.commit()
        assert _token(http, world["client"], world["secret"]).status_code == 401
    finally:
        dispose(down)
