"""Hubs, their roles, and the one table of role -> permissions per hub."""

from __future__ import annotations

from types import MappingProxyType

from policies.actor import Actor
from policies.permissions import Permission as P

HUBS = ("partner", "client", "support")

ROLES_BY_HUB = MappingProxyType(
    {
        "partner": ("owner", "member"),
        "client": ("owner", "member"),
        "support": ("agent", "admin"),
    }
)

_PARTNER_MEMBER = frozenset(
    {
        P.API_KEYS_CREATE,
        P.API_KEYS_READ,
        P.API_KEYS_REVOKE,
        P.CHANNELS_READ,
        P.CLIENTS_READ,
        P.CONSENT_LINKS_CREATE,
        P.GRANTS_READ,
        P.MEMBERS_READ,
        P.WEBHOOK_DELIVERIES_READ,
    }
)
_CLIENT_MEMBER = frozenset(
    {
        P.API_KEYS_CREATE,
        P.API_KEYS_READ,
        P.API_KEYS_REVOKE,
        P.CHANNELS_READ,
        P.CONSENT_APPROVE,
        P.GRANTS_READ,
        P.GRANTS_REVOKE,
        P.MEMBERS_READ,
    }
)
_SUPPORT_AGENT = frozenset(
    {
        P.SUPPORT_ACCOUNTS_DISABLE,
        P.SUPPORT_ACCOUNTS_END_SESSIONS,
        P.SUPPORT_ACCOUNTS_READ,
        P.SUPPORT_ACCOUNTS_REASSIGN_EMAIL,
        P.SUPPORT_ACCOUNTS_RESET_PASSWORD,
        P.SUPPORT_CONFLICTS_READ,
    }
)

ROLE_PERMISSIONS: MappingProxyType = MappingProxyType(
    {
        "partner": MappingProxyType(
            {
                "owner": _PARTNER_MEMBER
                | {
                    P.INVITATIONS_CREATE,
                    P.INVITATIONS_READ,
                    P.INVITATIONS_REVOKE,
                    P.MEMBERS_MANAGE,
                    P.OAUTH_CLIENTS_MANAGE,
                    P.WEBHOOKS_MANAGE,
                },
                "member": _PARTNER_MEMBER,
            }
        ),
        "client": MappingProxyType({"owner": _CLIENT_MEMBER, "member": _CLIENT_MEMBER}),
        "support": MappingProxyType(
            {
                "agent": _SUPPORT_AGENT,
                # Removing a second step lets a password alone in again: admins only.
                "admin": _SUPPORT_AGENT | {P.AUDIT_READ, P.SUPPORT_ACCOUNTS_RESET_TWO_STEP},
            }
        ),
    }
)

# What a machine client may be given as scopes, per hub. A partner service client
# acts for its partner through the Partner API; the platform's provisioning
# service (hub "support", no organization roles) registers numbers.
MACHINE_SCOPES = MappingProxyType(
    {
        "partner": frozenset(
            {
                P.API_KEYS_CREATE,
                P.API_KEYS_READ,
                P.API_KEYS_REVOKE,
                P.CHANNELS_READ,
                P.CLIENTS_READ,
                P.CONSENT_LINKS_CREATE,
                P.GRANTS_READ,
                P.WEBHOOK_DELIVERIES_READ,
            }
        ),
        "support": frozenset({P.CHANNELS_READ, P.CHANNELS_WRITE}),
        "client": frozenset(),
    }
)


def permissions_for(actor: Actor) -> frozenset[P]:
    """What the actor may do in its organization: roles for people, scopes for machines."""
    if actor.is_machine:
        allowed = MACHINE_SCOPES.get(actor.hub, frozenset())
        return frozenset(P(s) for s in actor.scopes if s in allowed)
    table = ROLE_PERMISSIONS.get(actor.hub, {})
    granted: set[P] = set()
    for role in actor.roles:
        granted |= table.get(role, frozenset())
    return frozenset(granted)
