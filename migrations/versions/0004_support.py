"""support: legacy import bookkeeping, email conflict queue, append-only audit log

Revision ID: 0004_support
Revises: 0001_foundation
Create Date: 2026-11-25 13:10:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0004_support'
down_revision = '0001_foundation'
branch_labels = None
depends_on = None

# PostgreSQL itself refuses to change or delete an audit event, whatever the client.
APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""
APPEND_ONLY_TRIGGER = """
CREATE TRIGGER audit_events_append_only
BEFORE UPDATE OR DELETE ON audit_events
FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()
"""


def upgrade():
    op.create_table('email_conflicts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('held_user_id', sa.String(length=40), nullable=False),
    sa.Column('holder_user_id', sa.String(length=40), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('email_normalized', sa.String(length=320), nullable=False),
    sa.Column('source', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('resolved_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['held_user_id'], ['users.id'], name=op.f('fk_email_conflicts_held_user_id_users')),
    sa.ForeignKeyConstraint(['holder_user_id'], ['users.id'], name=op.f('fk_email_conflicts_holder_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_email_conflicts')),
    sa.UniqueConstraint('held_user_id', name=op.f('uq_email_conflicts_held_user_id'))
    )
    with op.batch_alter_table('email_conflicts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_email_conflicts_email_normalized'), ['email_normalized'], unique=False)
        batch_op.create_index(batch_op.f('ix_email_conflicts_resolved_at'), ['resolved_at'], unique=False)

    op.create_table('imported_accounts',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('source_key', sa.String(length=64), nullable=False),
    sa.Column('hub', sa.String(length=16), nullable=False),
    sa.Column('email_normalized', sa.String(length=320), nullable=False),
    sa.Column('organization_id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.CheckConstraint("hub IN ('partner', 'client', 'support')", name=op.f('ck_imported_accounts_hub')),
    sa.CheckConstraint("outcome IN ('imported', 'joined', 'conflict')", name=op.f('ck_imported_accounts_outcome')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_imported_accounts_organization_id_organizations')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_imported_accounts_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_imported_accounts')),
    sa.UniqueConstraint('source_key', name=op.f('uq_imported_accounts_source_key'))
    )
    with op.batch_alter_table('imported_accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_imported_accounts_email_normalized'), ['email_normalized'], unique=False)
        batch_op.create_index(batch_op.f('ix_imported_accounts_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_imported_accounts_user_id'), ['user_id'], unique=False)

    if op.get_bind().dialect.name == 'postgresql':
        op.execute(APPEND_ONLY_FUNCTION)
        op.execute(APPEND_ONLY_TRIGGER)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events')
        op.execute('DROP FUNCTION IF EXISTS audit_events_append_only()')

    with op.batch_alter_table('imported_accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_imported_accounts_user_id'))
        batch_op.drop_index(batch_op.f('ix_imported_accounts_organization_id'))
        batch_op.drop_index(batch_op.f('ix_imported_accounts_email_normalized'))

    op.drop_table('imported_accounts')
    with op.batch_alter_table('email_conflicts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_email_conflicts_resolved_at'))
        batch_op.drop_index(batch_op.f('ix_email_conflicts_email_normalized'))

    op.drop_table('email_conflicts')
