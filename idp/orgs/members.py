"""An organization's members: listed by its people; owners change roles and remove members.

A partner's owners make another member owner or member, or remove them; any
member may leave. Neither ever leaves a partner without an active owner. A role
taken away or a membership ended takes effect at once: the roles are in the
access tokens, so the person's token families for that organization are
revoked (they sign in to it again, with what is left) and their codes for it
not yet exchanged are spent. An owner who stops being one loses the pending
invitations they sent there, as a disabled account does everywhere.

Each change locks, in this order: the organization's row (``FOR NO KEY
UPDATE``, so that two owners demoting each other queue and the second finds
itself no longer owner, or the organization's last active owner), then, in the
order of their ids, the acting person's account (held active, ``FOR SHARE``)
and the member's (``FOR UPDATE``), so that changes in two partners touching
the same two people queue rather than deadlock. A code exchange or a partner
switch of the member holds their account ``FOR KEY SHARE`` while it opens a
family: it either committed first, and its family is found and revoked, or
reads the membership after this change. A write of the member that leaves a
credential (``idp.orgs.service.hold_acting_person``) holds their account
``FOR SHARE`` and reads their roles after it.
"""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa

from idp.accounts.models import User
from idp.accounts.service import hold_active_account, hub_name
from idp.audit.service import actor_fields, record_event
from idp.auth.enforce import enforce
from idp.channels.cursor import Page, after, cut
from idp.errors import Conflict, NotFound, Unauthorized
from idp.extensions import db
from idp.oauth.revocation import revoke_organization_tokens
from idp.orgs.invitations import pending_clause, revoke_invitations_where
from idp.orgs.models import Invitation, Membership, Organization
from idp.orgs.service import acting_now
from idp.outbox.service import enqueue_templated_email
from idp.support.service import has_held_address
from policies.actor import Actor
from policies.organizations import can_act_in_org, can_remove_member, keeps_an_owner
from policies.permissions import Permission


class LastOwner(Conflict):
    """The change would leave the organization without an active owner."""

    code, title = "last_owner", "An organization keeps at least one owner"


class MemberInactive(Conflict):
    """The member's account is disabled or held: it cannot be made owner."""

    code, title = "member_inactive", "This member's account is not active"


@dataclasses.dataclass(frozen=True)
class MemberRow:
    """One member as the organization's people see them."""

    membership: Membership
    user: User


def list_members(
    actor: Actor, organization_id: str, kind: str, *, limit: int, cursor: str | None = None
) -> Page:
    """The organization's members, longest-standing first, one page of them."""
    enforce(can_act_in_org(actor, Permission.MEMBERS_READ, organization_id, kind))
    query = (
        sa.select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.organization_id == organization_id)
    )
    query = after(query, (Membership.created_at, Membership.id), cursor)
    rows = db.session.execute(query.limit(limit + 1)).all()
    page = cut(rows, limit, lambda row: (row[0].created_at, row[0].id))
    page.items = [MemberRow(membership, user) for membership, user in page.items]
    return page


def change_role(actor: Actor, partner_id: str, membership_id: str, role: str) -> MemberRow:
    """Make the member ``role``; the same role again changes nothing. The caller's view answers."""
    membership, live_actor = _locked(actor, partner_id, membership_id)
    enforce(can_act_in_org(live_actor, Permission.MEMBERS_MANAGE, partner_id, "partner"))
    before = membership.role
    if role == before:
        db.session.commit()
        return _row(membership)
    _keep_an_owner(partner_id, membership, role)
    if role == "owner" and not membership.user.is_active:
        raise MemberInactive("Only an active account can be made owner.")
    membership.role = role
    user, partner = membership.user, membership.organization
    if before == "owner":
        _end_access(
            actor, membership, "role_changed", "the owner who sent it is no longer an owner"
        )
    record_event(
        "membership.role_changed",
        **actor_fields(actor),
        target_type="user",
        target_id=user.id,
        organization_id=partner_id,
        before={"membership_id": membership.id, "role": before},
        after={"membership_id": membership.id, "role": role},
    )
    _tell(
        user,
        f"Your role at {partner.name} is now {role}",
        "orgs/email/role_changed.txt",
        partner=partner.name,
        role=role,
        hub=hub_name(partner.kind),
        signed_out=before == "owner",
    )
    db.session.commit()
    return _row(membership)


