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
