"""Who is asking: a user acting in one organization, or a machine client of one."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Actor:
    """The facts a policy needs about the caller, taken from a verified token or session.

    ``user_id`` is None for a machine client (client_credentials); such an
    actor's permissions come from its scopes instead of roles.
    """

    hub: str
    organization_id: str | None
    roles: frozenset[str] = field(default_factory=frozenset)
    scopes: frozenset[str] = field(default_factory=frozenset)
    user_id: str | None = None
    client_id: str | None = None

    @property
    def is_machine(self) -> bool:
        """Whether this actor is a service client rather than a person."""
        return self.user_id is None

    @property
    def subject(self) -> str:
        """The id to record as the actor of an audit event."""
        return self.user_id or self.client_id or "anonymous"
