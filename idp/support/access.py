"""The gate in front of every support and audit API route."""

from __future__ import annotations

import functools
from collections.abc import Callable

from idp.auth.bearer import current_actor, require_auth
from idp.auth.enforce import enforce
from idp.errors import PROBLEM_JSON
from policies.permissions import Permission
from policies.support import can_use_support_tool


def staff_only(permission: Permission) -> Callable:
    """Authenticate, then refuse anyone but support staff before the input is even parsed."""

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def guarded(*args, **kwargs):
            enforce(can_use_support_tool(current_actor(), permission))
            return view(*args, **kwargs)

        return require_auth(guarded)

    return decorate


def problem_responses(**descriptions: str) -> dict:
    """OpenAPI ``responses`` for problem+json answers, e.g. ``problem_responses(r409="...")``."""
    content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    return {
        "responses": {
            code.lstrip("r"): {"description": text, "content": content}
            for code, text in descriptions.items()
        }
    }
