"""Every write is on the audit log: the complete trail the README promises support staff.

For every state-changing ``/v1`` operation (POST, PUT, PATCH or DELETE, as ``/openapi.json``
documents it), every state-changing HTML form and every ``idp`` command that changes
accounts or clients, the valid request is made as its authorised actor (a command is
its own actor, ``system`` named by the command), and then:

(a) it succeeded;
(b) an audit event of the expected action names the right actor (the person's user id, or
    the machine token's client id) and, where there is one, the object acted upon;
(c) every event the request recorded has an action that the README's "Audit log" section
    lists;
(d) no event holds a secret: no raw API key, client or webhook secret, password, link
    token, bearer token, and no email address in clear (events carry ``email_hmac``).

Operations and commands that legitimately record nothing are in commented allow-lists; a
new one that is neither covered nor allow-listed fails the coverage tests below. The JSON operations
reuse ``tests/test_malformed_input.py``'s table and world, the forms reuse
``tests/test_hostile_forms.py``'s world and browser helpers.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask_migrate.cli import db as db_commands

from idp.audit.models import AuditEvent
from idp.extensions import db
from tests.factories import PASSWORD
from tests.oauth.conftest import BrowserClient, csrf_from
from tests.test_hostile_forms import (
    SIGNUP_PASSWORD,
    _consent_screen,
    _invitation,
    _reset_token,
    _signup_token,
    csrf_of,
    login,
)
from tests.test_hostile_forms import build_world as build_forms_world
from tests.test_malformed_input import (
    OPERATIONS,
    Operation,
    World,
    _body_text,
    _headers,
    _url,
    build_world,
    send_valid,
)

README = Path(__file__).resolve().parents[1] / "README.md"
WRITE_METHODS = ("post", "put", "patch", "delete")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
# Keys of a response or form whose values are secrets (at any depth).
SECRET_KEYS = re.compile(r"secret|api_key|password|token", re.I)
# Link secrets in an email body (verification, reset, invitation links).
LINK_TOKEN = re.compile(r"token=([A-Za-z0-9_\-.~%]{8,})")


def documented_actions() -> set[str]:
    """The actions the README's "Audit log" section lists (its table of recorded actions)."""
    text = README.read_text()
    section = text.split("\n### Audit log\n", 1)[1].split("\n## ", 1)[0]
    first_cells = re.findall(r"^\| (`[^|]+)\|", section, re.M)
    return {name for cell in first_cells for name in re.findall(r"`([a-z_]+\.[a-z_]+)`", cell)}


# --------------------------------------------------------------------------- observation


def _event_ids(app) -> set[str]:
    with app.app_context():
        ids = set(db.session.scalars(db.select(AuditEvent.id)))
        db.session.remove()
    return ids


def _events_since(app, seen: set[str]) -> list[dict]:
    with app.app_context():
        rows = db.session.scalars(db.select(AuditEvent).order_by(AuditEvent.id)).all()
        events = [
            {
                c: getattr(row, c)
                for c in (
                    "id",
                    "action",
                    "actor_type",
                    "actor_id",
                    "target_type",
                    "target_id",
                    "organization_id",
                    "before",
                    "after",
                    "reason",
                    "ticket",
                )
            }
            for row in rows
            if row.id not in seen
        ]
        db.session.remove()
    return events


def _outbox_link_tokens(app) -> set[str]:
    """Every link secret any queued email carries (they travel only in the email)."""
    from idp.outbox.models import OutboxMessage

    with app.app_context():
        bodies = db.session.scalars(db.select(OutboxMessage.body)).all()
        db.session.remove()
    return {m for body in bodies if body for m in LINK_TOKEN.findall(body)}


def _secret_values(value, key: str = "") -> set[str]:
    """String values under secret-looking keys, at any depth."""
    if isinstance(value, dict):
        return {s for k, v in value.items() for s in _secret_values(v, str(k))}
    if isinstance(value, list):
        return {s for v in value for s in _secret_values(v, key)}
    # A "..._at" key is a time about a secret (when it was rotated, until when it works).
    if isinstance(value, str) and SECRET_KEYS.search(key) and not key.endswith("_at"):
        return {value} if len(value) >= 8 else set()
    return set()


def _subject(headers: dict) -> str:
    """The ``sub`` of a bearer token: a person's user id, or a machine token's client id."""
    payload = headers["Authorization"].split()[1].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]


@dataclass
class Expect:
    """What the audit trail of one request must show."""

    actions: frozenset[str]  # one of these names the actor and the target
    actor: str | None  # user id or client id; None: the system (an anonymous request)
    target: str | None  # the object acted upon; None: not checked
    secrets: set[str]
    # Who ``actor`` is: a person or a machine client; ("system",) for an operator
    # command, named by ``actor`` (``clients set-hub``).
    actor_types: tuple[str, ...] = ("user", "client")