def remove_member(actor: Actor, partner_id: str, membership_id: str) -> None:
    """End the membership (an owner's act, or the member leaving); the person is told."""
    membership, live_actor = _locked(actor, partner_id, membership_id)
    enforce(can_remove_member(live_actor, partner_id, membership.user_id))
    _keep_an_owner(partner_id, membership, None)
    user, partner = membership.user, membership.organization
    left = actor.user_id == user.id
    _end_access(
        actor,
        membership,
        "left_organization" if left else "membership_removed",
        "the person who sent it left the partner" if left else "the person who sent it was removed",
    )
    if user.last_organization_id == partner_id:
        user.last_organization_id = None
    record_event(
        "membership.removed",
        **actor_fields(actor),
        target_type="user",
        target_id=user.id,
        organization_id=partner_id,
        before={"membership_id": membership.id, "role": membership.role},
        after={"left": left},
    )
    _tell(
        user,
        f"You left {partner.name}" if left else f"You were removed from {partner.name}",
        "orgs/email/membership_removed.txt",
        partner=partner.name,
        hub=hub_name(partner.kind),
        left=left,
    )
    db.session.delete(membership)
    db.session.commit()


def _locked(actor: Actor, partner_id: str, membership_id: str) -> tuple[Membership, Actor]:
    """The membership and the actor with their roles as they are now, both read under lock.

    The token says what the actor's roles were when it was issued; another
    owner may have changed them since, in a request that held the locks first.
    """
    enforce(can_act_in_org(actor, Permission.MEMBERS_READ, partner_id, "partner"))
    partner = db.session.get(
        Organization, partner_id, with_for_update={"key_share": True}, populate_existing=True
    )
    if partner is None:
        raise NotFound("No such resource.")
    target = db.session.execute(
        sa.select(Membership.user_id).where(
            Membership.id == membership_id, Membership.organization_id == partner_id
        )
    ).first()
    if target is None:
        raise NotFound("No such member.")
    _hold_accounts(actor.user_id, target.user_id)
    membership = db.session.get(Membership, membership_id, populate_existing=True)
    if membership is None:  # removed while this request waited for the locks
        raise NotFound("No such member.")
    return membership, acting_now(actor, partner_id)


def _hold_accounts(actor_id: str | None, member_id: str) -> None:
    """Lock the acting person's account (held active, ``FOR SHARE``) and the member's
    (``FOR UPDATE``), in the order of their ids, each row once.

    Two people acting on each other in two partners, or one person leaving two
    partners at once, queue instead of deadlocking.
    """
    for user_id in sorted({actor_id, member_id} - {None}):
        if user_id != member_id:
            hold_active_account(user_id)
            continue
        member = db.session.get(User, user_id, with_for_update=True, populate_existing=True)
        if user_id == actor_id and not member.is_active:
            raise Unauthorized("The account can no longer act.")


def _keep_an_owner(partner_id: str, membership: Membership, role_after: str | None) -> None:
    """Refuse a change that leaves the partner without an active owner.

    The other owners are read, not locked: support may disable one of them at
    any time (a taken-over account must be stoppable), and no lock here would
    change that.
    """
    active = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Membership)
        .join(User, User.id == Membership.user_id)
        .where(
            Membership.organization_id == partner_id,
            Membership.role == "owner",
            Membership.id != membership.id,
            User.status == "active",
        )
    )
    decision = keeps_an_owner(membership.role, role_after, active)
    if not decision:
        raise LastOwner(decision.reason)


def _end_access(
    actor: Actor, membership: Membership, tokens_reason: str, invitations_reason: str
) -> None:
    """End what the membership gave: the member's tokens for the organization, and the
    invitations they sent there (only an owner's can be pending)."""
    revoke_organization_tokens(
        membership.user_id, membership.organization_id, tokens_reason, actor_id=actor.subject
    )
    revoke_invitations_where(
        actor,
        invitations_reason,
        Invitation.organization_id == membership.organization_id,
        Invitation.invited_by_id == membership.user_id,
        pending_clause(),
    )


def _tell(user: User, subject: str, template: str, **context) -> None:
    """Email the member, unless their account is held (its address is a placeholder)."""
    if not has_held_address(user):
        enqueue_templated_email(user.email, subject, template, **context)


def _row(membership: Membership) -> MemberRow:
    return MemberRow(membership, membership.user)
