"""What the benchmark measures: each scenario pre-renders the requests wrk replays.

A scenario whose endpoint does not exist in this build raises ``NotAvailable``
and is reported as such, never faked. Before wrk runs, a few of its requests go
through a real HTTP client and must produce the outcome a user expects (a token,
an active introspection, a 302 into a session), so a fast stream of refusals
can never pass for a result.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask import Flask


class NotAvailable(Exception):
    """The endpoint this scenario measures does not exist (yet) in this build."""


class WrongOutcome(Exception):
    """A sample request did not produce what the scenario measures."""


@dataclass(frozen=True)
class Req:
    """One HTTP request of a scenario."""

    method: str
    path: str
    headers: dict = field(default_factory=dict)
    body: str = ""


@dataclass
class Context:
    """What scenarios build their requests from."""

    app: Flask
    base_url: str
    manifest: dict

    def require_route(self, path: str, method: str) -> None:
        """Raise ``NotAvailable`` unless the app routes ``method path``."""
        adapter = self.app.url_map.bind("127.0.0.1")
        try:
            adapter.match(path, method=method)
        except Exception as exc:  # werkzeug raises NotFound / MethodNotAllowed / redirects
            raise NotAvailable(f"{method} {path} does not exist in this build") from exc


Expect = Callable[[int, bytes], bool]


@dataclass(frozen=True)
class Scenario:
    """A named load with the ceiling its figures are divided by.

    wrk replays what ``build`` returns; a multi-step flow instead has ``drive``
    (context, clients, seconds) -> figures, and ``build`` only checks that it
    can run (returning the jobs' shared settings as its single request).
    """

    name: str
    title: str
    build: Callable[[Context], list[Req]]
    expect: Expect
    ceiling: str | None = None
    drive: Callable[[Context, int, float], dict] | None = None
    levels: tuple[int, ...] | None = None
    # Slow requests (one argon2id each) need longer runs for as many samples as the rest.
    min_seconds: float = 0
    # What the service caches per process (clients, families, key rows): the warm-up
    # lasts until each distinct request has reached every worker a few times.
    cached: bool = False


def send(base_url: str, req: Req) -> tuple[int, bytes]:
    """Send one request with the standard library and return status and body."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(req.method, req.path, body=req.body or None, headers=req.headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def verify(scenario: Scenario, ctx: Context, requests: list[Req], samples: int = 3) -> None:
    """Raise ``WrongOutcome`` unless sample requests produce the scenario's outcome."""
    for req in requests[:samples]:
        status, body = send(ctx.base_url, req)
        if not scenario.expect(status, body):
            raise WrongOutcome(
                f"{scenario.name}: {req.method} {req.path} answered {status}: {body[:200]!r}"
            )


def _json_field(name: str, value) -> Expect:
    def expect(status: int, body: bytes) -> bool:
        return status == 200 and json.loads(body or b"{}").get(name) == value

    return expect


def _ok(status: int, body: bytes) -> bool:
    return status == 200


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _ceiling_json(ctx: Context) -> list[Req]:
    ctx.require_route("/bench/ceiling/json", "GET")
    return [Req("GET", "/bench/ceiling/json")]


def _ceiling_sign(ctx: Context) -> list[Req]:
    ctx.require_route("/bench/ceiling/sign", "GET")
    return [Req("GET", "/bench/ceiling/sign")]


def _ceiling_argon2(ctx: Context) -> list[Req]:
    from urllib.parse import urlencode

    from idp.bench.views import CEILING_PASSWORD

    ctx.require_route("/bench/ceiling/argon2", "POST")
    body = urlencode({"password": CEILING_PASSWORD})
    return [Req("POST", "/bench/ceiling/argon2", FORM, body)]


CEILINGS = [
    Scenario("ceiling_json", "ceiling: bare JSON", _ceiling_json, _ok),
    Scenario("ceiling_sign", "ceiling: sign-only JWT", _ceiling_sign, _ok),
    Scenario(
        "ceiling_argon2",
        "ceiling: argon2id verify",
        _ceiling_argon2,
        _json_field("valid", True),
        min_seconds=5,
    ),
]
