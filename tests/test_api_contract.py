"""``/openapi.json`` tells the truth: every /v1 operation answers as the document says.

For every operation in the document there is a case below (a new operation without one fails
``test_every_documented_operation_has_a_case``).  Each case performs a valid request and the
cheap documented refusals: 401 without a token, 403 for an actor whose role does not allow
it, 404 for a well-formed but unknown id, 422 for a bad body or query, 409 where the document
promises one, 415 for a body that is not JSON, 400 for malformed JSON and 413 for an oversized
body.  Every operation is also sent to an app whose database cannot be reached (503), and the
rate-limited ones past their limit (429).  Each answer must carry a status the operation lists,
the headers the document says it carries (``Retry-After``), a body that validates
against the schema documented for that status (strictly: a property the schema does not name
is a failure, so nothing leaks unannounced), and every error must be ``application/problem+json``
with the expected ``code``, one of those the document lists for that operation and status.

The JSON-body operations, their valid bodies and actors come from ``test_malformed_input``.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field

import pytest
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker

from idp import create_app
from idp.channels.models import Channel
from idp.errors import PROBLEM_JSON
from idp.extensions import db
from idp.outbox import worker
from idp.webhooks.service import emit_partner_event
from policies.consent import SCOPE_CHANNELS_READ
from tests.conftest import app_config
from tests.consent.factories import make_grant
from tests.factories import bearer_for, make_channel, make_org, make_user
from tests.test_api_problem_codes import every_reached_answer
from tests.test_malformed_input import OPERATIONS, World, _fill, build_world
from tests.webhooks.conftest import receiver  # noqa: F401 (a fixture)

# --------------------------------------------------------------------------- the cases

SAME = object()  # an error case that keeps the valid request's actor / params / body


@dataclass(frozen=True)
class Err:
    """One documented refusal: what to change in the valid request, and the expected answer."""

    status: int
    code: str
    actor: object = SAME  # key of World.auth, None for no token
    params: dict = field(default_factory=dict)  # path parameter -> literal or "{key}"
    body: object = SAME
    query: str | None = None
    after: bool = False  # sent after the valid request (a repeat that now conflicts)
    headers: dict | None = None  # instead of the case's headers
    content: tuple[bytes, str] | None = None  # a raw body and its media type, instead of JSON


@dataclass(frozen=True)
class Case:
    """A valid request of one operation (201/200/202/204) and its documented refusals."""

    actor: str | None
    params: dict = field(default_factory=dict)  # path parameter -> key of World.ids
    body: dict | None = None
    query: str = ""
    errors: tuple[Err, ...] = ()
    headers: dict = field(default_factory=dict)  # name -> "{key}" of World.ids
    not_found: str = "not_found"  # the code of an unknown id's 404


P, A, CH = {"partner_id": "p"}, {"client_id": "a"}, {"channel_id": "a_live"}
USER = "t_active"
SUPPORT_FORBIDDEN = Err(403, "forbidden", actor="p_owner")
SUPPORT_ACTION = {"ticket": "SUP-78", "reason": "address moved"}
NOT_A_MEMBER = Err(404, "not_found", actor="q_owner")
MEMBER_FORBIDDEN = Err(403, "forbidden", actor="p_member")
PROVISIONING_ONLY = Err(403, "forbidden", actor="p_owner")
NO_SCOPE = Err(403, "forbidden", actor="p_machine")  # the partner's service, without the scope
BAD_CURSOR = Err(422, "invalid_cursor", query="cursor=not-a-cursor")  # every listing
BAD_LIMIT = Err(422, "invalid_input", query="limit=0")
BAD_FLAG = Err(422, "invalid_input", query="include_revoked=perhaps")
NOT_GRANTED = Err(403, "grant_required", params={"channel_id": "{a_terminated}"})
NO_KEY_SCOPE = Err(403, "scope_required", params={"channel_id": "{b_live}"})
NO_WEBHOOK = Err(404, "no_webhook_endpoint", actor="q_owner", params={"partner_id": "{q}"})
OWN_MEMBERSHIP = {"membership_id": "{p_owner_membership}"}  # p_owner's, the only owner's


def _body_op(method: str, path: str, *errors: Err) -> tuple[tuple[str, str], Case]:
    """A case for an operation of ``test_malformed_input``'s OPERATIONS (its valid body)."""
    op = OPERATIONS[(method, path)]
    not_found = "account_not_found" if "{user_id}" in path else "not_found"
    return (method, path), Case(op.actor, op.params, op.body, errors=errors, not_found=not_found)


