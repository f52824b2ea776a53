"""Hostile input to the OAuth/OIDC endpoints and the HTML form pages: never a 5xx, never a write.

``tests/test_malformed_input.py`` covers the JSON ``/v1`` API. This module sends the same
kind of deterministic hostile values (empty, blank, NUL and other control characters, ESC
sequences, 20,000 characters, invalid UTF-8 and a lone surrogate's UTF-8 bytes, 5,000-digit
numbers, NaN, 1e400, negatives, unicode, ``%``, ``\\`` and quotes, repeated parameters) as
query parameters and urlencoded form fields to:

* ``/oauth/authorize`` (anonymous, and with a logged-in person), ``/oauth/authorize/resume``,
  ``/oauth/token`` (each grant; client authentication by HTTP Basic and by the body),
  ``/oauth/introspect``, ``/oauth/revoke``, ``/oauth/userinfo``, ``/oauth/logout``,
  ``/.well-known/*`` and ``/oauth/jwks``;
* ``/login`` and the organization picker, ``/signup`` and its verification link, the
  password-reset pages, the signed-in person's password change, the invitation accept page,
  ``/verify-email``, the consent link, the consent screen's POST, and the support console's
  forms and audit-log filters.

Each answer must be below 500 with no traceback logged; OAuth errors must have OAuth's
shape; and a refused request must leave every table as it was (except the tables a page
writes on purpose when it refuses, e.g. the failed-login audit trail).

Run it on SQLite and on PostgreSQL (NUL characters only break the latter).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from functools import partial
from types import SimpleNamespace
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from idp.extensions import db
from tests.consent.factories import CONSENT_REDIRECT, CONSENT_SECRET, make_consent_client
from tests.factories import PASSWORD, make_channel, make_org, make_user
from tests.oauth.conftest import (
    HUB_REDIRECT,
    BrowserClient,
    csrf_from,
    make_hub_clients,
    make_platform_client,
    pkce_pair,
)
from tests.test_malformed_input import _Tracebacks, changes, logged_errors, observed

FORM = "application/x-www-form-urlencoded"

# (label, value as it travels: percent-encoded, except the raw_* ones, sent as raw bytes)
HOSTILE: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("whitespace", b"%20%09%0A%20"),
    ("nul", b"a%00b"),
    ("controls", b"a%01%07%08%0B%0C%7Fb"),
    ("escape_sequence", b"a%1B%5B31m%1B%5D0%3Bx%07b"),
    ("crlf", b"a%0D%0ALocation:%20x"),
    ("str_20000", b"x" * 20000),
    ("invalid_utf8", b"%FF%FE%C3%28"),
    ("lone_surrogate_utf8", b"%ED%A0%80"),
    ("raw_invalid_utf8", b"\xff\xfe\xc3("),
    ("int_5000_digits", b"9" * 5000),
    ("nan", b"NaN"),
    ("overflow", b"1e400"),
    ("negative", b"-1"),
    ("unicode", b"%C3%A9t%C3%A9_%F0%9F%92%A9%E2%80%AE"),
    ("percent", b"%25%2541%25"),
    ("backslash", b"%5C%5Cx%5C"),
    ("quotes", b"%22'%60%3C%3E%3Cscript%3E"),
]
# A query string travels percent-encoded: no raw bytes there.
HOSTILE_QUERY = [(label, v) for label, v in HOSTILE if not label.startswith("raw_")]


def enc(value: str) -> bytes:
    return quote(value, safe="").encode()


def urlencoded(pairs: list[tuple[str, bytes | str]]) -> bytes:
    """``pairs`` as a body or query: str values are encoded here, bytes are sent as they are."""
    return b"&".join(
        enc(k) + b"=" + (v if isinstance(v, bytes) else enc(v)) for k, v in pairs if v is not None
    )


def replaced(
    base: dict[str, str], name: str, value: bytes, *, twice: bool = False
) -> list[tuple[str, bytes | str]]:
    """``base`` with ``name`` set to ``value`` (added when absent), or sent twice."""
    pairs: list[tuple[str, bytes | str]] = [(k, v) for k, v in base.items() if k != name]
    pairs.append((name, value))
    if twice:
        pairs.append((name, base.get(name, "x")))
    return pairs


# --------------------------------------------------------------------------- observation


def oauth_json_error(resp) -> str | None:
    """Why an error answer of the token/introspect/revoke endpoints is not RFC 6749 5.2's shape."""
    try:
        body = json.loads(resp.get_data())
    except ValueError:
        return f"error body is not JSON ({resp.mimetype})"
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return "error body has no 'error'"
    return None


def authorize_shape(resp, redirect_uris: tuple[str, ...]) -> str | None:
    """An authorization answer: an HTML error page, a page, or a redirect (error= or code=)."""
    status = resp.status_code
    if status >= 400:
        return None if resp.mimetype == "text/html" else f"error answer is {resp.mimetype}"
    if status in (301, 302, 303, 307):
        location = resp.headers.get("Location", "")
        if any(location.startswith(uri) for uri in redirect_uris):
            query = parse_qs(urlsplit(location).query)
            if "error" not in query and "code" not in query:
                return f"redirect to the client with neither error nor code: {location[:200]}"
    return None


