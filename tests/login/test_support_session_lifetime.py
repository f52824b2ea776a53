"""Support staff's browser logins end sooner than everyone else's.

An idle support console is signed out after ``IDP_SUPPORT_SESSION_IDLE_TIMEOUT``
and any support login after ``IDP_SUPPORT_SESSION_MAX_AGE``; the other hubs
keep the general limits.
"""

from __future__ import annotations

import time
from datetime import timedelta
from email.utils import parsedate_to_datetime
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from idp.extensions import db
from idp.login import session as session_module
from idp.login.models import LoginSession
from idp.timeutil import utcnow
from tests.factories import PASSWORD, make_org, make_user
from tests.oauth.conftest import BrowserClient, csrf_from


@pytest.fixture
def people(app_ctx):
    support = make_org("support", "Support")
    agent = make_user("support", support, "agent", email="agent@support.example")
    acme = make_org("partner", "Acme")
    owner = make_user("partner", acme, "owner", email="owner@acme.example")
    db.session.commit()
    return agent.email, owner.email


def _signed_in(app, hub: str, email: str):
    browser = BrowserClient(app)
    page = browser.get(f"/login?hub={hub}")
    response = browser.post(
        f"/login?hub={hub}",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page.text)},
    )
    assert response.status_code == 302, response.text
    return browser


def _later(monkeypatch, seconds: int) -> None:
    """Every cookie seems signed ``seconds`` ago: the browsers were idle that long."""
    later = time.time() + seconds
    monkeypatch.setattr(session_module, "time", SimpleNamespace(time=lambda: later))


def _logged_in_for(seconds: int) -> None:
    """Pretend every login began ``seconds`` ago (the server's clock for the login)."""
    db.session.execute(
        sa.update(LoginSession).values(created_at=utcnow() - timedelta(seconds=seconds))
    )
    db.session.commit()


def _sent_to_the_support_login(response) -> bool:
    target = urlsplit(response.headers.get("Location", ""))
    return (
        response.status_code == 302
        and target.path == "/login"
        and parse_qs(target.query).get("hub") == ["support"]
    )


def test_an_idle_support_console_is_signed_out_while_a_partner_stays_signed_in(
    app, people, monkeypatch
):
    agent, owner = people
    console = _signed_in(app, "support", agent)
    partner = _signed_in(app, "partner", owner)
    assert console.get("/support/").status_code == 200
    assert partner.get("/login/done").status_code == 200

    _later(monkeypatch, app.config["IDP_SUPPORT_SESSION_IDLE_TIMEOUT"] + 120)

    assert partner.get("/login/done").status_code == 200
    assert _sent_to_the_support_login(console.get("/support/"))
    monkeypatch.setattr(session_module, "time", time)  # signed out, not merely refused now
    assert _sent_to_the_support_login(console.get("/support/"))


def test_a_support_console_in_use_stays_signed_in_within_the_idle_timeout(app, people, monkeypatch):
    agent, _owner = people
    console = _signed_in(app, "support", agent)

    _later(monkeypatch, app.config["IDP_SUPPORT_SESSION_IDLE_TIMEOUT"] - 120)

    assert console.get("/support/").status_code == 200


def test_the_support_idle_timeout_is_the_configured_one(app, people, monkeypatch):
    agent, _owner = people
    monkeypatch.setitem(app.config, "IDP_SUPPORT_SESSION_IDLE_TIMEOUT", 300)
    console = _signed_in(app, "support", agent)

    _later(monkeypatch, 300 + 120)

    assert _sent_to_the_support_login(console.get("/support/"))


def test_a_support_login_past_its_maximum_age_is_signed_out_even_if_active(app, people):
    agent, owner = people
    console = _signed_in(app, "support", agent)
    partner = _signed_in(app, "partner", owner)

    _logged_in_for(app.config["IDP_SUPPORT_SESSION_MAX_AGE"] + 60)

    assert partner.get("/login/done").status_code == 200
    assert _sent_to_the_support_login(console.get("/support/"))
    _logged_in_for(0)  # signed out, not merely refused now
    assert _sent_to_the_support_login(console.get("/support/"))


def test_the_support_maximum_age_is_the_configured_one(app, people, monkeypatch):
    agent, _owner = people
    monkeypatch.setitem(app.config, "IDP_SUPPORT_SESSION_MAX_AGE", 3600)
    console = _signed_in(app, "support", agent)

    _logged_in_for(3600 - 60)
    assert console.get("/support/").status_code == 200

    _logged_in_for(3600 + 60)
    assert _sent_to_the_support_login(console.get("/support/"))


