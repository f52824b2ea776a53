"""The ceiling endpoints answer in bench mode and do not exist otherwise."""

from __future__ import annotations

import pytest

from idp.bench.views import CEILING_PASSWORD
from idp.keys.service import verify_jwt

CEILINGS = [
    ("get", "/bench/ceiling/json"),
    ("get", "/bench/ceiling/sign"),
    ("post", "/bench/ceiling/argon2"),
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


def test_argon2_ceiling_verifies_a_password(bench_app):
    client = bench_app.test_client()
    right = client.post("/bench/ceiling/argon2", data={"password": CEILING_PASSWORD})
    wrong = client.post("/bench/ceiling/argon2", data={"password": "not-the-passphrase"})
    assert right.get_json() == {"valid": True}
    assert wrong.get_json() == {"valid": False}
