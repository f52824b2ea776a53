"""A login remembers the device and address it started from.

Both are read once, when the login starts, and cleaned before they are stored:
the header and (behind proxies) the address are the client's to write.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from idp.extensions import db
from idp.login.models import LoginSession
from tests.factories import PASSWORD
from tests.instances import dispose, make_instance
from tests.oauth.conftest import BrowserClient, csrf_from

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
