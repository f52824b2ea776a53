"""Whether a token family is alive: read on every use of its tokens, cached per process.

Every bearer request and every introspection asks this of the family named by
the token's ``sid``. The read runs outside any session transaction (one
autocommit statement); with Redis, its answer is kept per process until any
token family changes anywhere (``idp.changes``), so revoking a login is seen
by every instance on its next request.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from idp import changes
from idp.extensions import db
from idp.oauth.models import TokenFamily
from idp.timeutil import utcnow

FAMILIES = changes.counter("token-families", "token_families")
_states = changes.cache("token-family-states", FAMILIES, max_entries=50_000)

_QUERY = sa.select(
    TokenFamily.id,
    TokenFamily.client_id,
    TokenFamily.user_id,
    TokenFamily.organization_id,
    TokenFamily.expires_at,
    TokenFamily.revoked_at,
).where(TokenFamily.id == sa.bindparam("sid"))


@dataclass(frozen=True)
class FamilyState:
    """A read-only view of one ``token_families`` row."""

    id: str
    client_id: str
    user_id: str | None
    organization_id: str | None
    expires_at: datetime
    revoked_at: datetime | None

    @property
    def is_active(self) -> bool:
        """Unrevoked and within its absolute lifetime."""
        return self.revoked_at is None and self.expires_at > utcnow()


def _read(sid: str) -> FamilyState | None:
    with db.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        row = conn.execute(_QUERY, {"sid": sid}).first()
    return FamilyState(**row._mapping) if row is not None else None


def family_state(sid: str | None) -> FamilyState | None:
    """The committed state of family ``sid``, or None when there is no such family."""
    if not sid or not isinstance(sid, str) or len(sid) > 40:
        return None
    return _states.get(sid, lambda: _read(sid))
