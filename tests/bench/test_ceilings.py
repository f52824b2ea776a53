"""The ceiling endpoints answer in bench mode and do not exist otherwise."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from flask import g

from idp.bench.views import CEILING_PASSWORD
from idp.keys.service import verify_jwt
from tests.instances import dispose, make_instance

CEILINGS = [
    ("get", "/bench/ceiling/json"),
    ("get", "/bench/ceiling/sign"),
    ("post", "/bench/ceiling/argon2"),
    ("get", "/bench/ceiling/authorize"),
    ("post", "/bench/ceiling/token"),
]


@pytest.mark.parametrize(("method", "path"), CEILINGS)
def test_ceilings_are_absent_outside_bench_mode(production_like_app, method, path):
    client = production_like_app.test_client()
    assert getattr(client, method)(path).status_code == 404


def test_bare_json_ceiling(bench_app):
    resp = bench_app.test_client().get("/bench/ceiling/json")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok"}


def test_sign_ceiling_signs_with_the_service_key(bench_app):
    resp = bench_app.test_client().get("/bench/ceiling/sign")
    assert resp.status_code == 200
    token = resp.get_json()["access_token"]
    with bench_app.app_context():
        claims = verify_jwt(token, typ="at+jwt")
    assert claims["sub"] == "bench"


@pytest.mark.redis
def test_signing_ceilings_leave_the_revocation_check_to_the_service(
    app, database_url, redis_prefix
):
    """The ceilings sign and nothing else: the token endpoint's ratio is not flattered.

    With Redis, learning whether the active key was revoked since the ring
    loaded it reads the change counters; that is the service's own work on
    every token it signs, measured against the ceiling, not part of it. The
    service's own JWKS reads them.
    """
    bench = make_instance(database_url, redis_prefix, IDP_BENCH_MODE=True)
    counters_read = []

    @bench.teardown_request
    def _record(_exc):
        counters_read.append("idp_change_versions" in g)

    try:
        client = bench.test_client()
        client.get("/bench/ceiling/sign")  # the first key, should the database have none
        counters_read.clear()
        assert client.get("/bench/ceiling/sign").status_code == 200
        form = {"code": "any", "client_id": "client-hub"}
        assert client.post("/bench/ceiling/token", data=form).status_code == 200
        assert client.get("/oauth/jwks").status_code == 200
    finally:
        dispose(bench)
    assert counters_read == [False, False, True]


def test_argon2_ceiling_verifies_a_password(bench_app):
    client = bench_app.test_client()
    right = client.post("/bench/ceiling/argon2", data={"password": CEILING_PASSWORD})
    wrong = client.post("/bench/ceiling/argon2", data={"password": "not-the-passphrase"})
    assert right.get_json() == {"valid": True}
    assert wrong.get_json() == {"valid": False}


def test_empty_authorize_redirects_with_a_fresh_code_and_the_state(bench_app):
    client = bench_app.test_client()
    first = client.get("/bench/ceiling/authorize?state=s1&redirect_uri=https://evil.example/")
    second = client.get("/bench/ceiling/authorize?state=s1")
    assert first.status_code == 302
    location = urlsplit(first.headers["Location"])
    # Never to a URI from the request: this service's own path only.
    assert (location.netloc, location.path) == ("", "/bench/ceiling/callback")
    query = parse_qs(location.query)
    assert query["state"] == ["s1"]
    assert query["code"] != parse_qs(urlsplit(second.headers["Location"]).query)["code"]


def test_empty_token_signs_an_access_and_an_id_token(bench_app):
    client = bench_app.test_client()
    resp = client.post("/bench/ceiling/token", data={"code": "any", "client_id": "client-hub"})
    assert resp.status_code == 200
    body = resp.get_json()
    with bench_app.app_context():
        assert verify_jwt(body["access_token"], typ="at+jwt")["sub"] == "bench"
        assert verify_jwt(body["id_token"], audience="client-hub", typ="JWT")["sub"] == "bench"
    assert body["refresh_token"]


@pytest.mark.parametrize("form", [{}, {"code": "any"}, {"client_id": "client-hub"}])
def test_empty_token_refuses_a_request_without_code_or_client(bench_app, form):
    assert bench_app.test_client().post("/bench/ceiling/token", data=form).status_code == 400
