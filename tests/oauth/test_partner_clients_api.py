"""Partner API credentials: owners manage confidential clients; secrets shown once, hashed."""

from __future__ import annotations

import pytest

from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.oauth.models import OAuthClient, sha256_hex
from tests.factories import bearer_for, make_org, make_user
from tests.oauth.conftest import basic


@pytest.fixture
def world(app_ctx):
    acme = make_org("partner", "Acme")
    globex = make_org("partner", "Globex")
    bakery = make_org("client", "Bakery")
    support = make_org("support", "Support")
    actors = {
        "acme_owner": bearer_for(make_user("partner", acme, "owner"), acme),
        "acme_member": bearer_for(make_user("partner", acme, "member"), acme),
        "globex_owner": bearer_for(make_user("partner", globex, "owner"), globex),
        "client_owner": bearer_for(make_user("client", bakery, "owner"), bakery),
        "support_admin": bearer_for(make_user("support", support, "admin"), support),
        "acme_machine": bearer_for(None, acme, client_id="oc_x", scope="clients:read"),
        "anonymous": {},
    }
    return {"acme": acme, "actors": actors}


def _create(browser, partner_id, headers, **body):
    body.setdefault("name", "Billing sync")
    return browser.post(f"/v1/partners/{partner_id}/oauth-clients", json=body, headers=headers)


@pytest.mark.parametrize(
    ("actor", "status"),
    [
        ("acme_owner", 201),
        ("acme_member", 403),
        ("globex_owner", 404),
        ("client_owner", 404),
        ("support_admin", 404),
        ("acme_machine", 403),
        ("anonymous", 401),
    ],
)
def test_only_an_owner_of_the_partner_creates_clients(browser, world, actor, status):
    response = _create(browser, world["acme"].id, world["actors"][actor])
    assert response.status_code == status, response.get_json()


@pytest.mark.parametrize(
    ("actor", "status"),
    [("acme_owner", 200), ("acme_member", 403), ("globex_owner", 404), ("anonymous", 401)],
)
def test_only_an_owner_lists_clients(browser, world, actor, status):
    response = browser.get(
        f"/v1/partners/{world['acme'].id}/oauth-clients", headers=world["actors"][actor]
    )
    assert response.status_code == status


def test_the_secret_is_shown_once_stored_hashed_and_works(browser, world):
    owner = world["actors"]["acme_owner"]
    created = _create(
        browser, world["acme"].id, owner, redirect_uris=["https://acme.example/cb"]
    ).get_json()
    secret = created["client_secret"]
    assert len(secret) >= 43
    row = db.session.get(OAuthClient, created["client_id"])
    assert row.client_secret_hash == sha256_hex(secret)
    assert row.redirect_uris == ["https://acme.example/cb"]
    listed = browser.get(f"/v1/partners/{world['acme'].id}/oauth-clients", headers=owner)
    assert "client_secret" not in listed.get_json()[0]
    assert secret not in listed.text
    token = browser.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(created["client_id"], secret),
    )
    assert token.status_code == 200
    actions = db.session.scalars(db.select(AuditEvent.action)).all()
    assert "oauth_client.created" in actions


def test_rotating_the_secret_stops_the_old_one_at_once(browser, world):
    owner = world["actors"]["acme_owner"]
    created = _create(browser, world["acme"].id, owner).get_json()
    rotated = browser.post(
        f"/v1/partners/{world['acme'].id}/oauth-clients/{created['client_id']}/secret",
        headers=owner,
    )
    assert rotated.status_code == 201
    new_secret = rotated.get_json()["client_secret"]
    assert new_secret != created["client_secret"]

    def token(secret):
        return browser.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers=basic(created["client_id"], secret),
        ).status_code

    assert token(created["client_secret"]) == 401
    assert token(new_secret) == 200


