"""The answer of every policy: allow or deny, and why."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Decision:
    """An allow/deny verdict with a human reason and a stable machine code."""

    allowed: bool
    reason: str
    code: str = "ok"

    def __bool__(self) -> bool:
        return self.allowed

    @classmethod
    def allow(cls, reason: str) -> Decision:
        """An allowing decision."""
        return cls(True, reason)

    @classmethod
    def deny(cls, reason: str, code: str = "forbidden") -> Decision:
        """A denying decision; ``code`` becomes the problem+json ``code``."""
        return cls(False, reason, code)


def first_denial(*decisions: Decision) -> Decision:
    """Return the first denial among ``decisions``, or the last allow when all allow."""
    last = Decision.allow("nothing to check")
    for decision in decisions:
        if not decision:
            return decision
        last = decision
    return last