def check_trail(app, seen: set[str], expect: Expect, what: str) -> list[dict]:
    """(b), (c) and (d) for the events recorded since ``seen``."""
    events = _events_since(app, seen)
    shown = "\n".join(json.dumps(e, default=str) for e in events)
    assert events, f"{what}: no audit event was recorded"
    matching = [e for e in events if e["action"] in expect.actions]
    assert matching, f"{what}: none of {sorted(expect.actions)} among:\n{shown}"
    right = [
        e
        for e in matching
        if e["actor_id"] == expect.actor
        and (expect.actor is not None or e["actor_type"] in ("system", "anonymous"))
        and (expect.actor is None or e["actor_type"] in expect.actor_types)
        and (expect.target is None or e["target_id"] == expect.target)
    ]
    assert right, (
        f"{what}: no {sorted(expect.actions)} event names actor {expect.actor} "
        f"and target {expect.target}:\n{shown}"
    )
    documented = documented_actions()
    undocumented = sorted({e["action"] for e in events} - documented)
    assert not undocumented, f"{what}: actions missing from the README's list: {undocumented}"
    secrets = {s for s in expect.secrets | _outbox_link_tokens(app) if s and len(s) >= 8}
    for event in events:
        text = json.dumps(
            {k: v for k, v in event.items() if k not in ("id",)}, default=str, ensure_ascii=False
        )
        leaked = sorted(s[:12] + "..." for s in secrets if s in text)
        assert not leaked, f"{what}: {event['action']} holds a secret {leaked}: {text}"
        email = EMAIL.search(text)
        assert not email, f"{what}: {event['action']} holds an address in clear: {text}"
    return events


# --------------------------------------------------------------------------- the /v1 operations


REASON = "account reported compromised"


def _prepare_created(op: tuple[str, str], key: str, field: str = "id"):
    """Make the object an operation acts upon by calling ``op`` first; its id goes in ``key``."""

    def prepare(client, world: World) -> None:
        resp = send_valid(client, op, world)
        assert resp.status_code in (200, 201), resp.get_data(as_text=True)
        world.ids[key] = resp.get_json()[field]

    return prepare


OAUTH_CLIENTS = ("POST", "/v1/partners/{partner_id}/oauth-clients")
CLIENT_SECRET = ("POST", "/v1/partners/{partner_id}/oauth-clients/{client_id}/secret")
INVITATIONS = ("POST", "/v1/partners/{partner_id}/invitations")
CLIENT_KEYS = ("POST", "/v1/clients/{client_id}/channels/{channel_id}/api-keys")
PARTNER_KEYS = ("POST", "/v1/partners/{partner_id}/channels/{channel_id}/api-keys")
WEBHOOK = ("PUT", "/v1/partners/{partner_id}/webhook")


def _prepare_grant(client, world: World) -> None:
    resp = client.get(f"/v1/clients/{world.ids['a']}/grants", headers=world.auth["a_owner"])
    assert resp.status_code == 200, resp.get_data(as_text=True)
    [grant] = resp.get_json()
    world.ids["grant"] = grant["id"]


def _webhook_id(world: World) -> str:
    from idp.webhooks.models import WebhookEndpoint

    return db.session.scalar(
        db.select(WebhookEndpoint.id).where(WebhookEndpoint.partner_id == world.ids["p"])
    )


def _prepare_webhook(client, world: World) -> None:
    resp = send_valid(client, WEBHOOK, world)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    with client.application.app_context():
        world.ids["webhook"] = _webhook_id(world)


def _prepare_delivery(client, world: World) -> None:
    """A webhook endpoint, and one (failed) attempt at delivering an event to it."""
    from idp.ids import new_time_ordered_id
    from idp.outbox.models import OutboxMessage
    from idp.webhooks.models import WebhookAttempt
    from idp.webhooks.service import emit_partner_event

    _prepare_webhook(client, world)
    with client.application.app_context():
        message = emit_partner_event(world.ids["p"], "client_created", {"client_id": "cl_x"})
        db.session.flush()
        attempt = WebhookAttempt(
            id=new_time_ordered_id("wha"),
            partner_id=world.ids["p"],
            message_id=message.id,
            event_id=(message.payload or {}).get("id", message.id),
            event_type="client_created",
            url="https://hooks.partner.example/idp",
            status_code=500,
        )
        db.session.add(attempt)
        db.session.commit()
        world.ids["attempt"] = attempt.id
        assert db.session.get(OutboxMessage, message.id) is not None
        db.session.remove()


@dataclass(frozen=True)
class Write:
    """An audited /v1 write: the actions it records, and the object they must name."""

    actions: tuple[str, ...]
    # key of World.ids, "response:<field>" (an object the request created), a function of
    # (world, response body), or None
    target: str | Callable | None
    # for an operation without a JSON body (not in test_malformed_input.OPERATIONS)
    operation: Operation | None = None
    prepare: Callable | None = None  # (client, world): makes the object acted upon