CASES: dict[tuple[str, str], Case] = dict(
    [
        # ----------------------------------------------------------------- accounts
        _body_op("POST", "/v1/signup"),
        _body_op("POST", "/v1/password-reset"),
        # ----------------------------------------------------------------- partner OAuth clients
        _body_op(
            "POST",
            "/v1/partners/{partner_id}/oauth-clients",
            MEMBER_FORBIDDEN,
            Err(422, "invalid_redirect_uri", body={"name": "x", "redirect_uris": ["http://x.io"]}),
            Err(422, "invalid_scope", body={"name": "x", "scope": "channels:write"}),
        ),
        (
            ("GET", "/v1/partners/{partner_id}/oauth-clients"),
            Case("p_owner", P, errors=(NOT_A_MEMBER, MEMBER_FORBIDDEN)),
        ),
        (
            ("DELETE", "/v1/partners/{partner_id}/oauth-clients/{client_id}"),
            Case(
                "p_owner",
                {**P, "client_id": "p_app"},
                errors=(MEMBER_FORBIDDEN, Err(404, "not_found", after=True)),
            ),
        ),
        _body_op(
            "POST",
            "/v1/partners/{partner_id}/oauth-clients/{client_id}/secret",
            MEMBER_FORBIDDEN,
            Err(422, "invalid_input", body={"previous_secret_expires_in": 604801}),
        ),
        (
            ("DELETE", "/v1/partners/{partner_id}/oauth-clients/{client_id}/previous-secret"),
            Case("p_owner", {**P, "client_id": "p_app"}, errors=(MEMBER_FORBIDDEN,)),
        ),
        # ----------------------------------------------------------------- invitations
        _body_op(
            "POST",
            "/v1/partners/{partner_id}/invitations",
            MEMBER_FORBIDDEN,
            Err(409, "invitation_pending", after=True),
            Err(409, "already_member", body={"email": "{p_member_email}", "role": "owner"}),
        ),
        (
            ("GET", "/v1/partners/{partner_id}/invitations"),
            Case("p_owner", P, errors=(NOT_A_MEMBER, MEMBER_FORBIDDEN)),
        ),
        (
            ("DELETE", "/v1/partners/{partner_id}/invitations/{invitation_id}"),
            Case(
                "p_owner",
                {**P, "invitation_id": "invitation"},
                errors=(MEMBER_FORBIDDEN,),
            ),
        ),
        # ----------------------------------------------------------------- API keys
        _body_op(
            "POST",
            "/v1/clients/{client_id}/channels/{channel_id}/api-keys",
            Err(403, "channel_status", params={"channel_id": "{a_terminated}"}),
        ),
        (
            ("GET", "/v1/clients/{client_id}/channels/{channel_id}/api-keys"),
            Case("a_owner", {**A, **CH}),
        ),
        (
            ("DELETE", "/v1/clients/{client_id}/channels/{channel_id}/api-keys/{key_id}"),
            Case("a_owner", {**A, **CH, "key_id": "a_key"}),
        ),
        _body_op(
            "POST",
            "/v1/partners/{partner_id}/channels/{channel_id}/api-keys",
            NOT_A_MEMBER,
            NO_SCOPE,
            NOT_GRANTED,
            NO_KEY_SCOPE,
            Err(403, "channel_status", params={"channel_id": "{c_suspended}"}),
        ),
        (
            ("GET", "/v1/partners/{partner_id}/channels/{channel_id}/api-keys"),
            Case(
                "p_owner",
                {**P, **CH},
                errors=(NOT_A_MEMBER, NO_SCOPE, NOT_GRANTED, NO_KEY_SCOPE),
            ),
        ),
        (
            ("DELETE", "/v1/partners/{partner_id}/channels/{channel_id}/api-keys/{key_id}"),
            Case(
                "p_owner",
                {**P, **CH, "key_id": "p_key"},
                errors=(NO_SCOPE, NOT_GRANTED, NO_KEY_SCOPE),
            ),
        ),
        (
            ("GET", "/v1/api-keys/check"),
            Case(
                None,
                headers={"D360-API-KEY": "{key_text}"},
                errors=(Err(401, "invalid_api_key", headers={"D360-API-KEY": "d360_nope"}),),
            ),
        ),
        # ----------------------------------------------------------------- grants and consent
        (
            ("GET", "/v1/partners/{partner_id}/grants"),
            Case("p_owner", P, errors=(NOT_A_MEMBER, NO_SCOPE, BAD_FLAG)),
        ),
        (
            ("GET", "/v1/clients/{client_id}/grants"),
            Case("a_owner", A, errors=(Err(404, "not_found", actor="p_owner"), BAD_FLAG)),
        ),
        (
            ("DELETE", "/v1/clients/{client_id}/grants/{grant_id}"),
            Case(
                "a_owner",
                {**A, "grant_id": "grant"},
                errors=(Err(403, "grant_revoked", after=True),),
            ),
        ),
        (
            ("DELETE", "/v1/clients/{client_id}/grants/{grant_id}/channels/{channel_id}"),
            Case(
                "a_owner",
                {**A, **CH, "grant_id": "grant"},
                errors=(Err(403, "grant_revoked", params={"grant_id": "{q_grant}"}),),
            ),
        ),
        _body_op("POST", "/v1/partners/{partner_id}/consent-links", NOT_A_MEMBER, NO_SCOPE),
        # ----------------------------------------------------------------- support
        (
            ("GET", "/v1/support/accounts"),
            Case(
                "support_admin",
                query="email_prefix=target",
                errors=(
                    SUPPORT_FORBIDDEN,
                    Err(422, "invalid_input", query="limit=0"),
                    Err(422, "invalid_cursor", query="email_prefix=target&cursor=not-a-cursor"),
                ),
            ),
        ),
        (
            ("GET", "/v1/support/accounts/{user_id}"),
            Case(
                "support_admin",
                {"user_id": USER},
                errors=(SUPPORT_FORBIDDEN,),
                not_found="account_not_found",
            ),
        ),
        _body_op(
            "POST",
            "/v1/support/accounts/{user_id}/email",
            SUPPORT_FORBIDDEN,
            Err(409, "email_taken", body={**SUPPORT_ACTION, "email": "{taken_email}"}),
            Err(422, "email_unchanged", body={**SUPPORT_ACTION, "email": "{t_active_email}"}),
        ),
        _body_op(
            "POST",
            "/v1/support/accounts/{user_id}/disable",
            SUPPORT_FORBIDDEN,
            Err(409, "account_state", after=True),
        ),
        _body_op(
            "POST",
            "/v1/support/accounts/{user_id}/enable",
            SUPPORT_FORBIDDEN,
            Err(409, "account_state", after=True),
        ),
        _body_op(
            "POST",
            "/v1/support/accounts/{user_id}/password-reset",
            SUPPORT_FORBIDDEN,
            Err(409, "account_state", params={"user_id": "{t_disabled}"}),
        ),
        _body_op("POST", "/v1/support/accounts/{user_id}/end-sessions", SUPPORT_FORBIDDEN),
        _body_op(
            "POST",
            "/v1/support/accounts/{user_id}/resend-verification",
            SUPPORT_FORBIDDEN,
            Err(409, "account_state", params={"user_id": "{t_active}"}),
        ),
        _body_op(
            "POST",
            "/v1/support/accounts/{user_id}/two-step-reset",
            SUPPORT_FORBIDDEN,
            Err(403, "forbidden", actor="support_agent"),
            Err(409, "account_state", after=True),
        ),
        (
            ("GET", "/v1/support/email-conflicts"),
            Case("support_admin", errors=(SUPPORT_FORBIDDEN, BAD_CURSOR, BAD_LIMIT)),
        ),
        (
            ("GET", "/v1/audit-events"),
            Case(
                "support_admin",
                errors=(
                    SUPPORT_FORBIDDEN,
                    Err(403, "forbidden", actor="support_agent"),
                    BAD_CURSOR,
                    BAD_LIMIT,
                ),
            ),
        ),
        # ----------------------------------------------------------------- channels
        (
            ("GET", "/v1/partners/{partner_id}/clients"),
            Case("p_owner", P, errors=(NOT_A_MEMBER, NO_SCOPE, BAD_CURSOR, BAD_LIMIT)),
        ),
        (
            ("GET", "/v1/partners/{partner_id}/channels"),
            Case("p_owner", P, errors=(NOT_A_MEMBER, NO_SCOPE, BAD_CURSOR, BAD_LIMIT)),
        ),
        (
            ("GET", "/v1/partners/{partner_id}/channels/{channel_id}"),
            Case("p_owner", {**P, **CH}, errors=(NOT_A_MEMBER, NO_SCOPE)),
        ),
        (("GET", "/v1/clients/{client_id}/wabas"), Case("a_owner", A)),
        _body_op("POST", "/v1/clients/{client_id}/wabas", PROVISIONING_ONLY),
        (
            ("GET", "/v1/clients/{client_id}/channels"),
            Case("a_owner", A, errors=(BAD_CURSOR, BAD_LIMIT)),
        ),
        (("GET", "/v1/clients/{client_id}/channels/{channel_id}"), Case("a_owner", {**A, **CH})),
        _body_op("POST", "/v1/wabas/{waba_id}/verification", PROVISIONING_ONLY),
        _body_op(
            "POST",
            "/v1/wabas/{waba_id}/channels",
            PROVISIONING_ONLY,
            Err(409, "number_in_use", after=True),
            Err(422, "invalid_phone_number", body={"phone_number": "+1 555", "display_name": "x"}),
        ),
        _body_op(
            "POST",
            "/v1/channels/{channel_id}/status",
            PROVISIONING_ONLY,
            Err(409, "illegal_transition", body={"status": "created", "reason": "x"}, after=True),
        ),
        # ----------------------------------------------------------------- webhooks
        _body_op(
            "PUT",
            "/v1/partners/{partner_id}/webhook",
            MEMBER_FORBIDDEN,
            Err(422, "invalid_webhook_url", body={"url": "http://hooks.example/events"}),
        ),
        (
            ("GET", "/v1/partners/{partner_id}/webhook"),
            Case("p_owner", P, errors=(NOT_A_MEMBER, NO_SCOPE, NO_WEBHOOK)),
        ),
        (
            ("DELETE", "/v1/partners/{partner_id}/webhook"),
            Case("p_owner", P, errors=(MEMBER_FORBIDDEN, NO_WEBHOOK)),
        ),
        (
            ("POST", "/v1/partners/{partner_id}/webhook/rotate-secret"),
            Case("p_owner", P, errors=(MEMBER_FORBIDDEN, NO_WEBHOOK)),
        ),
        (
            ("GET", "/v1/partners/{partner_id}/webhook-deliveries"),
            Case("p_owner", P, errors=(NOT_A_MEMBER, NO_SCOPE, BAD_CURSOR, BAD_LIMIT)),
        ),
        (
            ("POST", "/v1/partners/{partner_id}/webhook-deliveries/{attempt_id}/redeliver"),
            Case("p_owner", {**P, "attempt_id": "attempt"}, errors=(MEMBER_FORBIDDEN,)),
        ),
        # ----------------------------------------------------------------- members
        (
            ("GET", "/v1/partners/{partner_id}/members"),
            Case("p_owner", P, errors=(NOT_A_MEMBER, NO_SCOPE, BAD_CURSOR, BAD_LIMIT)),
        ),
        (
            ("GET", "/v1/clients/{client_id}/members"),
            Case(
                "a_owner",
                A,
                errors=(Err(404, "not_found", actor="p_owner"), BAD_CURSOR, BAD_LIMIT),
            ),
        ),
        _body_op(
            "PATCH",
            "/v1/partners/{partner_id}/members/{membership_id}",
            MEMBER_FORBIDDEN,  # a member making themselves owner
            NOT_A_MEMBER,
            NO_SCOPE,
            Err(422, "invalid_input", body={"role": "admin"}),
            # p_owner, the partner's only owner, stepping down (before p_member's promotion)
            Err(409, "last_owner", params=OWN_MEMBERSHIP, body={"role": "member"}),
        ),
        (
            ("DELETE", "/v1/partners/{partner_id}/members/{membership_id}"),
            Case(
                "p_owner",
                {**P, "membership_id": "p_member_membership"},
                errors=(
                    # A member may leave, but not remove another member (here the owner).
                    Err(403, "forbidden", actor="p_member", params=OWN_MEMBERSHIP),
                    NOT_A_MEMBER,
                    NO_SCOPE,
                    Err(409, "last_owner", params=OWN_MEMBERSHIP),  # the only owner leaving
                    Err(404, "not_found", after=True),
                ),
            ),
        ),
    ]
)

