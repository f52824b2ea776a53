"""Client sign-up: nothing is created until the mailbox owner follows the emailed link.

``start_signup`` answers the same way whether or not the address is taken; the
mailbox owner learns by email either the verification link or which hub already
holds the address. ``complete_signup`` creates the client organization and its
owner in one transaction, and the UNIQUE index on ``users.email_normalized``
decides any race with another sign-up or an invitation acceptance.

The link proves the mailbox; the password typed on its page proves the person
who chose that password when signing up. Without the second proof, a stranger
who signed up with someone else's address could have its owner confirm the
stranger's sign-up and get an account that opens with the stranger's password.
A newer sign-up also spends the older links of its address, so only the latest
one works.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from idp.accounts.emails import EmailAddress, InvalidEmail, parse_email
from idp.accounts.models import EmailToken, User
from idp.accounts.passwords import (
    WeakPassword,
    check_password_rules,
    hash_password,
)
from idp.accounts.tokens import (
    absolute_url,
    claim_token,
    find_usable_token,
    issue_email_token,
    spend_address_tokens,
)
from idp.api_inputs import unfit_for_a_name
from idp.audit.service import record_event
from idp.errors import Conflict, DomainError, InvalidInput, Unauthorized
from idp.extensions import db, on_postgresql
from idp.login.service import check_password, forgive, raise_refusal
from idp.login.session import login_user
from idp.orgs.models import Membership, Organization
from idp.outbox.service import enqueue_templated_email
from idp.timeutil import utcnow

HUB_NAMES = {"partner": "Partner Hub", "client": "Client Hub", "support": "Support console"}
MAX_NAME_LENGTH = 200


SIGNUP_LINK_SPENT = (
    "If you created your account with it already, sign in; "
    "otherwise sign up again to get a new link."
)


class LinkInvalid(DomainError):
    """The emailed link is unknown, used already or expired."""

    status, code, title = 400, "link_invalid", "This link is invalid or has expired"


WRONG_SIGNUP_PASSWORD = (
    "This is not the password chosen when this link was asked for. Type the password "
    "you chose when you signed up; if this link is not from your own sign-up, sign up "
    "again and use the link of that email."
)


class EmailTaken(Conflict):
    """Another account took the address since the link was sent; nothing was created."""

    code, title = "email_taken", "This email address already has an account"


@dataclass(frozen=True)
class SignupResult:
    """What a completed sign-up created, and where the person was heading."""

    user: User
    organization: Organization
    continue_url: str | None


def parse_address(raw: str, field: str = "email") -> EmailAddress:
    """Parse an address typed by a person, or raise ``InvalidInput`` naming ``field``."""
    try:
        return parse_email(raw)
    except InvalidEmail as exc:
        raise InvalidInput("Enter a valid email address.", fields={field: [str(exc)]}) from exc


def checked_password_hash(
    password: str, field: str = "password", *, email: str, names: tuple[str, ...] = ()
) -> str:
    """Hash a password fit for ``email``'s account, or raise ``InvalidInput`` naming ``field``.

    ``names``: the account's organizations', which the password may not be either.
    """
    try:
        check_password_rules(password, email=email, names=names)
    except WeakPassword as exc:
        raise InvalidInput(str(exc), fields={field: [str(exc)]}) from exc
    return hash_password(password)


def hold_active_account(user_id: str) -> None:
    """Read the person's account FOR SHARE until the caller commits, or refuse if not active.

    Disabling an account (support) writes its row and then undoes what the person
    made that could outlive them (API keys, open invitations): one that commits
    first is seen here; one that comes later waits for the caller's commit and then
    finds what it wrote.
    """
    status = db.session.scalar(
        sa.select(User.status).where(User.id == user_id).with_for_update(read=True)
    )
    if status != "active":
        raise Unauthorized("The account can no longer act.")


def user_by_email(normalized: str, *, hold: bool = False) -> User | None:
    """The account holding the normalized address, if any; ``hold`` reads it FOR SHARE."""
    query = sa.select(User).where(User.email_normalized == normalized)
    return db.session.scalar(query.with_for_update(read=True) if hold else query)


def organization_names(user: User) -> tuple[str, ...]:
    """The names of ``user``'s organizations: words no password of theirs may be."""
    return tuple(membership.organization.name for membership in user.memberships)


def hub_name(hub: str) -> str:
    """How a hub is called in messages to people."""
    return HUB_NAMES.get(hub, hub)


def is_safe_continue_url(url: str | None) -> bool:
    """Whether ``url`` is a path on this service (no scheme, no host, no protocol-relative //)."""
    if not url or any(char.isspace() or unicodedata.category(char) == "Cc" for char in url):
        # Browsers drop tabs and line breaks from a URL, so "/\t/evil.example"
        # would be followed as the protocol-relative "//evil.example".
        return False
    return url.startswith("/") and not url.startswith("//") and "\\" not in url


def checked_name(raw: str, field: str = "business_name", what: str = "business name") -> str:
    """A name a person typed, white space collapsed, or ``InvalidInput`` naming ``field``."""
    name = " ".join((raw or "").split())
    if not name or len(name) > MAX_NAME_LENGTH:
        message = f"Enter the {what} (1 to {MAX_NAME_LENGTH} characters)."
        raise InvalidInput(message, fields={field: [message]})
    # A control character (NUL above all, which PostgreSQL cannot store) or a lone
    # surrogate (not storable as UTF-8) is never part of a name a person typed.
    fault = unfit_for_a_name(name)
    if fault:
        message = f"The {what} contains {fault}."
        raise InvalidInput(message, fields={field: [message]})
    return name


