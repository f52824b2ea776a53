"""Every input from outside is validated: bad input gets a clear 4xx and changes nothing.

For every ``/v1`` operation with a JSON request body (as ``/openapi.json`` documents it),
authorised as an actor for whom a valid body succeeds, send deterministic malformed input:
bodies that are not JSON or not an object, each documented property in turn replaced by a
hostile value, unknown properties, and malformed path parameters.  Each answer must be a
4xx problem document (never a 5xx; never a 2xx for input the documented schema or the
product's text rules refuse), and the database must be exactly as before.
"""

from __future__ import annotations

import json
import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa

from idp.extensions import db
from idp.orgs.models import Membership
from tests.channels.conftest import provisioning_bearer
from tests.conftest import empty_database
from tests.consent.factories import CONSENT_REDIRECT, make_consent_client, make_grant
from tests.factories import bearer_for, make_channel, make_org, make_user, turn_on_two_step

CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
SUPPORT_ACTION = {"ticket": "SUP-77", "reason": "account reported compromised"}


# --------------------------------------------------------------------------- the operations


@dataclass(frozen=True)
class Operation:
    """How to call one operation successfully: who, on which objects, with which body."""

    actor: str | None  # key of World.auth; None = no token (public operation)
    params: dict  # path parameter -> key of World.ids
    body: dict  # a valid body; "{name}" strings are filled from World.ids


OPERATIONS: dict[tuple[str, str], Operation] = {
    ("POST", "/v1/partners/{partner_id}/oauth-clients"): Operation(
        "p_owner",
        {"partner_id": "p"},
        {"name": "Billing sync", "redirect_uris": ["https://acme.example/cb"]},
    ),
    ("POST", "/v1/partners/{partner_id}/oauth-clients/{client_id}/secret"): Operation(
        "p_owner", {"partner_id": "p", "client_id": "p_app"}, {"previous_secret_expires_in": 3600}
    ),
    ("POST", "/v1/signup"): Operation(
        None,
        {},
        {
            "email": "new.person@example.com",
            "password": "a long passphrase",
            "business_name": "Ann",
        },
    ),
    ("POST", "/v1/password-reset"): Operation(None, {}, {"email": "{t_active_email}"}),
    ("POST", "/v1/partners/{partner_id}/invitations"): Operation(
        "p_owner", {"partner_id": "p"}, {"email": "invitee@example.com", "role": "member"}
    ),
    ("POST", "/v1/clients/{client_id}/channels/{channel_id}/api-keys"): Operation(
        "a_owner", {"client_id": "a", "channel_id": "a_live"}, {"grace_period_seconds": 60}
    ),
    ("POST", "/v1/partners/{partner_id}/channels/{channel_id}/api-keys"): Operation(
        "p_owner", {"partner_id": "p", "channel_id": "a_live"}, {"grace_period_seconds": 60}
    ),
    ("POST", "/v1/partners/{partner_id}/consent-links"): Operation(
        "p_owner",
        {"partner_id": "p"},
        {
            "client_id": "{p_app}",
            "redirect_uri": CONSENT_REDIRECT,
            "state": "st-123",
            "code_challenge": CHALLENGE,
        },
    ),
    ("POST", "/v1/support/accounts/{user_id}/email"): Operation(
        "support_admin",
        {"user_id": "t_active"},
        {**SUPPORT_ACTION, "email": "moved@example.com"},
    ),
    ("POST", "/v1/support/accounts/{user_id}/disable"): Operation(
        "support_admin", {"user_id": "t_active"}, SUPPORT_ACTION
    ),
    ("POST", "/v1/support/accounts/{user_id}/enable"): Operation(
        "support_admin", {"user_id": "t_disabled"}, SUPPORT_ACTION
    ),
    ("POST", "/v1/support/accounts/{user_id}/password-reset"): Operation(
        "support_admin", {"user_id": "t_active"}, SUPPORT_ACTION
    ),
    ("POST", "/v1/support/accounts/{user_id}/end-sessions"): Operation(
        "support_admin", {"user_id": "t_active"}, SUPPORT_ACTION
    ),
    ("POST", "/v1/support/accounts/{user_id}/resend-verification"): Operation(
        "support_admin", {"user_id": "t_unverified"}, SUPPORT_ACTION
    ),
    ("POST", "/v1/support/accounts/{user_id}/two-step-reset"): Operation(
        "support_admin", {"user_id": "t_two_step"}, SUPPORT_ACTION
    ),
    ("POST", "/v1/clients/{client_id}/wabas"): Operation(
        "provisioning", {"client_id": "a"}, {"name": "Second WABA"}
    ),
    ("POST", "/v1/wabas/{waba_id}/verification"): Operation(
        "provisioning", {"waba_id": "waba"}, {"verification_state": "verified"}
    ),
    ("POST", "/v1/wabas/{waba_id}/channels"): Operation(
        "provisioning",
        {"waba_id": "waba"},
        {"phone_number": "+14155552671", "display_name": "Support line"},
    ),
    ("POST", "/v1/channels/{channel_id}/status"): Operation(
        "provisioning", {"channel_id": "a_live"}, {"status": "suspended", "reason": "abuse report"}
    ),
    ("PUT", "/v1/partners/{partner_id}/webhook"): Operation(
        "p_owner", {"partner_id": "p"}, {"url": "https://hooks.partner.example/idp"}
    ),
    # A promotion: always allowed (a demotion could leave the partner without an owner).
    ("PATCH", "/v1/partners/{partner_id}/members/{membership_id}"): Operation(
        "p_owner", {"partner_id": "p", "membership_id": "p_member_membership"}, {"role": "owner"}
    ),
}