CASE_IDS = [f"{m} {p}" for m, p in CASES]

# --------------------------------------------------------------------------- the world


def contract_world(app, client, receiver) -> World:  # noqa: F811 (the fixture's value)
    """``test_malformed_input``'s world, more actors, and one object of each kind with an id."""
    world = build_world(app)
    ids, auth = world.ids, world.auth
    with app.app_context():
        from idp.orgs.models import Organization

        p = db.session.get(Organization, ids["p"])
        a = db.session.get(Organization, ids["a"])
        q = make_org("partner", "Partner Q")
        a_member = make_user("client", a, "member")
        q_owner = make_user("partner", q, "owner")
        taken = make_user("partner", email="taken.address@example.com").email
        support = db.session.scalar(db.select(Organization).where(Organization.kind == "support"))
        agent = make_user("support", support, "agent")
        ids["a_terminated"] = make_channel(a, "terminated").id
        # A client that lets P see its number but not manage its keys, and one whose
        # granted number is suspended (no keys).
        b, c = (make_org("client", name, onboarding_partner_id=p.id) for name in "BC")
        b_live, c_suspended = make_channel(b, "live"), make_channel(c, "suspended")
        ids.update(q=q.id, b_live=b_live.id, c_suspended=c_suspended.id)
        db.session.commit()
        make_grant(b, p, [b_live], scope=SCOPE_CHANNELS_READ)
        make_grant(c, p, [c_suspended])
        ids["q_grant"] = make_grant(a, q, [db.session.get(Channel, ids["a_live"])]).id
        auth["support_agent"] = bearer_for(agent, support)
        auth["p_machine"] = bearer_for(None, p, client_id=ids["p_app"], scope="openid")
        auth["a_member"] = bearer_for(a_member, a)
        auth["q_owner"] = bearer_for(q_owner, q)
        ids["taken_email"] = taken
        db.session.remove()

    def call(method, url, actor, body=None):
        resp = client.open(url.format(**ids), method=method, json=body, headers=auth[actor])
        assert resp.status_code < 300, (method, url, resp.get_data(as_text=True))
        return resp.get_json(silent=True)

    ids["invitation"] = call(
        "POST",
        "/v1/partners/{p}/invitations",
        "p_owner",
        {"email": "x@example.com", "role": "member"},
    )["id"]
    created = call("POST", "/v1/clients/{a}/channels/{a_live}/api-keys", "a_owner", {})
    ids["a_key"] = created["id"]
    # The partner's key replaces the client's at once: it is the one the gateway accepts.
    created = call("POST", "/v1/partners/{p}/channels/{a_live}/api-keys", "p_owner", {})
    ids["p_key"], ids["key_text"] = created["id"], created["api_key"]
    call("DELETE", "/v1/clients/{a}/grants/{q_grant}", "a_owner")  # a grant revoked already
    [grant] = call("GET", "/v1/clients/{a}/grants", "a_owner")
    ids["grant"] = grant["id"]
    call("PUT", "/v1/partners/{p}/webhook", "p_owner", {"url": receiver.url})
    with app.app_context():
        emit_partner_event(ids["p"], "client_created", {"client_id": ids["a"]})
        db.session.commit()
        worker.run_once()
        db.session.remove()
    [attempt] = call("GET", "/v1/partners/{p}/webhook-deliveries", "p_owner")["items"]
    ids["attempt"] = attempt["id"]
    return world


