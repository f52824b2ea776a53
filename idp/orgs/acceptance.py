"""Accepting a partner invitation through its emailed link.

Accepting proves the mailbox (the single-use link). A new address sets its
password on the accept page. An address that already belongs to a partner user
becomes a new membership of that same account, and the page asks for that
account's current password, so both the mailbox and the account are proven
(a forwarded invitation email alone cannot attach a partner to someone's
account). That password check is a login attempt: it waits on, counts towards
and is audited with the account's failed logins (``idp.login.service``), and
the page is rate-limited like ``POST /login``. Client and support addresses
cannot accept: one address, one hub.

Once the password is proven, the account is read again FOR SHARE until the
membership commits, as a reset request and a key generation hold theirs: a
disabling or an email reassignment by support either committed first (and the
acceptance is refused) or waits for the membership. So a disabled account
never joins a partner, and an invitation mailed to an address never goes to
an account that no longer holds it.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from idp.accounts.models import User
from idp.accounts.service import EmailTaken, checked_password_hash, hub_name, user_by_email
from idp.accounts.tokens import hash_link_secret
from idp.audit.service import record_event
from idp.errors import InvalidInput
from idp.extensions import db
from idp.login.service import check_password, forgive, raise_refusal
from idp.orgs.invitations import (
    AccountChanged,
    AccountDisabled,
    AlreadyMember,
    InvitationAccepted,
    InvitationInvalid,
    OtherHubAddress,
    pending_clause,
)
from idp.orgs.models import Invitation, Membership, Organization
from idp.timeutil import utcnow


@dataclass(frozen=True)
class OpenInvitation:
    """An invitation behind a link, and what accepting it would mean for its address."""

    invitation: Invitation
    partner: Organization
    account: User | None

    @property
    def situation(self) -> str:
        """What accepting means: ``new_account``, ``existing_account`` or a refusal reason."""
        if self.account is None:
            return "new_account"
        if self.account.hub != "partner":
            return "other_hub"
        if not self.account.is_active:
            return "disabled"
        if any(m.organization_id == self.partner.id for m in self.account.memberships):
            return "already_member"
        return "existing_account"


def open_invitation(raw_token: str | None) -> OpenInvitation:
    """The usable invitation behind a link and the account its address has, or raise."""
    if not raw_token or len(raw_token) > 200:
        raise InvitationInvalid("Ask the partner's owner for a new invitation.")
    same_link = Invitation.token_hash == hash_link_secret(raw_token)
    invitation = db.session.scalar(sa.select(Invitation).where(same_link, pending_clause()))
    if invitation is None:
        # Only the mailbox holds the link: saying it was used tells its owner nothing new.
        accepted = sa.select(Invitation.id).where(same_link, Invitation.accepted_at.is_not(None))
        if db.session.scalar(accepted) is not None:
            raise InvitationAccepted("Log in to the Partner Hub with the account that accepted it.")
        raise InvitationInvalid("Ask the partner's owner for a new invitation.")
    account = user_by_email(invitation.email_normalized)
    return OpenInvitation(invitation, invitation.organization, account)


def _refuse(opened: OpenInvitation) -> None:
    situation = opened.situation
    if situation == "other_hub":
        raise OtherHubAddress(
            f"This address belongs to a {hub_name(opened.account.hub)} account, and one "
            "address can hold only one account. Ask the partner to invite another address, "
            "or ask support."
        )
    if situation == "disabled":
        raise AccountDisabled("The account of this address is disabled. Ask support.")
    if situation == "already_member":
        raise AlreadyMember(f"You are already a member of {opened.partner.name}.")


def _prove_account(user: User, password: str, address: str) -> None:
    """Check the account's password from client ``address`` as a login would, or raise."""
    checked = check_password(user, user.email_normalized, password, address)
    wrong = "The password is not this account's."
    raise_refusal(checked, InvalidInput(wrong, fields={"password": ["wrong password"]}))
    forgive(checked, user.email_normalized, address)


def _hold_account(opened: OpenInvitation) -> User:
    """The account proven for ``opened``, read again FOR SHARE until the acceptance commits.

    Refused when support disabled it or gave it another address since the page was
    opened (the password check commits, so nothing it read is held until here).
    """
    held = user_by_email(opened.invitation.email_normalized, hold=True)
    if held is None or held.id != opened.account.id:
        raise AccountChanged(
            "The account of this address changed meanwhile. Open the invitation link again."
        )
    _refuse(OpenInvitation(opened.invitation, opened.partner, held))
    return held


def accept_invitation(raw_token: str | None, password: str, *, address: str) -> User:
    """Accept: a new account with ``password``, or a new membership proven by the account's own.

    ``address`` is the client's, for the failed-login counters of an existing account.
    """
    opened = open_invitation(raw_token)
    _refuse(opened)
    invitation, partner, user = opened.invitation, opened.partner, opened.account
    if user is not None:
        _prove_account(user, password, address)
        user = _hold_account(opened)
    # The new account's one organization is the partner: its name is no password either.
    password_hash = (
        checked_password_hash(password, email=invitation.email, names=(partner.name,))
        if user is None
        else None
    )
    claimed = db.session.execute(
        sa.update(Invitation)
        .where(Invitation.id == invitation.id, pending_clause())
        .values(accepted_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        db.session.rollback()
        raise InvitationInvalid("Ask the partner's owner for a new invitation.")
    if user is None:
        user = User.create(
            email=invitation.email,
            email_normalized=invitation.email_normalized,
            hub="partner",
            email_verified=True,
            password_hash=password_hash,
            password_changed_at=utcnow(),
        )
        db.session.add(user)
        record_event(
            "account.created",
            actor_type="user",
            actor_id=user.id,
            target_type="user",
            target_id=user.id,
            organization_id=partner.id,
            after={"hub": "partner", "organization_id": partner.id, "via": "invitation"},
        )
    db.session.add(Membership.create(user, partner, invitation.role))
    record_event(
        "invitation.accepted",
        actor_type="user",
        actor_id=user.id,
        target_type="invitation",
        target_id=invitation.id,
        organization_id=partner.id,
        after={"user_id": user.id, "role": invitation.role},
    )
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        # Another sign-up or acceptance took the address (or the membership) meanwhile.
        _refuse(open_invitation(raw_token))
        raise EmailTaken("This address got an account meanwhile: log in to accept.") from None
    return user
