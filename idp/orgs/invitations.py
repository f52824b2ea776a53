"""Partner invitations: an owner invites an address; the emailed link makes it a member.

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
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from idp.accounts.emails import email_hmac
from idp.accounts.models import User
from idp.accounts.service import (
    EmailTaken,
    checked_password_hash,
    hold_active_account,
    hub_name,
    parse_address,
    user_by_email,
)
from idp.accounts.tokens import absolute_url, hash_link_secret, new_link_secret
from idp.audit.service import record_event
from idp.errors import Conflict, DomainError, InvalidInput, NotFound
from idp.extensions import db
from idp.ids import PREFIXES, new_id
from idp.login.service import check_password, forgive, raise_refusal
from idp.orgs.models import Invitation, Membership, Organization
from idp.outbox.service import enqueue_templated_email
from idp.timeutil import utcnow
from policies.actor import Actor
from policies.roles import ROLES_BY_HUB

# The code of revoking an invitation that was accepted meanwhile (409).
INVITATION_ACCEPTED = "invitation_accepted"


class InvitationInvalid(DomainError):
    """The invitation link is unknown, accepted, revoked or expired."""

    status, code, title = 400, "invitation_invalid", "This invitation is invalid or has expired"


class InvitationAccepted(InvitationInvalid):
    """The invitation link was used already: its invitation is accepted."""

    code, title = "invitation_accepted", "This invitation was accepted already"


class InvitationPending(Conflict):
    """The address already has a pending invitation to this partner."""

    code, title = "invitation_pending", "An invitation is already pending"


class AlreadyMember(Conflict):
    """The address's account is already a member of this partner."""

    code, title = "already_member", "Already a member"


class OtherHubAddress(Conflict):
    """The address belongs to a client or support account, so it cannot join a partner."""

    code, title = "email_in_other_hub", "This address belongs to another hub"


class AccountDisabled(Conflict):
    """The address's partner account is disabled."""

    code, title = "account_disabled", "This account is disabled"


class AccountChanged(Conflict):
    """The address's account changed while the invitation was being accepted."""

    code, title = "invitation_account_changed", "The account of this address changed"


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


def _partner(partner_id: str) -> Organization:
    partner = db.session.get(Organization, partner_id)
    if partner is None or partner.kind != "partner":
        raise NotFound("No such partner.")
    return partner


def _pending_clause():
    return sa.and_(
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.expires_at > utcnow(),
    )


