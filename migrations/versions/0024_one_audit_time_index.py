"""One index on the audit log's time, not two.

Revision ID: 0024_one_audit_time_index
Revises: 0023_login_session_device

``audit_events`` had an index on ``occurred_at`` beside the one on
``(occurred_at, id)`` that the log's pages are read by. The second serves
every query the first did (a range of times, newest or oldest first), so the
first only cost a write on every audited change, logins included. Dropping
it takes a moment's lock on the table; building it again on downgrade reads
the table once.
"""

from alembic import op

revision = "0024_one_audit_time_index"
down_revision = "0023_login_session_device"
branch_labels = None
depends_on = None


def upgrade():
    """Drop the index on the time alone."""
    op.drop_index("ix_audit_events_occurred_at", table_name="audit_events")


def downgrade():
    """Build it again."""
    op.create_index("ix_audit_events_occurred_at", "audit_events", ["occurred_at"], unique=False)