# --------------------------------------------------------------------------- the document


@pytest.fixture(scope="module")
def document(app) -> dict:
    resp = app.test_client().get("/openapi.json")
    assert resp.status_code == 200
    return resp.get_json()


def _operations(document: dict):
    for path, item in document["paths"].items():
        if path.startswith("/v1/"):
            for method, operation in item.items():
                if method in ("get", "post", "put", "patch", "delete"):
                    yield (method.upper(), path), operation


def _deref(document: dict, node):
    while isinstance(node, dict) and "$ref" in node:
        section, name = node["$ref"].split("/")[-2:]
        node = document["components"][section][name]
    return node


def _strict(document: dict, schema):
    """The schema with every reference inlined and no undocumented property allowed.

    The members of an ``allOf`` become one schema, so that a property one member names
    (the Problem's ``detail``) is not undocumented for another (the operation's codes).
    """
    schema = copy.deepcopy(_deref(document, schema))
    if isinstance(schema, dict):
        members = [_strict(document, v) for v in schema.pop("allOf", ())]
        for key, value in list(schema.items()):
            if key in ("properties", "patternProperties"):
                schema[key] = {k: _strict(document, v) for k, v in value.items()}
            elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
                schema[key] = _strict(document, value)
            elif key in ("anyOf", "oneOf"):
                schema[key] = [_strict(document, v) for v in value]
        for member in members:
            _merge(schema, member)
        if "properties" in schema:
            schema.setdefault("additionalProperties", False)
    return schema


