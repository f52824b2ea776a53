"""Rate limits of the unauthenticated account endpoints (sign-up, password reset).

Two limits per endpoint family: per client address, and per target email
address so that nobody can flood one mailbox from many client addresses.
The page and the JSON API share the same counters.
"""

from __future__ import annotations

from flask import request

from idp.accounts.emails import comparison_form
from idp.api_inputs import json_body
from idp.ratelimits import rate_limited


def _target_address() -> str:
    """The email the request is about, normalized as accounts are (every spelling counts as one).

    Input that is no valid address is counted by its trimmed, case-folded text.
    """
    body = request.form
    if request.is_json:
        try:
            body = json_body(request.get_data(cache=True))
        except ValueError:  # not JSON: the view answers malformed_json; count by address
            body = None
    email = body.get("email") if isinstance(body, dict) or hasattr(body, "get") else None
    return comparison_form(email) or request.remote_addr or ""


def account_rate_limit(scope: str):
    """Decorator: both limits for ``scope`` (``signup`` or ``password_reset``) on POST requests."""
    per_client = rate_limited("IDP_ACCOUNT_RATE_LIMIT", scope=f"{scope}-client")
    per_address = rate_limited(
        "IDP_ACCOUNT_EMAIL_RATE_LIMIT", scope=f"{scope}-address", key=_target_address
    )

    def decorate(view):
        """Wrap ``view`` in both limits."""
        return per_client(per_address(view))

    return decorate