# The documented properties of each operation's body (checked against /openapi.json below,
# so that a new property or operation cannot escape this module).
PROPERTIES: dict[tuple[str, str], tuple[str, ...]] = {
    ("POST", "/v1/partners/{partner_id}/oauth-clients"): ("name", "redirect_uris", "scope"),
    ("POST", "/v1/partners/{partner_id}/oauth-clients/{client_id}/secret"): (
        "previous_secret_expires_in",
    ),
    ("POST", "/v1/signup"): ("email", "password", "business_name"),
    ("POST", "/v1/password-reset"): ("email",),
    ("POST", "/v1/partners/{partner_id}/invitations"): ("email", "role"),
    ("POST", "/v1/clients/{client_id}/channels/{channel_id}/api-keys"): ("grace_period_seconds",),
    ("POST", "/v1/partners/{partner_id}/channels/{channel_id}/api-keys"): ("grace_period_seconds",),
    ("POST", "/v1/partners/{partner_id}/consent-links"): (
        "client_id",
        "redirect_uri",
        "state",
        "scope",
        "email",
        "code_challenge",
        "code_challenge_method",
        "expires_in",
    ),
    ("POST", "/v1/support/accounts/{user_id}/email"): ("ticket", "reason", "email"),
    ("POST", "/v1/support/accounts/{user_id}/disable"): ("ticket", "reason"),
    ("POST", "/v1/support/accounts/{user_id}/enable"): ("ticket", "reason"),
    ("POST", "/v1/support/accounts/{user_id}/password-reset"): ("ticket", "reason"),
    ("POST", "/v1/support/accounts/{user_id}/end-sessions"): ("ticket", "reason"),
    ("POST", "/v1/support/accounts/{user_id}/resend-verification"): ("ticket", "reason"),
    ("POST", "/v1/support/accounts/{user_id}/two-step-reset"): ("ticket", "reason"),
    ("POST", "/v1/clients/{client_id}/wabas"): ("name", "verification_state"),
    ("POST", "/v1/wabas/{waba_id}/verification"): ("verification_state",),
    ("POST", "/v1/wabas/{waba_id}/channels"): (
        "phone_number",
        "region",
        "display_name",
        "account_mode",
    ),
    ("POST", "/v1/channels/{channel_id}/status"): ("status", "reason"),
    ("PUT", "/v1/partners/{partner_id}/webhook"): ("url",),
    ("PATCH", "/v1/partners/{partner_id}/members/{membership_id}"): ("role",),
}

OP_IDS = [f"{m} {p}" for m, p in OPERATIONS]
PROPERTY_CASES = [(op, name) for op, names in PROPERTIES.items() for name in names]
PATH_PARAM_CASES = [(op, name) for op, spec in OPERATIONS.items() for name in spec.params]

# --------------------------------------------------------------------------- hostile values

