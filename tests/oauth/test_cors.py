"""Browser hub frontends may call the token API cross-origin; other origins may not."""

from __future__ import annotations

import pytest

HUB_ORIGIN = "http://127.0.0.1:8000"


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/userinfo"])
def test_a_hub_origin_may_call_the_token_api(app, hub_clients, browser, path):
    preflight = browser.open(
        path,
        method="OPTIONS",
        headers={"Origin": HUB_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == HUB_ORIGIN
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    response = browser.post(path, data={}, headers={"Origin": HUB_ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == HUB_ORIGIN


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/introspect", "/oauth/userinfo"])
def test_another_origin_is_not_allowed(app, hub_clients, browser, path):
    response = browser.post(path, data={}, headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_discovery_and_keys_are_public(app, browser):
    for path in ("/.well-known/openid-configuration", "/oauth/jwks"):
        response = browser.get(path, headers={"Origin": "https://any.example"})
        assert response.headers["Access-Control-Allow-Origin"] == "*"
