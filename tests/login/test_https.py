"""Over HTTPS, as in production: the pages' own forms work, and browsers are told to stay."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

from tests.factories import PASSWORD
from tests.instances import dispose
from tests.oauth.conftest import BrowserClient, csrf_from

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


@pytest.fixture
def https_app(app, database_url, redis_prefix):
    """One more instance whose issuer is an https URL, as in production."""
    served = _app(database_url, redis_prefix, IDP_ISSUER=HTTPS)
    yield served
    dispose(served)


def _sign_in(browser, email: str):
    """The login page, then its form posted with what a browser sends over HTTPS."""
    url = HTTPS + "/login?hub=partner"
    page = browser.get("/login?hub=partner", base_url=HTTPS)
    referer = _referer_sent(page.headers.get("Referrer-Policy", ""), url)
    headers = {"Origin": HTTPS} | ({"Referer": referer} if referer else {})
    response = browser.post(
        "/login?hub=partner",
        base_url=HTTPS,
        data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page.text)},
        headers=headers,
    )
    return page, response


def test_the_login_form_posts_over_https_with_what_the_browser_sends(app, partner_world, browser):
    _, response = _sign_in(browser, partner_world["owner"].email)
    assert response.status_code == 302, response.get_data(as_text=True)[:400]


def test_over_https_the_session_cookie_is_this_host_s_alone(https_app, partner_world):
    served = BrowserClient(https_app)
    page, response = _sign_in(served, partner_world["owner"].email)
    assert response.status_code == 302, response.get_data(as_text=True)[:400]
    for answer in (page, response):
        # A __Host- cookie is kept by browsers only when Secure, for Path=/, with no Domain:
        # no other subdomain and no plain-http page can plant or shadow it.
        cookie = answer.headers["Set-Cookie"]
        assert cookie.startswith("__Host-idp_session=")
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert {"secure", "httponly", "path"} <= attributes
        assert "domain" not in attributes
        assert "; Path=/;" in cookie + ";"
    # The login is the one that cookie names: the page after it knows who signed in.
    done = served.get("/login/done", base_url=HTTPS)
    assert done.status_code == 200
    assert partner_world["owner"].email in done.get_data(as_text=True)
    assert served.get_cookie("idp_session") is None


def test_over_plain_http_the_session_cookie_keeps_its_plain_name(app, client):
    cookie = client.get("/login?hub=partner").headers["Set-Cookie"]
    assert cookie.startswith("idp_session=")
    assert "Secure" not in cookie


@pytest.mark.parametrize("https", [True, False])
def test_the_demo_relying_party_s_cookie_is_secure_over_https(https_app, client, https):
    demo = https_app.test_client() if https else client
    started = demo.get("/demo/login/client", base_url=HTTPS if https else "http://localhost")
    assert started.status_code == 302
    cookie = started.headers["Set-Cookie"]
    assert cookie.startswith("idp_demo_rp=")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert ("secure" in attributes) is https


def test_no_path_or_query_leaves_a_page(app, browser):
    page = browser.get("/password-reset?token=secret-in-the-link", base_url=HTTPS)
    assert page.headers["Referrer-Policy"] == "strict-origin"


@pytest.mark.browser
def test_a_real_browser_signs_in_over_https(https_app, partner_world, page):
    server = make_server("127.0.0.1", 0, https_app, threaded=True, ssl_context="adhoc")
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
        # Chromium kept the __Host- cookie and sent it back: the page knows who signed in.
        assert partner_world["owner"].email in tab.content()
        kept = {cookie["name"]: cookie for cookie in context.cookies()}
        assert set(kept) == {"__Host-idp_session"}
        assert kept["__Host-idp_session"]["secure"] is True
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
