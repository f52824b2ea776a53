"""Each browser login keeps the device and address it started from, and its last use.

Revision ID: 0023_login_session_device
Revises: 0022_previous_client_secret

The page of signed-in browsers listed logins by their start only, so a
person could not tell which one was the lost laptop. ``device`` (browser and
system, e.g. "Firefox on Windows") and ``ip_address`` are stored when a login
starts, ``last_seen_at`` while it is used. Logins already open keep NULL in
all three and are shown as an unknown device.
"""

import sqlalchemy as sa
from alembic import op

revision = "0023_login_session_device"
down_revision = "0022_previous_client_secret"
branch_labels = None
depends_on = None


def upgrade():
    """Add ``login_sessions.device``, ``ip_address`` and ``last_seen_at``."""
    with op.batch_alter_table("login_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("device", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("ip_address", sa.String(length=45), nullable=True))
        batch_op.add_column(sa.Column("last_seen_at", sa.DateTime(), nullable=True))


def downgrade():
    """Drop the three columns."""
    with op.batch_alter_table("login_sessions", schema=None) as batch_op:
        batch_op.drop_column("last_seen_at")
        batch_op.drop_column("ip_address")
        batch_op.drop_column("device")