def _onboarding_partner(partner_id: str | None) -> str | None:
    if partner_id is None:
        return None
    partner = db.session.get(Organization, partner_id)
    if partner is None or partner.kind != "partner":
        raise InvalidInput(
            "Unknown partner.", fields={"onboarding_partner_id": ["unknown partner"]}
        )
    return partner.id


def start_signup(
    email: str,
    password: str,
    business_name: str,
    onboarding_partner_id: str | None = None,
    continue_url: str | None = None,
) -> None:
    """Email the mailbox a verification link, or the name of the hub that holds the address.

    The caller sees the same outcome either way; invalid input raises ``InvalidInput``.
    """
    address = parse_address(email)
    name = checked_name(business_name)
    if continue_url is not None and not is_safe_continue_url(continue_url):
        raise InvalidInput("Bad continue URL.", fields={"continue_url": ["must be a local path"]})
    partner_id = _onboarding_partner(onboarding_partner_id)
    # Hash in both branches so the answer takes as long whether or not the address is taken.
    password_hash = checked_password_hash(password, email=address.display, names=(name,))
    # Only the latest link of an address works (in both branches, for the same timing).
    # Two sign-ups of one address take turns until the first commits; otherwise each
    # would spend only the links committed before it, and the UNIQUE index on unspent
    # sign-up links would refuse the second new link (an error, not an email).
    if on_postgresql():
        db.session.execute(
            sa.text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
            {"key": f"signup:{address.normalized}"},
        )
    spend_address_tokens(address.normalized, "signup")
    existing = user_by_email(address.normalized)
    if existing is not None:
        enqueue_templated_email(
            existing.email,
            "Someone tried to sign up with your email address",
            "accounts/email/signup_address_taken.txt",
            hub=hub_name(existing.hub),
            reset_url=absolute_url("/password-reset"),
        )
    else:
        raw = issue_email_token(
            "signup",
            address.normalized,
            current_app.config["IDP_EMAIL_TOKEN_TTL"],
            payload={
                "email": address.display,
                "password_hash": password_hash,
                "business_name": name,
                "onboarding_partner_id": partner_id,
                "continue_url": continue_url,
            },
        )
        enqueue_templated_email(
            address.display,
            "Confirm your email address to finish signing up",
            "accounts/email/signup_verify.txt",
            verify_url=absolute_url("/signup/verify", token=raw),
            ttl_hours=current_app.config["IDP_EMAIL_TOKEN_TTL"] // 3600,
        )
    db.session.commit()


def pending_signup(raw_token: str | None) -> dict:
    """The pending sign-up behind a verification link (email and business name), or raise."""
    token = find_usable_token("signup", raw_token)
    if token is None:
        raise LinkInvalid(SIGNUP_LINK_SPENT)
    return {"email": token.payload["email"], "business_name": token.payload["business_name"]}


def _prove_signup_password(token: EmailToken, password: str, address: str) -> None:
    """Check the password chosen with this sign-up, typed from client ``address``, or raise.

    A login attempt on the link's address (``idp.login.service.check_password``,
    its failed-login counters and ``login.failed`` events), so that a link read by
    someone else cannot be used to guess the password; a wrong password
    (``InvalidInput``) or a refused attempt (``TooManyAttempts``) leaves the link
    usable. Commits the session.
    """
    email = token.email_normalized
    checked = check_password(
        None, email, password, address, pending_hash=token.payload["password_hash"], via="signup"
    )
    raise_refusal(
        checked, InvalidInput(WRONG_SIGNUP_PASSWORD, fields={"password": [WRONG_SIGNUP_PASSWORD]})
    )
    forgive(checked, email, address)


def complete_signup(raw_token: str | None, password: str, *, address: str) -> SignupResult:
    """Create the client organization and its verified owner from a verification link.

    ``password`` must be the one chosen with this sign-up; ``address`` is the
    client's, for the failed-login counters.
    """
    token = find_usable_token("signup", raw_token)
    if token is None:
        raise LinkInvalid(SIGNUP_LINK_SPENT)
    _prove_signup_password(token, password, address)
    if not claim_token(token):
        db.session.rollback()
        raise LinkInvalid(SIGNUP_LINK_SPENT)
    payload = dict(token.payload)
    if user_by_email(token.email_normalized) is not None:
        db.session.commit()  # the link is spent: the address went to another account
        raise EmailTaken("Log in with this address, or sign up with another one.")
    organization = Organization.create(
        "client", payload["business_name"], onboarding_partner_id=payload["onboarding_partner_id"]
    )
    user = User.create(
        email=payload["email"],
        email_normalized=token.email_normalized,
        hub="client",
        email_verified=True,
        password_hash=payload["password_hash"],
        password_changed_at=utcnow(),
    )
    db.session.add_all([organization, user, Membership.create(user, organization, "owner")])
    record_event(
        "account.created",
        actor_type="user",
        actor_id=user.id,
        target_type="user",
        target_id=user.id,
        organization_id=organization.id,
        after={"hub": "client", "organization_id": organization.id, "via": "signup"},
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        if user_by_email(token.email_normalized) is None:
            raise
        raise EmailTaken("Log in with this address, or sign up with another one.") from None
    return SignupResult(user, organization, payload.get("continue_url"))


def log_in_after_signup(user: User) -> None:
    """Open a browser session for the new account, as if it had just logged in."""
    login_user(user)
    db.session.commit()
