"""Factories and helpers of the OAuth tests: clients, PKCE, logging in, running a code flow."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from flask import has_app_context

from idp.extensions import db
from idp.oauth.clients import register_hub_client, register_platform_client
from idp.oauth.models import OAuthClient, sha256_hex
from idp.timeutil import utcnow
from tests.factories import PASSWORD, make_org, make_user

HUB_REDIRECT = "http://127.0.0.1:8000/demo/callback"
PARTNER_REDIRECT = "https://partner.example/callback"


def pkce_pair() -> tuple[str, str]:
    """A (verifier, S256 challenge) pair."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def make_hub_clients() -> dict[str, OAuthClient]:
    """The three hub frontends, redirecting to ``HUB_REDIRECT``."""
    clients = {
        hub: register_hub_client(hub, [HUB_REDIRECT], [HUB_REDIRECT])
        for hub in ("partner", "client", "support")
    }
    db.session.commit()
    return clients


def register_partner_hub(id_token_alg: str) -> None:
    """Register the partner hub (a ``Flow``'s client) for ID tokens signed with ``id_token_alg``."""
    register_hub_client("partner", [HUB_REDIRECT], [HUB_REDIRECT], id_token_alg)
    db.session.commit()


def make_partner_client(
    partner, *, redirect_uris=None, scope="channels:read clients:read"
) -> tuple[OAuthClient, str]:
    """A partner's confidential client and its secret."""
    secret = secrets.token_urlsafe(32)
    client = OAuthClient(
        client_id=f"oc_test{secrets.token_hex(6)}",
        client_secret_hash=sha256_hex(secret),
        name="Partner service",
        kind="partner",
        hub="partner",
        organization_id=partner.id,
        redirect_uris=redirect_uris or [],
        post_logout_redirect_uris=[],
        scope=scope,
        created_at=utcnow(),
    )
    db.session.add(client)
    db.session.commit()
    return client, secret


def make_platform_client(support_org) -> tuple[OAuthClient, str]:
    """The provisioning service's client."""
    client, secret = register_platform_client(
        "Provisioning", support_org.id, "channels:read channels:write"
    )
    db.session.commit()
    return client, secret


def csrf_from(html: str) -> str:
    """The CSRF token of the first form in ``html``."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def query_of(location: str) -> dict[str, str]:
    """The query parameters of a redirect location."""
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class _FormReader(HTMLParser):
    """The first form of a page: its method, action and hidden fields."""

    def __init__(self):
        super().__init__()
        self.method, self.action, self.fields, self._done = None, None, {}, False

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if tag == "form" and self.action is None:
            self.method, self.action = values.get("method"), values.get("action")
        elif tag == "input" and values.get("type") == "hidden" and self.action and not self._done:
            self.fields[values["name"]] = values.get("value", "")

    def handle_endtag(self, tag):
        if tag == "form":
            self._done = True


def error_at(response, redirect_uri: str = HUB_REDIRECT) -> dict:
    """The error parameters of a redirect to the client's ``redirect_uri``, which has no code."""
    assert response.status_code == 302, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.startswith(redirect_uri + "?"), location
    params = query_of(location)
    assert "code" not in params
    assert params["iss"] == "http://localhost"
    return params


