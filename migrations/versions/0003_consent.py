"""consent grants, consent links and channel API keys

Revision ID: 0003_consent
Revises: 0001_foundation
Create Date: 2026-11-25 13:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = "0003_consent"
down_revision = "0001_foundation"
branch_labels = None
depends_on = None

_ACTIVE = sa.text("revoked_at IS NULL")


def upgrade():
    op.create_table(
        "consent_grants",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("oauth_client_id", sa.String(length=80), nullable=True),
        sa.Column("scope", sa.String(length=500), nullable=False),
        sa.Column("granted_by_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_by_id", sa.String(length=80), nullable=True),
        sa.Column("revoked_reason", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["organizations.id"], name=op.f("fk_consent_grants_client_id_organizations")),
        sa.ForeignKeyConstraint(["granted_by_id"], ["users.id"], name=op.f("fk_consent_grants_granted_by_id_users")),
        sa.ForeignKeyConstraint(["partner_id"], ["organizations.id"], name=op.f("fk_consent_grants_partner_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_grants")),
    )
    with op.batch_alter_table("consent_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_grants_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_consent_grants_partner_id"), ["partner_id"], unique=False)
        batch_op.create_index(
            "uq_consent_grants_active_pair",
            ["client_id", "partner_id"],
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        )

    op.create_table(
        "consent_grant_channels",
        sa.Column("grant_id", sa.String(length=40), nullable=False),
        sa.Column("channel_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], name=op.f("fk_consent_grant_channels_channel_id_channels")),
        sa.ForeignKeyConstraint(["grant_id"], ["consent_grants.id"], name=op.f("fk_consent_grant_channels_grant_id_consent_grants")),
        sa.PrimaryKeyConstraint("grant_id", "channel_id", name=op.f("pk_consent_grant_channels")),
    )
    with op.batch_alter_table("consent_grant_channels", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_grant_channels_channel_id"), ["channel_id"], unique=False)

    op.create_table(
        "consent_links",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("oauth_client_id", sa.String(length=80), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=False),
        sa.Column("state", sa.String(length=500), nullable=False),
        sa.Column("scope", sa.String(length=500), nullable=False),
        sa.Column("login_hint", sa.String(length=320), nullable=True),
        sa.Column("code_challenge", sa.String(length=128), nullable=True),
        sa.Column("code_challenge_method", sa.String(length=10), nullable=True),
        sa.Column("created_by", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["organizations.id"], name=op.f("fk_consent_links_partner_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_links")),
    )
    with op.batch_alter_table("consent_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_links_partner_id"), ["partner_id"], unique=False)

    op.create_table(
        "channel_api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("lookup_id", sa.String(length=16), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("last_four", sa.String(length=4), nullable=False),
        sa.Column("channel_id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=True),
        sa.Column("grant_id", sa.String(length=40), nullable=True),
        sa.Column("created_by_type", sa.String(length=16), nullable=False),
        sa.Column("created_by_id", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_reason", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], name=op.f("fk_channel_api_keys_channel_id_channels")),
        sa.ForeignKeyConstraint(["client_id"], ["organizations.id"], name=op.f("fk_channel_api_keys_client_id_organizations")),
        sa.ForeignKeyConstraint(["grant_id"], ["consent_grants.id"], name=op.f("fk_channel_api_keys_grant_id_consent_grants")),
        sa.ForeignKeyConstraint(["partner_id"], ["organizations.id"], name=op.f("fk_channel_api_keys_partner_id_organizations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_api_keys")),
        sa.UniqueConstraint("lookup_id", name=op.f("uq_channel_api_keys_lookup_id")),
    )
    with op.batch_alter_table("channel_api_keys", schema=None) as batch_op:
        batch_op.create_index("ix_channel_api_keys_channel_revoked", ["channel_id", "revoked_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_channel_api_keys_client_id"), ["client_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_channel_api_keys_grant_id"), ["grant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_channel_api_keys_partner_id"), ["partner_id"], unique=False)


def downgrade():
    op.drop_table("channel_api_keys")
    op.drop_table("consent_links")
    op.drop_table("consent_grant_channels")
    op.drop_table("consent_grants")
