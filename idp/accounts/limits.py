"""Rate limits of the unauthenticated account endpoints (sign-up, password reset).

Two limits per endpoint family: per client address, and per target email
address so that nobody can flood one mailbox from many client addresses.
The page and the JSON API share the same counters.
"""

from __future__ import annotations

from flask import request

from idp.ratelimits import rate_limited


def _target_address() -> str:
    """The email the request is about, roughly normalized; counters never hold more than that."""
    body = request.get_json(silent=True) if request.is_json else request.form
    email = body.get("email") if isinstance(body, dict) or hasattr(body, "get") else None
    return str(email or "").strip().casefold()[:320] or request.remote_addr or ""


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
