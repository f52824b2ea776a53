"""The queue of accounts held because their address was already in use."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from idp.accounts.models import User
from idp.extensions import db
from idp.support.access import enforce_support
from idp.support.models import EmailConflict
from idp.support.paging import DEFAULT_LIMIT, Page, decode_time_cursor, encode_cursor
from idp.support.service import has_held_address
from policies.actor import Actor
from policies.permissions import Permission
from policies.support import can_use_support_tool

CONFLICT_STATES = ("open", "resolved", "all")


@dataclass
class ConflictView:
    """One conflict with both sides: the held account and the account using the address."""

    conflict: EmailConflict
    held: User
    holder: User | None

    @property
    def state(self) -> str:
        """``held`` (no new address yet), ``awaiting_verification`` or ``resolved``."""
        if self.conflict.resolved_at is not None:
            return "resolved"
        if has_held_address(self.held):
            return "held"
        return "awaiting_verification"


def list_conflicts(
    actor: Actor, *, state: str = "open", limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page:
    """Conflicts oldest first, with both sides, one page at a time."""
    permission = Permission.SUPPORT_CONFLICTS_READ
    enforce_support(actor, can_use_support_tool(actor, permission), permission)
    stmt = db.select(EmailConflict).order_by(EmailConflict.created_at, EmailConflict.id)
    if state == "open":
        stmt = stmt.where(EmailConflict.resolved_at.is_(None))
    elif state == "resolved":
        stmt = stmt.where(EmailConflict.resolved_at.is_not(None))
    if cursor:
        created, after_id = decode_time_cursor(cursor)
        stmt = stmt.where(
            sa.tuple_(EmailConflict.created_at, EmailConflict.id) > sa.tuple_(created, after_id)
        )
    rows = list(db.session.scalars(stmt.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    holders = _current_holders([c.email_normalized for c in rows])
    items = [ConflictView(c, c.held_user, holders.get(c.email_normalized)) for c in rows]
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = encode_cursor([last.created_at.isoformat(), last.id])
    return Page(items, next_cursor)


def _current_holders(addresses: list[str]) -> dict[str, User]:
    """Who uses each claimed address now (it may have moved since the import)."""
    if not addresses:
        return {}
    users = db.session.scalars(db.select(User).where(User.email_normalized.in_(set(addresses))))
    return {u.email_normalized: u for u in users}
