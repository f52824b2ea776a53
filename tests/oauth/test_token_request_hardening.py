"""The token, revocation and introspection endpoints under odd requests.

Parameters come from the form body, each once; a client authenticates one
way; a Basic header that is not base64 of UTF-8 is a failed authentication;
introspection's times do not depend on the server's time zone.
"""

from __future__ import annotations

import base64
import os
import time
from urllib.parse import urlencode

import pytest

from tests.factories import make_org
from tests.oauth.conftest import (
    basic,
    introspect,
    make_partner_client,
    make_platform_client,
    tokens_for,
)

FORM = "application/x-www-form-urlencoded"
ENDPOINTS = {
    "/oauth/token": {"grant_type": "refresh_token", "refresh_token": "x"},
    "/oauth/revoke": {"token": "x"},
    "/oauth/introspect": {"token": "x"},
}


@pytest.fixture
def platform(app_ctx) -> tuple[str, str]:
    """The id and secret of a platform service (it may introspect any token)."""
    row, secret = make_platform_client(make_org("support", "Support"))
    return row.client_id, secret


@pytest.fixture
def partner_service(app_ctx, partner_world) -> tuple[str, str]:
    """The id and secret of a partner's service (``channels:read clients:read``)."""
    row, secret = make_partner_client(partner_world["acme"])
    return row.client_id, secret


def _post(http, path: str, pairs: list[tuple[str, str]], **kwargs):
    """POST ``pairs`` urlencoded as they are, repeated names included."""
    return http.post(path, data=urlencode(pairs), content_type=FORM, **kwargs)


def _refused(response, error: str = "invalid_request", status: int = 400) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error"] == error
    assert "access_token" not in body


# HTTP Basic that does not decode


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "credentials",
    ["\u00e9", base64.b64encode(b"\xfe\xba\xff").decode(), base64.b64encode(b"\xff:\xfe").decode()],
)
def test_a_basic_header_that_is_not_base64_of_utf8_is_a_failed_authentication(
    app, hub_clients, client, path, credentials
):
    response = client.post(
        path, data=ENDPOINTS[path], headers={"Authorization": f"Basic {credentials}"}
    )
    _refused(response, "invalid_client", 401)
    assert response.headers["WWW-Authenticate"].startswith("Basic ")


def test_a_machine_token_request_with_such_a_header_is_a_failed_authentication(app, client):
    response = client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic /zr/"},
    )
    _refused(response, "invalid_client", 401)
    assert "WWW-Authenticate" in response.headers


# A client id that is not printable ASCII (RFC 6749 appendix A.1)


@pytest.mark.parametrize("client_id", ["a\x00b", "a\x1bb", "a\u00e9b"])
@pytest.mark.parametrize("where", ["body", "basic"])
@pytest.mark.parametrize(
    "path, form",
    [*ENDPOINTS.items(), ("/oauth/token", {"grant_type": "client_credentials"})],
    ids=["refresh", "revoke", "introspect", "client_credentials"],
)
def test_a_client_id_that_is_no_client_id_is_invalid_client(
    app, hub_clients, client, path, form, where, client_id
):
    # On PostgreSQL, a NUL reached the database and came back as a 422 problem, not OAuth's error.
    def send(claimed: str):
        if where == "body":
            return client.post(path, data=form | {"client_id": claimed, "client_secret": "s"})
        return client.post(path, data=form, headers=basic(claimed, "s"))

    unknown = send("no-such-client")
    _refused(send(client_id), "invalid_client", unknown.status_code)  # as an unknown client
    assert unknown.status_code == (401 if where == "basic" else 400)


# Repeated parameters (RFC 6749 section 3.2)


@pytest.mark.parametrize(
    ("name", "second"),
    [
        ("code", "another-code"),
        ("code_verifier", "another-verifier-" + "x" * 40),
        ("client_id", "client-hub"),
        ("client_id", "partner-hub"),
        ("grant_type", "authorization_code"),
        ("redirect_uri", "https://evil.example/callback"),
        ("scope", "openid email"),
    ],
)
def test_a_repeated_parameter_of_a_code_exchange_is_refused_and_the_code_still_works(
    app, partner_world, flow, name, second
):
    code = flow.code_for(partner_world["owner"].email)
    pairs = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", flow.redirect_uri),
        ("client_id", flow.client_id),
        ("code_verifier", flow.verifier),
        *([("scope", "openid")] if name == "scope" else []),
        (name, second),
    ]
    _refused(_post(flow.http, "/oauth/token", pairs))
    assert flow.exchange(code).status_code == 200