# (label, JSON text).  JSON text, not Python values, so that a lone surrogate travels as the
# escape "\ud800", and NaN, 1e400, 5000-digit numbers and deep nesting can be sent at all.
HOSTILE_VALUES: list[tuple[str, str]] = [
    ("null", "null"),
    ("true", "true"),
    ("zero", "0"),
    ("minus_one", "-1"),
    ("int_10e30", str(10**30)),
    ("float_1e308", "1e308"),
    ("fraction", "1.5"),
    ("nan_literal", "NaN"),
    ("infinity_literal", "Infinity"),
    ("overflowing_1e400", "1e400"),
    ("int_5000_digits", "9" * 5000),
    ("str_1e308", '"1e308"'),
    ("str_nan", '"NaN"'),
    ("str_minus_infinity", '"-Infinity"'),
    ("str_fraction", '"0.5"'),
    ("empty_string", '""'),
    ("whitespace", '"  \\t \\n "'),
    ("str_20000", json.dumps("x" * 20000)),
    ("nul", '"a\\u0000b"'),
    ("bell_backspace", '"a\\u0007\\u0008b"'),
    ("escape_sequence", '"a\\u001b[31mb"'),
    ("delete_char", '"a\\u007fb"'),
    ("crlf", '"a\\r\\nb"'),
    ("lone_surrogate", '"a\\ud800b"'),
    ("empty_object", "{}"),
    ("empty_array", "[]"),
    ("array_of_string", '["x"]'),
    ("operator_object", '{"$gt": ""}'),
    ("deep_array_5000", "[" * 5000 + "]" * 5000),
]
# For array properties, each hostile string also goes inside a one-item array.
STRING_LABELS = [label for label, text in HOSTILE_VALUES if text.startswith('"')]

MALFORMED_BODIES: list[tuple[str, bytes]] = [
    ("not_json", b"this is not json"),
    ("truncated", b'{"a": '),
    ("single_quotes", b"{'name': 'x'}"),
    ("trailing_comma", b'{"a": 1,}'),
    ("invalid_utf8", b"\xff\xfe\xfd"),
    ("invalid_utf8_in_string", b'{"name": "\xc3\x28"}'),
    ("utf16_bom", '{"a": 1}'.encode("utf-16")),
    ("array", b"[]"),
    ("array_of_object", b"[{}]"),
    ("string", b'"x"'),
    ("number", b"1"),
    ("null", b"null"),
    ("true", b"true"),
    ("nan", b"NaN"),
    ("deep_array_5000", b"[" * 5000 + b"]" * 5000),
    ("deep_object_3000", b'{"a":' * 3000 + b"1" + b"}" * 3000),
]

# Replacements for one path parameter; "{other}" is a real id of another kind.
MALFORMED_PATH_VALUES: list[tuple[str, str]] = [
    ("too_long", "x" * 5000),
    ("other_kind_of_id", "{other}"),
    ("wrong_prefix", "zz_{self_suffix}"),
    ("upper_case", "{self_upper}"),
    ("nul", "%00"),
    ("nul_inside", "{self}%00"),
    ("unicode", "%C3%A9t%C3%A9_%F0%9F%92%A9"),
    ("invalid_utf8", "%FF%FE"),
    ("dot_dot", ".."),
    ("encoded_slash", "a%2Fb"),
    ("space", "%20"),
    ("percent_literal", "%25"),
    ("sql", "x'%20OR%20'1'='1"),
]

# Unknown extra properties (each must be refused by name, the rest of the body being valid).
UNKNOWN_PROPERTIES: list[tuple[str, str]] = [
    ("admin", "true"),
    ("id", '"usr_x"'),
    ("organization_id", '"org_x"'),
    ("__proto__", '{"admin": true}'),
    ("", '"empty key"'),
    ("a\\u0000b", '"nul in key"'),
    ("\\ud800", '"surrogate key"'),
]

# --------------------------------------------------------------------------- the world


@dataclass
class World:
    ids: dict
    auth: dict
    other_ids: dict = field(default_factory=dict)  # id of another kind, per parameter


def build_world(app) -> World:
    """Objects on which every valid body above succeeds, and a token per actor."""
    with app.app_context():
        p = make_org("partner", "Partner P")
        a = make_org("client", "Alpha Shoes", onboarding_partner_id=p.id)
        support = make_org("support", "Platform")
        a_live = make_channel(a, "live")
        db.session.commit()
        make_grant(a, p, [a_live])
        p_app = make_consent_client(p)
        p_owner = make_user("partner", p, "owner")
        p_member = make_user("partner", p, "member")
        a_owner = make_user("client", a, "owner")
        admin = make_user("support", support, "admin")
        t_active = make_user("partner", email="target.active@example.com")
        t_disabled = make_user("partner", email="target.disabled@example.com", status="disabled")
        t_unverified = make_user("partner", email="target.new@example.com", verified=False)
        t_two_step = make_user("partner", email="target.two.step@example.com")
        turn_on_two_step(t_two_step)
        db.session.commit()
        membership = {
            user_id: membership_id
            for user_id, membership_id in db.session.execute(
                sa.select(Membership.user_id, Membership.id).where(
                    Membership.organization_id == p.id
                )
            )
        }
        ids = {
            "p": p.id,
            # The partner's only owner, and a member of it (who holds a token for it).
            "p_owner_membership": membership[p_owner.id],
            "p_member": p_member.id,
            "p_member_email": p_member.email,
            "p_member_membership": membership[p_member.id],
            "a": a.id,
            "a_live": a_live.id,
            "waba": a_live.waba_id,
            "p_app": p_app.client_id,
            "t_active": t_active.id,
            "t_active_email": t_active.email,
            "t_disabled": t_disabled.id,
            "t_unverified": t_unverified.id,
            "t_two_step": t_two_step.id,
        }
        auth = {
            "p_owner": bearer_for(p_owner, p),
            "p_member": bearer_for(p_member, p),
            "a_owner": bearer_for(a_owner, a),
            "support_admin": bearer_for(admin, support),
            "provisioning": provisioning_bearer(support),
        }
        db.session.remove()
    other = {
        "partner_id": ids["a"],
        "client_id": ids["p"],
        "channel_id": ids["waba"],
        "waba_id": ids["a_live"],
        "user_id": ids["p"],
        "membership_id": ids["p_member"],
    }
    return World(ids, auth, other)


