"""Partner invitations: an owner invites an address, lists and revokes what is pending.

The emailed link makes the address a member (``idp.orgs.acceptance``). An
invitation an account sent ends when support disables that account, and one
that expired ends when the address is invited again; each revocation is on
the audit log.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from idp.accounts.emails import email_hmac
from idp.accounts.service import parse_address, user_by_email
from idp.accounts.tokens import absolute_url, new_link_secret
from idp.audit.service import actor_fields, record_event
from idp.auth.enforce import enforce
from idp.errors import Conflict, DomainError, InvalidInput, NotFound
from idp.extensions import db
from idp.ids import PREFIXES, new_id
from idp.orgs.models import Invitation, Organization
from idp.orgs.service import hold_acting_person
from idp.outbox.service import enqueue_templated_email
from idp.timeutil import utcnow
from policies.actor import Actor
from policies.organizations import can_act_in_org
from policies.permissions import Permission
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


def _partner(partner_id: str) -> Organization:
    partner = db.session.get(Organization, partner_id)
    if partner is None or partner.kind != "partner":
        raise NotFound("No such partner.")
    return partner


def pending_clause():
    """An invitation that can still be accepted: neither accepted nor revoked, and in date."""
    return sa.and_(
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
        Invitation.expires_at > utcnow(),
    )


def create_invitation(actor: Actor, partner_id: str, email: str, role: str) -> Invitation:
    """Invite ``email`` to the partner with ``role`` and email the accept link."""
    # Until the invitation commits: a disabling of the inviter, or an owner taking their
    # role away, either came first (refused) or waits, and then revokes this invitation.
    actor = hold_acting_person(actor, partner_id)
    enforce(can_act_in_org(actor, Permission.INVITATIONS_CREATE, partner_id, "partner"))
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
    revoke_invitations_where(
        actor,
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
    return revoke_invitations_where(
        actor, reason, Invitation.invited_by_id == user_id, pending_clause()
    )


def revoke_invitations_where(actor: Actor | None, reason: str, *criteria) -> int:
    """Revoke the open invitations meeting ``criteria``, each on the audit log; how many.

    Each one by compare-and-set: one accepted meanwhile stays accepted. The
    caller commits.
    """
    who = actor_fields(actor)
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
            .where(Invitation.organization_id == partner.id, pending_clause())
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
