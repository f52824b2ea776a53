"""The service's own scenarios: token endpoint, introspection, API-key check, login, code flow."""

from __future__ import annotations

import base64
import json
from urllib.parse import urlencode, urlsplit

from bench import driver
from bench.scenarios import FORM, Context, NotAvailable, Req, Scenario, send
from bench.seed import BENCH_PASSWORD, BENCH_REDIRECT_URI, user_email

API_KEY_HEADER = "D360-API-KEY"
TOKEN_PATH = "/oauth/token"
INTROSPECT_PATH = "/oauth/introspect"
LOGIN_PATH = "/login?hub=client"
CHECK_PATH = "/v1/api-keys/check"
# New connections per probe: gunicorn hands them to whichever worker accepts first,
# so this many reach every worker of a small pool with near certainty.
PROBES = 24


def _apikey_check(ctx: Context) -> list[Req]:
    ctx.require_route(CHECK_PATH, "GET")
    keys = ctx.manifest.get("samples", {}).get("api_keys")
    if not keys:
        raise NotAvailable("the seeded data has no API keys (reseed with --fresh)")
    return [Req("GET", CHECK_PATH, {API_KEY_HEADER: key}) for key in keys]


def _accepted_key(status: int, body: bytes) -> bool:
    return status == 200 and bool(json.loads(body or b"{}").get("channel_id"))


def probe(ctx: Context, req: Req) -> list[int]:
    """Send ``req`` on ``PROBES`` fresh connections and return the statuses."""
    return [send(ctx.base_url, req)[0] for _ in range(PROBES)]


def apikey_revocation(ctx: Context) -> dict:
    """Generate a key on the reserved channel, revoke it, and expect 401 from every worker."""
    from idp.apikeys import service
    from idp.extensions import db
    from idp.orgs.models import Membership
    from policies.actor import Actor
    from policies.permissions import Permission

    ctx.require_route(CHECK_PATH, "GET")
    reserved = ctx.manifest.get("samples", {}).get("reserved_channel")
    if not reserved:
        raise NotAvailable("the seeded data has no reserved channel")
    client_id, channel_id = reserved["client_id"], reserved["channel_id"]
    # A real owner of the client: a key is generated only by an account that may still act.
    owner_id = db.session.scalar(
        db.select(Membership.user_id)
        .where(Membership.organization_id == client_id, Membership.role == "owner")
        .limit(1)
    )
    if owner_id is None:
        raise NotAvailable("the reserved channel's client has no owner")
    owner = Actor(
        hub="client",
        organization_id=client_id,
        roles=frozenset({"owner"}),
        scopes=frozenset(Permission),
        user_id=owner_id,
    )
    key, text = service.create_key(owner, "client", client_id, channel_id)
    req = Req("GET", CHECK_PATH, {API_KEY_HEADER: text})
    before = probe(ctx, req)
    service.revoke_key(owner, "client", client_id, channel_id, key.id)
    after = probe(ctx, req)
    ok = set(before) == {200} and set(after) == {401}
    detail = (
        f"{before.count(200)}/{PROBES} accepted before, {after.count(401)}/{PROBES} refused after"
    )
    return {"what": "API key", "ok": ok, "detail": detail}


def _samples(ctx: Context, name: str):
    value = ctx.manifest.get("samples", {}).get(name)
    if not value:
        raise NotAvailable(f"the seeded data has no {name} (reseed with --fresh)")
    return value


def _basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


# Partner clients asking for tokens in one run: the same number at every scale,
# spread over the whole table, so that the scale check compares the cost of one
# request over more data, not how long a process takes to meet more clients.
HOT_PARTNER_CLIENTS = 100