API_WRITES: dict[tuple[str, str], Write] = {
    OAUTH_CLIENTS: Write(("oauth_client.created",), "response:client_id"),
    ("DELETE", "/v1/partners/{partner_id}/oauth-clients/{client_id}"): Write(
        ("oauth_client.deleted",),
        "oauth_client",
        Operation("p_owner", {"partner_id": "p", "client_id": "oauth_client"}, {}),
        _prepare_created(OAUTH_CLIENTS, "oauth_client", "client_id"),
    ),
    CLIENT_SECRET: Write(("oauth_client.secret_rotated",), "p_app"),
    ("DELETE", "/v1/partners/{partner_id}/oauth-clients/{client_id}/previous-secret"): Write(
        ("oauth_client.previous_secret_expired",),
        "p_app",
        Operation("p_owner", {"partner_id": "p", "client_id": "p_app"}, {}),
        _prepare_created(CLIENT_SECRET, "rotated_app", "client_id"),
    ),
    ("POST", "/v1/password-reset"): Write(("password_reset.requested",), "t_active"),
    INVITATIONS: Write(("invitation.created",), "response:id"),
    ("DELETE", "/v1/partners/{partner_id}/invitations/{invitation_id}"): Write(
        ("invitation.revoked",),
        "invitation",
        Operation("p_owner", {"partner_id": "p", "invitation_id": "invitation"}, {}),
        _prepare_created(INVITATIONS, "invitation"),
    ),
    CLIENT_KEYS: Write(("api_key.created",), "response:id"),
    ("DELETE", "/v1/clients/{client_id}/channels/{channel_id}/api-keys/{key_id}"): Write(
        ("api_key.revoked",),
        "key",
        Operation("a_owner", {"client_id": "a", "channel_id": "a_live", "key_id": "key"}, {}),
        _prepare_created(CLIENT_KEYS, "key"),
    ),
    PARTNER_KEYS: Write(("api_key.created",), "response:id"),
    ("DELETE", "/v1/partners/{partner_id}/channels/{channel_id}/api-keys/{key_id}"): Write(
        ("api_key.revoked",),
        "key",
        Operation("p_owner", {"partner_id": "p", "channel_id": "a_live", "key_id": "key"}, {}),
        _prepare_created(PARTNER_KEYS, "key"),
    ),
    ("DELETE", "/v1/clients/{client_id}/grants/{grant_id}"): Write(
        ("grant.revoked",),
        "grant",
        Operation("a_owner", {"client_id": "a", "grant_id": "grant"}, {}),
        _prepare_grant,
    ),
    ("DELETE", "/v1/clients/{client_id}/grants/{grant_id}/channels/{channel_id}"): Write(
        # Its only number: the partner stays connected with none, as a client without
        # numbers connects one; ending the connection is the grant's own DELETE.
        ("grant.changed",),
        "grant",
        Operation("a_owner", {"client_id": "a", "grant_id": "grant", "channel_id": "a_live"}, {}),
        _prepare_grant,
    ),
    ("POST", "/v1/partners/{partner_id}/consent-links"): Write(
        ("consent_link.created",), lambda world, answer: answer["url"].rsplit("/", 1)[1]
    ),
    ("POST", "/v1/support/accounts/{user_id}/email"): Write(
        ("account.email_reassigned",), "t_active"
    ),
    ("POST", "/v1/support/accounts/{user_id}/disable"): Write(("account.disabled",), "t_active"),
    ("POST", "/v1/support/accounts/{user_id}/enable"): Write(("account.enabled",), "t_disabled"),
    ("POST", "/v1/support/accounts/{user_id}/password-reset"): Write(
        ("account.password_reset_sent",), "t_active"
    ),
    ("POST", "/v1/support/accounts/{user_id}/end-sessions"): Write(
        ("account.sessions_ended",), "t_active"
    ),
    ("POST", "/v1/support/accounts/{user_id}/resend-verification"): Write(
        ("account.verification_resent",), "t_unverified"
    ),
    ("POST", "/v1/support/accounts/{user_id}/two-step-reset"): Write(
        ("account.two_step_reset",), "t_two_step"
    ),
    ("POST", "/v1/clients/{client_id}/wabas"): Write(("waba.created",), "response:id"),
    ("POST", "/v1/wabas/{waba_id}/verification"): Write(("waba.verification_changed",), "waba"),
    ("POST", "/v1/wabas/{waba_id}/channels"): Write(("channel.created",), "response:id"),
    ("POST", "/v1/channels/{channel_id}/status"): Write(("channel.status_changed",), "a_live"),
    WEBHOOK: Write(("webhook.url_set",), lambda world, answer: _webhook_id(world)),
    ("DELETE", "/v1/partners/{partner_id}/webhook"): Write(
        ("webhook.deleted",),
        "webhook",
        Operation("p_owner", {"partner_id": "p"}, {}),
        _prepare_webhook,
    ),
    ("POST", "/v1/partners/{partner_id}/webhook/rotate-secret"): Write(
        ("webhook.secret_rotated",),
        "webhook",
        Operation("p_owner", {"partner_id": "p"}, {}),
        _prepare_webhook,
    ),
    ("POST", "/v1/partners/{partner_id}/webhook-deliveries/{attempt_id}/redeliver"): Write(
        ("webhook.redelivered",),
        "attempt",
        Operation("p_owner", {"partner_id": "p", "attempt_id": "attempt"}, {}),
        _prepare_delivery,
    ),
    # The member's account is the target of both (the membership id is in before/after).
    ("PATCH", "/v1/partners/{partner_id}/members/{membership_id}"): Write(
        ("membership.role_changed",), "p_member"
    ),
    ("DELETE", "/v1/partners/{partner_id}/members/{membership_id}"): Write(
        # The owner removes the member; the member's token for the partner is revoked with
        # it, and that event's action must be on the README's list too.
        ("membership.removed",),
        "p_member",
        Operation("p_owner", {"partner_id": "p", "membership_id": "p_member_membership"}, {}),
    ),
}

# /v1 writes that record no audit event, each with the reason.
API_ALLOWED_UNAUDITED: dict[tuple[str, str], str] = {
    # Anonymous: only queues a verification email (an email token and an outbox row), or
    # tells an existing address's owner. No account exists until the link is used, and that
    # completion is audited (account.created, see FORMS). An event here would let anyone
    # fill the log.
    ("POST", "/v1/signup"): "queues a verification email only",
}

