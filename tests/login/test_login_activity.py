"""A login remembers the device and address it started from, and when it was last used.

The device and address are read once, when the login starts; the last use is
written at most every few minutes, by browser pages only: the API's hot paths
(token endpoint, introspection, the gateway's key check) never write it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from idp.extensions import db
from idp.login.models import LoginSession
from idp.login.session import LAST_SEEN_EVERY
from idp.timeutil import utcnow
from tests.consent.factories import make_key
from tests.factories import PASSWORD, make_channel, make_org
from tests.instances import Reads, dispose, make_instance
from tests.oauth.conftest import (
    BrowserClient,
    Flow,
    csrf_from,
    introspect,
    make_platform_client,
    refresh,
)

FIREFOX_ON_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
)


def signed_in_from(app, email: str, user_agent: str | None, address: str, **headers):
    """A browser with ``user_agent`` at ``address`` (as the server sees it), logged in."""
    browser = BrowserClient(app)
    browser.client.environ_base["REMOTE_ADDR"] = address
    if user_agent is not None:
        browser.client.environ_base["HTTP_USER_AGENT"] = user_agent
    page = browser.get("/login", headers=headers)
    response = browser.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page.text)},
        headers=headers,
    )
    assert response.status_code == 302, response.text
    return browser


def _only_login() -> LoginSession:
    db.session.expire_all()
    return db.session.scalars(sa.select(LoginSession)).one()


def test_a_login_records_the_browser_and_system_and_the_address(app, partner_world):
    signed_in_from(app, partner_world["owner"].email, FIREFOX_ON_WINDOWS, "203.0.113.7")

    login = _only_login()
    assert login.device == "Firefox on Windows"
    assert login.ip_address == "203.0.113.7"
    assert login.last_seen_at == login.created_at


@pytest.mark.parametrize(
    ("user_agent", "device"),
    [
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Mobile Safari on iOS (iPhone)",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
            "Chrome Mobile on Android (Pixel 7)",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge on Mac OS X",
        ),
        (
            "Mozilla/5.0 (Linux; Android 10; <i>Evil</i> Build/QP1A) AppleWebKit/537.36 "
            "Chrome/90 Mobile Safari/537.36",
            "Android",  # a model of no known maker is free text: left out
        ),
        ("curl/8.5.0", "curl"),
        ("", None),
        (None, None),
        ("<script>alert(1)</script>", None),
    ],
)
def test_the_device_is_named_in_a_few_words_or_not_at_all(app, partner_world, user_agent, device):
    signed_in_from(app, partner_world["owner"].email, user_agent, "203.0.113.7")
    assert _only_login().device == device


def test_a_hostile_user_agent_is_cut_and_cleaned_before_it_is_stored(app, partner_world):
    hostile = "Mozilla/5.0 (compatible; " + "\x00\x07Å" * 200 + "Bot/2.1) " + "x" * 20_000

    signed_in_from(app, partner_world["owner"].email, hostile, "203.0.113.7")

    login = _only_login()
    assert login.device is None or (
        len(login.device) <= LoginSession.device.type.length and login.device.isprintable()
    )


@pytest.mark.parametrize(
    ("address", "stored"),
    [
        ("2001:0db8:0000:0000:0000:0000:0000:0005", "2001:db8::5"),
        ("::ffff:198.51.100.9", "198.51.100.9"),
        ("not an address", None),
        ("", None),
    ],
)
def test_the_address_is_stored_in_its_short_form_or_not_at_all(app, partner_world, address, stored):
    signed_in_from(app, partner_world["owner"].email, FIREFOX_ON_WINDOWS, address)
    assert _only_login().ip_address == stored


def test_behind_a_trusted_proxy_the_address_is_the_one_the_throttle_counts(
    app, database_url, redis_prefix, partner_world
):
    """``IDP_PROXY_HOPS`` decides whose address it is, as for the failed-login counters."""
    proxied = make_instance(database_url, redis_prefix + "hops-", redis_url=None, IDP_PROXY_HOPS=1)
    forwarded = {"X-Forwarded-For": "192.0.2.1, 198.51.100.23"}
    try:
        email = partner_world["owner"].email
        signed_in_from(proxied, email, FIREFOX_ON_WINDOWS, "10.0.0.2", **forwarded)
    finally:
        dispose(proxied)
    assert _only_login().ip_address == "198.51.100.23"


def _seen_ago(seconds: int) -> None:
    db.session.execute(
        sa.update(LoginSession).values(last_seen_at=utcnow() - timedelta(seconds=seconds))
    )
    db.session.commit()


class Writes(Reads):
    """Counts the statements that write ``login_sessions`` on the app's engine."""

    def __init__(self, app):
        super().__init__(app, "login_sessions")

    def _seen(self, conn, cursor, statement, *_):
        written = ("UPDATE LOGIN_SESSIONS", "INSERT INTO LOGIN_SESSIONS")
        if statement.lstrip().upper().startswith(written):
            self.count += 1


def test_last_activity_is_written_at_most_every_few_minutes(app, partner_world):
    browser = signed_in_from(app, partner_world["owner"].email, FIREFOX_ON_WINDOWS, "203.0.113.7")
    _seen_ago(LAST_SEEN_EVERY - 30)
    before = _only_login().last_seen_at

    with Writes(app) as writes:
        assert browser.get("/login/done").status_code == 200
        assert browser.get("/account/sessions").status_code == 200
    assert writes.count == 0
    assert _only_login().last_seen_at == before

    _seen_ago(LAST_SEEN_EVERY + 30)
    with Writes(app) as writes:
        assert browser.get("/login/done").status_code == 200
        assert browser.get("/account/sessions").status_code == 200
    assert writes.count == 1
    assert _only_login().last_seen_at > utcnow() - timedelta(seconds=5)


def test_the_api_hot_paths_never_write_a_login(app, partner_world):
    """Token endpoint, introspection and the key check: no write, even with a stale login
    and the browser's own cookie sent along."""
    owner, acme = partner_world["owner"], partner_world["acme"]
    platform, secret = make_platform_client(make_org("support", "Support"))
    client = make_org("client", "Bakery")
    api_key = make_key(make_channel(client, "live"), client=client)
    db.session.commit()
    flow = Flow(BrowserClient(app))
    code = flow.code_for(owner.email, acme.id)
    _seen_ago(LAST_SEEN_EVERY * 10)
    before = _only_login().last_seen_at

    with Writes(app) as writes:
        exchanged = flow.exchange(code)
        assert exchanged.status_code == 200, exchanged.text
        tokens = exchanged.get_json()
        renewed = refresh(flow.http, tokens["refresh_token"])
        assert renewed.status_code == 200, renewed.text
        token = renewed.get_json()["access_token"]
        assert introspect(flow.http, token, platform.client_id, secret).get_json()["active"]
        check = flow.http.get("/v1/api-keys/check", headers={"D360-API-KEY": api_key})
        assert check.status_code == 200, check.text
    assert writes.count == 0
    assert _only_login().last_seen_at == before

    assert flow.http.get("/login/done").status_code == 200  # a page does write it
    assert _only_login().last_seen_at > before
