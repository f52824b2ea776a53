"""A signed-in person changes their password by typing the current one and a new one.

The current password is checked exactly as a login checks it
(``idp.login.service.check_password``): behind the failed-login throttle,
and a wrong or throttled attempt is recorded as ``login.failed``, so the page
is no way around the login's limits for someone holding a stolen session.
Everything that can be refused without it is refused first (the two copies
differ, the new one equals the typed current one, the rules), and such a
refusal writes nothing and counts nothing.

A change has the effects of a reset (``idp.accounts.reset.replace_password``):
new security stamp, every login and token family of the account ended, the
outstanding reset links spent, the mailbox told. The browser that made the
change then starts a fresh login, as a login does, so its person stays signed
in while every other browser and app is signed out.
"""

from __future__ import annotations

from idp.accounts.models import User
from idp.accounts.passwords import normalize_password
from idp.accounts.reset import replace_password
from idp.accounts.service import checked_password_hash, organization_names
from idp.audit.service import record_event
from idp.errors import DomainError, InvalidInput
from idp.extensions import db
from idp.login.service import LoginOutcome, check_password, forgive
from idp.login.session import login_user

# How the audit event and the notice say the password was changed.
VIA = "current_password"
SAME = "The new password must differ from the current one."


class CurrentPasswordRefused(DomainError):
    """The current password was not accepted: wrong (401), or not checked yet (429, wait)."""

    code, title = "current_password_refused", "The current password was not accepted"

    def __init__(self, refusal: LoginOutcome):
        detail = refusal.error if refusal.retry_after else "The current password is wrong."
        super().__init__(detail, fields={"current_password": [detail]})
        self.status = refusal.status
        self.retry_after = refusal.retry_after


def change_password(user: User, current: str, new: str, *, address: str) -> None:
    """Set ``new`` as ``user``'s password once ``current`` proves the account, or raise.

    ``address`` is the client's, for the failed-login counters. Raises
    ``InvalidInput`` (the new password; nothing checked or written) or
    ``CurrentPasswordRefused`` (recorded as ``login.failed``). On success the
    session is committed and this browser holds a fresh login.
    """
    if not current:
        message = "Type your current password."
        raise InvalidInput(message, fields={"current_password": [message]})
    if normalize_password(new) == normalize_password(current):
        # Refused whether or not ``current`` is right: the answer tells nothing about it.
        raise InvalidInput(SAME, fields={"password": [SAME]})
    password_hash = checked_password_hash(new, email=user.email, names=organization_names(user))
    checked = check_password(user, user.email_normalized, current, address)
    if checked.refusal is not None:
        raise CurrentPasswordRefused(checked.refusal)
    forgive(checked, user.email_normalized, address)
    replace_password(user, password_hash, VIA)
    record_event(
        "password.changed",
        actor_type="user",
        actor_id=user.id,
        target_type="user",
        target_id=user.id,
        after={"via": VIA},
    )
    login_user(user)
    db.session.commit()