@dataclass
class Probe:
    """Sends requests and records every answer that breaks the rules."""

    app: object
    tracebacks: _Tracebacks
    failures: list[str] = field(default_factory=list)
    answers: int = 0
    statuses: dict = field(default_factory=dict)  # status -> count, for the report
    errors_seen: set = field(default_factory=set)  # OAuth error codes / page hints seen

    def send(
        self,
        http,
        method: str,
        path: str,
        *,
        query: bytes | None = None,
        body: bytes | None = None,
        headers: dict | None = None,
        environ: dict | None = None,
        what: str,
        shape=None,
        may_write=lambda resp: False,
        tolerated: frozenset[str] = frozenset(),
    ):
        """One request: below 500, no traceback, ``shape(resp)`` ok, no write unless allowed.

        ``may_write(resp)`` says when the answer was an accepted request that may write;
        ``tolerated`` names tables a refusal may write on purpose (an audit trail).
        """
        url = path + ("?" + query.decode("latin-1") if query is not None else "")
        seen = len(self.tracebacks.seen)
        kwargs = {"method": method, "headers": headers or {}}
        if environ:
            kwargs["environ_base"] = environ
        if body is not None:
            kwargs.update(data=body, content_type=FORM)
        label = f"{method} {path}{' ' + what if what else ''}"
        resp, before, after = observed(
            self.app, self.failures, label, lambda: http.open(url, **kwargs)
        )
        if resp is None:
            return None
        self.answers += 1
        status = resp.status_code
        self.statuses[status] = self.statuses.get(status, 0) + 1
        text = resp.get_data(as_text=True)
        if resp.mimetype == "application/json":
            try:
                error = json.loads(text).get("error")
                if isinstance(error, str):
                    self.errors_seen.add(f"{path} {status} {error}")
            except (ValueError, AttributeError):
                pass
        elif status in (301, 302, 303):
            err = parse_qs(urlsplit(resp.headers.get("Location", "")).query).get("error")
            if err:
                self.errors_seen.add(f"{path} {status} error={err[0]}")
        else:
            self.errors_seen.add(f"{path} {status}")
        problem = f"{label}: {status} {text[:240]!r}"
        new_tb = self.tracebacks.seen[seen:]
        if status >= 500 or new_tb:
            tail = new_tb[-1].strip().splitlines()[-4:] if new_tb else ["(no traceback logged)"]
            self.failures.append(f"{problem} -- traceback tail: {' | '.join(tail)}")
        if shape is not None and status < 500:
            why = shape(resp)
            if why:
                self.failures.append(f"{problem} -- {why}")
        diff = changes(before, after)
        if diff and not may_write(resp):
            untolerated = [d for d in diff if d.split(":")[0] not in tolerated]
            if untolerated:
                self.failures.append(f"{problem} -- refused but changed the database: {diff}")
        return resp

    def sweep(
        self,
        http,
        method: str,
        path: str,
        base,
        names,
        values=HOSTILE,
        *,
        into: str = "body",
        twice: bool | dict = False,
        prefix: str = "",
        environ=None,
        then=None,
        **kw,
    ) -> None:
        """Each of ``names`` set in turn to each hostile value, the other fields from ``base``.

        ``base`` is a dict or a function of (name, index; None for the repeat); ``into`` is
        "body" or "query"; ``twice`` also sends each name twice (a dict overrides ``kw`` for
        it); ``environ`` is a function of (name, index); ``then(name, label, resp)`` follows.
        """
        fields = base if callable(base) else lambda name, i: base
        for name in names:
            for i, (label, value) in enumerate(values):
                resp = self.send(
                    http,
                    method,
                    path,
                    **{into: urlencoded(replaced(fields(name, i), name, value))},
                    **({"environ": environ(name, i)} if environ else {}),
                    what=f"{prefix}{name}={label}",
                    **kw,
                )
                if then is not None:
                    then(name, label, resp)
            if twice:
                self.send(
                    http,
                    method,
                    path,
                    **{into: urlencoded(replaced(fields(name, None), name, b"x", twice=True))},
                    what=f"{prefix}{name} twice",
                    **{**kw, **(twice if isinstance(twice, dict) else {})},
                )

    def check(self, minimum: int = 1) -> None:
        print(f"{self.answers} answers; statuses {dict(sorted(self.statuses.items()))}")
        print("seen:", sorted(self.errors_seen)[:60])
        assert self.answers >= minimum
        assert not self.failures, f"{len(self.failures)} bad answers:\n" + "\n".join(self.failures)


@pytest.fixture
def tracebacks():
    """Every ERROR record counts here, a traceback or not."""
    with logged_errors(messages=True) as handler:
        yield handler


@pytest.fixture
def probe(app, tracebacks) -> Probe:
    return Probe(app, tracebacks)


# --------------------------------------------------------------------------- the world


@pytest.fixture
def world(app):
    return build_world(app)


def build_world(app) -> SimpleNamespace:
    """Hub clients, a partner's consent client, a platform client, people; plain ids only."""
    from idp.keys.service import ensure_signing_key
    from idp.orgs.models import Membership

    with app.app_context():
        make_hub_clients()
        acme = make_org("partner", "Acme")
        globex = make_org("partner", "Globex")
        partner_owner = make_user("partner", acme, "owner", email="owner@acme.example")
        db.session.add(Membership.create(partner_owner, globex, "member"))
        shop = make_org("client", "Blue Bakery")
        shop_owner = make_user("client", shop, "owner", email="owner@bakery.example")
        channels = [make_channel(shop, s).id for s in ("live", "running")]
        support = make_org("support", "Support")
        admin = make_user("support", support, "admin", email="admin@support.example")
        target = make_user("partner", acme, "member", email="target@acme.example")
        consent_app = make_consent_client(acme)
        platform, platform_secret = make_platform_client(support)
        db.session.commit()
        ensure_signing_key()
        db.session.commit()
        named = {"acme": acme, "globex": globex, "shop": shop, "support": support}
        named |= {"partner_owner": partner_owner, "shop_owner": shop_owner, "admin": admin}
        w = SimpleNamespace(
            **{name: row.id for name, row in named.items()},
            target=target.id,
            channels=channels,
            consent_client=consent_app.client_id,
            platform_client=platform.client_id,
            platform_secret=platform_secret,
        )
        db.session.remove()
    return w


