"""Every non-OAuth JSON error is problem+json with a stable code; bad input changes nothing."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask import request

from idp import create_app
from idp.extensions import csrf, db
from idp.outbox.models import OutboxMessage
from tests.conftest import app_config
from tests.factories import bearer_for, make_org, make_user

VALID = {"email": "ann@example.com", "password": "a long passphrase", "business_name": "Ann"}


def _problem(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert body["status"] == status and body["code"] == code and body["title"]
    assert "Traceback" not in resp.get_data(as_text=True)
    return body


def _nothing_written(app) -> None:
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 0


def test_malformed_json_is_400(app, client):
    body = _problem(
        client.post("/v1/signup", data='{"email": ', content_type="application/json"),
        400,
        "malformed_json",
    )
    assert "not valid JSON" in body["detail"]
    _nothing_written(app)


def test_wrong_types_and_unknown_fields_are_422_with_each_failing_field(app, client):
    resp = client.post(
        "/v1/signup", json={"email": 1, "password": ["x"], "business_name": "Ann", "admin": True}
    )
    body = _problem(resp, 422, "invalid_input")
    assert set(body["errors"]) == {"email", "password", "admin"}
    assert body["errors"]["admin"] == ["Unknown field."]
    _nothing_written(app)


def test_a_body_that_is_not_an_object_is_422(client):
    body = _problem(client.post("/v1/signup", json=[1, 2]), 422, "invalid_input")
    assert "JSON object" in body["detail"]


def test_missing_fields_are_named(client):
    body = _problem(client.post("/v1/signup", json={}), 422, "invalid_input")
    assert set(body["errors"]) == {"email", "password", "business_name"}


def test_an_oversized_body_is_413(app, client):
    padding = "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    resp = client.post("/v1/signup", json={**VALID, "business_name": padding})
    body = _problem(resp, 413, "payload_too_large")
    assert str(app.config["MAX_CONTENT_LENGTH"]) in body["detail"]
    _nothing_written(app)


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "text/plain"])
def test_a_wrong_content_type_is_415(app, client, content_type):
    resp = client.post("/v1/signup", data="email=ann@example.com", content_type=content_type)
    _problem(resp, 415, "unsupported_media_type")
    _nothing_written(app)


def test_unknown_routes_and_methods_are_problems_too(client):
    _problem(client.get("/v1/no-such-thing"), 404, "not_found")
    resp = client.get("/v1/signup")
    _problem(resp, 405, "method_not_allowed")
    assert "POST" in resp.headers["Allow"]


def test_a_missing_token_is_401_with_a_stable_code(client):
    _problem(client.get("/v1/partners/pa_x/invitations"), 401, "invalid_token")


def test_a_lost_database_answers_503_with_retry_after(app_without_database):
    resp = app_without_database.test_client().post("/v1/signup", json=VALID)
    _problem(resp, 503, "database_unavailable")
    assert int(resp.headers["Retry-After"]) > 0


def test_the_error_logged_for_a_request_names_its_request_id(app_without_database, caplog):
    import logging

    with caplog.at_level(logging.INFO):
        resp = app_without_database.test_client().post(
            "/v1/signup", json=VALID, headers={"X-Request-Id": "quoted-by-the-caller-42"}
        )
    assert resp.status_code == 503 and resp.headers["X-Request-Id"] == "quoted-by-the-caller-42"
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING]
    # Each record carries it, and the service's log format writes it out.
    assert logged and all(r.request_id == "quoted-by-the-caller-42" for r in logged)


def test_a_lost_database_shows_pages_a_human_503(app_without_database):
    resp = app_without_database.test_client().get(
        "/signup/verify?token=abc", headers={"Accept": "text/html"}
    )
    assert resp.status_code == 503 and resp.mimetype == "text/html"
    assert resp.headers["Retry-After"]
    assert "try again" in resp.get_data(as_text=True).lower()


@pytest.mark.parametrize("path", ["/no-such-page", "/signup/verify?token=abc"])
def test_an_error_page_leads_on_to_the_account_page(app, app_without_database, path):
    # A mistyped link (404) or an outage (503): the person is not left on a dead end.
    served = app if path == "/no-such-page" else app_without_database
    resp = served.test_client().get(path, headers={"Accept": "text/html"})
    assert resp.status_code in (404, 503) and resp.mimetype == "text/html"
    assert '<a href="/login/done">Go to your account</a>' in resp.get_data(as_text=True)


@pytest.fixture
def bare_app(redis_prefix, tmp_path):
    """An app on a throw-away database, to which a test may add routes."""
    return create_app(app_config(f"sqlite:///{tmp_path / 'x.sqlite3'}", redis_prefix))


def test_an_unexpected_error_never_shows_a_stack_trace(bare_app):
    @bare_app.get("/v1/explode")
    def explode():
        raise RuntimeError("secret internals")

    resp = bare_app.test_client().get("/v1/explode")
    body = _problem(resp, 500, "internal_error")
    assert "secret internals" not in str(body)


def test_malformed_json_read_without_a_schema_has_the_same_code(bare_app):
    @bare_app.post("/v1/raw")
    def raw():
        return {"got": request.get_json()}

    csrf.exempt(raw)

    resp = bare_app.test_client().post("/v1/raw", data="{", content_type="application/json")
    _problem(resp, 400, "malformed_json")


@pytest.mark.parametrize("name", ["Ann\x00 Shoes", "Ann \ud800"])
def test_a_control_character_in_a_name_is_422_and_writes_nothing(app, client, name):
    resp = client.post("/v1/signup", json={**VALID, "business_name": name})
    body = _problem(resp, 422, "invalid_input")
    assert set(body["errors"]) == {"business_name"}
    _nothing_written(app)


@pytest.mark.postgres
def test_a_nul_character_in_a_search_is_422_not_500(app, client):
    with app.app_context():
        partner = make_org("partner", "Partner N")
        owner = make_user("partner", partner, "owner")
        db.session.commit()
        auth, partner_id = bearer_for(owner, partner), partner.id
    for query in ("q=a%00b", "cursor=WyIyMDIwLTAxLTAxVDAwOjAwOjAwIiwiYVx1MDAwMCJd"):
        resp = client.get(f"/v1/partners/{partner_id}/clients?{query}", headers=auth)
        body = _problem(resp, 422, "invalid_input")
        assert "NUL" in body["detail"]


def test_a_database_error_never_quotes_the_values_it_was_given(app_ctx):
    """Log lines quote database errors: the statement, never the values (addresses, hashes)."""
    with pytest.raises(sa.exc.DBAPIError) as raised:
        db.session.execute(
            sa.text("SELECT * FROM no_such_table WHERE email = :email"),
            {"email": "someone.private@example.com"},
        )
    db.session.rollback()
    assert "no_such_table" in str(raised.value)
    assert "someone.private@example.com" not in str(raised.value)
