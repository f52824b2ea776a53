"""A person clicks through a hub login from the /demo start page, as `make run` invites them to."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from idp.demo import load_demo


@pytest.fixture
def demo(app, live_server):
    with app.app_context():
        return load_demo()


@pytest.mark.browser
def test_client_hub_login_from_the_demo_page_ends_in_an_exchangeable_code(live_server, demo, page):
    page.goto(f"{live_server.url}/demo")
    page.click("#login-client")
    # The click starts a chain of redirects: wait for the login page it ends on.
    page.wait_for_url(f"{live_server.url}/login?*")
    page.wait_for_load_state()
    assert "Client Hub" in page.title()
    page.fill("input[name=email]", "owner@bluebakery.example")
    page.fill("input[name=password]", demo["password"])
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/demo/callback*")
    assert page.inner_text("#param-iss") == live_server.url

    # The page shows exactly what the frontend posts next; posting it yields tokens.
    command = page.inner_text("#exchange")
    fields = dict(part.split("=", 1) for part in command.split(" -d ")[1:] if "=" in part)
    fields = {k.strip(): v.strip().rstrip("\\").strip() for k, v in fields.items()}
    response = requests.post(f"{live_server.url}/oauth/token", data=fields, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"].lower() == "bearer"
    assert body["id_token"] and body["access_token"]


def test_demo_login_refuses_an_unknown_hub(client):
    assert client.get("/demo/login/nowhere").status_code == 404


def test_demo_pages_do_not_exist_in_production(database_url, redis_prefix, monkeypatch):
    from idp import create_app
    from tests.conftest import app_config

    monkeypatch.setenv("IDP_ENV", "production")
    config = app_config(
        database_url, redis_prefix, IDP_ENV="production", IDP_ISSUER="https://idp.example"
    )
    config["SQLALCHEMY_DATABASE_URI"] = "postgresql+psycopg://nobody@127.0.0.1:1/none"
    app = create_app(config)
    http = app.test_client()
    assert http.get("/demo").status_code == 404
    assert http.get("/demo/callback").status_code == 404


def test_the_demo_callback_shows_an_authorization_response_posted_with_form_post(client):
    # A frontend that asks for response_mode=form_post gets its code posted to the
    # redirect URI: the demo callback shows it and the exchange, as it does a query.
    started = client.get("/demo/login/client")
    query = parse_qs(urlsplit(started.headers["Location"]).query)
    state = query["state"][0]

    posted = client.post(
        "/demo/callback", data={"code": "posted-code", "state": state, "iss": "http://issuer"}
    )

    assert posted.status_code == 200
    page = posted.get_data(as_text=True)
    assert '<code id="param-code">posted-code</code>' in page
    assert '<code id="param-iss">http://issuer</code>' in page
    assert "-d code=posted-code" in page
    assert f"-d client_id={query['client_id'][0]}" in page
