"""Over HTTPS, as in production: the pages' own forms work, and browsers are told to stay."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

from tests.factories import PASSWORD
from tests.oauth.conftest import csrf_from

HTTPS = "https://localhost"


def _referer_sent(policy: str, page_url: str) -> str | None:
    """The Referer a browser sends with a same-origin form post from ``page_url`` (W3C)."""
    parts = urlsplit(page_url)
    origin = f"{parts.scheme}://{parts.netloc}/"
    last = [p.strip() for p in policy.split(",") if p.strip()][-1] if policy else ""
    if last == "no-referrer":
        return None
    if last in ("origin", "strict-origin"):
        return origin
    return page_url  # same-origin, strict-origin-when-cross-origin (the default), ...


def test_the_login_form_posts_over_https_with_what_the_browser_sends(app, partner_world, browser):
    url = HTTPS + "/login?hub=partner"
    page = browser.get("/login?hub=partner", base_url=HTTPS)
    referer = _referer_sent(page.headers.get("Referrer-Policy", ""), url)
    headers = {"Origin": HTTPS} | ({"Referer": referer} if referer else {})
    response = browser.post(
        "/login?hub=partner",
        base_url=HTTPS,
        data={
            "email": partner_world["owner"].email,
            "password": PASSWORD,
            "csrf_token": csrf_from(page.text),
        },
        headers=headers,
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:400]


def test_no_path_or_query_leaves_a_page(app, browser):
    page = browser.get("/password-reset?token=secret-in-the-link", base_url=HTTPS)
    assert page.headers["Referrer-Policy"] == "strict-origin"


@pytest.mark.browser
def test_a_real_browser_signs_in_over_https(app, partner_world, page):
    server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context="adhoc")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    context = page.context.browser.new_context(ignore_https_errors=True)
    try:
        tab = context.new_page()
        tab.set_default_timeout(10_000)
        tab.goto(f"https://127.0.0.1:{server.server_port}/login?hub=partner")
        tab.fill("#email", partner_world["owner"].email)
        tab.fill("#password", PASSWORD)
        tab.click("button[type=submit]")
        tab.wait_for_load_state()
        assert tab.url.endswith("/login/done"), tab.content()[:400]
    finally:
        context.close()
        server.shutdown()
        thread.join(timeout=5)


def _app(database_url, redis_prefix, **overrides):
    from idp import create_app
    from tests.conftest import app_config

    return create_app(app_config(database_url, redis_prefix, **overrides))


def test_over_https_every_response_tells_browsers_to_stay_on_https(app, database_url, redis_prefix):
    served = _app(database_url, redis_prefix, IDP_ISSUER="https://idp.example").test_client()
    for path in ("/login?hub=partner", "/.well-known/openid-configuration", "/healthz"):
        response = served.get(path, base_url="https://idp.example")
        assert response.headers["Strict-Transport-Security"] == (
            "max-age=31536000; includeSubDomains"
        ), path


def test_hsts_follows_the_setting_and_is_off_over_plain_http(app, database_url, redis_prefix):
    chosen = _app(
        database_url, redis_prefix, IDP_ISSUER="https://idp.example", IDP_HSTS="max-age=600"
    ).test_client()
    assert chosen.get("/healthz").headers["Strict-Transport-Security"] == "max-age=600"
    off = _app(database_url, redis_prefix, IDP_ISSUER="https://idp.example", IDP_HSTS="")
    assert "Strict-Transport-Security" not in off.test_client().get("/healthz").headers
    plain = _app(database_url, redis_prefix, IDP_ISSUER="http://localhost").test_client()
    assert "Strict-Transport-Security" not in plain.get("/healthz").headers
