"""What support staff do to an account: find it, and reassign its email address."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import idna
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from idp.accounts.emails import InvalidEmail, email_hmac, parse_email
from idp.accounts.models import User, new_security_stamp
from idp.accounts.reset import PURPOSE as RESET_PURPOSE
from idp.accounts.service import hub_name
from idp.accounts.tokens import spend_user_tokens
from idp.audit.service import record_event
from idp.errors import Conflict, InvalidInput, NotFound
from idp.extensions import db
from idp.oauth.service import revoke_user_tokens
from idp.orgs.models import Membership
from idp.outbox.service import enqueue_templated_email
from idp.support.access import enforce_support
from idp.support.models import EmailConflict
from idp.support.paging import DEFAULT_LIMIT, Page, decode_cursor, page_of
from idp.support.verification import send_verification
from policies.actor import Actor
from policies.permissions import Permission
from policies.support import can_act_on_account, can_use_support_tool

# Held accounts carry an address in the reserved ``.invalid`` domain (RFC 2606) until
# support gives them one, so the UNIQUE index keeps meaning "one account per address".
HELD_DOMAIN = "conflict.invalid"


class AccountNotFound(NotFound):
    """No account has this id."""

    code, title = "account_not_found", "Account not found"


class EmailTaken(Conflict):
    """Another account already uses the address (the UNIQUE index decided)."""

    code, title = "email_taken", "Email address already in use"


class EmailUnchanged(InvalidInput):
    """The account already has this address."""

    code, title = "email_unchanged", "The account already has this address"


class AccountStateConflict(Conflict):
    """The account is not in a state that allows this action."""

    code, title = "account_state", "Not possible in the account's current state"


@dataclass
class AccountSearch:
    """What to look for: an exact address, an address prefix, or an account id."""

    email: str | None = None
    email_prefix: str | None = None
    user_id: str | None = None
    limit: int = DEFAULT_LIMIT
    cursor: str | None = None


def held_address(user_id: str) -> str:
    """The placeholder address of an account held for an email conflict."""
    return f"{user_id}@{HELD_DOMAIN}"


def has_held_address(user: User) -> bool:
    """Whether the account still carries the placeholder of an account held for a conflict."""
    return user.email_normalized.endswith("@" + HELD_DOMAIN)


def account_for(actor: Actor, permission: Permission, user_id: str) -> User:
    """Load the target account after checking the actor may use ``permission`` on it."""
    enforce_support(actor, can_use_support_tool(actor, permission), permission, user_id)
    user = db.session.get(User, user_id)
    if user is None:
        raise AccountNotFound(f"No account has the id {user_id}.")
    enforce_support(actor, can_act_on_account(actor, permission, user.hub), permission, user.id)
    return user


def get_account(actor: Actor, user_id: str) -> User:
    """One account with its memberships, for a support person."""
    return account_for(actor, Permission.SUPPORT_ACCOUNTS_READ, user_id)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _domain_label_forms(label: str) -> list[str]:
    """How a domain label that may continue beyond what was typed can start, stored.

    An internationalized label is stored in IDNA ASCII (``xn--`` Punycode), which
    begins with the label's ASCII letters in order: ``bü`` of ``bücher`` can only
    be the start of ``xn--b...``. An ASCII start may be a plain label or such a one.
    """
    if not label.isascii():
        return ["xn--" + "".join(char for char in label if char.isascii())]
    if label.startswith("xn--") or "xn--".startswith(label):
        return [label]
    return [label, "xn--" + label]


def _ascii_label(label: str) -> str:
    """A complete domain label as stored (IDNA ASCII), or as typed when it cannot be one."""
    try:
        return idna.alabel(label).decode("ascii") if label else label
    except idna.IDNAError:
        return label  # no stored address has such a label: it matches nothing


def prefix_forms(prefix: str) -> list[str]:
    """The normalized forms an address typed as ``prefix`` can start with (see ``normalize_email``).

    Like an address: NFKC, case-folded, and after the ``@`` the complete labels
    IDNA-encoded; the label being typed keeps every form it can still match.
    """
    text = unicodedata.normalize("NFKC", prefix.strip())
    local, at, domain = text.rpartition("@")
    if not at:
        return [text.casefold()]
    try:
        domain = idna.uts46_remap(domain, std3_rules=False, transitional=False)
    except idna.IDNAError:
        domain = domain.casefold()  # no stored domain has such characters: it matches nothing
    *complete, partial = domain.split(".")
    start = f"{local}@".casefold() + "".join(_ascii_label(label) + "." for label in complete)
    return [start + form for form in _domain_label_forms(partial)]


def _address_filter(query: AccountSearch):
    """The SQL condition for the search: claimed addresses of held accounts count too."""
    if query.user_id:
        return User.id == query.user_id
    if query.email:
        try:
            normalized = parse_email(query.email).normalized
        except InvalidEmail as exc:
            raise InvalidInput(fields={"email": [str(exc)]}) from exc
        users = User.email_normalized == normalized
        claimed = EmailConflict.email_normalized == normalized
    else:
        patterns = [_escape_like(form) + "%" for form in prefix_forms(query.email_prefix)]
        users = sa.or_(*(User.email_normalized.like(p, escape="\\") for p in patterns))
        claimed = sa.or_(*(EmailConflict.email_normalized.like(p, escape="\\") for p in patterns))
    held = db.select(EmailConflict.held_user_id).where(claimed)
    return sa.or_(users, User.id.in_(held))


def search_accounts(actor: Actor, query: AccountSearch) -> Page:
    """Accounts matching the search, ordered by address, one page at a time."""
    permission = Permission.SUPPORT_ACCOUNTS_READ
    enforce_support(actor, can_use_support_tool(actor, permission), permission)
    if not (query.email or query.email_prefix or query.user_id):
        raise InvalidInput(
            "Search by email, email_prefix or id.",
            fields={"email": ["Give email, email_prefix or id."]},
        )
    stmt = (
        db.select(User)
        .where(_address_filter(query))
        .options(selectinload(User.memberships).selectinload(Membership.organization))
        .order_by(User.email_normalized, User.id)
        .limit(query.limit + 1)
    )
    if query.cursor:
        after_email, after_id = decode_cursor(query.cursor, 2)
        stmt = stmt.where(
            sa.tuple_(User.email_normalized, User.id) > sa.tuple_(after_email, after_id)
        )
    rows = list(db.session.scalars(stmt))
    return page_of(rows, query.limit, lambda u: [u.email_normalized, u.id])


def open_conflict_of(user: User) -> EmailConflict | None:
    """The unresolved conflict that holds ``user``, if any."""
    return db.session.scalar(
        db.select(EmailConflict).where(
            EmailConflict.held_user_id == user.id, EmailConflict.resolved_at.is_(None)
        )
    )


def end_sessions_of(user: User, reason: str, actor: Actor) -> None:
    """End every browser session and token family of ``user``; the caller commits."""
    user.security_stamp = new_security_stamp()
    revoke_user_tokens(user.id, reason, actor_id=actor.subject)


def _mask(address: str) -> str:
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"


def reassign_email(actor: Actor, user_id: str, *, email: str, ticket: str, reason: str) -> User:
    """Give an account a new, unverified address, with a ticket and reason in the audit log.

    The UNIQUE index on the normalized address is the final judge: when two
    reassignments race for one address, exactly one commits and the other gets
    ``EmailTaken``. The account's sessions and token families end, the new
    address gets a verification link, and the old one a notice (unless the old
    one was only claimed by an account held for a conflict: it is someone else's).
    """
    user = account_for(actor, Permission.SUPPORT_ACCOUNTS_REASSIGN_EMAIL, user_id)
    try:
        address = parse_email(email)
    except InvalidEmail as exc:
        raise InvalidInput(fields={"email": [str(exc)]}) from exc
    if address.normalized == user.email_normalized:
        raise EmailUnchanged(f"The account already uses {user.email}.")
    held = user.status == "email_conflict"
    # The audit log never holds an address: each side is its email_hmac.
    before = {
        "email_hmac": email_hmac(user.email_normalized),
        "email_verified": user.email_verified,
        "status": user.status,
    }
    old_email = user.email
    # The address first: changing a UNIQUE column locks the account's row FOR
    # UPDATE, before any code, login or family, the order every other path
    # takes (a code exchange locks the account first too, ``code_store``).
    user.email = address.display
    user.email_normalized = address.normalized
    user.email_verified = False
    try:
        db.session.flush()
    except IntegrityError as exc:
        db.session.rollback()
        raise EmailTaken("Another account already uses this address.") from exc
    end_sessions_of(user, "email_reassigned", actor)
    # a reset link mailed to the old address must not outlive the address
    spend_user_tokens(user.id, RESET_PURPOSE)
    send_verification(user, held=held)
    if not held:
        enqueue_templated_email(
            old_email,
            f"The email address of your {hub_name(user.hub)} account was changed",
            "support/email/address_changed_notice.txt",
            hub=hub_name(user.hub),
            new_address=_mask(address.display),
            ticket=ticket,
        )
    record_event(
        "account.email_reassigned",
        actor_type="user",
        actor_id=actor.subject,
        target_type="user",
        target_id=user.id,
        before=before,
        after={
            "email_hmac": email_hmac(user.email_normalized),
            "email_verified": False,
            "status": user.status,
        },
        reason=reason,
        ticket=ticket,
    )
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise EmailTaken("Another account already uses this address.") from exc
    return user