def basic_header(client_id: str, secret: str) -> dict:
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def login(app, email: str, hub: str | None = None) -> BrowserClient:
    """A browser logged in as ``email`` through the login page."""
    browser = BrowserClient(app)
    path = f"/login?hub={hub}" if hub else "/login"
    page = browser.get(path)
    resp = browser.post(
        path, data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page.text)}
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return browser


def csrf_of(browser, path: str = "/login") -> str:
    return csrf_from(browser.get(path).get_data(as_text=True))


def segment(value: bytes) -> str:
    """A hostile value as a path segment (at most 300 characters)."""
    return value.decode("latin-1")[:300]


def hub_params(challenge: str) -> dict[str, str]:
    return {
        "response_type": "code",
        "client_id": "partner-hub",
        "redirect_uri": HUB_REDIRECT,
        "scope": "openid email profile",
        "state": "state-123",
        "nonce": "nonce-abc",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


def consent_params(world) -> dict[str, str]:
    """An authorization request of the partner's consent client."""
    _, challenge = pkce_pair()
    return {
        "response_type": "code",
        "client_id": world.consent_client,
        "redirect_uri": CONSENT_REDIRECT,
        "scope": "api_keys:manage channels:read",
        "state": "partner-state",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }


OPTIONAL_PARAMS = ["prompt", "max_age", "organization", "login_hint", "response_mode"]
AUTHORIZE_PARAMS = [
    *hub_params(""),
    *OPTIONAL_PARAMS,
    "id_token_hint",
    "claims",
    "ui_locales",
    "request",
]
LOGGED_IN_PARAMS = ["scope", "state", "nonce", "prompt", "max_age", "organization", "login_hint"]
# What a partner's authorization request may write: the organization switched to, the code.
REDIRECTS = (HUB_REDIRECT, CONSENT_REDIRECT)
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


def consent_post_shape(resp) -> str | None:
    """The consent screen's answer; a refused CSRF token is the app's problem document."""
    if resp.status_code == 400 and resp.mimetype == "application/problem+json":
        return None if resp.get_json().get("code") == "csrf_failed" else "unexpected problem"
    return authorize_shape(resp, REDIRECTS)


def _code_issued(resp) -> bool:
    return resp.status_code == 302 and "code=" in resp.headers.get("Location", "")


def _decided(resp) -> bool:
    """A consent decision: a code, or a denial (any decision but "approve"), on the audit log."""
    location = resp.headers.get("Location", "") if resp.status_code == 302 else ""
    return "code=" in location or "error=access_denied" in location


def _is_json_error(resp):
    return oauth_json_error(resp) if resp.status_code >= 400 else None


def _ok(resp) -> bool:
    return resp.status_code == 200


def _never(resp) -> bool:
    return False


# How an answer of each kind of endpoint is judged.
AUTHORIZE = {"shape": lambda resp: authorize_shape(resp, REDIRECTS), "may_write": _code_issued}
TOKEN = {"shape": _is_json_error, "may_write": _ok}


# --------------------------------------------------------------------------- /oauth/authorize


@pytest.mark.parametrize("who", ["anonymous", "partner_user"])
def test_authorize_hostile_query_parameters(app, world, probe, who):
    _, challenge = pkce_pair()
    browser = BrowserClient(app) if who == "anonymous" else login(app, "owner@acme.example")
    # Logged in, the parameters read after validation matter most (and time is short).
    names = AUTHORIZE_PARAMS if who == "anonymous" else LOGGED_IN_PARAMS
    probe.sweep(
        browser,
        "GET",
        "/oauth/authorize",
        hub_params(challenge),
        names,
        HOSTILE_QUERY,
        into="query",
        twice=True,
        **AUTHORIZE,
    )
    probe.check(minimum=100)


def test_authorize_hostile_form_body_and_organization_switch(app, world, probe):
    """POST /oauth/authorize with a form body; ``organization`` for a logged-in person."""
    _, challenge = pkce_pair()
    browser = login(app, "owner@acme.example")
    names = ("client_id", "redirect_uri", "scope", "state", "organization", "max_age")
    probe.sweep(
        browser,
        "POST",
        "/oauth/authorize",
        hub_params(challenge),
        names,
        prefix="body ",
        **AUTHORIZE,
    )
    for label, value in HOSTILE_QUERY:
        path = "/oauth/authorize/resume/" + segment(value)
        probe.send(browser, "GET", path, what=f"resume id={label}", may_write=_never)
    probe.check(minimum=100)


def test_authorize_consent_client_hostile_parameters(app, world, probe):
    """A partner's consent client, for a logged-in Client Hub owner: the consent screen."""
    base = consent_params(world)
    browser = login(app, "owner@bakery.example", hub="client")
    ok = browser.get("/oauth/authorize", query_string=base)
    assert ok.status_code == 200, ok.get_data(as_text=True)  # the consent screen
    names = ("scope", "state", "login_hint", "prompt", "organization", "client_id")
    probe.sweep(
        browser,
        "GET",
        "/oauth/authorize",
        base,
        names,
        HOSTILE_QUERY,
        into="query",
        prefix="consent ",
        **AUTHORIZE,
    )
    probe.check(minimum=100)


# --------------------------------------------------------------------------- consent screen


def _consent_screen(app, world):
    """A logged-in client owner on the consent screen; (browser, decide path, csrf token)."""
    browser = login(app, "owner@bakery.example", hub="client")
    page = browser.get("/oauth/authorize", query_string=consent_params(world))
    assert page.status_code == 200, page.get_data(as_text=True)
    text = page.get_data(as_text=True)
    action = re.search(r'action="(/consent/[^"]+)"', text).group(1)
    return browser, action, csrf_from(text)


def test_consent_screen_post_hostile_decision_and_channels(app, world, probe):
    for field_name in ("decision", "channels", "csrf_token"):
        for label, value in HOSTILE:
            browser, action, token = _consent_screen(app, world)
            pairs = replaced({"csrf_token": token, "decision": "approve"}, field_name, value)
            if field_name != "channels":
                pairs.append(("channels", world.channels[0]))
            probe.send(
                browser,
                "POST",
                action,
                body=urlencoded(pairs),
                what=f"{field_name}={label}",
                shape=consent_post_shape,
                may_write=_decided,
            )
    # Many channels, the same channel twice, another client's kind of id.
    browser, action, token = _consent_screen(app, world)
    many = [("csrf_token", token), ("decision", "approve")]
    many += [("channels", f"ch_{i:020d}") for i in range(2000)]
    probe.send(browser, "POST", action, body=urlencoded(many), what="2000 channels")
    browser, action, token = _consent_screen(app, world)
    twice = [("csrf_token", token), ("decision", "approve")]
    twice += [("channels", world.channels[0]), ("channels", world.channels[0])]
    probe.send(
        browser,
        "POST",
        action,
        body=urlencoded(twice),
        what="same channel twice",
        may_write=_code_issued,
    )
    decision = urlencoded([("csrf_token", token), ("decision", "approve")])
    for label, value in HOSTILE_QUERY:
        probe.send(
            browser, "POST", "/consent/" + segment(value), body=decision, what=f"request_id={label}"
        )
        probe.send(browser, "GET", "/c/" + segment(value), what=f"link={label}")
        path = "/consent/" + segment(value) + "/signup"
        probe.send(browser, "GET", path, what=f"signup request_id={label}")
    probe.check(minimum=50)


# --------------------------------------------------------------------------- /oauth/token


def test_token_endpoint_hostile_fields_of_every_grant(app, world, probe):
    http = BrowserClient(app)
    platform = basic_header(world.platform_client, world.platform_secret)
    consent = basic_header(world.consent_client, CONSENT_SECRET)
    verifier, _ = pkce_pair()
    code = {"grant_type": "authorization_code", "code": "not-a-code"}
    grants = {
        "authorization_code": (
            {**code, "redirect_uri": HUB_REDIRECT, "client_id": "partner-hub"},
            {},
        ),
        "authorization_code_confidential": ({**code, "redirect_uri": CONSENT_REDIRECT}, consent),
        "refresh_token": (
            {
                "grant_type": "refresh_token",
                "refresh_token": "not-a-token",
                "client_id": "partner-hub",
                "scope": "openid",
            },
            {},
        ),
        "client_credentials": (
            {"grant_type": "client_credentials", "scope": "channels:read"},
            platform,
        ),
        "client_credentials_body_auth": (
            {
                "grant_type": "client_credentials",
                "client_id": world.platform_client,
                "client_secret": world.platform_secret,
            },
            {},
        ),
        "token_exchange": (
            {
                "grant_type": EXCHANGE,
                "client_id": "partner-hub",
                "subject_token": "not-a-token",
                "subject_token_type": ACCESS_TOKEN_TYPE,
                "organization": world.globex,
            },
            {},
        ),
    }
    for grant in ("authorization_code", "authorization_code_confidential"):
        grants[grant][0]["code_verifier"] = verifier
    for grant, (base, headers) in grants.items():
        probe.sweep(
            http, "POST", "/oauth/token", base, list(base), headers=headers,
            twice=True, prefix=f"{grant} ", **TOKEN,
        )  # fmt: skip
    # Hostile HTTP Basic credentials (the header itself, its id, its secret).
    body = urlencoded([("grant_type", "client_credentials")])
    for label, value in HOSTILE_QUERY:
        raw = value.decode("latin-1")
        for header in (
            {"Authorization": "Basic " + raw[:2000]},
            {"Authorization": "Basic " + base64.b64encode(raw.encode("latin-1")).decode()},
            basic_header(raw, world.platform_secret),
            basic_header(world.platform_client, raw),
            {
                "Authorization": "Basic "
                + base64.b64encode(b"a\x00b:" + raw.encode("latin-1")).decode()
            },
        ):
            what = f"basic {label} {header['Authorization'][:40]!r}"
            probe.send(http, "POST", "/oauth/token", body=body, headers=header, what=what, **TOKEN)
    # A hostile query string next to a well-formed body, and a raw body that is no form.
    for label, value in HOSTILE_QUERY:
        probe.send(
            http,
            "POST",
            "/oauth/token",
            query=b"grant_type=" + value,
            body=b"grant_type=client_credentials",
            headers=platform,
            what=f"query grant_type={label}",
            **TOKEN,
        )
    probe.check(minimum=400)


def _acme_id(app) -> str:
    from idp.orgs.models import Organization

    with app.app_context():
        return db.session.scalar(db.select(Organization.id).where(Organization.name == "Acme"))


def _code_redemption(code: str, verifier: str) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": HUB_REDIRECT,
        "client_id": "partner-hub",
        "code_verifier": verifier,
    }


