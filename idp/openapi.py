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
                operation.setdefault("responses", {}).setdefault(
                    "401",
                    {
                        "description": "Missing, invalid, expired or revoked access token",
                        "content": {
                            PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}
                        },
                    },
                )


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
