"""The audit log names no address in clear: resolved email conflicts did.

Revision ID: 0027_digest_conflict_addresses
Revises: 0026_fill_family_sign_in

``email_conflict.resolved`` events written before this revision carried the
address the held account claimed (``before.claimed_email``) and the one it
confirmed (``after.email``) in clear, where every other event names an address
by its keyed digest (``email_hmac``, from the app's ``SECRET_KEY``). This
replaces those two members of those events by their digests and changes
nothing else.

The table refuses every change (a trigger on PostgreSQL). Only when such
events exist is the trigger switched off, around the update of just those
rows by their ids, inside this revision's transaction: the table is locked
for that moment only (finding the rows reads it without blocking writes),
and waiting longer than ``LOCK_TIMEOUT`` for that lock stops the upgrade, to
be run again, instead of holding audited writes up. Events that instances
still running the code before this revision write during a rolling upgrade
keep their addresses.
Downgrade keeps the digests: the addresses are kept nowhere to put back.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0027_digest_conflict_addresses"
down_revision = "0026_fill_family_sign_in"
branch_labels = None
depends_on = None

ACTION = "email_conflict.resolved"
LOCK_TIMEOUT = "5s"
# (part of the event, member in clear, member that names it by its digest)
MEMBERS = (("before", "claimed_email", "claimed_email_hmac"), ("after", "email", "email_hmac"))

_events = sa.table(
    "audit_events",
    sa.column("id"),
    sa.column("action"),
    sa.column("before", sa.JSON),
    sa.column("after", sa.JSON),
)


def _loaded(value):
    return json.loads(value) if isinstance(value, str) else value


def _digested(part, clear: str, digest_name: str, digest):
    """``part`` with its address in clear replaced by its digest (None: nothing to replace)."""
    if not isinstance(part, dict) or clear not in part:
        return None
    changed = {k: v for k, v in part.items() if k != clear}
    address = part[clear]
    changed[digest_name] = digest(address) if isinstance(address, str) else None
    return changed


def upgrade():
    """Digest the addresses of the resolved conflicts' events, if any."""
    # The service's own digest and comparison form, so that an investigator's lookup of
    # an address finds these events as it finds every other.
    from idp.accounts.emails import comparison_form, email_hmac

    def digest(address: str) -> str:
        return email_hmac(comparison_form(address))

    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_events.c.id, _events.c.before, _events.c.after).where(_events.c.action == ACTION)
    ).all()
    updates = []
    for event_id, before, after in rows:
        parts = {"before": _loaded(before), "after": _loaded(after)}
        values = {}
        for part, clear, digest_name in MEMBERS:
            digested = _digested(parts[part], clear, digest_name, digest)
            if digested is not None:
                values[part] = digested
        if values:
            updates.append((event_id, values))
    if not updates:
        return
    postgresql = bind.dialect.name == "postgresql"
    if postgresql:
        # Switching the trigger waits for every transaction writing an event, and every
        # audited write queues behind it meanwhile: give up (the upgrade stops, to be run
        # again) rather than hold sign-ins up for long.
        op.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
        op.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
    for event_id, values in updates:
        bind.execute(_events.update().where(_events.c.id == event_id).values(**values))
    if postgresql:
        op.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
        op.execute("SET LOCAL lock_timeout TO DEFAULT")


def downgrade():
    """Nothing to undo: the addresses were not kept."""