API_IDS = [f"{m} {p}" for m, p in API_WRITES]


def test_every_v1_write_is_covered_or_allowed(client):
    document = client.get("/openapi.json").get_json()
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        if path.startswith("/v1/")
        for method in operations
        if method in WRITE_METHODS
    }
    assert not set(API_WRITES) & set(API_ALLOWED_UNAUDITED)
    assert documented == set(API_WRITES) | set(API_ALLOWED_UNAUDITED), (
        f"not covered: {sorted(documented - set(API_WRITES) - set(API_ALLOWED_UNAUDITED))}; "
        f"no longer documented: {sorted(set(API_WRITES) | set(API_ALLOWED_UNAUDITED) - documented)}"
    )
    # Every JSON-body operation uses test_malformed_input's valid call; the rest bring theirs.
    for op, write in API_WRITES.items():
        assert (write.operation is None) == (op in OPERATIONS), op


@pytest.mark.parametrize("op", list(API_WRITES), ids=API_IDS)
def test_a_v1_write_is_audited(app, client, op):
    world = build_world(app)
    write = API_WRITES[op]
    if write.prepare:
        write.prepare(client, world)
    if write.operation is None:
        spec, url, body = OPERATIONS[op], _url(op, world), _body_text(op, world)
        headers = _headers(op, world)
    else:
        spec, body = write.operation, None
        url = op[1].format(**{name: world.ids[key] for name, key in spec.params.items()})
        headers = dict(world.auth[spec.actor]) if spec.actor else {}
    seen = _event_ids(app)
    resp = client.open(
        url, method=op[0], data=body, headers=headers, content_type="application/json"
    )
    assert 200 <= resp.status_code < 300, resp.get_data(as_text=True)  # (a)
    answer = resp.get_json(silent=True) or {}
    if callable(write.target):
        with app.app_context():
            target = write.target(world, answer)
    elif write.target and write.target.startswith("response:"):
        target = answer[write.target.split(":", 1)[1]]
    else:
        target = world.ids[write.target] if write.target else None
    secrets = _secret_values(answer) | _secret_values(json.loads(body or "{}"))
    secrets |= {h["Authorization"].split()[1] for h in world.auth.values()}
    check_trail(
        app,
        seen,
        Expect(
            frozenset(write.actions), _subject(headers) if spec.actor else None, target, secrets
        ),
        f"{op[0]} {op[1]}",
    )


# --------------------------------------------------------------------------- the HTML forms


def _user_id(app, email: str) -> str:
    from idp.accounts.models import User

    with app.app_context():
        user_id = db.session.scalar(db.select(User.id).where(User.email_normalized == email))
        db.session.remove()
    return user_id


def _grant_id(app, client_org: str) -> str | None:
    from idp.consent.models import ConsentGrant

    with app.app_context():
        grant = db.session.scalar(
            db.select(ConsentGrant.id)
            .where(ConsentGrant.client_id == client_org, ConsentGrant.revoked_at.is_(None))
            .order_by(ConsentGrant.created_at.desc())
        )
        db.session.remove()
    return grant


@dataclass
class Submission:
    """The last request of a form's flow, and what its trail must show."""

    send: Callable  # () -> response
    ok: Callable  # (response) -> bool: it succeeded
    actions: tuple[str, ...]
    actor: str | Callable | None  # an id, or (response) -> id (an account it creates)
    target: str | Callable | None
    secrets: set[str]


def _redirected(resp) -> bool:
    return resp.status_code in (302, 303)


def _page(resp) -> bool:
    return resp.status_code == 200


def form_login(app, w):
    browser = BrowserClient(app)
    token = csrf_of(browser)
    data = {"email": "owner@acme.example", "password": PASSWORD, "csrf_token": token}
    return Submission(
        lambda: browser.post("/login", data=data),
        _redirected,
        ("login.succeeded",),
        w.partner_owner,
        w.partner_owner,
        {PASSWORD},
    )


def form_logout(app, w):
    browser = login(app, "owner@acme.example")
    token = csrf_of(browser, "/account/password")
    return Submission(
        lambda: browser.post("/logout", data={"csrf_token": token}),
        lambda resp: resp.status_code in (200, 302, 303),
        ("login.signed_out",),
        w.partner_owner,
        w.partner_owner,
        {PASSWORD},
    )


def form_oauth_logout(app, w):
    browser = login(app, "owner@acme.example")
    page = browser.get("/oauth/logout", query_string={"client_id": "partner-hub"})
    assert page.status_code == 200, page.get_data(as_text=True)
    token = csrf_from(page.get_data(as_text=True))
    return Submission(
        lambda: browser.post(
            "/oauth/logout", data={"csrf_token": token, "client_id": "partner-hub"}
        ),
        lambda resp: resp.status_code in (200, 302, 303),
        ("login.signed_out",),
        w.partner_owner,
        w.partner_owner,
        {PASSWORD},
    )


def form_signup_verify(app, w):
    email = "pending@example.com"
    raw = _signup_token(app, email)
    browser = BrowserClient(app)
    page = browser.get("/signup/verify", query_string={"token": raw})
    token = csrf_from(page.get_data(as_text=True))
    data = {"csrf_token": token, "token": raw, "password": SIGNUP_PASSWORD}
    return Submission(
        lambda: browser.post("/signup/verify", data=data),
        lambda resp: resp.status_code in (200, 302, 303),
        ("account.created",),
        lambda resp: _user_id(app, email),
        lambda resp: _user_id(app, email),
        {raw, SIGNUP_PASSWORD},
    )