def _merge(schema: dict, member: dict) -> None:
    """Add an ``allOf`` member to ``schema``: both schemas of a property named by both hold."""
    for key, value in member.items():
        if key == "properties":
            properties = schema.setdefault("properties", {})
            for name, sub in value.items():
                properties[name] = {"allOf": [properties[name], sub]} if name in properties else sub
        elif key == "required":
            schema["required"] = sorted({*schema.get("required", ()), *value})
        elif key != "additionalProperties":
            schema.setdefault(key, value)


def listed_codes(schema: dict) -> set[str]:
    """The problem codes a (strict) error schema admits; empty when it does not list them."""
    code = schema.get("properties", {}).get("code", {})
    lists = [part["enum"] for part in (code, *code.get("allOf", ())) if "enum" in part]
    return set.intersection(*map(set, lists)) if lists else set()


def contract_failures(document: dict, op: tuple[str, str], resp) -> list[str]:
    """What in this answer the document does not say (empty when it tells the truth)."""
    operation = dict(_operations(document))[op]
    status = str(resp.status_code)
    where = f"{op[0]} {op[1]} -> {status}"
    if status not in operation["responses"]:
        return [f"{where}: status not documented (lists {sorted(operation['responses'])})"]
    response = _deref(document, operation["responses"][status])
    failures = [
        f"{where}: no {name} header, which the document says the answer carries"
        for name, header in response.get("headers", {}).items()
        if _deref(document, header).get("required") and name not in resp.headers
    ]
    content = response.get("content", {})
    if not resp.data:
        return failures + ([f"{where}: empty body, but a body is documented"] if content else [])
    mimetype = resp.mimetype
    if mimetype not in content:
        return [*failures, f"{where}: {mimetype} answered, the document says {sorted(content)}"]
    if resp.status_code >= 400 and mimetype != PROBLEM_JSON:
        failures.append(f"{where}: an error that is not {PROBLEM_JSON}")
    schema = _strict(document, content[mimetype].get("schema", {}))
    if resp.status_code >= 400 and not listed_codes(schema):
        failures.append(f"{where}: the document does not list the codes of this answer")
    validator = OAS30ReadValidator(schema, format_checker=oas30_format_checker)
    body = json.loads(resp.data)
    for error in sorted(validator.iter_errors(body), key=str):
        path = "/".join(str(p) for p in error.absolute_path)
        failures.append(f"{where}: at /{path}: {error.message}")
    return failures