def create_invitation(actor: Actor, partner_id: str, email: str, role: str) -> Invitation:
    """Invite ``email`` to the partner with ``role`` and email the accept link."""
    if actor.user_id is not None:
        # Until the invitation commits: a disabling of the inviter either came first
        # (refused here) or waits, and then revokes this invitation with the others.
        hold_active_account(actor.user_id)
    partner = _partner(partner_id)
    address = parse_address(email)
    if role not in ROLES_BY_HUB["partner"]:
        raise InvalidInput("Unknown role.", fields={"role": ["must be owner or member"]})
    account = user_by_email(address.normalized)
    if account is not None and any(m.organization_id == partner.id for m in account.memberships):
        raise AlreadyMember("This address is already a member of this partner.")
    _close_expired(actor, partner.id, address.normalized)
    raw, digest = new_link_secret()
    ttl = current_app.config["IDP_INVITATION_TTL"]
    invitation = Invitation(
        id=new_id(PREFIXES["invitation"]),
        organization_id=partner.id,
        email=address.display,
        email_normalized=address.normalized,
        role=role,
        token_hash=digest,
        invited_by_id=actor.user_id,
        expires_at=utcnow() + timedelta(seconds=ttl),
    )
    db.session.add(invitation)
    enqueue_templated_email(
        address.display,
        f"You are invited to join {partner.name} on the Partner Hub",
        "orgs/email/invitation.txt",
        partner=partner.name,
        role=role,
        accept_url=absolute_url("/invitations/accept", token=raw),
        ttl_days=max(ttl // 86400, 1),
    )
    record_event(
        "invitation.created",
        **actor_fields(actor),
        target_type="invitation",
        target_id=invitation.id,
        organization_id=partner.id,
        after={"email_hmac": email_hmac(address.normalized), "role": role},
    )
    try:
        db.session.commit()
    except IntegrityError:
        # The partial UNIQUE index: an open invitation exists (perhaps sent a moment ago).
        db.session.rollback()
        raise InvitationPending("Revoke the pending invitation first to send a new one.") from None
    return invitation


def _close_expired(actor: Actor, partner_id: str, email_normalized: str) -> None:
    """Revoke the address's expired open invitation, so that a new one may be sent."""
    _revoke_where(
        actor_fields(actor),
        "expired; a new invitation to the address replaces it",
        Invitation.organization_id == partner_id,
        Invitation.email_normalized == email_normalized,
        Invitation.expires_at <= utcnow(),
    )


def revoke_invitations_by(user_id: str, *, actor: Actor, reason: str) -> int:
    """Revoke every invitation ``user_id`` sent that is still open; how many. Caller commits.

    An account that support disables may have been taken over: the invitations
    it sent (an owner's, perhaps to its taker) must not let anyone in after it.
    """
    return _revoke_where(
        actor_fields(actor), reason, Invitation.invited_by_id == user_id, _pending_clause()
    )


def actor_fields(actor: Actor) -> dict:
    """``record_event``'s actor of an invitation change made by ``actor``."""
    return {"actor_type": "client" if actor.is_machine else "user", "actor_id": actor.subject}


def _revoke_where(who: dict, reason: str, *criteria) -> int:
    """Revoke the open invitations meeting ``criteria``, each on the audit log; how many.

    Each one by compare-and-set: one accepted meanwhile stays accepted.
    """
    candidates = db.session.scalars(
        sa.select(Invitation).where(
            Invitation.accepted_at.is_(None), Invitation.revoked_at.is_(None), *criteria
        )
    ).all()
    revoked = 0
    for invitation in candidates:
        if _revoke_if_open(invitation.id):
            _record_revoked(who, invitation, reason)
            revoked += 1
    return revoked


def _revoke_if_open(invitation_id: str) -> bool:
    """Revoke the invitation unless it was accepted or revoked meanwhile (compare-and-set)."""
    result = db.session.execute(
        sa.update(Invitation)
        .where(
            Invitation.id == invitation_id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _record_revoked(who: dict, invitation: Invitation, reason: str | None = None) -> None:
    record_event(
        "invitation.revoked",
        **who,
        target_type="invitation",
        target_id=invitation.id,
        organization_id=invitation.organization_id,
        reason=reason,
    )


def list_pending_invitations(partner_id: str) -> list[Invitation]:
    """The partner's invitations that can still be accepted, newest first."""
    partner = _partner(partner_id)
    return list(
        db.session.scalars(
            sa.select(Invitation)
            .where(Invitation.organization_id == partner.id, _pending_clause())
            .order_by(Invitation.created_at.desc(), Invitation.id)
        )
    )


def revoke_invitation(actor: Actor, partner_id: str, invitation_id: str) -> None:
    """Revoke a pending invitation so its link stops working (revoking twice is harmless)."""
    invitation = db.session.get(Invitation, invitation_id)
    if invitation is None or invitation.organization_id != partner_id:
        raise NotFound("No such invitation.")
    if invitation.accepted_at is not None:
        raise Conflict("This invitation was accepted already.", code=INVITATION_ACCEPTED)
    if invitation.revoked_at is None:
        # Compare-and-set: the invitee may accept between the read above and this write,
        # and an accepted invitation must not also read as revoked.
        if not _revoke_if_open(invitation.id):
            db.session.rollback()
            if db.session.get(Invitation, invitation_id).accepted_at is not None:
                raise Conflict("This invitation was accepted already.", code=INVITATION_ACCEPTED)
            return  # revoked meanwhile by another request: the outcome asked for
        _record_revoked(actor_fields(actor), invitation)
    db.session.commit()


def open_invitation(raw_token: str | None) -> OpenInvitation:
    """The usable invitation behind a link and the account its address has, or raise."""
    if not raw_token or len(raw_token) > 200:
        raise InvitationInvalid("Ask the partner's owner for a new invitation.")
    same_link = Invitation.token_hash == hash_link_secret(raw_token)
    invitation = db.session.scalar(sa.select(Invitation).where(same_link, _pending_clause()))
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
        .where(Invitation.id == invitation.id, _pending_clause())
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
