"""The lean token and introspection paths answer exactly as Authlib does, and only when they may.

Each request goes to the endpoint (which takes the lean path when it can),
and the same request is handed straight to Authlib: status, headers and
body must agree. Each case also says whether the lean path answered it, so
that a lean path that never runs cannot pass for one that agrees.
"""

from __future__ import annotations

import base64
import io
from urllib.parse import urlencode

import pytest
from authlib.oauth2.rfc6749.errors import InsecureTransportError
from flask import request

from idp.extensions import db
from idp.keys.service import verify_jwt
from idp.oauth import hot_paths
from idp.oauth.models import TokenFamily
from idp.oauth.revocation import revoke_family
from idp.oauth.server import authorization_server
from tests.factories import bearer_for, make_org, make_user
from tests.oauth.conftest import basic, make_partner_client, make_platform_client

FORM = "application/x-www-form-urlencoded"
HEADERS = ("Content-Type", "Cache-Control", "Pragma")
VARYING_CLAIMS = {"jti", "iat", "exp"}  # differ between any two tokens


@pytest.fixture
def world(app, app_ctx):
    acme = make_org("partner", "Acme")
    support = make_org("support", "Support")
    client, secret = make_partner_client(acme)
    platform, platform_secret = make_platform_client(support)
    shop = make_org("client", "Shop")
    user_bearer = bearer_for(make_user("client", shop, "owner"), shop)
    machine = app.test_client().post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers=basic(client.client_id, secret),
    )
    return {
        "client": (client.client_id, secret),
        "platform": (platform.client_id, platform_secret),
        "user_token": user_bearer["Authorization"].split(" ", 1)[1],
        "machine_token": machine.get_json()["access_token"],
    }


def _answers(app, path, body, headers, lean, authlib, query="", base_url="http://localhost"):
    """(lean path's Response or None, the endpoint's response, Authlib's own response)."""
    url = path + (f"?{query}" if query else "")
    context = {"method": "POST", "data": body, "headers": headers, "content_type": FORM}
    context["base_url"] = base_url
    with app.test_request_context(url, **context):
        took = lean()
        db.session.commit()  # as the endpoint does: the first token opens the standing family
    endpoint = app.test_client().post(url, **context)
    with app.test_request_context(url, **context):
        direct = authlib()
        db.session.commit()
    return took, endpoint, direct


def _comparable(response) -> tuple:
    body = response.get_json()
    if body and "access_token" in body:
        claims = verify_jwt(body.pop("access_token"), typ="at+jwt")
        body["claims"] = {k: v for k, v in claims.items() if k not in VARYING_CLAIMS}
    return response.status_code, {h: response.headers.get(h) for h in HEADERS}, body


def _token_answers(app, body: str, headers: dict, **where):
    return _answers(
        app,
        "/oauth/token",
        body,
        headers,
        hot_paths.client_credentials,
        authorization_server.create_token_response,
        **where,
    )


def _grant(**fields) -> str:
    return urlencode({"grant_type": "client_credentials", **fields})


LEAN_TOKEN_CASES = {
    "all of its scopes": lambda w: (_grant(), basic(*w["client"])),
    "one of its scopes": lambda w: (_grant(scope="channels:read"), basic(*w["client"])),
    "the platform's client": lambda w: (_grant(), basic(*w["platform"])),
}
AUTHLIB_TOKEN_CASES = {
    "secret in the body": lambda w: (
        _grant(client_id=w["client"][0], client_secret=w["client"][1]),
        {},
    ),
    "wrong secret": lambda w: (_grant(), basic(w["client"][0], "not-the-secret")),
    "unknown client": lambda w: (_grant(), basic("oc_nobody", "secret")),
    "no authentication": lambda w: (_grant(), {}),
    "a scope it was not given": lambda w: (_grant(scope="channels:write"), basic(*w["client"])),
    "a scope nobody has": lambda w: (_grant(scope="everything"), basic(*w["client"])),
    "grant_type twice": lambda w: (
        _grant() + "&grant_type=client_credentials",
        basic(*w["client"]),
    ),
    "another field": lambda w: (_grant(audience="x"), basic(*w["client"])),
    "another grant": lambda w: (urlencode({"grant_type": "password"}), basic(*w["client"])),
    "no grant": lambda w: ("scope=channels%3Aread", basic(*w["client"])),
    "a field without a value": lambda w: (_grant() + "&scope", basic(*w["client"])),
    "not base64": lambda w: (_grant(), {"Authorization": "Basic !!!"}),
    "basic without a secret": lambda w: (
        _grant(),
        {"Authorization": "Basic " + base64.b64encode(w["client"][0].encode()).decode()},
    ),
}


@pytest.mark.parametrize("case", LEAN_TOKEN_CASES)
def test_a_well_formed_machine_token_request_is_answered_lean_and_alike(app, world, case):
    body, headers = LEAN_TOKEN_CASES[case](world)
    took, endpoint, direct = _token_answers(app, body, headers)
    assert took is not None
    assert endpoint.status_code == 200, endpoint.text
    assert _comparable(endpoint) == _comparable(direct) == _comparable(took)


@pytest.mark.parametrize("case", AUTHLIB_TOKEN_CASES)
def test_every_other_token_request_is_left_to_authlib(app, world, case):
    body, headers = AUTHLIB_TOKEN_CASES[case](world)
    took, endpoint, direct = _token_answers(app, body, headers)
    assert took is None
    assert _comparable(endpoint) == _comparable(direct)