# --------------------------------------------------------------------------- the tests


def test_every_documented_operation_has_a_case(document):
    assert set(dict(_operations(document))) == set(CASES)


def _request(client, world: World, op, case: Case, err: Err | None = None):
    ids = world.ids
    actor = case.actor if err is None or err.actor is SAME else err.actor
    values = {name: ids[key] for name, key in case.params.items()}
    if err is not None:
        values.update({k: _fill(v, ids) for k, v in err.params.items()})
    url = op[1].format(**values)
    query = case.query if err is None or err.query is None else err.query
    if query:
        url = f"{url}?{query}"
    headers = dict(world.auth[actor]) if actor else {}
    extra = case.headers if err is None or err.headers is None else err.headers
    headers.update({k: _fill(v, ids) for k, v in extra.items()})
    if err is not None and err.content is not None:
        data, media_type = err.content
        return client.open(url, method=op[0], data=data, content_type=media_type, headers=headers)
    body = case.body if err is None or err.body is SAME else err.body
    if body is None:
        return client.open(url, method=op[0], headers=headers)
    return client.open(url, method=op[0], json=_fill(body, ids), headers=headers)


def _unknown(real_id: str) -> str:
    """A well-formed id of the same kind that names nothing."""
    prefix, _, rest = real_id.rpartition("_")
    return f"{prefix}_{'0' * len(rest)}" if prefix else "0" * len(real_id)


