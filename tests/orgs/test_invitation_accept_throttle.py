"""The accept page's password check is a login: throttled, rate-limited and audited like one."""

from __future__ import annotations

import contextlib
import os
import secrets

import pytest
import sqlalchemy as sa

from idp import create_app
from idp.accounts.emails import email_hmac
from idp.audit.models import AuditEvent
from idp.extensions import db
from idp.login import throttle
from idp.login.models import LoginFailure
from idp.orgs.models import Membership
from tests.accounts.helpers import csrf_of
from tests.conftest import app_config
from tests.factories import PASSWORD, make_org, make_user
from tests.orgs.test_invitation_accept import _invite

ADDRESS = "198.51.100.7"


def _existing_partner_user(app, email="pat@example.com") -> str:
    with app.app_context():
        user = make_user("partner", make_org("partner", "Globex"), "owner", email=email)
        db.session.commit()
        return user.id


def _accept(client, link: str, password: str, address: str = ADDRESS):
    environ = {"REMOTE_ADDR": address}
    page = client.get(link, environ_base=environ)
    return client.post(
        "/invitations/accept",
        data={
            "csrf_token": csrf_of(page.get_data(as_text=True)),
            "token": link.split("token=")[1],
            "password": password,
        },
        environ_base=environ,
    )


def _log_in(client, email: str, password: str, address: str = ADDRESS):
    environ = {"REMOTE_ADDR": address}
    page = client.get("/login?hub=partner", environ_base=environ)
    return client.post(
        "/login?hub=partner",
        data={
            "csrf_token": csrf_of(page.get_data(as_text=True)),
            "email": email,
            "password": password,
        },
        environ_base=environ,
    )


def _memberships(app, partner_id: str) -> int:
    with app.app_context():
        return db.session.scalar(
            sa.select(sa.func.count())
            .select_from(Membership)
            .where(Membership.organization_id == partner_id)
        )


def test_guessing_the_password_on_the_accept_page_must_wait_like_a_login(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    _existing_partner_user(app)
    partner_id, link = _invite(app, client, smtp_url, mailbox, "pat@example.com")
    for attempt in range(throttle.PAIR.free):
        wrong = _accept(client, link, f"guess number {attempt}")
        assert wrong.status_code == 422 and "wrong password" in wrong.get_data(as_text=True)

    # Even the right password must now wait, and the page says how long.
    waiting = _accept(client, link, PASSWORD)
    assert waiting.status_code == 429
    assert int(waiting.headers["Retry-After"]) >= 1
    assert "Too many failed attempts" in waiting.get_data(as_text=True)
    assert _memberships(app, partner_id) == 1  # only the inviting owner

    # The guesses count against the account's logins too, and the other way round.
    assert _log_in(client, "pat@example.com", PASSWORD).status_code == 429


def test_failed_logins_elsewhere_slow_down_the_accept_page(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    _existing_partner_user(app)
    partner_id, link = _invite(app, client, smtp_url, mailbox, "pat@example.com")
    for _ in range(throttle.PAIR.free):
        assert _log_in(client, "PAT@example.com", "not the password").status_code == 401
    assert _accept(client, link, PASSWORD).status_code == 429
    assert _memberships(app, partner_id) == 1


def test_the_right_password_forgives_earlier_mistakes(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    _existing_partner_user(app)
    partner_id, link = _invite(app, client, smtp_url, mailbox, "pat@example.com")
    for _ in range(throttle.PAIR.free - 1):
        assert _accept(client, link, "a mistyped password").status_code == 422
    assert _accept(client, link, PASSWORD).status_code == 200
    assert _memberships(app, partner_id) == 2
    # The earlier mistakes are forgotten: the next typo at the login page is not the last straw.
    for _ in range(throttle.PAIR.free - 1):
        assert _log_in(client, "pat@example.com", "another typo").status_code == 401
    assert _log_in(client, "pat@example.com", PASSWORD).status_code == 302


def test_every_wrong_password_is_a_failed_login_in_the_audit_log(app, client, smtp_server):
    mailbox, smtp_url = smtp_server
    user_id = _existing_partner_user(app)
    _, link = _invite(app, client, smtp_url, mailbox, "pat@example.com")
    _accept(client, link, "first wrong guess")
    _accept(client, link, "second wrong guess")
    with app.app_context():
        failed = db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "login.failed")
        ).all()
        assert [(e.target_id, e.reason, e.ip) for e in failed] == [
            (user_id, "bad_credentials", ADDRESS)
        ] * 2
        assert all(e.after == {"email_hmac": email_hmac("pat@example.com")} for e in failed)


@contextlib.contextmanager
def _client_of(database_url, redis_prefix, **config):
    """A client of another instance over the test database, configured with ``config``."""
    instance = create_app(app_config(database_url, redis_prefix + "accept:", **config))
    try:
        yield instance.test_client()
    finally:
        with instance.app_context():
            db.engine.dispose()


def test_accept_requests_are_rate_limited_per_client_address(
    app, client, smtp_server, database_url, redis_prefix
):
    mailbox, smtp_url = smtp_server
    # Many accounts, so that the per-account throttle never answers first.
    links = []
    for n in range(4):
        _existing_partner_user(app, f"member{n}@example.com")
        links.append(_invite(app, client, smtp_url, mailbox, f"member{n}@example.com")[1])
    limits = {"IDP_RATELIMIT_ENABLED": True, "IDP_LOGIN_RATE_LIMIT": "3/minute"}
    with _client_of(database_url, redis_prefix, **limits) as limited:
        answers = [_accept(limited, link, "wrong password here") for link in links]
    assert [a.status_code for a in answers] == [422, 422, 422, 429]
    assert int(answers[-1].headers["Retry-After"]) > 0


@pytest.mark.redis
def test_accept_page_failures_are_counted_in_redis_with_the_logins(
    app, client, smtp_server, database_url, redis_prefix
):
    mailbox, smtp_url = smtp_server
    _existing_partner_user(app)
    _, link = _invite(app, client, smtp_url, mailbox, "pat@example.com")
    redis = {"IDP_REDIS_URL": os.environ["IDP_TEST_REDIS_URL"]}
    with _client_of(database_url, f"{redis_prefix}{secrets.token_hex(3)}:", **redis) as shared:
        for _ in range(throttle.PAIR.free):
            assert _accept(shared, link, "a wrong guess").status_code == 422
        assert _log_in(shared, "pat@example.com", PASSWORD).status_code == 429
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(LoginFailure)) == 0
