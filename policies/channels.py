"""The channel lifecycle: statuses, legal transitions, and when keys may exist."""

from __future__ import annotations

from types import MappingProxyType

from policies.decision import Decision

CHANNEL_STATUSES = (
    "created",
    "pending",
    "ready",
    "running",
    "live",
    "suspended",
    "terminated",
)
ACCOUNT_MODES = ("sandbox", "live")
WABA_VERIFICATION_STATES = ("unverified", "pending", "verified", "rejected")

# created -> pending (submitted) -> ready (approved) -> running (registered) ->
# live (billing started). running/live may be suspended and resumed; any
# status may end in terminated, which is final.
TRANSITIONS: MappingProxyType = MappingProxyType(
    {
        "created": frozenset({"pending", "terminated"}),
        "pending": frozenset({"created", "ready", "terminated"}),
        "ready": frozenset({"running", "terminated"}),
        "running": frozenset({"live", "suspended", "terminated"}),
        "live": frozenset({"suspended", "terminated"}),
        "suspended": frozenset({"running", "live", "terminated"}),
        "terminated": frozenset(),
    }
)

KEY_STATUSES = frozenset({"running", "live"})


def allowed_targets(current: str, *, billing_started: bool) -> frozenset[str]:
    """Where a ``current`` channel may move: a suspended one goes straight back to
    ``live`` only when its billing had started (it was live before), else to running."""
    if current == "suspended" and not billing_started:
        return TRANSITIONS[current] - {"live"}
    return TRANSITIONS[current]


def can_transition(current: str, target: str, *, billing_started: bool) -> Decision:
    """A channel may move only along the lifecycle's edges; terminated is final.

    ``billing_started``: whether the channel has been live (billing starts there).
    """
    if target not in TRANSITIONS:
        return Decision.deny(f"unknown status {target!r}", "invalid_status")
    if target in allowed_targets(current, billing_started=billing_started):
        return Decision.allow(f"{current} -> {target} is allowed")
    return Decision.deny(f"{current} -> {target} is not allowed", "illegal_transition")


def allows_api_keys(status: str) -> Decision:
    """API keys may be generated only for a channel that is running or live."""
    if status in KEY_STATUSES:
        return Decision.allow(f"a {status} channel may have API keys")
    return Decision.deny(f"a {status} channel cannot have API keys", "channel_status")
