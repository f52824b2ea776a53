"""Rate limits of the unauthenticated account endpoints (sign-up, password reset).

Two limits per endpoint family: per client address, and per target email
address so that nobody can flood one mailbox from many client addresses.
The page and the JSON API share the same counters.
"""

from __future__ import annotations

from flask import current_app, request

from idp.extensions import limiter


def _per_client() -> str:
    return current_app.config["IDP_ACCOUNT_RATE_LIMIT"]


def _per_address() -> str:
    return current_app.config["IDP_ACCOUNT_EMAIL_RATE_LIMIT"]


def _target_address() -> str:
    """The email the request is about, roughly normalized; counters never hold more than that."""
    body = request.get_json(silent=True) if request.is_json else request.form
    email = body.get("email") if isinstance(body, dict) or hasattr(body, "get") else None
    return str(email or "").strip().casefold()[:320] or request.remote_addr or ""


def account_rate_limit(scope: str):
    """Decorator: both limits for ``scope`` (``signup`` or ``password_reset``) on POST requests."""
    per_client = limiter.shared_limit(_per_client, scope=f"{scope}-client", methods=["POST"])
    per_address = limiter.shared_limit(
        _per_address, scope=f"{scope}-address", key_func=_target_address, methods=["POST"]
    )

    def decorate(view):
        """Wrap ``view`` in both limits."""
        return per_client(per_address(view))

    return decorate
