"""Turning a policy Decision into the HTTP outcome (the only place that does)."""

from __future__ import annotations

from idp.errors import Forbidden, NotFound
from policies.decision import Decision


def enforce(decision: Decision) -> Decision:
    """Raise when the policy denies; ``not_found`` denials hide the object's existence."""
    if decision:
        return decision
    if decision.code == "not_found":
        raise NotFound("No such resource.")
    raise Forbidden(decision.reason, code=decision.code)
