"""CORS for browser-based hub frontends: only their registered origins may call the token API.

The hub frontends are public clients that run in the browser, so the token,
revocation and userinfo endpoints answer cross-origin requests from the
origins of the hub clients' registered redirect URIs, and from nowhere else.
Discovery and the JWKS are public documents for any origin.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Response, request

from idp.extensions import db
from idp.oauth.models import OAuthClient

PUBLIC_ENDPOINTS = {"oauth.jwks", "oauth.discovery"}
HUB_ENDPOINTS = {"oauth.token", "oauth.revoke", "oauth.userinfo"}


def hub_origins() -> set[str]:
    """``scheme://host[:port]`` of every redirect URI of a live hub client."""
    rows = db.session.scalars(
        db.select(OAuthClient.redirect_uris).where(
            OAuthClient.kind == "hub", OAuthClient.deleted_at.is_(None)
        )
    )
    origins = set()
    for uris in rows:
        for uri in uris or []:
            parts = urlsplit(uri)
            origins.add(f"{parts.scheme}://{parts.netloc}")
    return origins


def add_cors_headers(response: Response) -> Response:
    """Allow the request's origin when the endpoint and the origin permit it."""
    origin = request.environ.get("HTTP_ORIGIN")  # the header, without a lookup by any case
    if not origin:
        return response
    if request.endpoint in PUBLIC_ENDPOINTS:
        response.headers["Access-Control-Allow-Origin"] = "*"
    elif request.endpoint in HUB_ENDPOINTS and origin in hub_origins():
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers.add("Vary", "Origin")
    else:
        return response
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, POST"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    return response
