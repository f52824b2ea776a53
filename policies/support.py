"""Rules for support staff acting on other people's accounts and reading the audit log."""

from __future__ import annotations

from policies.actor import Actor
from policies.decision import Decision
from policies.permissions import Permission
from policies.roles import permissions_for


def can_use_support_tool(actor: Actor, permission: Permission) -> Decision:
    """Only a support person (never a machine, never another hub) holding the permission may."""
    if actor.is_machine or actor.hub != "support":
        return Decision.deny("support tools are for support staff only")
    if permission not in permissions_for(actor):
        return Decision.deny(f"your role does not allow {permission}")
    return Decision.allow(f"{permission} allowed for support staff")


def can_act_on_account(actor: Actor, permission: Permission, target_hub: str) -> Decision:
    """Support staff may act on any account, but only an admin may change a support account."""
    decision = can_use_support_tool(actor, permission)
    if not decision:
        return decision
    changes = permission != Permission.SUPPORT_ACCOUNTS_READ
    if changes and target_hub == "support" and "admin" not in actor.roles:
        return Decision.deny("only a support admin may change a support account")
    return decision