@pytest.fixture
def world(app) -> World:
    return build_world(app)


def rebuild_world(app, world: World) -> None:
    """Empty every table (as the suite's per-test cleanup does) and build the world again.

    Used after a request was (wrongly or tolerably) accepted, so that the next value is
    probed against the same state and a 409 cannot hide a missing validation.
    """
    empty_database(app)
    fresh = build_world(app)
    world.ids, world.auth, world.other_ids = fresh.ids, fresh.auth, fresh.other_ids


def _fill(value, ids: dict):
    if isinstance(value, str):
        return value.format(**ids) if "{" in value else value
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _url(op: tuple[str, str], world: World, overrides: dict | None = None) -> str:
    spec = OPERATIONS[op]
    values = {name: world.ids[key] for name, key in spec.params.items()}
    values.update(overrides or {})
    return op[1].format(**values)


def _body_text(op: tuple[str, str], world: World, replace: dict[str, str] | None = None) -> str:
    """The valid body as JSON text, with some properties replaced by raw JSON text."""
    items = {k: json.dumps(v) for k, v in _fill(OPERATIONS[op].body, world.ids).items()}
    items.update(replace or {})
    return "{" + ", ".join(f'"{k}": {v}' for k, v in items.items()) + "}"


# --------------------------------------------------------------------------- observation


def snapshot(app) -> dict:
    """Every table's committed rows (count and content), read on a fresh connection.

    Reading every table around each of thousands of probes is most of these tests' time, and
    nearly every probe changes nothing. So the state is read again only when the database says
    something may have been committed since it was last read (``_commit_marker``); otherwise
    the last reading is the answer."""
    seen = _last_reading.get(app)
    marker = _commit_marker(app)
    if seen is not None and marker is not None and seen[0] == marker:
        return seen[1]
    state = _read_every_table(app)
    if marker is not None and _commit_marker(app) == marker:
        _last_reading[app] = (marker, state)
    return state


_last_reading: dict = {}  # app -> (commit marker, state read under it)
_sqlite_watchers: dict = {}  # database path -> a connection used only for PRAGMA data_version


def _commit_marker(app):
    """A value that changes whenever any connection commits a write (None: not knowable).

    PostgreSQL: the current snapshot (``xmin:xmax:in-progress``); a writing transaction is
    given a transaction id, so one that starts moves ``xmax`` and one that ends leaves the
    in-progress list. SQLite: ``PRAGMA data_version`` on a connection of its own, which
    changes when any other connection commits."""
    with app.app_context():
        url = db.engine.url
        if url.get_backend_name() == "postgresql":
            with db.engine.connect() as conn:
                return conn.execute(sa.text("SELECT pg_current_snapshot()::text")).scalar()
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            watcher = _sqlite_watchers.get(url.database)
            if watcher is None:
                import sqlite3

                watcher = sqlite3.connect(url.database, check_same_thread=False)
                _sqlite_watchers[url.database] = watcher
            return watcher.execute("PRAGMA data_version").fetchone()[0]
    return None


def _read_every_table(app) -> dict:
    state = {}
    with app.app_context(), db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            rows = conn.execute(sa.select(table)).all()
            state[table.name] = (len(rows), sorted(repr(tuple(r)) for r in rows))
    return state


def changes(before: dict, after: dict) -> list[str]:
    out = []
    for name in before:
        if before[name] != after[name]:
            out.append(f"{name}: {before[name][0]} -> {after[name][0]} rows")
    return out


