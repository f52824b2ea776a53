"""The service's own scenarios: token endpoint, introspection, API-key check, login, code flow."""

from __future__ import annotations

import json

from bench.scenarios import Context, NotAvailable, Req, Scenario, send

API_KEY_HEADER = "D360-API-KEY"
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
    from policies.actor import Actor
    from policies.permissions import Permission

    ctx.require_route(CHECK_PATH, "GET")
    reserved = ctx.manifest.get("samples", {}).get("reserved_channel")
    if not reserved:
        raise NotAvailable("the seeded data has no reserved channel")
    client_id, channel_id = reserved["client_id"], reserved["channel_id"]
    owner = Actor(
        hub="client",
        organization_id=client_id,
        roles=frozenset({"owner"}),
        scopes=frozenset(Permission),
        user_id="usr_bench",
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


FLOWS: list[Scenario] = [
    Scenario("apikey_check", "API-key gateway check", _apikey_check, _accepted_key, "ceiling_json"),
]
REVOCATION_CHECKS = [apikey_revocation]
