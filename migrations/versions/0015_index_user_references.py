"""Indexes behind the last references to accounts that had none.

Revision ID: 0015_index_user_references
Revises: 0014_unannounced_changes

Who sent an invitation (``invitations.invited_by_id``), who approved a
consent grant (``consent_grants.granted_by_id``) and which account holds an
address another one claims (``email_conflicts.holder_user_id``) reference
``users`` with no index behind them. Deleting an account row makes the
database look for the rows that still name it, and without an index it reads
each of these tables through, once per account deleted. Nothing deletes an
account yet; an erasure would. These tables grow with invitations, approvals
and imports, not with logins, so the indexes cost little to write; building
them reads each table once, and writes to it wait meanwhile.
"""

from alembic import op

revision = "0015_index_user_references"
down_revision = "0014_unannounced_changes"
branch_labels = None
depends_on = None

REFERENCES = (
    ("invitations", "invited_by_id"),
    ("consent_grants", "granted_by_id"),
    ("email_conflicts", "holder_user_id"),
)


def upgrade():
    """Index each reference."""
    for table, column in REFERENCES:
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def downgrade():
    """Drop them."""
    for table, column in REFERENCES:
        op.drop_index(op.f(f"ix_{table}_{column}"), table_name=table)
