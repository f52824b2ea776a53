"""Every permission of the product, named ``resource:action`` and kept alphabetical."""

from enum import StrEnum


class Permission(StrEnum):
    """A thing an actor may be allowed to do; roles and scopes map onto these."""

    API_KEYS_CREATE = "api_keys:create"
    API_KEYS_MANAGE = "api_keys:manage"  # a consent scope: what a client grants a partner
    API_KEYS_READ = "api_keys:read"
    API_KEYS_REVOKE = "api_keys:revoke"
    AUDIT_READ = "audit:read"
    CHANNELS_READ = "channels:read"
    CHANNELS_WRITE = "channels:write"
    CLIENTS_READ = "clients:read"
    CONSENT_APPROVE = "consent:approve"
    CONSENT_LINKS_CREATE = "consent_links:create"
    GRANTS_READ = "grants:read"
    GRANTS_REVOKE = "grants:revoke"
    INVITATIONS_CREATE = "invitations:create"
    INVITATIONS_READ = "invitations:read"
    INVITATIONS_REVOKE = "invitations:revoke"
    MEMBERS_MANAGE = "members:manage"
    MEMBERS_READ = "members:read"
    OAUTH_CLIENTS_MANAGE = "oauth_clients:manage"
    SUPPORT_ACCOUNTS_DISABLE = "support_accounts:disable"
    SUPPORT_ACCOUNTS_END_SESSIONS = "support_accounts:end_sessions"
    SUPPORT_ACCOUNTS_READ = "support_accounts:read"
    SUPPORT_ACCOUNTS_REASSIGN_EMAIL = "support_accounts:reassign_email"
    SUPPORT_ACCOUNTS_RESET_PASSWORD = "support_accounts:reset_password"
    SUPPORT_ACCOUNTS_RESET_TWO_STEP = "support_accounts:reset_two_step"
    SUPPORT_CONFLICTS_READ = "support_conflicts:read"
    WEBHOOK_DELIVERIES_READ = "webhook_deliveries:read"
    WEBHOOKS_MANAGE = "webhooks:manage"