def test_signing_in_again_opens_the_console(app, people):
    agent, _owner = people
    console = _signed_in(app, "support", agent)
    _logged_in_for(app.config["IDP_SUPPORT_SESSION_MAX_AGE"] + 60)
    assert _sent_to_the_support_login(console.get("/support/"))

    page = console.get("/login?hub=support")
    console.post(
        "/login?hub=support",
        data={"email": agent, "password": PASSWORD, "csrf_token": csrf_from(page.text)},
    )

    assert console.get("/support/").status_code == 200


def test_the_sessions_page_lists_no_support_login_past_its_maximum_age(app, people):
    """A login the console no longer lets in is not offered as a browser still signed in."""
    agent, _owner = people
    _signed_in(app, "support", agent)
    current = _signed_in(app, "support", agent)
    older = db.session.scalars(sa.select(LoginSession.id).order_by(LoginSession.created_at)).first()
    db.session.execute(
        sa.update(LoginSession)
        .where(LoginSession.id == older)
        .values(
            created_at=utcnow() - timedelta(seconds=app.config["IDP_SUPPORT_SESSION_MAX_AGE"] + 60)
        )
    )
    db.session.commit()

    page = current.get("/account/sessions")
    assert page.status_code == 200
    assert "signed in on this browser only" in page.text


def _login_rows() -> list[LoginSession]:
    db.session.expire_all()
    return db.session.scalars(sa.select(LoginSession).order_by(LoginSession.created_at)).all()


def test_an_idle_support_login_is_ended_on_the_server_when_it_is_refused(app, people, monkeypatch):
    agent, _owner = people
    console = _signed_in(app, "support", agent)
    _later(monkeypatch, app.config["IDP_SUPPORT_SESSION_IDLE_TIMEOUT"] + 120)

    assert _sent_to_the_support_login(console.get("/support/"))

    (login,) = _login_rows()
    assert login.ended_at is not None


def test_a_support_login_past_its_maximum_age_is_ended_on_the_server_when_refused(app, people):
    agent, _owner = people
    console = _signed_in(app, "support", agent)
    _logged_in_for(app.config["IDP_SUPPORT_SESSION_MAX_AGE"] + 60)

    assert _sent_to_the_support_login(console.get("/support/"))

    (login,) = _login_rows()
    assert login.ended_at is not None


def test_the_sessions_page_lists_no_idle_support_login(app, people):
    """A console left idle past its limit is not offered as a browser still signed in,
    even before that browser comes back to be refused."""
    agent, _owner = people
    _signed_in(app, "support", agent)
    current = _signed_in(app, "support", agent)
    older, _newer = _login_rows()
    idle = app.config["IDP_SUPPORT_SESSION_IDLE_TIMEOUT"] + 5 * 60
    older.last_seen_at = utcnow() - timedelta(seconds=idle)
    db.session.commit()

    page = current.get("/account/sessions")

    assert page.status_code == 200
    assert "signed in on this browser only" in page.text


def test_a_support_console_used_recently_is_still_listed(app, people):
    agent, _owner = people
    _signed_in(app, "support", agent)
    current = _signed_in(app, "support", agent)
    older, _newer = _login_rows()
    recent = app.config["IDP_SUPPORT_SESSION_IDLE_TIMEOUT"] - 5 * 60
    older.last_seen_at = utcnow() - timedelta(seconds=recent)
    db.session.commit()

    assert "signed in on these browsers" in current.get("/account/sessions").text


def _cookie_lifetime(response) -> float:
    """Seconds from now until the session cookie that ``response`` sets expires."""
    (cookie,) = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("idp_session=")]
    expires = next(p for p in cookie.split(";") if p.strip().lower().startswith("expires="))
    return (parsedate_to_datetime(expires.split("=", 1)[1]).timestamp()) - time.time()


def _login_response(app, hub: str, email: str):
    browser = BrowserClient(app)
    page = browser.get(f"/login?hub={hub}")
    return browser, browser.post(
        f"/login?hub={hub}",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page.text)},
    )


def test_the_support_cookie_expires_with_the_support_idle_timeout(app, people, monkeypatch):
    agent, owner = people
    support_idle = app.config["IDP_SUPPORT_SESSION_IDLE_TIMEOUT"]
    general_idle = app.config["IDP_SESSION_IDLE_TIMEOUT"]

    console, response = _login_response(app, "support", agent)
    assert abs(_cookie_lifetime(response) - support_idle) < 10

    _later(monkeypatch, session_module.REFRESH_AFTER + 5)  # the cookie slides, still short
    slid = console.get("/support/")
    assert slid.status_code == 200
    assert abs(_cookie_lifetime(slid) - support_idle) < 10

    _partner, response = _login_response(app, "partner", owner)
    assert abs(_cookie_lifetime(response) - general_idle) < 10