def observed(app, failures: list[str], what: str, request):
    """``request()``'s answer and the database before and after it (no answer if it raised)."""
    before = snapshot(app)
    try:
        resp = request()
    except Exception as exc:  # noqa: BLE001 (an escaping exception is a 500 too)
        failures.append(f"{what}: request raised {type(exc).__name__}: {exc!s:.300}")
        return None, before, before
    return resp, before, snapshot(app)


class _Tracebacks(logging.Handler):
    """ERROR records with a traceback; with ``messages``, every ERROR record's message too."""

    def __init__(self, messages: bool = False):
        super().__init__(logging.ERROR)
        self.seen: list[str] = []
        self.messages = messages

    def emit(self, record):
        if record.exc_info:
            self.seen.append(logging.Formatter().formatException(record.exc_info))
        elif self.messages:
            self.seen.append(record.getMessage())


@contextmanager
def logged_errors(messages: bool = False):
    """A ``_Tracebacks`` handler on the root logger while the block runs."""
    handler = _Tracebacks(messages)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


@pytest.fixture
def tracebacks():
    with logged_errors() as handler:
        yield handler


@dataclass
class Probe:
    """Sends requests, and records every way an answer breaks the rule."""

    app: object
    client: object
    tracebacks: _Tracebacks
    world: World
    rebuilt: int = 0  # times the world was rebuilt after an accepted request
    failures: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)  # tolerated 2xx (ambiguous input)
    named_field: int = 0
    answers: int = 0

    def send(
        self,
        method: str,
        url: str,
        data: bytes | str,
        headers: dict,
        *,
        what: str,
        must_refuse: bool = True,
        names: str | None = None,
    ):
        """One request: a 4xx problem (or a tolerated 2xx) and no database change."""
        seen = len(self.tracebacks.seen)
        resp, before, after = observed(
            self.app,
            self.failures,
            what,
            lambda: self.client.open(
                url,
                method=method,
                data=data,
                headers=headers,
                content_type="application/json",
            ),
        )
        if resp is None:
            return None
        self.answers += 1
        status = resp.status_code
        text = resp.get_data(as_text=True)
        problem = f"{what}: {status} {text[:300]!r}"
        diff = changes(before, after)
        if diff and not 200 <= status < 300:
            self.failures.append(f"{problem} -- refused but changed the database: {diff}")
        if status >= 500:
            head = self.tracebacks.seen[seen:] if len(self.tracebacks.seen) > seen else []
            tb = head[-1].strip().splitlines() if head else []
            tb_text = " | ".join(tb[-4:]) if tb else "(no traceback logged)"
            self.failures.append(f"{problem} -- traceback tail: {tb_text}")
            return resp
        if 200 <= status < 300:
            rebuild_world(self.app, self.world)
            self.rebuilt += 1
            if must_refuse:
                self.failures.append(
                    f"{problem} -- accepted input that must be refused; wrote {diff}"
                )
            else:
                self.accepted.append(f"{what}: {status}")
            return resp
        if not 400 <= status < 500:
            self.failures.append(f"{problem} -- not a 4xx")
            return resp
        error = self._problem_error(resp, status)
        if error:
            self.failures.append(f"{problem} -- {error}")
        elif names is not None and status == 422:
            body = resp.get_json()
            if names in (body.get("errors") or {}) or names in (body.get("detail") or ""):
                self.named_field += 1
        return resp

    @staticmethod
    def _problem_error(resp, status: int) -> str | None:
        if resp.mimetype not in ("application/problem+json", "application/json"):
            return f"error body is {resp.mimetype}, not JSON"
        try:
            body = json.loads(resp.get_data())
        except ValueError:
            return "error body is not valid JSON"
        if not isinstance(body, dict):
            return "error body is not a JSON object"
        title = body.get("title") or body.get("error_description") or body.get("error")
        if not (isinstance(title, str) and title.strip()):
            return "error body has no message a client can show"
        if body.get("status") not in (None, status):
            return f"error body says status {body.get('status')}"
        if not isinstance(body.get("code"), str):
            return "error body has no stable code"
        if "Traceback" in resp.get_data(as_text=True):
            return "error body shows a traceback"
        return None

    def check(self) -> None:
        assert not self.failures, f"{len(self.failures)} bad answers:\n" + "\n".join(self.failures)


@pytest.fixture
def probe(app, client, tracebacks, world) -> Probe:
    return Probe(app, client, tracebacks, world)


def _headers(op, world: World) -> dict:
    actor = OPERATIONS[op].actor
    return dict(world.auth[actor]) if actor else {}


