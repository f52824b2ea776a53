"""Sign-up and password-reset requests are rate-limited per client and per target address."""

from __future__ import annotations

import contextlib
import os

import pytest

from idp import create_app
from idp.extensions import db
from tests.accounts.helpers import csrf_of
from tests.conftest import app_config

PASSWORD = "a long enough passphrase"


def _limited_app(database_url, redis_prefix, redis_url=None):
    overrides = {
        "IDP_RATELIMIT_ENABLED": True,
        "IDP_ACCOUNT_RATE_LIMIT": "4 per minute",
        "IDP_ACCOUNT_EMAIL_RATE_LIMIT": "2 per hour",
    }
    if redis_url:
        overrides["IDP_REDIS_URL"] = redis_url
    return create_app(app_config(database_url, redis_prefix + "limits:", **overrides))


@contextlib.contextmanager
def _limits_on(database_url, redis_prefix, redis_url=None):
    limited = _limited_app(database_url, redis_prefix, redis_url)
    try:
        yield limited.test_client()
    finally:
        with limited.app_context():
            db.engine.dispose()


@pytest.fixture
def limited_client(app, database_url, redis_prefix):
    """A client of an app with the rate limits on (the shared test app has them off)."""
    with _limits_on(database_url, redis_prefix) as client:
        yield client


def _signup(client, email):
    return client.post(
        "/v1/signup", json={"email": email, "password": PASSWORD, "business_name": "Ann"}
    )


def test_signups_from_one_client_are_limited(limited_client):
    answers = [_signup(limited_client, f"user{i}@example.com").status_code for i in range(5)]
    assert answers == [202, 202, 202, 202, 429]
    resp = _signup(limited_client, "another@example.com")
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["code"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) > 0


def test_one_address_cannot_be_flooded_with_signup_emails(limited_client):
    answers = [_signup(limited_client, e).status_code for e in ("a@x.example", "A@X.example")]
    assert answers == [202, 202]
    assert _signup(limited_client, " a@x.example").status_code == 429
    assert _signup(limited_client, "b@x.example").status_code == 202  # others still may


def test_the_signup_page_shares_the_api_counters(limited_client):
    for _ in range(2):
        assert _signup(limited_client, "page@example.com").status_code == 202
    page = limited_client.get("/signup")
    assert page.status_code == 200  # looking at the form is never limited
    resp = limited_client.post(
        "/signup",
        data={
            "csrf_token": csrf_of(page.get_data(as_text=True)),
            "email": "page@example.com",
            "password": PASSWORD,
            "business_name": "Page",
        },
        headers={"Accept": "text/html"},
    )
    assert resp.status_code == 429 and resp.mimetype == "text/html"


def test_password_reset_requests_are_limited(limited_client):
    answers = [
        limited_client.post("/v1/password-reset", json={"email": "r@example.com"}).status_code
        for _ in range(3)
    ]
    assert answers == [202, 202, 429]


@pytest.mark.redis
def test_limits_are_counted_in_redis_when_configured(app, database_url, redis_prefix):
    with _limits_on(database_url, redis_prefix, os.environ["IDP_TEST_REDIS_URL"]) as client:
        answers = [_signup(client, "redis@example.com").status_code for _ in range(3)]
    assert answers == [202, 202, 429]


@pytest.mark.redis
def test_redis_holds_no_address_or_email_in_clear(app, database_url, redis_prefix):
    import redis

    url, prefix = os.environ["IDP_TEST_REDIS_URL"], redis_prefix + "clear-"
    with _limits_on(database_url, prefix, url) as client:
        client.post("/v1/password-reset", json={"email": "Secret.Person@Example.com"})
        client.post("/v1/password-reset", json={"email": "secret.person@example.com"})
        assert _signup(client, "secret.person@example.com").status_code == 202
    names = [k.decode() for k in redis.Redis.from_url(url).keys(prefix + "*")]
    # Both limits of both endpoints were counted, the address's once for both spellings.
    assert len(names) == 4 and all(n.startswith(prefix + "limits:rl:") for n in names)
    assert not [n for n in names if "secret" in n.lower() or "127.0.0.1" in n]


@pytest.mark.parametrize("path", ["/v1/password-reset", "/v1/signup"])
def test_every_spelling_of_one_address_shares_its_limit(limited_client, path):
    # Full-width letters, a full-width @ and an ideographic full stop all reach one mailbox.
    spellings = [
        "victim@example.com",
        "ｖictim@example.com",
        "victim＠example.com",
        "VICTIM@EXAMPLＥ。COM",
    ]
    body = {"password": PASSWORD, "business_name": "Victim"} if path == "/v1/signup" else {}
    answers = [limited_client.post(path, json=body | {"email": e}).status_code for e in spellings]
    assert answers == [202, 202, 429, 429]


def test_input_that_is_no_address_is_still_counted(limited_client):
    answers = [
        limited_client.post("/v1/password-reset", json={"email": e}).status_code
        for e in ("not an address", " NOT AN ADDRESS", "not an address")
    ]
    assert answers == [422, 422, 429]


NOT_JSON = [b"[" * 5000 + b"]" * 5000, b'{"email": ' + b"9" * 5000 + b"}", b"NaN"]


@pytest.mark.parametrize("body", NOT_JSON, ids=["deep_nesting", "5000_digits", "nan"])
@pytest.mark.parametrize("path", ["/v1/password-reset", "/v1/signup"])
def test_a_body_that_is_no_json_is_refused_not_a_server_error(limited_client, path, body):
    # The per-address limit reads the body before the view does.
    resp = limited_client.post(path, data=body, content_type="application/json")
    assert (resp.status_code, resp.get_json()["code"]) == (400, "malformed_json")
