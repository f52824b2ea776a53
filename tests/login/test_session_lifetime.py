"""A login lasts at most IDP_SESSION_MAX_AGE, however active its browser stays."""

from __future__ import annotations

import time
from datetime import timedelta
from email.utils import parsedate_to_datetime

import sqlalchemy as sa

from idp.extensions import db
from idp.login.models import LoginSession
from idp.timeutil import utcnow
from tests.oauth.conftest import query_of, tokens_for


def _logged_in_for(seconds: int) -> None:
    """Pretend every login began ``seconds`` ago (the server's clock for the login)."""
    db.session.execute(
        sa.update(LoginSession).values(created_at=utcnow() - timedelta(seconds=seconds))
    )
    db.session.commit()


def _silent_authorize(flow, nonce: str) -> dict:
    response = type(flow)(flow.http, nonce=nonce).authorize(prompt="none")
    assert response.status_code == 302
    return query_of(response.headers["Location"])


def test_a_login_past_its_maximum_age_must_type_the_password_again(app, partner_world, flow):
    tokens_for(flow, partner_world["owner"].email)
    assert "code" in _silent_authorize(flow, "still-open")

    _logged_in_for(app.config["IDP_SESSION_MAX_AGE"] + 1)

    assert _silent_authorize(flow, "too-old")["error"] == "login_required"
    assert flow.http.get("/login/done").status_code == 302


def test_the_maximum_age_is_the_configured_one_and_counts_from_the_login(
    app, partner_world, flow, monkeypatch
):
    monkeypatch.setitem(app.config, "IDP_SESSION_MAX_AGE", 3600)
    tokens_for(flow, partner_world["owner"].email)

    _logged_in_for(3600 - 60)
    assert flow.http.get("/login/done").status_code == 200
    assert "code" in _silent_authorize(flow, "59-minutes")

    _logged_in_for(3600 + 60)
    assert flow.http.get("/login/done").status_code == 302


def test_after_the_maximum_age_signing_in_again_opens_a_new_login(app, partner_world, flow):
    email = partner_world["owner"].email
    tokens_for(flow, email)
    _logged_in_for(app.config["IDP_SESSION_MAX_AGE"] + 1)

    tokens = tokens_for(type(flow)(flow.http, nonce="second-login"), email)

    assert tokens["access_token"]
    assert flow.http.get("/login/done").status_code == 200
    newest = db.session.scalar(sa.select(sa.func.max(LoginSession.created_at)))
    assert newest >= utcnow() - timedelta(seconds=60)


def test_the_session_cookie_expires_after_the_idle_timeout(app, partner_world, flow, monkeypatch):
    monkeypatch.setitem(app.config, "PERMANENT_SESSION_LIFETIME", timedelta(seconds=600))
    response = flow.login(partner_world["owner"].email)
    cookie = response.headers["Set-Cookie"]
    expires = parsedate_to_datetime(cookie.split("Expires=")[1].split(";")[0]).timestamp()
    assert abs(expires - (time.time() + 600)) < 30