def _send_body(probe: Probe, op, replace: dict[str, str], *, what: str, **expect):
    """The operation's valid body with ``replace`` (raw JSON text per property), authorised."""
    world = probe.world
    body = _body_text(op, world, replace)
    headers = _headers(op, world)
    url, what = _url(op, world), f"{op[0]} {op[1]} {what}"
    return probe.send(op[0], url, body, headers, what=what, **expect)


# --------------------------------------------------------------------------- expectations

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _violates_schema(schema: dict, value) -> bool:
    """Whether ``value`` breaks the documented property schema (a subset of JSON Schema)."""
    if value is None:
        return not schema.get("nullable", False)
    if "enum" in schema and value not in schema["enum"]:
        return True
    kind = schema.get("type")
    if kind == "string":
        if not isinstance(value, str):
            return True
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", 1e9):
            return True
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return True
        return schema.get("format") == "email" and "@" not in value
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return True
        return not schema.get("minimum", -1e400) <= value <= schema.get("maximum", 1e400)
    if kind == "array":
        if not isinstance(value, list) or len(value) > schema.get("maxItems", 1e9):
            return True
        return any(_violates_schema(schema.get("items", {}), v) for v in value)
    return False


def _must_refuse(name: str, schema: dict, text: str) -> bool:
    """Whether the value (JSON text) is clearly invalid for this property."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return True  # not JSON at all (5000 digits, deep nesting)
    if text.startswith(("NaN", "Infinity")) or value in (float("inf"), float("-inf")):
        return True  # not JSON either, though Python reads it
    if _violates_schema(schema, value):
        return True
    strings = value if isinstance(value, list) else [value]
    for s in (s for s in strings if isinstance(s, str)):
        if _SURROGATE.search(s):
            return True  # not Unicode: no database stores it
        if name != "password" and _CONTROL.search(s):
            return True  # NUL and other control characters
        if not s.strip() and schema.get("minLength", schema.get("items", {}).get("minLength", 0)):
            return True  # blank where text is required
    return False


@pytest.fixture
def document(client) -> dict:
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    return resp.get_json()


def _body_schema(document: dict, op: tuple[str, str]) -> dict:
    operation = document["paths"][op[1]][op[0].lower()]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


# --------------------------------------------------------------------------- the tests


def test_every_json_body_operation_and_property_is_probed(document):
    documented = {}
    for path, operations in document["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            if method in ("post", "put", "patch") and "application/json" in (
                operation.get("requestBody", {}).get("content", {})
            ):
                op = (method.upper(), path)
                documented[op] = tuple(sorted(_body_schema(document, op)["properties"]))
    assert set(documented) == set(OPERATIONS)
    assert documented == {op: tuple(sorted(names)) for op, names in PROPERTIES.items()}


def test_the_observation_sees_every_committed_write(app, client):
    """The probes' "changes nothing" rests on ``snapshot``, which reuses its last reading
    while the database reports no commit: an insert, an update in place (same row count)
    and a write made by a request must each still show, and reading alone must not."""
    first = snapshot(app)
    assert snapshot(app) == first
    with app.app_context():
        org = make_org("partner", "Observed Ltd")
        db.session.commit()
        org_id = org.id
    inserted = snapshot(app)
    assert changes(first, inserted) == ["organizations: 0 -> 1 rows"]
    with app.app_context():
        db.session.get(type(org), org_id).name = "Observed Holdings"
        db.session.commit()
    updated = snapshot(app)
    assert changes(inserted, updated) == ["organizations: 1 -> 1 rows"]
    resp, before, after = observed(
        app,
        [],
        "sign-up",
        lambda: client.post(
            "/v1/signup",
            json={
                "email": "seen@example.com",
                "password": "a long passphrase",
                "business_name": "S",
            },
        ),
    )
    assert resp.status_code == 202 and before == updated
    assert "email_tokens: 0 -> 1 rows" in changes(before, after)


def send_valid(client, op: tuple[str, str], world: World):
    """The operation's valid request, as its actor."""
    return client.open(
        _url(op, world),
        method=op[0],
        data=_body_text(op, world),
        headers=_headers(op, world),
        content_type="application/json",
    )


@pytest.mark.parametrize("op", list(OPERATIONS), ids=OP_IDS)
def test_the_valid_body_succeeds_so_the_probes_reach_validation(client, world, op):
    resp = send_valid(client, op, world)
    assert 200 <= resp.status_code < 300, resp.get_data(as_text=True)


