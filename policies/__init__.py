"""Pure permission rules: no Flask, no database. ``idp/`` enforces what these decide."""

from policies.actor import Actor
from policies.decision import Decision
from policies.permissions import Permission
from policies.roles import permissions_for

__all__ = ["Actor", "Decision", "Permission", "permissions_for"]