def test_a_query_string_is_left_to_authlib(app, world):
    took, endpoint, direct = _token_answers(app, _grant(), basic(*world["client"]), query="scope=x")
    assert took is None
    assert _comparable(endpoint) == _comparable(direct)


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
def test_plain_http_to_a_public_host_gets_authlibs_refusal_not_a_500(app, world, path):
    body = _grant() + "&token=x"
    with app.test_request_context(
        path, method="POST", data=body, content_type=FORM, base_url="http://idp.example"
    ):
        assert hot_paths.client_credentials() is None
        assert hot_paths.introspection() is None
        with pytest.raises(InsecureTransportError):
            authorization_server.create_token_response()
    answer = app.test_client().post(
        path, data=body, headers=basic(*world["client"]), content_type=FORM,
        base_url="http://idp.example",
    )  # fmt: skip
    status, expected, _ = InsecureTransportError()()
    assert (answer.status_code, answer.get_json()) == (status, expected)
    assert answer.get_json()["error"] == "insecure_transport"


def _introspection_answers(app, body: str, headers: dict):
    return _answers(
        app,
        "/oauth/introspect",
        body,
        headers,
        hot_paths.introspection,
        lambda: authorization_server.create_endpoint_response("introspection"),
    )


LEAN_INTROSPECTION_CASES = {
    "a live user token": lambda w: ({"token": w["user_token"]}, w["platform"]),
    "with its hint": lambda w: (
        {"token": w["user_token"], "token_type_hint": "access_token"},
        w["platform"],
    ),
    "a wrong hint": lambda w: (
        {"token": w["user_token"], "token_type_hint": "refresh_token"},
        w["platform"],
    ),
    "not a token": lambda w: ({"token": "garbage"}, w["platform"]),
    "an empty token": lambda w: ({"token": ""}, w["platform"]),
    "someone else's token": lambda w: ({"token": w["user_token"]}, w["client"]),
    "its own machine token": lambda w: ({"token": w["machine_token"]}, w["client"]),
}
AUTHLIB_INTROSPECTION_CASES = {
    "no token": lambda w: ({}, w["platform"]),
    "an unknown hint": lambda w: (
        {"token": w["user_token"], "token_type_hint": "id_token"},
        w["platform"],
    ),
    "wrong secret": lambda w: ({"token": w["user_token"]}, (w["platform"][0], "nope")),
    "another field": lambda w: ({"token": w["user_token"], "scope": "x"}, w["platform"]),
}


@pytest.mark.parametrize("case", LEAN_INTROSPECTION_CASES)
def test_an_introspection_is_answered_lean_and_alike(app, world, case):
    fields, (client_id, secret) = LEAN_INTROSPECTION_CASES[case](world)
    took, endpoint, direct = _introspection_answers(
        app, urlencode(fields), basic(client_id, secret)
    )
    assert took is not None
    assert _comparable(endpoint) == _comparable(direct) == _comparable(took)


def test_a_revoked_login_is_inactive_on_the_lean_path_at_once(app, world):
    fields = urlencode({"token": world["user_token"]})
    took, endpoint, _ = _introspection_answers(app, fields, basic(*world["platform"]))
    assert took is not None and endpoint.get_json()["active"] is True
    sid = verify_jwt(world["user_token"], typ="at+jwt")["sid"]
    revoke_family(db.session.get(TokenFamily, sid), "lost laptop")
    db.session.commit()
    took, endpoint, direct = _introspection_answers(app, fields, basic(*world["platform"]))
    assert took is not None
    assert endpoint.get_json() == direct.get_json() == {"active": False}


@pytest.mark.parametrize("case", AUTHLIB_INTROSPECTION_CASES)
def test_every_other_introspection_is_left_to_authlib(app, world, case):
    fields, (client_id, secret) = AUTHLIB_INTROSPECTION_CASES[case](world)
    took, endpoint, direct = _introspection_answers(
        app, urlencode(fields), basic(client_id, secret)
    )
    assert took is None
    assert _comparable(endpoint) == _comparable(direct)


def test_a_chunked_body_is_left_to_authlib_and_still_gets_its_token(app, world):
    body = _grant(scope="channels:read").encode()
    headers = basic(*world["client"]) | {"Transfer-Encoding": "chunked"}
    # As gunicorn hands it over: de-chunked, with no length, and says so.
    context = {
        "method": "POST", "input_stream": io.BytesIO(body), "headers": headers,
        "environ_overrides": {"wsgi.input_terminated": True},
    }  # fmt: skip
    with app.test_request_context("/oauth/token", content_type=FORM, **context):
        assert request.content_length is None
        assert hot_paths.client_credentials() is None
    context["input_stream"] = io.BytesIO(body)
    answer = app.test_client().post("/oauth/token", content_type=FORM, **context)
    assert answer.status_code == 200, answer.text
    assert verify_jwt(answer.get_json()["access_token"], typ="at+jwt")["scope"] == "channels:read"


def test_a_body_shorter_than_its_declared_length_is_refused_as_before(app, world):
    body = _grant()
    context = {
        "method": "POST", "data": body, "content_type": FORM, "headers": basic(*world["client"]),
        "environ_overrides": {"CONTENT_LENGTH": str(len(body) + 10)},
    }  # fmt: skip
    with app.test_request_context("/oauth/token", **context):
        assert hot_paths.client_credentials() is None
    answer = app.test_client().post("/oauth/token", **context)
    assert answer.status_code == 400
    assert "access_token" not in answer.text


def test_the_request_size_limit_holds_on_the_lean_path(app, world, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 32)
    body = _grant(scope="channels:read")
    assert len(body) > 32
    with app.test_request_context(
        "/oauth/token", method="POST", data=body, content_type=FORM,
        headers=basic(*world["client"]),
    ):  # fmt: skip
        assert hot_paths.client_credentials() is None
    answer = app.test_client().post(
        "/oauth/token", data=body, content_type=FORM, headers=basic(*world["client"])
    )
    assert answer.status_code == 413
    assert "access_token" not in answer.text