@pytest.mark.parametrize("op", list(OPERATIONS), ids=OP_IDS)
def test_a_body_that_is_not_a_json_object_is_refused(app, world, probe, op):
    before = snapshot(app)
    for label, data in MALFORMED_BODIES:
        probe.send(
            op[0],
            _url(op, world),
            data,
            _headers(op, world),
            what=f"{op[0]} {op[1]} body={label} ({data[:40]!r})",
        )
    probe.send(
        op[0],
        _url(op, world),
        b"",
        _headers(op, world),
        what=f"{op[0]} {op[1]} body=empty",
        must_refuse=op[1].split("/")[-1] not in ("api-keys", "secret"),  # optional bodies
    )
    probe.check()
    assert probe.rebuilt or changes(before, snapshot(app)) == []


@pytest.mark.parametrize(
    ("op", "name"), PROPERTY_CASES, ids=[f"{m} {p} {n}" for (m, p), n in PROPERTY_CASES]
)
def test_each_hostile_value_of_each_property_is_refused(app, world, probe, document, op, name):
    schema = _body_schema(document, op)["properties"][name]
    values = list(HOSTILE_VALUES)
    if schema.get("type") == "array":
        values += [
            (f"[{label}]", f"[{text}]") for label, text in HOSTILE_VALUES if label in STRING_LABELS
        ]
    before = snapshot(app)
    refused = [(label, text) for label, text in values if _must_refuse(name, schema, text)]
    tolerated = [(label, text) for label, text in values if not _must_refuse(name, schema, text)]
    for label, text in refused:
        _send_body(probe, op, {name: text}, what=f"{name}={label}", names=name)
    wrote = [] if probe.rebuilt else changes(before, snapshot(app))
    print(f"{op[0]} {op[1]} {name}: {probe.named_field}/{len(refused)} refusals name the field")
    for label, text in tolerated:
        _send_body(probe, op, {name: text}, what=f"{name}={label} (tolerable)", must_refuse=False)
    print("\n".join(probe.accepted))  # shown with -s: what was tolerated
    probe.check()
    assert wrote == [], "a refused value changed the database"
    assert probe.named_field > 0, "no 422 named the field: did the bodies reach validation?"


@pytest.mark.parametrize("op", list(OPERATIONS), ids=OP_IDS)
def test_unknown_properties_are_refused_by_name(app, world, probe, op):
    before = snapshot(app)
    for key, text in UNKNOWN_PROPERTIES:
        _send_body(
            probe, op, {key: text}, what=f"unknown property {key!r}", names=json.loads(f'"{key}"')
        )
    probe.check()
    assert probe.rebuilt or changes(before, snapshot(app)) == []
    assert probe.named_field > 0


@pytest.mark.parametrize(
    ("op", "param"),
    PATH_PARAM_CASES,
    ids=[f"{m} {p} {n}" for (m, p), n in PATH_PARAM_CASES],
)
def test_malformed_path_parameters_are_refused(app, world, probe, op, param):
    own = world.ids[OPERATIONS[op].params[param]]
    fill = {
        "other": world.other_ids[param],
        "self": own,
        "self_suffix": own.split("_", 1)[-1],
        "self_upper": own.upper(),
    }
    before = snapshot(app)
    for label, value in MALFORMED_PATH_VALUES:
        probe.send(
            op[0],
            _url(op, world, {param: value.format(**fill)}),
            _body_text(op, world),
            _headers(op, world),
            what=f"{op[0]} {op[1]} {param}={label}",
        )
    probe.check()
    assert probe.rebuilt or changes(before, snapshot(app)) == []


@pytest.mark.parametrize(
    "op",
    [op for op in OPERATIONS if OPERATIONS[op].actor],
    ids=[i for op, i in zip(OPERATIONS, OP_IDS) if OPERATIONS[op].actor],
)
def test_without_a_token_malformed_bodies_are_still_4xx(app, world, probe, op):
    before = snapshot(app)
    for label, data in MALFORMED_BODIES[:6]:
        probe.send(op[0], _url(op, world), data, {}, what=f"{op[0]} {op[1]} no token, body={label}")
    probe.check()
    assert probe.rebuilt or changes(before, snapshot(app)) == []


# --------------------------------------------------------------------------- query strings