def _standard_errors(document: dict, op, case: Case, max_body: int) -> list[Err]:
    """401 without a token, 404 for each unknown id, 415 for a body that is not JSON; with a
    JSON body, 400 for malformed JSON, 413 for an oversized one and 422 for an unknown property.
    """
    operation = dict(_operations(document))[op]
    errors = []
    if case.actor is not None:
        errors.append(Err(401, "invalid_token", actor=None))
    for name, key in case.params.items():
        errors.append(Err(404, case.not_found, params={name: f"{{unknown_{key}}}"}))
    if op[0] in ("POST", "PUT", "PATCH"):
        errors.append(Err(415, "unsupported_media_type", content=(b"name=x", "text/plain")))
    if "requestBody" in operation and case.body is not None:
        errors.append(Err(422, "invalid_input", body={**case.body, "no_such_property": 1}))
        errors.append(Err(400, "malformed_json", content=(b'{"name": ', "application/json")))
        oversized = json.dumps({**case.body, "padding": "x" * max_body}).encode()
        errors.append(Err(413, "payload_too_large", content=(oversized, "application/json")))
    return errors


def _what(err: Err) -> str:
    changed = [
        f"{name}={value!r:.80}"
        for name in ("actor", "params", "body", "query", "headers", "content")
        if (value := getattr(err, name)) not in (SAME, {}, None)
        or (name == "actor" and value is None)
    ]
    return (
        f"expecting {err.status} {err.code} ({', '.join(changed)}{', after' if err.after else ''})"
    )


@pytest.mark.parametrize("op", list(CASES), ids=CASE_IDS)
def test_each_operation_answers_as_documented(app, client, receiver, document, op):  # noqa: F811
    world = contract_world(app, client, receiver)
    for key in list(world.ids):
        world.ids[f"unknown_{key}"] = _unknown(str(world.ids[key]))
    case = CASES[op]
    errors = _standard_errors(document, op, case, app.config["MAX_CONTENT_LENGTH"])
    errors += case.errors
    failures = []

    def check(resp, expected: int, code: str | None, what: str) -> None:
        got = f"{what}: {resp.status_code} {resp.get_data(as_text=True)[:300]}"
        if resp.status_code != expected:
            failures.append(f"{got} (expected {expected})")
        failures.extend(contract_failures(document, op, resp))
        if code is not None and resp.status_code >= 400:
            body = resp.get_json(silent=True) or {}
            if body.get("code") != code:
                failures.append(f"{got} (expected code {code})")

    for err in (e for e in errors if not e.after):
        check(_request(client, world, op, case, err), err.status, err.code, _what(err))
    resp = _request(client, world, op, case)
    operation = dict(_operations(document))[op]
    success = [s for s in operation["responses"] if s.startswith("2")]
    check(resp, int(success[0]) if len(success) == 1 else resp.status_code, None, "valid")
    for err in (e for e in errors if e.after):
        check(_request(client, world, op, case, err), err.status, err.code, _what(err))
    assert failures == [], "\n".join(failures)


def test_without_its_database_each_operation_answers_503_as_documented(
    app,
    client,
    receiver,  # noqa: F811
    document,
    app_without_database,
):
    world = contract_world(app, client, receiver)
    unreachable = app_without_database.test_client()
    failures = []
    for op, case in CASES.items():
        resp = _request(unreachable, world, op, case)
        code = (resp.get_json(silent=True) or {}).get("code")
        if (resp.status_code, code) != (503, "database_unavailable"):
            failures.append(f"{op[0]} {op[1]}: {resp.status_code} {code} (expected 503)")
        failures.extend(contract_failures(document, op, resp))
    assert failures == [], "\n".join(failures)


