"""Password login: throttling, verification, hub check, audit, session start."""

from __future__ import annotations

from dataclasses import dataclass

from idp.accounts.emails import comparison_form, email_hmac
from idp.accounts.models import User
from idp.accounts.passwords import verify_and_update
from idp.audit.service import audit_event, record_refusal
from idp.errors import DomainError, InvalidInput
from idp.extensions import db
from idp.login import throttle
from idp.login.second_step import await_second_step
from idp.login.session import PASSWORD_ONLY, login_user
from idp.mfa.models import TWO_STEP_ON


@dataclass(frozen=True)
class LoginOutcome:
    """What the login page shows: a logged-in user, a wrong-hub user, or an error."""

    user: User | None = None
    error: str | None = None
    status: int = 200
    retry_after: int = 0
    wrong_hub: bool = False
    second_step: bool = False  # the password is right; a code from the app must follow


# The account and whether it asks for a second step, in one query: a login costs
# a PostgreSQL round trip less than reading the second step after the password.
_USER_BY_EMAIL = db.select(User, TWO_STEP_ON).where(User.email_normalized == db.bindparam("email"))


@dataclass(frozen=True)
class PasswordCheck:
    """A password checked behind the failed-login throttle."""

    refusal: LoginOutcome | None  # why the password is not accepted: a wait, or a mismatch
    counted: bool  # the attempt is counted: ``forgive`` it once the user is let in


class TooManyAttempts(DomainError):
    """Too many wrong passwords for this address: wait ``retry_after`` seconds first."""

    status, code, title = 429, "too_many_attempts", "Too many failed attempts"

    def __init__(self, detail: str, retry_after: int):
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after


def record_failed_login(
    reason: str, user: User | None, email_normalized: str, via: str | None = None
) -> None:
    """Record a refused login step as ``login.failed`` and commit it now (``record_refusal``)."""
    record_refusal(
        "login.failed",
        actor_type="anonymous" if user is None else "user",
        actor_id=user.id if user else None,
        target_type="user" if user else None,
        target_id=user.id if user else None,
        after={"email_hmac": email_hmac(email_normalized)} | ({"via": via} if via else {}),
        reason=reason,
    )


def check_password(
    user: User | None,
    email_normalized: str,
    password: str,
    address: str,
    *,
    pending_hash: str | None = None,
    via: str | None = None,
) -> PasswordCheck:
    """Check a password typed for ``email_normalized`` from ``address``, as every login does.

    The attempt is counted before the password is checked (``throttle.admit``),
    so that guesses sent at the same moment cannot all pass the counters. While
    the counters say to wait, nothing is checked (429 with ``retry_after``,
    recorded as ``login.failed`` with reason ``throttled``). A mismatch is
    recorded as ``login.failed`` (401). A match rehashes a hash of older
    parameters; the caller then calls ``forgive`` when the person is let in.
    ``pending_hash`` checks the hash of an account not made yet (a sign-up's,
    ``user`` None); ``via`` names such a path in the events. Commits the session.
    """
    retry_after = throttle.admit(email_normalized, address)
    if retry_after:
        # Not checked and not counted, but on record: support sees every attempt.
        record_failed_login("throttled", user, email_normalized, via)
        refusal = LoginOutcome(
            error=f"Too many failed attempts. Try again in {retry_after} seconds.",
            status=429,
            retry_after=retry_after,
        )
        return PasswordCheck(refusal, counted=False)
    stored = pending_hash if user is None else user.password_hash
    matched, new_hash = verify_and_update(stored, password or "")
    if not matched:
        throttle.record_failure(email_normalized, address)
        record_failed_login("bad_credentials", user, email_normalized, via)
        wrong = LoginOutcome(error="The email or password is wrong.", status=401)
        return PasswordCheck(wrong, counted=True)
    if new_hash is not None and user is not None:  # older parameters, or not normalized
        user.password_hash = new_hash
    return PasswordCheck(None, counted=True)


def raise_refusal(checked: PasswordCheck, wrong: InvalidInput) -> None:
    """For a form: ``TooManyAttempts`` while the counters say to wait, ``wrong`` on a
    mismatch, nothing when the password was accepted."""
    if checked.refusal is None:
        return
    if checked.refusal.retry_after:
        raise TooManyAttempts(checked.refusal.error, checked.refusal.retry_after)
    raise wrong


def forgive(checked: PasswordCheck, email_normalized: str, address: str) -> None:
    """Take back the attempt, and the failures before it, of a password that let its person in."""
    if checked.counted:
        throttle.clear(email_normalized, address)


def attempt_login(
    email: str, password: str, expected_hub: str | None, address: str
) -> LoginOutcome:
    """Check the credentials and start a session; the same answer for unknown and wrong.

    An account with two-step sign-in gets no session yet: the outcome says
    ``second_step`` and this browser is asked for a code next.
    """
    normalized = comparison_form(email)
    found = db.session.execute(_USER_BY_EMAIL, {"email": normalized}).first()
    user, asks_second_step = found if found is not None else (None, False)
    checked = check_password(user, normalized, password, address)
    if checked.refusal is not None:
        return checked.refusal
    if not user.is_active:
        record_failed_login(f"account_{user.status}", user, normalized)
        return LoginOutcome(error="This account cannot sign in. Contact support.", status=403)
    forgive(checked, normalized, address)
    if expected_hub and user.hub != expected_hub:
        record_failed_login("wrong_hub", user, normalized)
        return LoginOutcome(user=user, wrong_hub=True, status=403)
    if asks_second_step:
        # Nobody is signed in until the code is typed (``idp.mfa.service.complete_sign_in``).
        await_second_step(user)
        db.session.commit()
        return LoginOutcome(user=user, second_step=True)
    succeeded = audit_event(
        "login.succeeded",
        actor_type="user",
        actor_id=user.id,
        target_type="user",
        target_id=user.id,
    )
    # The password alone, now: a second step this browser took before counts no more.
    login_user(user, PASSWORD_ONLY, event=succeeded)
    db.session.commit()
    return LoginOutcome(user=user)