QUERY_OPERATIONS: dict[str, tuple[Operation, tuple[str, ...]]] = {
    "/v1/partners/{partner_id}/grants": (
        Operation("p_owner", {"partner_id": "p"}, {}),
        ("include_revoked",),
    ),
    "/v1/clients/{client_id}/grants": (
        Operation("a_owner", {"client_id": "a"}, {}),
        ("include_revoked",),
    ),
    "/v1/support/accounts": (
        Operation("support_admin", {}, {}),
        ("email", "email_prefix", "id", "limit", "cursor"),
    ),
    "/v1/support/email-conflicts": (
        Operation("support_admin", {}, {}),
        ("limit", "cursor", "state"),
    ),
    "/v1/audit-events": (
        Operation("support_admin", {}, {}),
        ("actor", "target", "action", "since", "until", "limit", "cursor"),
    ),
    "/v1/partners/{partner_id}/clients": (
        Operation("p_owner", {"partner_id": "p"}, {}),
        ("limit", "cursor", "q", "grant_state"),
    ),
    "/v1/partners/{partner_id}/channels": (
        Operation("p_owner", {"partner_id": "p"}, {}),
        ("limit", "cursor", "status", "number", "client_id"),
    ),
    "/v1/clients/{client_id}/channels": (
        Operation("a_owner", {"client_id": "a"}, {}),
        ("limit", "cursor", "status", "number"),
    ),
    "/v1/partners/{partner_id}/webhook-deliveries": (
        Operation("p_owner", {"partner_id": "p"}, {}),
        ("limit", "cursor"),
    ),
    "/v1/partners/{partner_id}/members": (
        Operation("p_owner", {"partner_id": "p"}, {}),
        ("limit", "cursor"),
    ),
    "/v1/clients/{client_id}/members": (
        Operation("a_owner", {"client_id": "a"}, {}),
        ("limit", "cursor"),
    ),
}
QUERY_CASES = [(path, name) for path, (_, names) in QUERY_OPERATIONS.items() for name in names]

# Percent-encoded, as they travel in a URL.
HOSTILE_QUERY_VALUES: list[tuple[str, str]] = [
    ("empty", ""),
    ("whitespace", "%20%09%0A"),
    ("nul", "a%00b"),
    ("escape_sequence", "a%1B%5B31mb"),
    ("invalid_utf8", "%FF%FE"),
    ("lone_surrogate_utf8", "%ED%A0%80"),
    ("str_20000", "x" * 20000),
    ("minus_one", "-1"),
    ("huge_int", "9" * 5000),
    ("nan", "NaN"),
    ("overflowing_float", "1e400"),
    ("wildcards", "%25_%5C%2A"),
    ("quote", "x'%22"),
    ("unicode", "%C3%A9t%C3%A9_%F0%9F%92%A9"),
    ("date_like", "2026-13-45T99:99:99"),
    ("far_future", "9999-12-31T23:59:59Z"),
]


def test_every_query_parameter_is_probed(document):
    documented = {}
    for path, operations in document["paths"].items():
        parameters = operations.get("get", {}).get("parameters", [])
        names = tuple(sorted(p["name"] for p in parameters if p.get("in") == "query"))
        if path.startswith("/v1/") and names:
            documented[path] = names
    assert documented == {path: tuple(sorted(n)) for path, (_, n) in QUERY_OPERATIONS.items()}


def _read(probe: Probe, url: str, headers: dict, what: str) -> None:
    """A GET: any answer but a server error, a problem document if refused, nothing written."""
    before = snapshot(probe.app)
    seen = len(probe.tracebacks.seen)
    resp = probe.client.get(url, headers=headers)
    status = resp.status_code
    diff = changes(before, snapshot(probe.app))
    problem = f"{what}: {status} {resp.get_data(as_text=True)[:300]!r}"
    if status >= 500:
        tail = probe.tracebacks.seen[seen:]
        probe.failures.append(f"{problem} -- {tail[-1].strip().splitlines()[-1] if tail else ''}")
    elif status >= 400 and (error := Probe._problem_error(resp, status)):
        probe.failures.append(f"{problem} -- {error}")
    if diff:
        probe.failures.append(f"{problem} -- a read changed the database: {diff}")


@pytest.mark.parametrize(("path", "name"), QUERY_CASES, ids=[f"{p} {n}" for p, n in QUERY_CASES])
def test_hostile_query_values_are_answered_without_a_server_error(world, probe, path, name):
    spec, _ = QUERY_OPERATIONS[path]
    url = path.format(**{param: world.ids[key] for param, key in spec.params.items()})
    headers = dict(world.auth[spec.actor])
    # Authorised: a listing, or (account search, which needs a criterion) a validation error.
    assert probe.client.get(url, headers=headers).status_code in (200, 422)
    for label, value in HOSTILE_QUERY_VALUES:
        # A listing may well answer 200 (an empty page) to odd text; it must never fail.
        _read(probe, f"{url}?{name}={value}", headers, f"GET {url} {name}={label}")
    _read(probe, f"{url}?{name}=1&{name}=2", headers, f"GET {url} {name} twice")
    probe.check()