# The operations counted by a rate limit (a sign-up or reset request per client and address).
RATE_LIMITED = {("POST", "/v1/signup"), ("POST", "/v1/password-reset")}


def test_the_rate_limited_operations_answer_429_as_documented(
    app, document, database_url, redis_prefix
):
    documented = {op for op, operation in _operations(document) if "429" in operation["responses"]}
    assert documented == RATE_LIMITED
    world = build_world(app)
    limits = "1 per minute"
    limited = create_app(
        app_config(
            database_url,
            f"{redis_prefix}contract-limits:",
            IDP_RATELIMIT_ENABLED=True,
            IDP_ACCOUNT_RATE_LIMIT=limits,
            IDP_ACCOUNT_EMAIL_RATE_LIMIT=limits,
        )
    )
    failures = []
    try:
        for op in sorted(RATE_LIMITED):
            first, again = (_request(limited.test_client(), world, op, CASES[op]) for _ in "12")
            if first.status_code >= 300 or again.status_code != 429:
                failures.append(f"{op[0]} {op[1]}: {first.status_code}, then {again.status_code}")
            elif again.get_json()["code"] != "rate_limited":
                failures.append(f"{op[0]} {op[1]}: 429 {again.get_json()['code']}")
            failures.extend(contract_failures(document, op, again))
    finally:
        with limited.app_context():
            db.engine.dispose()
    assert failures == [], "\n".join(failures)


# --------------------------------------------------------------------------- every code is reached


def documented_answers(document: dict) -> set[tuple[str, str, str, str]]:
    """Every (method, path, status, code) the document says an operation can answer."""
    answers = set()
    for op, operation in _operations(document):
        for status, response in operation["responses"].items():
            if not status.isdigit():
                continue  # "default": any answer, so every code of the API
            content = _deref(document, response).get("content", {})
            schema = _strict(document, content.get(PROBLEM_JSON, {}).get("schema", {}))
            answers |= {(*op, status, code) for code in listed_codes(schema)}
    return answers


def answers_of_the_cases(document: dict, max_body: int) -> set[tuple[str, str, str, str]]:
    """The answers the tests above get (and check): each case's refusals, 503 and 429."""
    answers = {(*op, "503", "database_unavailable") for op in CASES}
    answers |= {(*op, "429", "rate_limited") for op in RATE_LIMITED}
    for op, case in CASES.items():
        for err in [*_standard_errors(document, op, case, max_body), *case.errors]:
            answers.add((*op, str(err.status), err.code))
    return answers


@pytest.mark.timeout(600)  # may run the @reaches tests the session did not run
def test_every_documented_problem_code_is_reached_by_a_test(app, document, test_outcomes):
    """A code listed for an operation is one a test's request gets: none a client need not handle.

    The answers come from this module's cases (each checked by the tests above) and from the
    ``@reaches`` tests (``test_api_problem_codes``; each fails unless its requests get them)
    that ran and passed: a skipped, failed or deselected one reaches nothing.
    """
    cases = answers_of_the_cases(document, app.config["MAX_CONTENT_LENGTH"])
    claimed = every_reached_answer()
    outcome = test_outcomes(set().union(*claimed.values()))
    reached = {a for a, tests in claimed.items() if any(outcome[t] == "passed" for t in tests)}
    documented = documented_answers(document)
    failures = [
        f"{method} {path} lists {status} {code!r}, but no test gets that answer: if the "
        f"operation can answer it, add Err({status}, {code!r}) to its case in CASES here, or a "
        f'test marked @reaches("{method} {path} {status} {code}") to test_api_problem_codes.py; '
        "if it cannot, remove the code from the view's problem_responses"
        + "".join(
            f"; {test} claims it but was {outcome[test]}"
            for test in sorted(claimed.get((method, path, status, code), ()))
        )
        for method, path, status, code in sorted(documented - cases - reached)
    ]
    failures += [
        f"{', '.join(sorted(claimed[answer]))} reaches {' '.join(answer)}, which the document "
        "does not list"
        for answer in sorted(set(claimed) - documented)
    ]
    assert failures == [], "\n".join(failures)