def form_password_reset(app, w):
    browser = BrowserClient(app)
    token = csrf_of(browser, "/password-reset")
    data = {"csrf_token": token, "email": "target@acme.example"}
    return Submission(
        lambda: browser.post("/password-reset", data=data),
        _page,
        ("password_reset.requested",),
        None,
        w.target,
        set(),
    )


NEW_PASSWORD = "a brand new long passphrase"


def _set_password(app, path: str, raw: str):
    """A browser on a set-password link's page; () -> the form's post with a new password."""
    browser = BrowserClient(app)
    page = browser.get(path, query_string={"token": raw})
    data = {
        "csrf_token": csrf_from(page.get_data(as_text=True)),
        "token": raw,
        "password": NEW_PASSWORD,
        "password_confirm": NEW_PASSWORD,
    }
    return lambda: browser.post(path, data=data)


def form_password_reset_confirm(app, w):
    raw = _reset_token(app, w.target)
    return Submission(
        _set_password(app, "/password-reset/confirm", raw),
        _page,
        ("password_reset.completed",),
        w.target,
        w.target,
        {raw, NEW_PASSWORD},
    )


def form_change_password(app, w):
    browser = login(app, "owner@bakery.example")
    token = csrf_of(browser, "/account/password")
    data = {
        "csrf_token": token,
        "current_password": PASSWORD,
        "password": NEW_PASSWORD,
        "password_confirm": NEW_PASSWORD,
    }
    return Submission(
        lambda: browser.post("/account/password", data=data),
        _page,
        ("password.changed",),
        w.shop_owner,
        w.shop_owner,
        {PASSWORD, NEW_PASSWORD},
    )


def form_end_other_sessions(app, w):
    login(app, "owner@bakery.example")  # the browser to sign out
    browser = login(app, "owner@bakery.example")
    token = csrf_of(browser, "/account/sessions")
    data = {"csrf_token": token, "current_password": PASSWORD, "login": "others"}
    return Submission(
        lambda: browser.post("/account/sessions", data=data),
        _page,
        ("account.sessions_ended",),
        w.shop_owner,
        w.shop_owner,
        {PASSWORD},
    )


def _enrolled(app, email: str):
    """A browser signed in as ``email`` with two-step sign-in on; its secret and codes."""
    from tests.mfa.helpers import enrol

    browser = login(app, email)
    secret, codes = enrol(browser)
    return browser, secret, codes


def form_second_step(kind: str):
    def flow(app, w):
        from tests.mfa.helpers import code_at, password_then

        _, secret, codes = _enrolled(app, "owner@acme.example")
        browser = BrowserClient(app)
        location = password_then(browser, "owner@acme.example").headers["Location"]
        token = csrf_of(browser, location)
        typed = {"code": code_at(secret)} if kind == "code" else {"recovery_code": codes[0]}
        used = ("login.recovery_code_used",) if kind == "recovery_code" else ()
        return Submission(
            lambda: browser.post(location, data={"csrf_token": token, **typed}),
            lambda resp: resp.status_code in (200, 302),
            ("login.succeeded", *used),
            w.partner_owner,
            w.partner_owner,
            {PASSWORD, secret, *codes},
        )

    return flow


def form_two_step_on(app, w):
    from tests.mfa.helpers import PAGE, SECRET, code_at, start

    browser = login(app, "owner@acme.example")
    secret = SECRET.search(start(browser).text).group(1)
    data = {"csrf_token": csrf_of(browser, PAGE), "step": "confirm", "code": code_at(secret)}
    return Submission(
        lambda: browser.post(PAGE, data=data),
        _page,
        ("account.two_step_enabled",),
        w.partner_owner,
        w.partner_owner,
        {PASSWORD, secret},
    )


def form_two_step_page(step: str, action: str):
    def flow(app, w):
        from tests.mfa.helpers import PAGE, code_at

        browser, secret, codes = _enrolled(app, "owner@acme.example")
        data = {
            "csrf_token": csrf_of(browser, PAGE),
            "step": step,
            "current_password": PASSWORD,
            "code": code_at(secret, 1),
        }
        return Submission(
            lambda: browser.post(PAGE, data=data),
            _page,
            (action,),
            w.partner_owner,
            w.partner_owner,
            {PASSWORD, secret, *codes},
        )

    return flow


def form_accept_invitation(app, w):
    email = "fresh@example.com"
    raw = _invitation(app, w, email)
    return Submission(
        _set_password(app, "/invitations/accept", raw),
        lambda resp: resp.status_code == 200 and "Welcome" in resp.get_data(as_text=True),
        ("invitation.accepted",),
        lambda resp: _user_id(app, email),
        None,
        {raw, NEW_PASSWORD},
    )


def _decision(app, w, decision: str, channels: list[str]):
    browser, action, token = _consent_screen(app, w)
    data = {"csrf_token": token, "decision": decision, "channels": channels}
    return browser, lambda: browser.post(action, data=data)


