"""A password accepted for an account with two-step sign-in, waiting for its code.

Nobody is signed in by it: it lives in this browser's signed cookie only,
for ``SECOND_STEP_TTL`` seconds, until the page that asks for the code
completes the sign-in (``idp.mfa.service.complete_sign_in``) or drops it.
"""

from __future__ import annotations

import hmac
import time

from flask import session

from idp.accounts.models import User
from idp.extensions import db

_SECOND_STEP = "second_step"  # the session's key
# Seconds a password accepted for an account with two-step sign-in waits for its code.
SECOND_STEP_TTL = 300


def await_second_step(user: User) -> None:
    """Remember in this browser that ``user``'s password was accepted, nothing more.

    Nobody is signed in by it: ``second_step_user`` gives the account back, for
    ``SECOND_STEP_TTL`` seconds, to the page that asks for the code.
    It lives in this browser's signed cookie only, and holds the account's
    security stamp: a password change or support ending the sessions voids it.
    The login this browser may hold already is left as it is.
    """
    session[_SECOND_STEP] = {"uid": user.id, "stamp": user.security_stamp, "at": int(time.time())}


def second_step_user() -> User | None:
    """The active account whose password this browser typed recently, awaiting its code."""
    pending = session.get(_SECOND_STEP)
    if not isinstance(pending, dict):
        return None
    at = pending.get("at")
    if not isinstance(at, int) or not 0 <= time.time() - at <= SECOND_STEP_TTL:
        forget_second_step()
        return None
    user = db.session.get(User, str(pending.get("uid")))
    stamp = str(pending.get("stamp", ""))
    if (
        user is None
        or not user.is_active
        or not hmac.compare_digest(user.security_stamp.encode(), stamp.encode())
    ):
        forget_second_step()
        return None
    return user


def forget_second_step() -> None:
    """Drop the pending second step of this browser, if any."""
    session.pop(_SECOND_STEP, None)
