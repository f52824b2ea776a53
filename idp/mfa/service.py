"""Turning two-step sign-in on and off, and checking the second step.

Every change needs the account's password, checked as a login checks it
(``idp.login.service.check_password``: throttled, a wrong one recorded as
``login.failed``), so a stolen session alone cannot add, remove or read a
second step. Turning it off and making new recovery codes need a current
code too. A code typed for the second step is throttled per account on
counters of its own (``idp.login.throttle.CODES``); a wrong, reused or
throttled one is recorded as ``login.failed``. A code is accepted once:
one of the step last accepted, or an earlier one, is refused as reused.

The account's address is told, in the transaction of the change, when
two-step sign-in is turned on or off or removed by support, when new
recovery codes are made and when a recovery code signs in; never a code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from idp.accounts import sessions
from idp.accounts.models import User
from idp.accounts.password_change import CurrentPasswordRefused
from idp.accounts.service import hub_name
from idp.audit.models import AuditEvent
from idp.audit.service import audit_event
from idp.errors import Conflict, DomainError, InvalidInput
from idp.extensions import db
from idp.login import throttle
from idp.login.service import check_password, forgive, record_failed_login
from idp.login.session import login_user
from idp.mfa import recovery, totp
from idp.mfa.models import TwoStepSecret, two_step_enabled
from idp.outbox.service import enqueue_templated_email
from idp.timeutil import utcnow

# How long a secret shown for enrolment waits for the first code from the app.
ENROLMENT_TTL = timedelta(minutes=15)
# The login methods (RFC 8176) of a login proven by each kind of second step.
AMR = {"totp": ("pwd", "otp", "mfa"), "recovery_code": ("pwd", "mfa")}
WRONG_CODE = "The code is wrong. Type the code your app shows now."
REUSED_CODE = "That code was used already. Wait for the next code in your app."
WRONG_RECOVERY_CODE = "The recovery code is wrong or was used already."
# Below this many recovery codes left, the notice of one used says to make new ones
# (as the page after such a sign-in does).
FEW_RECOVERY_CODES = 3


class SecondStepRefused(DomainError):
    """The code or recovery code was not accepted: wrong (401) or not checked yet (429)."""

    code, title = "second_step_refused", "The code was not accepted"

    def __init__(self, detail: str, field: str, status: int = 401, retry_after: int = 0):
        super().__init__(detail, fields={field: [detail]})
        self.status = status
        self.retry_after = retry_after


class TwoStepStateConflict(Conflict):
    """Two-step sign-in is already on, or not on, for what was asked."""

    code = "two_step_state_conflict"


@dataclass(frozen=True)
class TwoStepStatus:
    """What the account page says: on since when, and how many recovery codes are left."""

    enabled_at: datetime | None
    recovery_codes_left: int


@dataclass(frozen=True)
class Enrolment:
    """A new secret, to be shown once: as a QR code and as text."""

    secret: str
    uri: str
    qr_svg: str


def is_enabled(user: User) -> bool:
    """Whether signing in to ``user`` asks for a code after the password."""
    return two_step_enabled(user.id) is not None


def status_of(user: User) -> TwoStepStatus:
    """Whether two-step sign-in is on for ``user``, and the recovery codes left."""
    found = two_step_enabled(user.id)
    if found is None:
        return TwoStepStatus(None, 0)
    return TwoStepStatus(found.enabled_at, recovery.remaining(user.id))


def _prove_password(user: User, password: str, address: str) -> None:
    if not password:
        message = "Type your password."
        raise InvalidInput(message, fields={"current_password": [message]})
    checked = check_password(user, user.email_normalized, password, address)
    if checked.refusal is not None:
        raise CurrentPasswordRefused(checked.refusal)
    forgive(checked, user.email_normalized, address)


def _notify(user: User, change: str, **details) -> None:
    """Tell the account's address of a change to its second step; the caller commits.

    ``change``: two-step sign-in turned on, off or reset by support, new
    recovery codes, or a sign-in with a recovery code. ``details`` go to the
    template (how many codes are left, whether the other logins ended); never a code.
    """
    subjects = {
        "enabled": "Two-step sign-in was turned on for your {hub} account",
        "disabled": "Two-step sign-in was turned off for your {hub} account",
        "reset": "Support removed two-step sign-in from your {hub} account",
        "recovery_codes": "New recovery codes were made for your {hub} account",
        "recovery_code_used": "A recovery code was used to sign in to your {hub} account",
    }
    enqueue_templated_email(
        user.email,
        subjects[change].format(hub=hub_name(user.hub)),
        "accounts/email/two_step_notice.txt",
        hub=hub_name(user.hub),
        email=user.email,
        change=change,
        at=utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        **details,
    )


def _event(action: str, user: User, after: dict | None = None) -> AuditEvent:
    return audit_event(
        action,
        actor_type="user",
        actor_id=user.id,
        target_type="user",
        target_id=user.id,
        after=after,
    )


def _record(action: str, user: User, after: dict | None = None) -> None:
    db.session.add(_event(action, user, after))


def start_enrolment(user: User, password: str, *, address: str) -> Enrolment:
    """A new secret for ``user``, once the password proves the account; shown once.

    It replaces any enrolment not finished; it counts for nothing until
    ``finish_enrolment`` gets a code made with it. Commits the session.
    """
    if is_enabled(user):
        raise TwoStepStateConflict("Two-step sign-in is on already.")
    _prove_password(user, password, address)
    secret = totp.new_secret()
    row = db.session.get(TwoStepSecret, user.id)
    if row is None:
        row = TwoStepSecret(user_id=user.id)
        db.session.add(row)
    row.sealed_secret = totp.seal(secret, user.id)
    row.enabled_at = None
    row.last_step = None
    row.created_at = utcnow()
    db.session.commit()
    uri = totp.provisioning_uri(secret, user.email, hub_name(user.hub))
    return Enrolment(secret, uri, totp.qr_svg(uri))


def finish_enrolment(user: User, code: str, *, sign_out_others: bool = False) -> list[str]:
    """Turn two-step sign-in on once ``code`` comes from the app; the recovery codes, once.

    With ``sign_out_others`` every other login of the account ends, with every
    token family not issued in this browser's login, as "Sign out every other
    browser" at ``/account/sessions`` does (``sessions.end_logins``): this
    browser stays signed in, with a fresh login. Raises ``InvalidInput`` for a wrong code (the
    enrolment waits for a right one) and ``TwoStepStateConflict`` when there is
    no enrolment to finish. Commits the session: everything in one transaction.
    """
    row = db.session.get(TwoStepSecret, user.id, with_for_update=True)
    if row is None or row.enabled_at is not None or row.created_at < utcnow() - ENROLMENT_TTL:
        raise TwoStepStateConflict(
            "This set-up has expired or was finished. Start again with your password."
        )
    step = totp.matching_step(totp.unseal(row.sealed_secret, user.id), code)
    if step is None:
        message = "The code is wrong. Type the 6-digit code your app shows now."
        raise InvalidInput(message, fields={"code": [message]})
    row.enabled_at = utcnow()
    row.last_step = step
    codes = recovery.replace_codes(user.id)
    _record("account.two_step_enabled", user, {"recovery_codes": len(codes)})
    # The code that turns it on is typed in this browser, whose password began the set-up.
    if sign_out_others:
        sessions.end_logins(user, None, via="two_step_enabled")
    _notify(user, "enabled", signed_out_others=sign_out_others)
    db.session.commit()
    return codes


def check_second_step(
    user: User, *, code: str = "", recovery_code: str = "", address: str, via: str
) -> str:
    """Accept ``code`` (from the app) or else ``recovery_code`` for ``user``; which one it was.

    ``via`` names the page in ``login.failed`` events. Raises
    ``SecondStepRefused``: throttled (429, nothing checked), wrong, reused.
    A recovery code is spent, and recorded as ``login.recovery_code_used``.
    The caller commits (the refusals are committed on record already).
    """
    field = "code" if code.strip() or not recovery_code.strip() else "recovery_code"
    if not code.strip() and not recovery_code.strip():
        message = "Type the code your app shows."
        raise InvalidInput(message, fields={field: [message]})
    wait = throttle.admit(user.email_normalized, address, throttle.CODES)
    if wait:
        record_failed_login("two_step_throttled", user, user.email_normalized, via)
        message = f"Too many wrong codes. Try again in {wait} seconds."
        raise SecondStepRefused(message, field, 429, wait)
    row = two_step_enabled(user.id)
    if row is None:
        raise TwoStepStateConflict("Two-step sign-in is not on for this account.")
    if field == "code":
        method, reason, message = "totp", _accept_code(row, code), None
        if reason == "two_step_code_reused":
            message = REUSED_CODE
        elif reason:
            message = WRONG_CODE
    else:
        used = recovery.use_code(user.id, recovery_code)
        method = "recovery_code"
        reason = None if used else "recovery_code_wrong"
        message = None if used else WRONG_RECOVERY_CODE
    if reason:
        throttle.record_failure(user.email_normalized, address, throttle.CODES)
        record_failed_login(reason, user, user.email_normalized, via)
        raise SecondStepRefused(message, field)
    throttle.clear(user.email_normalized, address, throttle.CODES)
    if method == "recovery_code":
        _record(
            "login.recovery_code_used",
            user,
            {"via": via, "recovery_codes_left": recovery.remaining(user.id)},
        )
    return method


def _accept_code(row: TwoStepSecret, code: str) -> str | None:
    """None once ``code`` is accepted (its step recorded), else the reason it is not."""
    step = totp.matching_step(totp.unseal(row.sealed_secret, row.user_id), code)
    if step is None:
        return "two_step_wrong_code"
    # One conditional UPDATE: of two sign-ins racing with one code, one wins.
    moved = db.session.execute(
        sa.update(TwoStepSecret)
        .where(
            TwoStepSecret.user_id == row.user_id,
            sa.or_(TwoStepSecret.last_step.is_(None), TwoStepSecret.last_step < step),
        )
        .values(last_step=step)
        .execution_options(synchronize_session=False)
    )
    return None if moved.rowcount == 1 else "two_step_code_reused"


def disable(user: User, password: str, *, code: str, recovery_code: str, address: str) -> None:
    """Turn two-step sign-in off with the password and a code (or a recovery code).

    The secret and the recovery codes are deleted; the address is told.
    Commits the session.
    """
    if not is_enabled(user):
        raise TwoStepStateConflict("Two-step sign-in is off already.")
    _prove_password(user, password, address)
    method = check_second_step(
        user, code=code, recovery_code=recovery_code, address=address, via="two_step_off"
    )
    _remove(user.id)
    _record("account.two_step_disabled", user, {"second_step": method})
    _notify(user, "disabled")
    db.session.commit()


def regenerate_recovery_codes(user: User, password: str, *, code: str, address: str) -> list[str]:
    """Ten new recovery codes (the old ones stop working), with the password and a code.

    The address is told (without the codes). Commits the session; the codes are shown once.
    """
    if not is_enabled(user):
        raise TwoStepStateConflict("Two-step sign-in is not on.")
    _prove_password(user, password, address)
    check_second_step(user, code=code, address=address, via="recovery_codes")
    codes = recovery.replace_codes(user.id)
    _record("account.recovery_codes_regenerated", user, {"recovery_codes": len(codes)})
    _notify(user, "recovery_codes")
    db.session.commit()
    return codes


def _remove(user_id: str) -> None:
    db.session.execute(sa.delete(TwoStepSecret).where(TwoStepSecret.user_id == user_id))
    recovery.remove_codes(user_id)


def remove_for_support(user: User) -> None:
    """Delete ``user``'s secret and recovery codes and tell the address (a lost phone).

    The caller checks ``is_enabled``, ends the sessions, audits and commits.
    """
    _remove(user.id)
    _notify(user, "reset")


def complete_sign_in(user: User, *, code: str, recovery_code: str, address: str) -> str:
    """Sign ``user`` in once the second step is accepted (``check_second_step``); which one.

    The login says how it was proven (``AMR``), and is recorded as
    ``login.succeeded``. A recovery code's use is told to the address, with
    how many are left. Commits the session.
    """
    method = check_second_step(
        user, code=code, recovery_code=recovery_code, address=address, via="login"
    )
    succeeded = _event("login.succeeded", user, {"second_step": method})
    login_user(user, amr=AMR[method], event=succeeded)
    if method == "recovery_code":
        left = recovery.remaining(user.id)
        _notify(user, "recovery_code_used", left=left, few_left=left < FEW_RECOVERY_CODES)
    db.session.commit()
    return method