def test_deleting_a_client_revokes_its_tokens(browser, world):
    owner = world["actors"]["acme_owner"]
    created = _create(browser, world["acme"].id, owner).get_json()
    auth = basic(created["client_id"], created["client_secret"])
    access = browser.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, headers=auth
    ).get_json()["access_token"]
    path = f"/v1/partners/{world['acme'].id}/oauth-clients/{created['client_id']}"
    assert browser.open(path, method="DELETE", headers=owner).status_code == 204
    listed = browser.get(f"/v1/partners/{world['acme'].id}/oauth-clients", headers=owner)
    assert listed.get_json() == []
    again = browser.post("/oauth/token", data={"grant_type": "client_credentials"}, headers=auth)
    assert again.status_code == 401
    check = browser.get(
        f"/v1/partners/{world['acme'].id}/oauth-clients",
        headers={"Authorization": f"Bearer {access}"},
    )
    assert check.status_code == 401


def test_another_partners_client_cannot_be_touched(browser, world):
    owner = world["actors"]["acme_owner"]
    created = _create(browser, world["acme"].id, owner).get_json()
    other = world["actors"]["globex_owner"]
    path = f"/v1/partners/{world['acme'].id}/oauth-clients/{created['client_id']}"
    assert browser.open(path, method="DELETE", headers=other).status_code == 404
    assert browser.post(path + "/secret", headers=other).status_code == 404


@pytest.mark.parametrize(
    "uri",
    [
        "http://acme.example/cb",
        "https://acme.example/cb#frag",
        "https://*.acme.example/cb",
        "acme.example/cb",
        "ftp://acme.example/cb",
        "https://acme.example/cb#",  # an empty fragment is a fragment (RFC 6749 3.1.2)
        "https://user:pw@acme.example/cb",  # user information (RFC 9110 4.2.4)
        "https://b\u00fccher.example/cb",  # an IDN host goes in its punycode form
        'https://acme.example/cb?x="1"',  # not a URI character: authorize would refuse it
        "https://acme.example/cb\n",
        "https://acme.example/c b",
    ],
)
def test_unsafe_redirect_uris_are_refused(browser, world, uri):
    response = _create(
        browser, world["acme"].id, world["actors"]["acme_owner"], redirect_uris=[uri]
    )
    assert response.status_code == 422
    assert response.get_json()["code"] == "invalid_redirect_uri"


def test_a_registered_redirect_uri_works_at_the_authorization_endpoint(browser, world):
    from tests.oauth.conftest import pkce_pair

    uris = ["https://xn--bcher-kva.example/cb?tenant=a&x=%20", "https://acme.example/cb;v=1"]
    created = _create(browser, world["acme"].id, world["actors"]["acme_owner"], redirect_uris=uris)
    assert created.status_code == 201
    for uri in created.get_json()["redirect_uris"]:
        _, challenge = pkce_pair()
        answer = browser.get(
            "/oauth/authorize",
            query_string={
                "response_type": "code",
                "client_id": created.get_json()["client_id"],
                "redirect_uri": uri,
                "scope": "channels:read",
                "state": "s",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            },
        )
        assert answer.status_code == 302 and "/login" in answer.headers["Location"], uri


def test_a_loopback_http_redirect_is_allowed(browser, world):
    response = _create(
        browser,
        world["acme"].id,
        world["actors"]["acme_owner"],
        redirect_uris=["http://127.0.0.1:9000/cb"],
    )
    assert response.status_code == 201


def test_scopes_beyond_a_partners_are_refused(browser, world):
    response = _create(
        browser, world["acme"].id, world["actors"]["acme_owner"], scope="channels:write"
    )
    assert response.status_code == 422
    assert response.get_json()["code"] == "invalid_scope"


def test_unknown_fields_are_refused(browser, world):
    response = _create(
        browser, world["acme"].id, world["actors"]["acme_owner"], client_secret="mine"
    )
    assert response.status_code == 422


def test_the_endpoints_are_documented_in_openapi(browser, app_ctx):
    paths = browser.get("/openapi.json").get_json()["paths"]
    assert "/v1/partners/{partner_id}/oauth-clients" in paths
    assert "/v1/partners/{partner_id}/oauth-clients/{client_id}/secret" in paths
