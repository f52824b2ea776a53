"""The OpenAPI document's security: bearer access tokens on every route that requires them.

Views protected by ``idp.auth.bearer.require_auth`` carry a marker; this apispec
plugin reads it when flask-smorest documents each route, so the document says
which operations need ``Authorization: Bearer`` without each view repeating it.
"""

from __future__ import annotations

from apispec import BasePlugin
from flask import Flask

from idp.errors import PROBLEM_JSON
from idp.extensions import api

BEARER_SCHEME = "bearerAuth"
PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details with a stable machine code.",
    "required": ["type", "status", "code", "title"],
    "properties": {
        "type": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string", "description": "stable machine code, e.g. invalid_input"},
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


class BearerSecurityPlugin(BasePlugin):
    """Marks the operations of bearer-protected views with the bearer security requirement."""

    def __init__(self, app: Flask) -> None:
        self.app = app

    def operation_helper(self, path=None, operations=None, **kwargs) -> None:
        """Add ``security`` and the 401 answer to each operation whose view requires a token."""
        rule = kwargs.get("rule")
        if rule is None or not operations:
            return
        view = self.app.view_functions.get(rule.endpoint)
        view_class = getattr(view, "view_class", None)
        for method, operation in operations.items():
            handler = getattr(view_class, method, None) if view_class else view
            if getattr(handler, "_idp_requires_auth", False):
                operation.setdefault("security", [{BEARER_SCHEME: []}])
                answers = operation.setdefault("responses", {})
                for status, text in _BEARER_ANSWERS:
                    if status != "404" or rule.arguments:
                        answers.setdefault(status, _problem_response(text))


# Every bearer-protected operation can answer these; 404 only where the path names objects.
_BEARER_ANSWERS = (
    ("401", "Missing, invalid, expired or revoked access token (invalid_token)"),
    ("403", "The token's hub, role or scopes do not allow this"),
    ("404", "An object in the path does not exist, or is not visible to the caller"),
)


def _problem_response(description: str) -> dict:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def problem_responses(**descriptions: str) -> dict:
    """OpenAPI ``responses`` for problem+json answers, e.g. ``problem_responses(r409="...")``."""
    return {
        "responses": {
            code.lstrip("r"): _problem_response(text) for code, text in descriptions.items()
        }
    }


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
    spec.components.schema("Problem", PROBLEM_SCHEMA)
    _errors_are_problems(spec)
    plugin = BearerSecurityPlugin(app)
    plugin.init_spec(spec)
    spec.plugins.append(plugin)


def _errors_are_problems(spec) -> None:
    """Make flask-smorest's shared error responses describe what ``idp/errors.py`` sends."""
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    if "Error" in spec.components.schemas:
        spec.components.schemas["Error"] = problem_ref
    # flask-smorest registers most of them lazily (on first reference).
    for registry in (spec.components.responses, spec.components.responses_lazy):
        for response in registry.values():
            if "content" in response:
                response["content"] = {PROBLEM_JSON: {"schema": problem_ref}}