def _client_credentials(ctx: Context) -> list[Req]:
    ctx.require_route(TOKEN_PATH, "POST")
    body = urlencode({"grant_type": "client_credentials"})
    clients = _samples(ctx, "partner_clients")
    spread = clients[:: max(1, len(clients) // HOT_PARTNER_CLIENTS)][:HOT_PARTNER_CLIENTS]
    return [
        Req("POST", TOKEN_PATH, FORM | {"Authorization": _basic(cid, secret)}, body)
        for cid, secret in spread
    ]


def _issued_token(status: int, body: bytes) -> bool:
    return status == 200 and bool(json.loads(body or b"{}").get("access_token"))


def _introspection(ctx: Context) -> list[Req]:
    """Access tokens of sampled users' live logins, introspected by the platform gateway."""
    from idp.oauth.tokens import mint_access_token

    ctx.require_route(INTROSPECT_PATH, "POST")
    gateway = _basic(*_samples(ctx, "gateway_client"))
    requests = []
    for subject in _samples(ctx, "token_subjects"):
        token, _ = mint_access_token(
            client_id=f"{subject['hub']}-hub",
            subject=subject["user_id"],
            family_id=subject["family_id"],
            hub=subject["hub"],
            organization_id=subject["org"],
            roles=[subject["role"]],
            scope="openid",
            ttl=3600,
        )
        body = urlencode({"token": token, "token_type_hint": "access_token"})
        requests.append(Req("POST", INTROSPECT_PATH, FORM | {"Authorization": gateway}, body))
    return requests


def _active(status: int, body: bytes) -> bool:
    return status == 200 and json.loads(body or b"{}").get("active") is True


def _password_login(ctx: Context) -> list[Req]:
    """Form posts to the login page, each a full login of a random Client Hub account."""
    ctx.require_route("/login", "POST")
    browser = driver.Browser(*_host_port(ctx))
    csrf = driver.login_form(browser, LOGIN_PATH)
    cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    return login_requests(ctx.manifest, cookie, csrf)


def login_requests(manifest: dict, cookie: str, csrf: str) -> list[Req]:
    """Logins of up to 2,000 Client Hub accounts, all with one login page's cookie and token."""
    first, users = manifest["plan"]["partner_users"], manifest["users"]
    step = max(1, (users - first) // 2_000)
    headers = FORM | {"Cookie": cookie}
    return [
        Req(
            "POST",
            LOGIN_PATH,
            headers,
            urlencode({"email": user_email(i), "password": BENCH_PASSWORD, "csrf_token": csrf}),
        )
        for i in range(first, users, step)
    ]


def _logged_in(status: int, body: bytes) -> bool:
    return status == 302


def _host_port(ctx: Context) -> tuple[str, int]:
    parts = urlsplit(ctx.base_url)
    return parts.hostname, parts.port


def _code_flow_ready(ctx: Context) -> list[Req]:
    ctx.require_route("/oauth/authorize", "GET")
    ctx.require_route(TOKEN_PATH, "POST")
    ctx.require_route("/login", "POST")
    return []


ROUND_TRIP_CLIENT = "client-hub"


def round_trip_user(manifest: dict, n: int) -> str:
    """The email of the ``n``-th round-trip client's Client Hub account."""
    return user_email(manifest["plan"]["partner_users"] + n * 7)


def _code_flow(ctx: Context, clients: int, seconds: float, paths: tuple[str, str] = ()) -> dict:
    """``clients`` browsers with live sessions, each repeating authorize -> code -> token."""
    jobs = [
        {
            "base_url": ctx.base_url,
            "hub": "client",
            "email": round_trip_user(ctx.manifest, n),
            "password": BENCH_PASSWORD,
            "client_id": ROUND_TRIP_CLIENT,
            "redirect_uri": BENCH_REDIRECT_URI,
            "paths": paths,
        }
        for n in range(clients)
    ]
    figures = driver.run(jobs, seconds)
    if figures["requests"] == 0:
        raise RuntimeError(f"no round trip succeeded: {figures['last_error']}")
    return figures


EMPTY_FLOW_PATHS = ("/bench/ceiling/authorize", "/bench/ceiling/token")


def _empty_flow_ready(ctx: Context) -> list[Req]:
    for path, method in zip(EMPTY_FLOW_PATHS, ("GET", "POST"), strict=True):
        ctx.require_route(path, method)
    ctx.require_route("/login", "POST")
    return []


def _empty_flow(ctx: Context, clients: int, seconds: float) -> dict:
    """The same clients, sessions and requests against the empty code-flow endpoints."""
    return _code_flow(ctx, clients, seconds, EMPTY_FLOW_PATHS)


def token_revocation(ctx: Context) -> dict:
    """Open a login for a seeded user, revoke it, and expect ``active: false`` from every worker."""
    from idp.extensions import db
    from idp.oauth.revocation import revoke_family
    from idp.oauth.tokens import mint_access_token, open_family

    ctx.require_route(INTROSPECT_PATH, "POST")
    gateway = _basic(*_samples(ctx, "gateway_client"))
    subject = _samples(ctx, "token_subjects")[0]
    family = open_family(
        client_id=f"{subject['hub']}-hub",
        user_id=subject["user_id"],
        organization_id=subject["org"],
        lifetime=3600,
    )
    db.session.commit()
    token, _ = mint_access_token(
        client_id=family.client_id,
        subject=subject["user_id"],
        family_id=family.id,
        hub=subject["hub"],
        organization_id=subject["org"],
        roles=[subject["role"]],
        scope="openid",
    )
    body = urlencode({"token": token, "token_type_hint": "access_token"})
    req = Req("POST", INTROSPECT_PATH, FORM | {"Authorization": gateway}, body)

    def active_answers() -> list[bool]:
        return [json.loads(send(ctx.base_url, req)[1]).get("active") for _ in range(PROBES)]

    before = active_answers()
    revoke_family(family, "benchmark revocation check")
    db.session.commit()
    after = active_answers()
    ok = all(before) and not any(after)
    detail = f"{sum(before)}/{PROBES} active before, {after.count(False)}/{PROBES} inactive after"
    return {"what": "access token (introspection)", "ok": ok, "detail": detail}


FLOWS: list[Scenario] = [
    Scenario(
        "client_credentials",
        "client_credentials token",
        _client_credentials,
        _issued_token,
        "ceiling_sign",
        cached=True,
    ),
    Scenario(
        "introspection",
        "introspection (valid token)",
        _introspection,
        _active,
        "ceiling_json",
        cached=True,
    ),
    Scenario(
        "apikey_check",
        "API-key gateway check",
        _apikey_check,
        _accepted_key,
        "ceiling_json",
        cached=True,
    ),
    Scenario(
        "password_login",
        "password login (form post)",
        _password_login,
        _logged_in,
        "ceiling_argon2",
        min_seconds=5,
    ),  # fmt: skip
    # The floor of the round trip below: a ceiling, yet a flow (it needs logged-in users).
    Scenario(
        "ceiling_round_trip",
        "ceiling: empty code round trip",
        _empty_flow_ready,
        _logged_in,
        drive=_empty_flow,
        levels=(8,),
    ),
    Scenario(
        "authorization_code",
        "authorization code round trip",
        _code_flow_ready,
        _logged_in,
        "ceiling_round_trip",
        drive=_code_flow,
        levels=(8,),
    ),
]
REVOCATION_CHECKS = [apikey_revocation, token_revocation]