@pytest.mark.parametrize(
    ("name", "second"),
    [("refresh_token", "another-token"), ("client_id", "client-hub"), ("scope", "openid")],
)
def test_a_repeated_parameter_of_a_refresh_is_refused_and_the_token_still_works(
    app, partner_world, flow, name, second
):
    tokens = tokens_for(flow, partner_world["owner"].email)
    pairs = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens["refresh_token"]),
        ("client_id", "partner-hub"),
        *([("scope", "openid email")] if name == "scope" else []),
        (name, second),
    ]
    _refused(_post(flow.http, "/oauth/token", pairs))
    refreshed = flow.http.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": "partner-hub",
        },
    )
    assert refreshed.status_code == 200, refreshed.get_data(as_text=True)


def test_a_repeated_scope_of_a_machine_token_request_is_refused(partner_service, client):
    pairs = [("grant_type", "client_credentials"), ("scope", "channels:read"), ("scope", "x")]
    _refused(_post(client, "/oauth/token", pairs, headers=basic(*partner_service)))


@pytest.mark.parametrize("path", ["/oauth/revoke", "/oauth/introspect"])
def test_a_repeated_token_is_refused_at_revocation_and_introspection(
    app, partner_world, platform, flow, path
):
    tokens = tokens_for(flow, partner_world["owner"].email)
    pairs = [("token", tokens["access_token"]), ("token", tokens["refresh_token"])]
    _refused(_post(flow.http, path, pairs, headers=basic(*platform)))
    assert introspect(flow.http, tokens["access_token"], *platform).get_json()["active"]


# The form body only


def test_parameters_in_the_query_string_of_a_code_exchange_are_not_read(app, partner_world, flow):
    code = flow.code_for(partner_world["owner"].email)
    query = urlencode({"client_id": flow.client_id, "redirect_uri": flow.redirect_uri})
    response = flow.http.post(
        f"/oauth/token?{query}",
        data={"grant_type": "authorization_code", "code": code, "code_verifier": flow.verifier},
    )
    _refused(response, "invalid_client", 401)
    assert flow.exchange(code).status_code == 200


def test_a_scope_in_the_query_string_does_not_narrow_a_machine_token(partner_service, client):
    response = client.post(
        "/oauth/token?scope=channels%3Aread",
        data={"grant_type": "client_credentials"},
        headers=basic(*partner_service),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["scope"] == "channels:read clients:read"


def test_a_token_in_the_query_string_is_not_introspected(app, partner_world, platform, flow):
    tokens = tokens_for(flow, partner_world["owner"].email)
    response = flow.http.post(
        "/oauth/introspect?" + urlencode({"token": tokens["access_token"]}),
        data={},
        headers=basic(*platform),
    )
    _refused(response)


# One client authentication (RFC 6749 section 2.3)


@pytest.mark.parametrize("body_secret", ["right", "wrong"])
def test_basic_and_a_secret_in_the_body_together_are_refused(partner_service, client, body_secret):
    client_id, secret = partner_service
    response = client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": secret if body_secret == "right" else "not-the-secret",
        },
        headers=basic(client_id, secret),
    )
    _refused(response)


@pytest.mark.parametrize("path", ["/oauth/revoke", "/oauth/introspect"])
def test_two_authentications_are_refused_at_revocation_and_introspection(platform, client, path):
    client_id, secret = platform
    response = client.post(
        path,
        data={"token": "x", "client_id": client_id, "client_secret": secret},
        headers=basic(client_id, secret),
    )
    _refused(response)


def test_either_authentication_alone_still_works(partner_service, client):
    client_id, secret = partner_service
    for kwargs in (
        {"data": {"grant_type": "client_credentials"}, "headers": basic(client_id, secret)},
        {
            "data": {
                "grant_type": "client_credentials",
                "client_id": client_id,
                "client_secret": secret,
            }
        },
    ):
        response = client.post("/oauth/token", **kwargs)
        assert response.status_code == 200, response.get_data(as_text=True)


# Introspection times in any time zone


@pytest.fixture(params=["JST-9", "EST+5"])
def server_time_zone(request):
    """The process's local time zone set away from UTC for the test (POSIX TZ, no tzdata)."""
    previous = os.environ.get("TZ")
    os.environ["TZ"] = request.param
    time.tzset()
    yield request.param
    if previous is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = previous
    time.tzset()


@pytest.mark.parametrize("auth", ["basic", "body"])
def test_a_refresh_tokens_introspection_times_do_not_depend_on_the_servers_time_zone(
    app, partner_world, platform, flow, server_time_zone, auth
):
    tokens = tokens_for(flow, partner_world["owner"].email)
    client_id, secret = platform
    if auth == "basic":
        response = introspect(flow.http, tokens["refresh_token"], client_id, secret)
    else:
        response = flow.http.post(
            "/oauth/introspect",
            data={
                "token": tokens["refresh_token"],
                "client_id": client_id,
                "client_secret": secret,
            },
        )
    body = response.get_json()
    assert body["active"] is True
    now = time.time()
    assert abs(body["iat"] - now) < 60
    assert abs(body["exp"] - (now + app.config["IDP_REFRESH_TOKEN_TTL"])) < 60
