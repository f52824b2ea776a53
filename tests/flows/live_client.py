"""A hub frontend's two requests to a live server: where it sends the browser, and its exchange."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

import requests


def demo_callback(server) -> str:
    """The redirect URI the browser tests register by default."""
    return f"{server.url}/demo/callback"


def authorize_url(
    server, client_id: str, challenge: str, state: str, redirect_uri: str | None = None, **extra
) -> str:
    """An OpenID Connect code request with PKCE; ``extra`` adds parameters (``response_mode``)."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri or demo_callback(server),
        "scope": "openid email",
        "state": state,
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return f"{server.url}/oauth/authorize?{urlencode(params)}"


def exchange(
    server, client_id: str, code: str, verifier: str, redirect_uri: str | None = None
) -> dict:
    """Exchange ``code`` at the token endpoint as the public client ``client_id``."""
    response = requests.post(
        f"{server.url}/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri or demo_callback(server),
            "client_id": client_id,
            "code_verifier": verifier,
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()