def posted_form(response) -> tuple[str, dict[str, str]]:
    """The ``form_post`` answer (OAuth 2.0 Form Post Response Mode): its target and its fields."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/html"
    reader = _FormReader()
    reader.feed(response.get_data(as_text=True))
    assert (reader.method or "").lower() == "post"
    return reader.action, reader.fields


def login_over_http(
    authorize_url: str, redirect_uri: str, email: str, password: str = PASSWORD
) -> str:
    """Play a browser against a live server: log in, return the redirect to ``redirect_uri``."""
    browser = requests.Session()
    response = browser.get(authorize_url, allow_redirects=False, timeout=10)
    login_url = urljoin(authorize_url, response.headers["Location"])
    page = browser.get(login_url, timeout=10)
    response = browser.post(
        login_url,
        data={"email": email, "password": password, "csrf_token": csrf_from(page.text)},
        allow_redirects=False,
        timeout=10,
    )
    while not response.headers["Location"].startswith(redirect_uri):
        response = browser.get(
            urljoin(login_url, response.headers["Location"]), allow_redirects=False, timeout=10
        )
    return response.headers["Location"]


@dataclass
class Flow:
    """One authorization code flow driven through the test client."""

    http: object
    client_id: str = "partner-hub"
    redirect_uri: str = HUB_REDIRECT
    scope: str = "openid email profile"
    state: str = "state-123"
    nonce: str | None = "nonce-abc"
    verifier: str = ""
    challenge: str = ""

    def __post_init__(self):
        self.verifier, self.challenge = pkce_pair()

    def params(self, **overrides) -> dict:
        """The authorization request parameters, with overrides (None removes one)."""
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        params.update(overrides)
        return {k: v for k, v in params.items() if v is not None}

    def authorize(self, **overrides):
        """GET /oauth/authorize."""
        return self.http.get("/oauth/authorize", query_string=self.params(**overrides))

    def login(self, email: str, password: str = PASSWORD, login_response=None):
        """Follow the redirect to the login page and post the credentials."""
        response = login_response or self.authorize()
        assert response.status_code == 302, response.get_data(as_text=True)
        login_url = response.headers["Location"]
        page = self.http.get(login_url)
        return self.http.post(
            login_url,
            data={"email": email, "password": password, "csrf_token": csrf_from(page.text)},
        )

    def code_for(self, email: str, organization_id: str | None = None) -> str:
        """Log in, pick ``organization_id`` when asked, and return the code."""
        response = self.login(email)
        while response.status_code == 302 and "code=" not in response.headers["Location"]:
            location = response.headers["Location"]
            if "/login/organization/" in location:
                page = self.http.get(location)
                response = self.http.post(
                    location,
                    data={"organization_id": organization_id, "csrf_token": csrf_from(page.text)},
                )
            else:
                response = self.http.get(location)
        assert response.status_code == 302, response.get_data(as_text=True)
        return query_of(response.headers["Location"])["code"]

    def exchange(self, code: str, **overrides):
        """POST the code to the token endpoint (a public client)."""
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
            "code_verifier": self.verifier,
        }
        data.update(overrides)
        return self.http.post("/oauth/token", data={k: v for k, v in data.items() if v is not None})


@pytest.fixture
def hub_clients(app_ctx):
    return make_hub_clients()


@pytest.fixture
def partner_world(app_ctx, hub_clients):
    """Two partners; an owner of the first and a consultant in both."""
    acme = make_org("partner", "Acme")
    globex = make_org("partner", "Globex")
    owner = make_user("partner", acme, "owner")
    consultant = make_user("partner", acme, "member")
    from idp.orgs.models import Membership

    db.session.add(Membership.create(consultant, globex, "owner"))
    db.session.commit()
    return {"acme": acme, "globex": globex, "owner": owner, "consultant": consultant}


class BrowserClient:
    """A test client whose every request runs in its own application context, as in production.

    Tests hold an application context for their own database work; without this
    the requests would share its ``g`` (and with it Flask-WTF's cached CSRF token).
    """

    def __init__(self, app):
        self.app = app
        self.client = app.test_client()

    def open(self, *args, **kwargs):
        with self.app.app_context():
            response = self.client.open(*args, **kwargs)
        if has_app_context():
            db.session.expire_all()
        return response

    def get(self, *args, **kwargs):
        return self.open(*args, method="GET", **kwargs)

    def post(self, *args, **kwargs):
        return self.open(*args, method="POST", **kwargs)

    def get_cookie(self, name):
        return self.client.get_cookie(name)


@pytest.fixture
def browser(app):
    return BrowserClient(app)


@pytest.fixture
def flow(browser):
    return Flow(browser)


def tokens_for(flow: Flow, email: str, organization_id: str | None = None) -> dict:
    """Run a whole code flow and return the token response."""
    response = flow.exchange(flow.code_for(email, organization_id))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def refresh(http, refresh_token: str, client_id: str = "partner-hub", **extra):
    """POST a refresh_token grant as a public client."""
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    data.update(extra)
    return http.post("/oauth/token", data=data)


def basic(client_id: str, secret: str) -> dict:
    """HTTP Basic client authentication header (RFC 6749 section 2.3.1)."""
    from base64 import b64encode
    from urllib.parse import quote

    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return {"Authorization": "Basic " + b64encode(raw).decode()}


def introspect(http, token: str, client_id: str, secret: str, **extra):
    """POST to the introspection endpoint as a confidential client."""
    return http.post(
        "/oauth/introspect", data={"token": token, **extra}, headers=basic(client_id, secret)
    )