def _hub_tokens(app) -> tuple[BrowserClient, dict, str, str]:
    """A partner user's browser, a hub token response, and a fresh code + its verifier."""
    browser = login(app, "owner@acme.example")
    verifier, challenge = pkce_pair()
    resp = browser.get("/oauth/authorize", query_string=hub_params(challenge))
    location = resp.headers["Location"]
    if "/login/organization/" in location:
        page = browser.get(location)
        resp = browser.post(
            location,
            data={"organization_id": _acme_id(app), "csrf_token": csrf_from(page.text)},
        )
        location = resp.headers["Location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    tokens = browser.post("/oauth/token", data=_code_redemption(code, verifier))
    assert tokens.status_code == 200, tokens.get_data(as_text=True)
    return browser, tokens.get_json(), challenge, verifier


def _fresh_code(browser, app) -> tuple[str, str]:
    """A new code for the logged-in partner user (in Acme) and its verifier."""
    verifier, challenge = pkce_pair()
    params = hub_params(challenge)
    params["organization"] = _acme_id(app)
    params["nonce"] = "n-" + challenge[:20]  # a nonce is used once per client
    resp = browser.get("/oauth/authorize", query_string=params)
    assert resp.status_code == 302 and "code=" in resp.headers["Location"], resp.headers
    return parse_qs(urlsplit(resp.headers["Location"]).query)["code"][0], verifier


def test_token_endpoint_hostile_fields_next_to_live_codes_and_tokens(app, world, probe):
    """Hostile fields beside a real code, refresh token or subject token reach deeper checks."""
    browser, tokens, _, _ = _hub_tokens(app)
    http = BrowserClient(app)
    # A code only dies when redeemed: a refused exchange may mark it used (a code row).
    probe.sweep(
        http,
        "POST",
        "/oauth/token",
        lambda name, i: _code_redemption(*_fresh_code(browser, app)),
        ("code_verifier", "redirect_uri", "client_id"),
        HOSTILE[:12],
        prefix="live code ",
        tolerated=frozenset({"oauth_authorization_codes", "token_families", "audit_events"}),
        **TOKEN,
    )
    refresh = {
        "grant_type": "refresh_token",
        "refresh_token": tokens["refresh_token"],
        "client_id": "partner-hub",
    }

    def rotated(name, label, resp):
        if resp is not None and resp.status_code == 200:
            refresh["refresh_token"] = resp.get_json()["refresh_token"]

    probe.sweep(
        http, "POST", "/oauth/token", refresh, ("scope", "client_id"),
        prefix="live refresh ", then=rotated, **TOKEN,
    )  # fmt: skip
    exchange = {
        "grant_type": EXCHANGE,
        "client_id": "partner-hub",
        "subject_token": tokens["access_token"],
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "organization": world.globex,
    }
    names = ("organization", "subject_token_type", "scope")
    probe.sweep(http, "POST", "/oauth/token", exchange, names, prefix="live exchange ", **TOKEN)
    probe.check(minimum=80)


# --------------------------------------------------------------------------- introspect, revoke


def test_introspect_and_revoke_hostile_fields(app, world, probe):
    _, tokens, _, _ = _hub_tokens(app)
    http = BrowserClient(app)
    platform = basic_header(world.platform_client, world.platform_secret)
    callers = (
        ({"token": tokens["access_token"], "token_type_hint": "access_token"}, platform, "b"),
        ({"token": "x", "client_id": "partner-hub"}, {}, "public"),
        (
            {
                "token": "x",
                "client_id": world.platform_client,
                "client_secret": world.platform_secret,
            },
            {},
            "body",
        ),
    )
    for path in ("/oauth/introspect", "/oauth/revoke"):
        for base, headers, who in callers:
            names = [*base, "token_type_hint"]  # a hint already in base is probed twice
            probe.sweep(
                http,
                "POST",
                path,
                base,
                names,
                headers=headers,
                prefix=f"{who} ",
                shape=_is_json_error,
                # A revocation answers 200 and writes when it revokes a token.
                may_write=lambda resp, path=path: (
                    path == "/oauth/revoke" and resp.status_code == 200
                ),
                twice={"may_write": _never},
            )
    probe.check(minimum=200)


# --------------------------------------------------------------------------- userinfo, logout


def test_userinfo_logout_and_metadata_hostile_input(app, world, probe):
    http = BrowserClient(app)
    for label, value in HOSTILE_QUERY:
        bearer = {"Authorization": "Bearer " + value.decode("latin-1")[:8000]}
        probe.send(http, "GET", "/oauth/userinfo", headers=bearer, what=f"bearer={label}")
        probe.send(
            http,
            "POST",
            "/oauth/userinfo",
            headers=bearer,
            what=f"bearer={label}",
            shape=_is_json_error,
        )
        probe.send(http, "GET", "/oauth/userinfo", query=b"access_token=" + value, what=label)
        probe.send(
            http, "POST", "/oauth/userinfo", body=b"access_token=" + value, what=f"form {label}"
        )
        for name in ("id_token_hint", "client_id", "post_logout_redirect_uri", "state"):
            pairs = (
                [(name, value)]
                if name == "client_id"
                else [("client_id", "partner-hub"), (name, value)]
            )
            probe.send(
                http, "GET", "/oauth/logout", query=urlencoded(pairs), what=f"{name}={label}"
            )
        for path in (
            "/.well-known/openid-configuration",
            "/.well-known/oauth-authorization-server",
            "/oauth/jwks",
        ):
            probe.send(http, "GET", path, query=b"x=" + value + b"&x=1", what=label)
    probe.check(minimum=100)


# --------------------------------------------------------------------------- /login


def _logged_in(resp) -> bool:
    return resp.status_code == 302


def test_login_page_hostile_query_and_form(app, world, probe):
    browser = BrowserClient(app)
    # A refused login writes its audit trail and counts the failure, on purpose.
    failures = frozenset({"audit_events", "login_failures", "login_sessions", "users"})
    probe.sweep(
        browser, "GET", "/login", {}, ("hub", "next", "request_id"), HOSTILE_QUERY, into="query"
    )
    token = csrf_of(browser)
    probe.sweep(
        browser,
        "POST",
        "/login",
        lambda name, i: {
            "csrf_token": token,
            "email": f"nobody{i}@example.com",
            "password": "wrong password",
        },
        ("email", "password", "csrf_token"),
        query=b"hub=partner",
        may_write=_logged_in,
        tolerated=failures,
        environ=lambda name, i: {"REMOTE_ADDR": f"10.9.{i}.{len(name)}"},
    )
    # Hostile ``next`` and ``hub`` with a successful login.
    for label, value in HOSTILE_QUERY:
        b = BrowserClient(app)
        fields = [
            ("csrf_token", csrf_of(b)),
            ("email", "owner@acme.example"),
            ("password", PASSWORD),
        ]
        probe.send(
            b,
            "POST",
            "/login",
            query=b"next=" + value + b"&hub=" + value,
            body=urlencoded(fields),
            what=f"next&hub={label}",
            environ={"REMOTE_ADDR": "10.8.0.1"},
            may_write=_logged_in,
            tolerated=failures,
        )
    # The organization picker: hostile choices.
    partner = login(app, "owner@acme.example")
    _, challenge = pkce_pair()
    resp = partner.get("/oauth/authorize", query_string=hub_params(challenge))
    picker = resp.headers["Location"]
    assert "/login/organization/" in picker, picker
    token = csrf_from(partner.get(picker).text)
    probe.sweep(partner, "POST", urlsplit(picker).path, {"csrf_token": token}, ["organization_id"])
    for label, value in HOSTILE_QUERY:
        probe.send(partner, "GET", "/login/organization/" + segment(value), what=label)
    probe.check(minimum=100)


# --------------------------------------------------------------------------- accounts pages

TOKEN_PAGES = ("/signup/verify", "/password-reset/confirm", "/verify-email")


def test_signup_and_password_reset_pages_hostile_forms(app, world, probe):
    browser = BrowserClient(app)
    token = csrf_of(browser, "/signup")
    probe.sweep(
        browser,
        "POST",
        "/signup",
        lambda name, i: {
            "csrf_token": token,
            "email": "twice@example.com" if i is None else f"new{i}.{name}@example.com",
            "password": "a long passphrase here",
            "business_name": "Bakery",
        },
        ("email", "password", "business_name", "continue", "csrf_token"),
        twice=True,
        # A sign-up (200, "check your inbox") queues the link: email token, outbox.
        may_write=_ok,
    )
    for label, value in HOSTILE_QUERY:
        probe.send(browser, "GET", "/signup", query=b"continue=" + value, what=label)
        for path in TOKEN_PAGES:
            probe.send(browser, "GET", path, query=b"token=" + value, what=label)
    token = csrf_of(browser, "/password-reset")
    for label, value in HOSTILE:
        probe.sweep(
            browser, "POST", "/password-reset", {"csrf_token": token}, ["email"], [(label, value)],
            may_write=_ok,
        )  # fmt: skip
        pairs = [("csrf_token", token), ("token", value)]
        pairs += [
            ("password", "a new long passphrase"),
            ("password_confirm", "a new long passphrase"),
        ]
        for path in TOKEN_PAGES:
            probe.send(browser, "POST", path, body=urlencoded(pairs), what=f"token={label}")
    probe.check(minimum=150)


def password_form(kind: str, value: bytes, link: str, other: str) -> list[tuple[str, bytes | str]]:
    """A set-password form with ``value`` as the "token", the "password" or "both" passwords."""
    if kind == "token":
        return [("token", value), ("password", "x"), ("password_confirm", "x")]
    return [
        ("token", link),
        ("password", value),
        ("password_confirm", value if kind == "both" else other),
    ]


def _reset_token(app, user_id: str) -> str:
    from idp.accounts.models import User
    from idp.accounts.tokens import issue_email_token

    with app.app_context():
        user = db.session.get(User, user_id)
        raw = issue_email_token("password_reset", user.email_normalized, 3600, user_id=user.id)
        db.session.commit()
        db.session.remove()
    return raw


def test_password_reset_confirm_hostile_passwords_with_a_live_link(app, world, probe):
    browser = BrowserClient(app)
    raw = _reset_token(app, world.target)
    page = browser.get("/password-reset/confirm", query_string={"token": raw})
    assert page.status_code == 200, page.get_data(as_text=True)
    token = csrf_from(page.get_data(as_text=True))
    confirm = partial(probe.send, browser, "POST", "/password-reset/confirm", may_write=_ok)
    for name in ("password", "both"):
        for label, value in HOSTILE:
            pairs = [
                ("csrf_token", token),
                *password_form(name, value, raw, "a new long passphrase"),
            ]
            resp = confirm(body=urlencoded(pairs), what=f"{name}={label}")
            if resp is not None and resp.status_code == 200:
                raw = _reset_token(app, world.target)  # the link was used: a new one
    probe.check(minimum=30)


def _signup_token(app, email: str) -> str:
    from idp.accounts.models import EmailToken
    from idp.accounts.service import start_signup
    from idp.accounts.tokens import hash_link_secret

    with app.app_context():
        start_signup(email, SIGNUP_PASSWORD, "Bakery")
        # The raw secret only travels in the email: set a known one instead.
        raw = f"known-signup-secret-{email}"
        row = db.session.scalar(
            db.select(EmailToken).where(
                EmailToken.email_normalized == email, EmailToken.used_at.is_(None)
            )
        )
        row.token_hash = hash_link_secret(raw)
        db.session.commit()
        db.session.remove()
    return raw


SIGNUP_PASSWORD = "a long passphrase here"


def test_signup_verify_hostile_passwords_with_a_live_link(app, world, probe):
    from idp.login.models import LoginFailure

    browser = BrowserClient(app)
    raw = _signup_token(app, "pending@example.com")
    page = browser.get("/signup/verify", query_string={"token": raw})
    assert page.status_code == 200, page.get_data(as_text=True)
    assert 'name="password"' in page.get_data(as_text=True)
    token = csrf_from(page.get_data(as_text=True))
    # A wrong password is a failed login: on record and counted, nothing else.
    failures = frozenset({"audit_events", "login_failures"})
    for label, value in HOSTILE:
        for pairs in (
            [("token", raw), ("password", value)],
            [("token", raw), ("password", value), ("password", SIGNUP_PASSWORD)],
        ):
            with app.app_context():  # every value reaches the password check, none waits
                db.session.execute(db.delete(LoginFailure))
                db.session.commit()
                db.session.remove()
            resp = probe.send(
                browser,
                "POST",
                "/signup/verify",
                body=urlencoded([("csrf_token", token), *pairs]),
                what=f"password={label} ({len(pairs) - 1}x)",
                tolerated=failures,
            )
            assert resp is None or resp.status_code in (400, 422), (label, resp.status_code)
    probe.check(minimum=30)


def _invitation(app, world, email: str, raw: str | None = None) -> str:
    from idp.accounts.tokens import hash_link_secret
    from idp.orgs import invitations
    from idp.orgs.models import Invitation
    from policies.actor import Actor

    actor = Actor(
        hub="partner",
        organization_id=world.acme,
        roles=frozenset({"owner"}),
        user_id=world.partner_owner,
    )
    with app.app_context():
        invitations.create_invitation(actor, world.acme, email, "member")
        db.session.commit()
        # The raw secret only travels in the email: set a known one instead.
        raw = raw or f"known-invitation-secret-{email}"
        row = db.session.scalar(
            db.select(Invitation)
            .where(Invitation.email_normalized == email.lower())
            .order_by(Invitation.created_at.desc())
            .limit(1)
        )
        row.token_hash = hash_link_secret(raw)
        db.session.commit()
        db.session.remove()
    return raw


def test_invitation_accept_hostile_forms(app, world, probe):
    browser = BrowserClient(app)
    fresh_raw = _invitation(app, world, "fresh@example.com")
    existing_raw = _invitation(app, world, "owner@bakery.example")  # a Client Hub account
    page = browser.get("/invitations/accept", query_string={"token": fresh_raw})
    assert page.status_code == 200, page.get_data(as_text=True)
    token = csrf_from(page.get_data(as_text=True))
    failures = frozenset({"audit_events", "login_failures"})
    accepted: list[str] = []
    for label, value in HOSTILE_QUERY:
        probe.send(browser, "GET", "/invitations/accept", query=b"token=" + value, what=label)
    links = {"fresh@example.com": fresh_raw, "owner@bakery.example": existing_raw}
    for email in list(links):
        for name in ("password", "both", "token"):
            for label, value in HOSTILE:
                pairs = [("csrf_token", token), *password_form(name, value, links[email], "other")]
                resp = probe.send(
                    browser,
                    "POST",
                    "/invitations/accept",
                    body=urlencoded(pairs),
                    what=f"{email} {name}={label}",
                    may_write=_ok,
                    tolerated=failures,
                )
                if resp is not None and resp.status_code == 200 and "Welcome" in resp.text:
                    # Accepted (a password may hold any character): the link is used up,
                    # so a new address is invited for the next value.
                    accepted.append(f"{email} {name}={label}")
                    links[email] = _invitation(app, world, f"fresh{len(accepted)}@example.com")
    print("accepted:", accepted)
    probe.check(minimum=80)


def _put_back_the_password(app, user_id: str) -> None:
    from idp.accounts.models import User
    from tests.factories import password_hash

    with app.app_context():
        db.session.get(User, user_id).password_hash = password_hash()
        db.session.commit()
        db.session.remove()


def test_change_password_page_hostile_forms(app, world, probe):
    browser = login(app, "owner@bakery.example")
    for label, value in HOSTILE_QUERY:
        probe.send(browser, "GET", "/account/password", query=value, what=label)
        probe.send(BrowserClient(app), "GET", "/account/password", query=value, what=label)
    token = csrf_of(browser, "/account/password")
    # The right current password with hostile new ones: an accepted one writes all a change does.
    accepted: list[str] = []
    for label, value in HOSTILE:
        pairs = [
            ("csrf_token", token),
            ("current_password", PASSWORD),
            ("password", value),
            ("password_confirm", value),
        ]
        resp = probe.send(
            browser,
            "POST",
            "/account/password",
            body=urlencoded(pairs),
            what=f"both={label}",
            may_write=_ok,
        )
        if resp is not None and resp.status_code == 200:
            accepted.append(label)
            # This browser stays signed in, with a fresh session (and CSRF token).
            _put_back_the_password(app, world.shop_owner)
            token = csrf_of(browser, "/account/password")
    # A wrong current password is a failed login: its audit trail and counters, on purpose.
    base = {
        "csrf_token": token,
        "current_password": "not the password",
        "password": "a new long passphrase",
        "password_confirm": "a new long passphrase",
    }
    probe.sweep(
        browser,
        "POST",
        "/account/password",
        base,
        ("current_password", "password", "password_confirm", "csrf_token"),
        twice=True,
        tolerated=frozenset({"audit_events", "login_failures"}),
        environ=lambda name, i: {"REMOTE_ADDR": f"10.7.{i}.{len(name)}"},
    )
    print("accepted:", accepted)
    assert accepted  # a password may hold any character: some of them were set
    probe.check(minimum=80)


def test_sessions_page_hostile_forms(app, world, probe):
    browser = login(app, "owner@bakery.example")
    login(app, "owner@bakery.example")  # another browser: the page offers to sign it out
    for label, value in HOSTILE_QUERY:
        probe.send(browser, "GET", "/account/sessions", query=value, what=label)
        probe.send(BrowserClient(app), "GET", "/account/sessions", query=value, what=label)
    token = csrf_of(browser, "/account/sessions")
    # The right password with a hostile choice: no such browser, nothing checked or written.
    probe.sweep(
        browser,
        "POST",
        "/account/sessions",
        {"csrf_token": token, "current_password": PASSWORD, "login": "others"},
        ("login",),
        twice=True,
    )
    # A wrong password is a failed login: its audit trail and counters, on purpose.
    probe.sweep(
        browser,
        "POST",
        "/account/sessions",
        {"csrf_token": token, "current_password": "not the password", "login": "others"},
        ("current_password", "csrf_token"),
        twice=True,
        tolerated=frozenset({"audit_events", "login_failures"}),
        environ=lambda name, i: {"REMOTE_ADDR": f"10.8.{i}.{len(name)}"},
    )
    probe.check(minimum=80)


# --------------------------------------------------------------------------- support console


def test_support_console_hostile_forms(app, world, probe):
    browser = login(app, "admin@support.example", hub="support")
    for name in ("q", "cursor"):
        for label, value in HOSTILE_QUERY:
            for query, what in (
                (name.encode() + b"=" + value, label),
                (b"q=usr_" + value + b"&" + name.encode() + b"=" + value, f"usr_ {label}"),
                (b"q=" + value + b"*&cursor=" + value, f"prefix {label}"),
            ):
                probe.send(browser, "GET", "/support/", query=query, what=what)
    filters = ("actor", "target", "action", "since", "until", "cursor")
    probe.sweep(
        browser, "GET", "/support/audit", {"action": "account.disabled", "since": "2026-01-01"},
        filters, HOSTILE_QUERY, into="query", twice=True,
    )  # fmt: skip
    for label, value in HOSTILE_QUERY:
        probe.send(browser, "GET", "/support/conflicts", query=b"cursor=" + value, what=label)
        probe.send(browser, "GET", "/support/accounts/" + segment(value), what=label)
    account = f"/support/accounts/{world.target}"
    page = browser.get(account)
    assert page.status_code == 200, page.get_data(as_text=True)
    token = csrf_from(page.get_data(as_text=True))
    reassign = {"csrf_token": token, "email": "moved@example.com", "ticket": "SUP-1", "reason": "r"}
    probe.sweep(
        browser, "POST", f"{account}/email", reassign, ("email", "ticket", "reason", "csrf_token"),
        may_write=lambda resp: resp.status_code == 303,
    )  # fmt: skip
    control = {"csrf_token": token, "action": "end_sessions", "ticket": "SUP-1", "reason": "r"}

    def not_done(name, label, resp):
        if resp is not None and resp.status_code == 303:
            flashed = browser.get(account).text
            if name != "reason" and "Done." in flashed and label not in ("unicode",):
                probe.failures.append(f"controls {name}={label}: accepted ('Done.')")

    probe.sweep(
        browser,
        "POST",
        f"{account}/controls",
        control,
        ("action", "ticket", "reason"),
        # Always a 303: whether it was done shows only in the flashed message.
        may_write=_never,
        # A control that is done (a free-text reason is fine) writes the account.
        tolerated=frozenset({"audit_events", "login_sessions", "token_families", "users"}),
        then=not_done,
    )
    body = urlencoded([*control.items(), ("email", "moved2@example.com")])
    for label, value in HOSTILE_QUERY:
        for action in ("email", "controls"):
            path = f"/support/accounts/{segment(value)}/{action}"
            probe.send(browser, "POST", path, body=body, what=f"user_id={label}")
    probe.check(minimum=150)
