"""Rules about acting inside an organization."""

from __future__ import annotations

from policies.actor import Actor
from policies.decision import Decision
from policies.permissions import Permission
from policies.roles import permissions_for


def can_act_in_org(
    actor: Actor, permission: Permission, organization_id: str, organization_kind: str
) -> Decision:
    """An actor may act on an organization only as its own member holding the permission."""
    if actor.hub != organization_kind or actor.organization_id != organization_id:
        return Decision.deny("this organization is not the one you are acting for", "not_found")
    if permission not in permissions_for(actor):
        return Decision.deny(f"your role does not allow {permission}")
    return Decision.allow(f"{permission} allowed in your own organization")


def can(actor: Actor, permission: Permission) -> Decision:
    """An actor may use a permission that needs no object when its roles or scopes hold it."""
    if permission not in permissions_for(actor):
        return Decision.deny(f"your role does not allow {permission}")
    return Decision.allow(f"{permission} allowed")


def can_remove_member(actor: Actor, partner_id: str, member_user_id: str) -> Decision:
    """A partner's owners remove any of its members; any member may leave it themselves."""
    decision = can_act_in_org(actor, Permission.MEMBERS_MANAGE, partner_id, "partner")
    if decision or decision.code == "not_found":
        return decision
    if actor.user_id is not None and actor.user_id == member_user_id:
        return Decision.allow("you may leave an organization you belong to")
    return decision


def keeps_an_owner(role_before: str, role_after: str | None, other_owners: int) -> Decision:
    """An organization never loses its last owner: one must stay to manage its members.

    ``role_after`` is None when the membership is removed; ``other_owners`` counts
    the owners besides this member.
    """
    if role_before == "owner" and role_after != "owner" and other_owners == 0:
        return Decision.deny(
            "this is the organization's only owner: make another member owner first",
            "last_owner",
        )
    return Decision.allow("the organization keeps an owner")
