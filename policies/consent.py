"""Consent: what a partner may ask for, who may approve it, and who sees or revokes grants."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from policies.actor import Actor
from policies.decision import Decision
from policies.organizations import can_act_in_org
from policies.permissions import Permission
from policies.roles import permissions_for

SCOPE_CHANNELS_READ = Permission.CHANNELS_READ.value
SCOPE_API_KEYS_MANAGE = Permission.API_KEYS_MANAGE.value

# Every scope a client can grant a partner, in the plain words the consent screen shows.
CONSENT_SCOPES = MappingProxyType(
    {
        SCOPE_API_KEYS_MANAGE: "generate and manage API keys",
        SCOPE_CHANNELS_READ: "see channel status",
    }
)
DEFAULT_CONSENT_SCOPE = f"{SCOPE_API_KEYS_MANAGE} {SCOPE_CHANNELS_READ}"
MAX_LINK_LIFETIME_SECONDS = 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class GrantFacts:
    """What a policy needs to know about one grant: whose, which channels, which scopes."""

    id: str
    client_id: str
    partner_id: str
    scopes: frozenset[str]
    channel_ids: frozenset[str]
    active: bool = True


def consent_scopes(requested: str | None) -> tuple[str, ...]:
    """The consent scopes among ``requested`` (space-separated), in a stable order."""
    asked = set((requested or "").split())
    return tuple(s for s in sorted(CONSENT_SCOPES) if s in asked)


def describe_scopes(scope: str | None) -> list[str]:
    """The plain words for each consent scope in ``scope``, for people to read."""
    return [CONSENT_SCOPES[s] for s in consent_scopes(scope)]


def can_request_scopes(requested: str | None, registered: str | None) -> Decision:
    """A partner may ask only for consent scopes, and only for those its client registered."""
    asked = set((requested or "").split())
    if not asked:
        return Decision.deny("ask for at least one scope", "invalid_scope")
    unknown = asked - set(CONSENT_SCOPES)
    if unknown:
        return Decision.deny(f"unknown scope: {' '.join(sorted(unknown))}", "invalid_scope")
    if registered is not None and not asked <= set(registered.split()):
        return Decision.deny("the client is not registered for these scopes", "invalid_scope")
    return Decision.allow("the requested scopes can be granted")


def can_create_consent_link(actor: Actor, partner_id: str) -> Decision:
    """A partner's own users and service clients may create consent links for that partner."""
    return can_act_in_org(actor, Permission.CONSENT_LINKS_CREATE, partner_id, "partner")


def can_approve_consent(actor: Actor) -> Decision:
    """Only an owner or member of a client organization may approve or change a consent."""
    if actor.hub != "client" or actor.organization_id is None or actor.is_machine:
        return Decision.deny(
            "only a Client Hub account can approve this; "
            "log in with the account of the business that owns the numbers",
            "wrong_hub",
        )
    if Permission.CONSENT_APPROVE not in permissions_for(actor):
        return Decision.deny("your role does not allow approving partners")
    return Decision.allow("a client user may approve for the own organization")


def can_read_grants(actor: Actor, organization_id: str, organization_kind: str) -> Decision:
    """A partner sees the grants given to it, a client the grants it gave, nobody else any."""
    return can_act_in_org(actor, Permission.GRANTS_READ, organization_id, organization_kind)


def can_revoke_grant(actor: Actor, client_id: str, grant: GrantFacts | None) -> Decision:
    """Only the client that gave a grant may revoke it (whole or per channel)."""
    decision = can_act_in_org(actor, Permission.GRANTS_REVOKE, client_id, "client")
    if not decision:
        return decision
    if grant is None or grant.client_id != client_id:
        return Decision.deny("no such grant", "not_found")
    if not grant.active:
        return Decision.deny("the grant is already revoked", "grant_revoked")
    return Decision.allow("the client may revoke its own grant")
