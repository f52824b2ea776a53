"""What a partner may see of its clients' accounts, and who may act on a channel."""

from __future__ import annotations

from dataclasses import dataclass

from policies.actor import Actor
from policies.channels import allows_api_keys
from policies.consent import SCOPE_API_KEYS_MANAGE, SCOPE_CHANNELS_READ, GrantFacts
from policies.decision import Decision
from policies.organizations import can, can_act_in_org
from policies.permissions import Permission


@dataclass(frozen=True, slots=True)
class ClientRelation:
    """How one client is tied to one partner."""

    client_id: str
    onboarding_partner_id: str | None
    grant: GrantFacts | None = None  # the partner's active grant from the client, if any


def _granted(partner_id: str, relation: ClientRelation) -> GrantFacts | None:
    grant = relation.grant
    if grant is None or not grant.active:
        return None
    if grant.partner_id != partner_id or grant.client_id != relation.client_id:
        return None
    return grant


def partner_sees_client(partner_id: str, relation: ClientRelation | None) -> Decision:
    """A partner sees a client (in its list of clients) it onboarded or holds a grant from."""
    if relation is None:
        return Decision.deny("no such client", "not_found")
    if relation.onboarding_partner_id == partner_id:
        return Decision.allow("the partner onboarded this client")
    if _granted(partner_id, relation) is not None:
        return Decision.allow("the client has granted the partner access")
    return Decision.deny("no such client", "not_found")


def partner_sees_channel(
    partner_id: str, relation: ClientRelation | None, channel_id: str
) -> Decision:
    """A partner sees a number (its row, details and status events) of a client it onboarded,
    or one the client shares with it under an active grant that includes ``channels:read``.

    A grant of ``api_keys:manage`` alone lets the partner manage the keys of its
    numbers, not read their status; a number the client did not share does not
    exist for the partner.
    """
    if relation is None:
        return Decision.deny("no such channel", "not_found")
    if relation.onboarding_partner_id == partner_id:
        return Decision.allow("the partner onboarded this client")
    grant = _granted(partner_id, relation)
    if grant is None or channel_id not in grant.channel_ids:
        return Decision.deny("no such channel", "not_found")
    if SCOPE_CHANNELS_READ not in grant.scopes:
        return Decision.deny("no such channel", "not_found")
    return Decision.allow("the client shares this number's status with the partner")


def partner_hears_of_key(
    partner_id: str, key_partner_id: str | None, relation: ClientRelation | None, channel_id: str
) -> Decision:
    """A partner hears of a key it generated, and of any key on a number its active grant
    covers (it may manage that number's keys), whatever the grant's scopes."""
    if key_partner_id == partner_id:
        return Decision.allow("the partner generated this key")
    grant = _granted(partner_id, relation) if relation is not None else None
    if grant is None or channel_id not in grant.channel_ids:
        return Decision.deny("no such channel", "not_found")
    return Decision.allow("the client shares the key's number with the partner")


def can_list_partner_clients(actor: Actor, partner_id: str) -> Decision:
    """A partner's users and service clients may list that partner's clients."""
    return can_act_in_org(actor, Permission.CLIENTS_READ, partner_id, "partner")


def can_list_partner_channels(actor: Actor, partner_id: str) -> Decision:
    """A partner's users and service clients may list the numbers of that partner's clients."""
    return can_act_in_org(actor, Permission.CHANNELS_READ, partner_id, "partner")


def can_view_partner_channel(
    actor: Actor, partner_id: str, relation: ClientRelation | None, channel_id: str
) -> Decision:
    """A partner may open a number's details when it may list channels and sees the number."""
    decision = can_list_partner_channels(actor, partner_id)
    if not decision:
        return decision
    return partner_sees_channel(partner_id, relation, channel_id)


def can_view_client_accounts(actor: Actor, client_id: str) -> Decision:
    """A client's own users see its WABAs and numbers."""
    return can_act_in_org(actor, Permission.CHANNELS_READ, client_id, "client")


def can_view_client_channel(
    actor: Actor, client_id: str, channel_client_id: str | None
) -> Decision:
    """A client's own users open the details of the client's own numbers only."""
    decision = can_view_client_accounts(actor, client_id)
    if not decision:
        return decision
    if channel_client_id != client_id:
        return Decision.deny("no such channel", "not_found")
    return Decision.allow("the number belongs to your business")


def can_provision(actor: Actor) -> Decision:
    """Only the platform's provisioning service (``channels:write``) registers numbers."""
    if actor.hub != "support":
        return Decision.deny("numbers are registered by the platform", "forbidden")
    return can(actor, Permission.CHANNELS_WRITE)


def partner_may_manage_keys(
    partner_id: str, channel_id: str, status: str, grant: GrantFacts | None
) -> Decision:
    """A partner manages a channel's keys only under an active grant of that scope and channel."""
    if grant is None or not grant.active or grant.partner_id != partner_id:
        return Decision.deny("the client has not granted you access", "grant_required")
    if channel_id not in grant.channel_ids:
        return Decision.deny("the client has not granted you this number", "grant_required")
    if SCOPE_API_KEYS_MANAGE not in grant.scopes:
        return Decision.deny("the client has not allowed you to manage API keys", "scope_required")
    status_decision = allows_api_keys(status)
    if not status_decision:
        return status_decision
    return Decision.allow("an active grant lets you manage this number's API keys")


def client_may_manage_keys(status: str) -> Decision:
    """The owning client manages a channel's API keys whenever its status allows keys."""
    return allows_api_keys(status)
