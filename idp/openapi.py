"""The OpenAPI document's security and error answers.

Views protected by ``idp.auth.bearer.require_auth`` carry a marker; an apispec
plugin reads it when flask-smorest documents each route, so the document says
which operations need ``Authorization: Bearer`` without each view repeating it.
A second plugin documents every error status an operation can answer and, for
each, the problem ``code`` values it can carry: the codes the view declares
(``problem_responses``) and those every operation of its kind can answer.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from apispec import BasePlugin
from flask import Flask

from idp.auth.bearer import InvalidToken
from idp.errors import (
    DATABASE_UNAVAILABLE,
    HTTP_CODES,
    INTERNAL_ERROR,
    MALFORMED_JSON,
    PROBLEM_JSON,
    DomainError,
    Forbidden,
    InvalidCursor,
    InvalidInput,
    NotFound,
    Unauthorized,
)
from idp.extensions import api

BEARER_SCHEME = "bearerAuth"
PROBLEM_REF = "#/components/schemas/Problem"
PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details with a stable machine code.",
    "required": ["type", "status", "code", "title"],
    "properties": {
        "type": {"type": "string"},
        "status": {"type": "integer"},
        "code": {
            "type": "string",
            "description": "stable machine code; each operation lists those of each status",
        },
        "title": {"type": "string"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "description": "failing fields and their messages",
            "additionalProperties": True,
        },
        "current_status": {
            "type": "string",
            "description": "illegal_transition: the channel's status now",
        },
        "allowed": {
            "type": "array",
            "items": {"type": "string"},
            "description": "illegal_transition: the statuses the channel may move to",
        },
    },
}

Code = str | type[DomainError]


def _handler(app: Flask, rule, method: str):
    """The function that answers ``method`` on ``rule`` (a MethodView's method, or the view)."""
    view = app.view_functions.get(rule.endpoint)
    view_class = getattr(view, "view_class", None)
    return getattr(view_class, method, None) if view_class else view


class BearerSecurityPlugin(BasePlugin):
    """Marks the operations of bearer-protected views with the bearer security requirement."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def operation_helper(self, path=None, operations=None, **kwargs) -> None:
        """Add ``security`` and the 401/403/404 answers to each operation that requires a token."""
        rule = kwargs.get("rule")
        for method, operation in (operations or {}).items():
            every_role_may = operation.pop(_EVERY_ROLE_MAY, False)
            if rule is None:
                continue
            if getattr(_handler(self.app, rule, method), "_idp_requires_auth", False):
                operation.setdefault("security", [{BEARER_SCHEME: []}])
                answers = _responses(operation)
                for status, text, code in _BEARER_ANSWERS:
                    if status == "404" and (not rule.arguments or status in answers):
                        continue  # the view's own 404 codes replace the generic one
                    if status == "403" and every_role_may:
                        continue  # no token that reaches the operation lacks its permission
                    _add_codes(answers, status, text, [code])


# The mark of ``problem_responses(every_role_may=True)``, read (and removed) by the plugin.
_EVERY_ROLE_MAY = "x-idp-every-role-may"

# Every bearer-protected operation can answer these; 404 only where the path names objects.
_BEARER_ANSWERS = (
    ("401", "Missing, invalid, expired or revoked access token", InvalidToken),
    ("403", "The token's hub, role or scopes do not allow this", Forbidden),
    ("404", "An object in the path does not exist, or is not visible to the caller", NotFound),
)


def _responses(operation: dict) -> dict:
    """The operation's ``responses``, keyed by status text (flask-smorest uses numbers).

    A view's own answer (``problem_responses``, keyed by text) comes before flask-smorest's
    generic one for the same status (its 422 for parsed arguments, say).
    """
    answers = operation.setdefault("responses", {})
    for status in [s for s in answers if not isinstance(s, str)]:
        answers.setdefault(str(status), answers.pop(status))
    return answers


def _code(code: Code) -> str:
    return code if isinstance(code, str) else code.code


def _listed_codes(response: dict) -> list[str]:
    """The problem codes a documented response lists (empty when it lists none)."""
    schema = response.get("content", {}).get(PROBLEM_JSON, {}).get("schema", {})
    for part in schema.get("allOf", ()):
        code = part.get("properties", {}).get("code", {})
        if "enum" in code:
            return list(code["enum"])
    return []


def _problem_response(status: str, description: str, codes: Iterable[Code]) -> dict:
    """A problem+json answer whose ``code`` is one of ``codes``."""
    listed = sorted({_code(code) for code in codes})
    schema = {
        "allOf": [
            {"$ref": PROBLEM_REF},
            {"type": "object", "properties": {"code": {"type": "string", "enum": listed}}},
        ]
    }
    response = {"description": description, "content": {PROBLEM_JSON: {"schema": schema}}}
    if status in _RETRY_LATER:
        response["headers"] = {"Retry-After": _RETRY_AFTER_HEADER}
    return response


# Answers that say when to try again (RFC 9110 section 10.2.3), in seconds.
_RETRY_LATER = ("429", "503")
_RETRY_AFTER_HEADER = {
    "description": "Seconds to wait before trying again",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}


def _add_codes(answers: dict, status: str, description: str, codes: Iterable[Code]) -> None:
    """Document ``codes`` under ``status``, beside those already listed there."""
    current = answers.get(status)
    if isinstance(current, dict) and "description" in current:
        description = current["description"]
        codes = [*_listed_codes(current), *codes]
    answers[status] = _problem_response(status, description, codes)


# The 401 of a write that holds the person's account active until it commits: support
# disabled the account while the request was on its way (``hold_active_account``).
ACCOUNT_NO_LONGER_ACTS = ("No valid access token, or the account can no longer act", Unauthorized)


def problem_responses(*, every_role_may: bool = False, **answers: str | tuple) -> dict:
    """OpenAPI ``responses`` for problem+json answers: ``r409=("Why", NumberInUse, "code")``.

    Each answer is its description, then the codes it may carry (a ``DomainError``
    class stands for its ``code``); the plugin adds the codes every operation of its
    kind can answer (``invalid_token`` behind a token, ``invalid_input`` with a body).
    ``every_role_may`` says that every role (or scope) a token reaching the operation can
    carry allows it, so the token is never refused with 403 ``forbidden``.
    """
    responses = {}
    for name, answer in answers.items():
        description, *codes = (answer,) if isinstance(answer, str) else answer
        status = name.lstrip("r")
        responses[status] = _problem_response(status, description, codes)
    doc = {"responses": responses}
    if every_role_may:
        doc[_EVERY_ROLE_MAY] = True
    return doc


class ProblemCodesPlugin(BasePlugin):
    """Lists each error answer's codes, and every code the API answers in the Problem schema."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def init_spec(self, spec) -> None:
        """List the codes answered outside any operation: an undocumented method, a failure."""
        super().init_spec(spec)
        self.codes = spec.components.schemas["Problem"]["properties"]["code"]
        self.codes["enum"] = sorted(_ANSWERED_ANYWHERE)

    def operation_helper(self, path=None, operations=None, **kwargs) -> None:
        """Add the answers inherent to each operation; refuse an error answer without codes."""
        rule = kwargs.get("rule")
        for method, operation in (operations or {}).items():
            answers = _responses(operation)
            handler = _handler(self.app, rule, method) if rule is not None else None
            for status, code in _inherent_answers(method, operation, handler):
                _add_codes(answers, status, _STATUS_TEXT[status], [code])
            for status, answer in answers.items():
                if status[0] not in "45":
                    continue
                listed = _listed_codes(answer) if isinstance(answer, dict) else []
                if not listed:
                    raise ValueError(f"{method.upper()} {path}: {status} lists no problem code")
                self.codes["enum"] = sorted({*self.codes["enum"], *listed})


# Any request can meet these: a method the path does not have, a failure of the service.
_ANSWERED_ANYWHERE = (HTTP_CODES[405], INTERNAL_ERROR)


_STATUS_TEXT = {
    "400": "The request body is not JSON the service can read",
    "413": "The request body is larger than the service accepts (IDP_MAX_BODY_BYTES)",
    "415": "A request body that is not application/json",
    "422": "Invalid input: `errors` names each failing or unknown field",
    "429": "Too many requests: wait Retry-After seconds before trying again",
    "503": "The database cannot be reached: try again after Retry-After seconds",
}


def _inherent_answers(method: str, operation: dict, handler) -> Iterable[tuple[str, Code]]:
    """The (status, code) answers any operation shaped like ``operation`` can give."""
    query = {p["name"] for p in operation.get("parameters", ()) if p.get("in") == "query"}
    if method in ("post", "put", "patch"):
        yield "415", HTTP_CODES[415]  # whatever the operation reads, a body must be JSON
    if "requestBody" in operation:
        yield "400", MALFORMED_JSON
        yield "413", HTTP_CODES[413]
    if "requestBody" in operation or query:
        yield "422", InvalidInput
    if "cursor" in query:
        yield "422", InvalidCursor
    if getattr(handler, "_idp_rate_limited", False):
        yield "429", HTTP_CODES[429]
    yield "503", DATABASE_UNAVAILABLE  # every operation reads the database


def document_security(app: Flask) -> None:
    """Declare the bearer scheme and the problem schema; call before registering API blueprints."""
    spec = api.spec
    spec.components.security_scheme(
        BEARER_SCHEME,
        {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "RFC 9068 access token from the token endpoint (RFC 6750 bearer).",
        },
    )
    spec.components.schema("Problem", copy.deepcopy(PROBLEM_SCHEMA))
    _errors_are_problems(spec)
    for plugin in (BearerSecurityPlugin(app), ProblemCodesPlugin(app)):
        plugin.init_spec(spec)
        spec.plugins.append(plugin)


def _errors_are_problems(spec) -> None:
    """Make flask-smorest's shared error responses describe what ``idp/errors.py`` sends."""
    problem_ref = {"$ref": PROBLEM_REF}
    if "Error" in spec.components.schemas:
        spec.components.schemas["Error"] = problem_ref
    # flask-smorest registers most of them lazily (on first reference).
    for registry in (spec.components.responses, spec.components.responses_lazy):
        for response in registry.values():
            if "content" in response:
                response["content"] = {PROBLEM_JSON: {"schema": problem_ref}}