def form_consent_approve(app, w):
    _, send = _decision(app, w, "approve", w.channels[:1])
    return Submission(
        send,
        lambda resp: resp.status_code == 302 and "code=" in resp.headers["Location"],
        ("grant.created",),
        w.shop_owner,
        lambda resp: _grant_id(app, w.shop),
        {PASSWORD},
    )


def form_consent_deny(app, w):
    _, send = _decision(app, w, "deny", [])
    return Submission(
        send,
        lambda resp: resp.status_code == 302 and "error=access_denied" in resp.headers["Location"],
        ("consent.denied",),
        w.shop_owner,
        None,
        {PASSWORD},
    )


def _connected(app, w):
    """A grant of both numbers, and its owner on the connected-partners page."""
    browser, send = _decision(app, w, "approve", w.channels)
    assert send().status_code == 302
    grant = _grant_id(app, w.shop)
    page = browser.get("/client/connected-partners")
    assert page.status_code == 200, page.get_data(as_text=True)
    return browser, grant, csrf_from(page.get_data(as_text=True))


def form_revoke_grant(app, w):
    browser, grant, token = _connected(app, w)
    return Submission(
        lambda: browser.post(
            f"/client/connected-partners/{grant}/revoke", data={"csrf_token": token}
        ),
        _redirected,
        ("grant.revoked",),
        w.shop_owner,
        grant,
        {PASSWORD},
    )


def form_revoke_grant_channel(app, w):
    browser, grant, token = _connected(app, w)
    path = f"/client/connected-partners/{grant}/channels/{w.channels[0]}/revoke"
    return Submission(
        lambda: browser.post(path, data={"csrf_token": token}),
        _redirected,
        ("grant.changed",),
        w.shop_owner,
        grant,
        {PASSWORD},
    )


def _console(app, w, user_id: str):
    browser = login(app, "admin@support.example", hub="support")
    page = browser.get(f"/support/accounts/{user_id}")
    assert page.status_code == 200, page.get_data(as_text=True)
    return browser, csrf_from(page.get_data(as_text=True))


def form_reassign_email(app, w):
    browser, token = _console(app, w, w.target)
    data = {"csrf_token": token, "email": "moved@example.com", "ticket": "SUP-1", "reason": REASON}
    return Submission(
        lambda: browser.post(f"/support/accounts/{w.target}/email", data=data),
        _redirected,
        ("account.email_reassigned",),
        w.admin,
        w.target,
        {PASSWORD},
    )


CONTROL_ACTIONS = {
    "disable": "account.disabled",
    "enable": "account.enabled",
    "password_reset": "account.password_reset_sent",
    "end_sessions": "account.sessions_ended",
    "resend_verification": "account.verification_resent",
    "two_step_reset": "account.two_step_reset",
}


def _set_user(app, user_id: str, **values) -> None:
    from idp.accounts.models import User

    with app.app_context():
        user = db.session.get(User, user_id)
        for name, value in values.items():
            setattr(user, name, value)
        db.session.commit()
        db.session.remove()


def _done(app, control: str, w) -> str:
    """What the console says once ``control`` was done to the target account."""
    from idp.accounts.models import User
    from idp.support.pages import CONTROL_DONE

    with app.app_context():
        email = db.session.get(User, w.target).email
        db.session.remove()
    return CONTROL_DONE[control].format(email=email)


def _flashed(browser, user_id: str) -> list[str]:
    """The messages the console page shows after a control (it always answers 303)."""
    page = browser.get(f"/support/accounts/{user_id}").get_data(as_text=True)
    return re.findall(r'role="status">([^<]*)</p>', page)


def form_control(name: str):
    def flow(app, w):
        if name == "enable":
            _set_user(app, w.target, status="disabled")
        if name == "resend_verification":
            _set_user(app, w.target, email_verified=False)
        if name == "two_step_reset":
            _enrolled(app, "target@acme.example")
        browser, token = _console(app, w, w.target)
        data = {"csrf_token": token, "action": name, "ticket": "SUP-1", "reason": REASON}
        return Submission(
            lambda: browser.post(f"/support/accounts/{w.target}/controls", data=data),
            lambda resp: (
                resp.status_code == 303 and _flashed(browser, w.target) == [_done(app, name, w)]
            ),
            (CONTROL_ACTIONS[name],),
            w.admin,
            w.target,
            {PASSWORD},
        )

    return flow


def form_verify_email(app, w):
    from idp.support.verification import send_verification

    with app.app_context():
        from idp.accounts.models import User

        send_verification(db.session.get(User, w.target))
        db.session.commit()
        db.session.remove()
    [raw] = _outbox_link_tokens(app)
    browser = BrowserClient(app)
    page = browser.get("/verify-email", query_string={"token": raw})
    token = csrf_from(page.get_data(as_text=True))
    return Submission(
        lambda: browser.post("/verify-email", data={"csrf_token": token, "token": raw}),
        _page,
        ("account.email_verified",),
        w.target,
        w.target,
        {raw},
    )


def form_oauth_revoke(app, w):
    from tests.test_hostile_forms import _hub_tokens

    _, tokens, _, _ = _hub_tokens(app)
    http = BrowserClient(app)
    data = {"token": tokens["refresh_token"], "client_id": "partner-hub"}
    return Submission(
        lambda: http.post("/oauth/revoke", data=data),
        _page,
        ("token_family.revoked",),
        "partner-hub",
        None,
        {tokens["refresh_token"], tokens["access_token"], tokens.get("id_token", "")},
    )


# Each form (by endpoint; one endpoint may have several ways to be used) -> its flow.
FORMS: dict[str, Callable] = {
    "login.login": form_login,
    "login.logout": form_logout,
    "oauth.logout": form_oauth_logout,
    "oauth.revoke": form_oauth_revoke,
    "accounts_pages.signup_verify": form_signup_verify,
    "accounts_pages.password_reset": form_password_reset,
    "accounts_pages.password_reset_confirm": form_password_reset_confirm,
    "account_pages.change_password": form_change_password,
    "account_pages.sessions_page": form_end_other_sessions,
    "login.second_step code": form_second_step("code"),
    "login.second_step recovery_code": form_second_step("recovery_code"),
    "mfa_pages.two_step on": form_two_step_on,
    "mfa_pages.two_step codes": form_two_step_page("codes", "account.recovery_codes_regenerated"),
    "mfa_pages.two_step off": form_two_step_page("off", "account.two_step_disabled"),
    "orgs_pages.accept": form_accept_invitation,
    "consent_pages.decide approve": form_consent_approve,
    "consent_pages.decide deny": form_consent_deny,
    "consent_pages.revoke_grant": form_revoke_grant,
    "consent_pages.revoke_grant_channel": form_revoke_grant_channel,
    "support.reassign_email": form_reassign_email,
    **{f"support.account_control {name}": form_control(name) for name in CONTROL_ACTIONS},
    "support.verify_email": form_verify_email,
}

# State-changing endpoints outside /v1 that record no audit event, each with the reason.
FORMS_ALLOWED_UNAUDITED: dict[str, str] = {
    # Anonymous sign-ups (the page, a consent link's, a partner request's) only queue a
    # verification email, as POST /v1/signup does; the completion is audited
    # (accounts_pages.signup_verify: account.created).
    "accounts_pages.signup": "queues a verification email only",
    "consent_pages.open_link": "a consent link's sign-up: queues a verification email only",
    "consent_pages.signup": "a partner request's sign-up: queues a verification email only",
    # Steps of an audited login: choosing the organization (or switching it on
    # /oauth/authorize) issues a one-time authorization code and remembers the choice.
    "login.choose_organization": "an authorization code of an audited login",
    "oauth.authorize": "an authorization code of an audited login",
    # The OAuth token endpoint issues, rotates and exchanges tokens of audited logins and
    # consents; a reused code or refresh token revokes its family, which is audited
    # (token_family.revoked).
    "oauth.token": "issues tokens of audited logins and consents",
    # Reads that OAuth lets a caller send by POST: nothing is written.
    "oauth.introspect": "a read",
    "oauth.userinfo": "a read",
    # The demo's webhook receiver (not served in production) keeps what it got in memory.
    "demo_webhooks.receive": "demo only",
    "demo_oauth.callback": "demo only: shows the authorization response a form_post delivers",
}

FORM_IDS = list(FORMS)


def test_every_form_is_covered_or_allowed(app):
    endpoints = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if not rule.rule.startswith(("/v1/", "/static/"))
        and rule.methods & {m.upper() for m in WRITE_METHODS}
    }
    covered = {name.split(" ", 1)[0] for name in FORMS}
    assert not covered & set(FORMS_ALLOWED_UNAUDITED)
    assert endpoints == covered | set(FORMS_ALLOWED_UNAUDITED), (
        f"not covered: {sorted(endpoints - covered - set(FORMS_ALLOWED_UNAUDITED))}; "
        f"gone: {sorted(covered | set(FORMS_ALLOWED_UNAUDITED) - endpoints)}"
    )


@pytest.mark.parametrize("name", FORM_IDS)
def test_a_form_is_audited(app, name):
    w = build_forms_world(app)
    sub = FORMS[name](app, w)
    seen = _event_ids(app)
    resp = sub.send()
    assert sub.ok(resp), (resp.status_code, resp.headers.get("Location"), resp.text[:500])
    actor = sub.actor(resp) if callable(sub.actor) else sub.actor
    target = sub.target(resp) if callable(sub.target) else sub.target
    secrets = set(sub.secrets) | {w.platform_secret}
    location = resp.headers.get("Location", "")
    secrets |= {v for values in parse_qs(urlsplit(location).query).values() for v in values}
    check_trail(app, seen, Expect(frozenset(sub.actions), actor, target, secrets), name)


# --------------------------------------------------------------------------- the idp commands


@dataclass
class Run:
    """One operator command, run once its object exists, and what its trail must show."""

    args: list[str]
    actions: tuple[str, ...]
    target: Callable[[str], str | None] | str | None  # from the command's output
    secrets: set[str]


def _invoke(app, args: list[str]) -> str:
    from idp.cli import main

    result = app.test_cli_runner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return result.output


def _printed(output: str, name: str) -> str | None:
    return next(
        (line.split(": ", 1)[1] for line in output.splitlines() if line.startswith(f"{name}: ")),
        None,
    )


def _platform_client(app) -> tuple[str, str]:
    output = _invoke(
        app, ["clients", "create-platform", "--name", "Provisioning", "--scope", "channels:read"]
    )
    return _printed(output, "client_id"), _printed(output, "client_secret")


def command_set_hub(app, tmp_path):
    uri = "https://partner.example.com/callback"
    args = ["clients", "set-hub", "--hub", "partner", "--redirect-uri", uri]
    return Run(args, ("oauth_client.created",), "partner-hub", set())


def command_create_platform(app, tmp_path):
    args = ["clients", "create-platform", "--name", "Provisioning", "--scope", "channels:write"]
    return Run(args, ("oauth_client.created",), lambda output: _printed(output, "client_id"), set())


def command_rotate_secret(app, tmp_path):
    client_id, secret = _platform_client(app)
    args = ["clients", "rotate-secret", client_id, "--grace", "24h"]
    return Run(args, ("oauth_client.secret_rotated",), client_id, {secret})


def command_expire_previous_secret(app, tmp_path):
    client_id, secret = _platform_client(app)
    rotated = _invoke(app, ["clients", "rotate-secret", client_id, "--grace", "1h"])
    secrets = {secret, _printed(rotated, "client_secret")}
    args = ["clients", "expire-previous-secret", client_id]
    return Run(args, ("oauth_client.previous_secret_expired",), client_id, secrets)


def command_delete_client(app, tmp_path):
    client_id, secret = _platform_client(app)
    return Run(["clients", "delete", client_id], ("oauth_client.deleted",), client_id, {secret})


def command_rotate_keys(app, tmp_path):
    def first_published(output: str) -> str:
        return output.split()[1]  # "published <kid> (<alg>); it signs from ..."

    return Run(["keys", "rotate"], ("signing_key.published",), first_published, set())


def command_revoke_key(app, tmp_path):
    from idp.keys.service import active_key

    with app.app_context():
        kid = active_key().kid
        db.session.remove()
    args = ["keys", "revoke", kid, "--ticket", "INC-7", "--reason", "private key leaked"]
    return Run(args, ("signing_key.revoked",), kid, set())


def command_create_staff(app, tmp_path):
    args = ["support", "create-staff", "--email", "new.admin@example.com", "--name", "Ada"]
    return Run(
        [*args, "--role", "admin"],
        ("account.created",),
        lambda output: output.split()[1],  # "created usr_... (admin); ..."
        set(),
    )


def command_import_accounts(app, tmp_path):
    path = tmp_path / "accounts.jsonl"
    line = {"email": "old@example.com", "name": "Old", "organization": "Shop", "role": "owner"}
    path.write_text(json.dumps(line) + "\n")
    args = ["import-accounts", "--hub", "client", str(path)]
    return Run(args, ("accounts.import_completed",), None, set())


def command_end_all_sessions(app, tmp_path):
    args = ["sessions", "end-all", "--ticket", "INC-9", "--reason", "session store copied"]
    return Run(args, ("accounts.sessions_ended",), None, set())


# Each command that changes accounts, organizations or clients -> its run.
COMMANDS: dict[str, Callable] = {
    "clients set-hub": command_set_hub,
    "clients create-platform": command_create_platform,
    "clients rotate-secret": command_rotate_secret,
    "clients expire-previous-secret": command_expire_previous_secret,
    "clients delete": command_delete_client,
    "support create-staff": command_create_staff,
    "import-accounts": command_import_accounts,
    "keys rotate": command_rotate_keys,
    "keys revoke": command_revoke_key,
    "sessions end-all": command_end_all_sessions,
}

# Commands that record no audit event, each with the reason.
COMMANDS_ALLOWED_UNAUDITED: dict[str, str] = {
    # Reads.
    "audit export": "a read",
    "clients list": "a read",
    "keys list": "a read",
    "outbox list": "a read",
    "outbox show": "a read",
    "routes": "a read",
    # Serving, delivering and housekeeping: no account, organization or client changes.
    "run": "serves the application",
    "shell": "an interactive session (what it changes goes through the audited services)",
    "worker": "delivers queued emails and webhooks, purges what outlived any use",
    "purge": "deletes rows past use; audit events are never purged",
    # The demo writes demo data, never run in production.
    "demo": "demo data only",
    # Schema migrations (Flask-Migrate).
    **{f"db {name}": "schema migrations" for name in db_commands.commands},
}


def _command_names(group, prefix: str = "") -> set[str]:
    import click

    names: set[str] = set()
    for name, command in group.commands.items():
        full = f"{prefix} {name}".strip()
        names |= _command_names(command, full) if isinstance(command, click.Group) else {full}
    return names


def test_every_command_is_covered_or_allowed():
    from idp.cli import main

    commands = _command_names(main)
    assert not set(COMMANDS) & set(COMMANDS_ALLOWED_UNAUDITED)
    known = set(COMMANDS) | set(COMMANDS_ALLOWED_UNAUDITED)
    assert commands == known, (
        f"not covered: {sorted(commands - known)}; gone: {sorted(known - commands)}"
    )


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_command_is_audited(app, tmp_path, monkeypatch, name):
    monkeypatch.delenv("SUDO_USER", raising=False)
    monkeypatch.setenv("LOGNAME", "ops.person")
    run = COMMANDS[name](app, tmp_path)
    seen = _event_ids(app)
    output = _invoke(app, run.args)
    target = run.target(output) if callable(run.target) else run.target
    secrets = run.secrets | {_printed(output, "client_secret") or ""}
    expect = Expect(frozenset(run.actions), name, target, secrets, actor_types=("system",))
    trail = check_trail(app, seen, expect, name)
    # Each event names who ran the command, whichever service recorded it.
    assert {(e["action"], (e["after"] or {}).get("os_user")) for e in trail} == {
        (e["action"], "ops.person") for e in trail
    }
