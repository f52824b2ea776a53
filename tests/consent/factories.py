"""Grants, keys and actors in one call, for the consent and API-key tests."""

from __future__ import annotations

from idp.apikeys import service as keys
from idp.consent.models import ConsentGrant, GrantChannel
from idp.extensions import db
from idp.ids import new_id
from idp.orgs.models import Membership
from idp.timeutil import utcnow
from policies.actor import Actor
from policies.consent import DEFAULT_CONSENT_SCOPE
from tests.factories import bearer_for, make_org, make_user


def _person(org, role: str):
    """A member of ``org`` with ``role``: the first one there is, else a new one."""
    found = db.session.scalar(
        db.select(Membership).where(Membership.organization_id == org.id, Membership.role == role)
    )
    return found.user if found is not None else make_user(org.kind, org, role)


def client_actor(client, user=None, role: str = "owner") -> Actor:
    """A client-hub person acting in ``client`` (an account of it, as a bearer token names)."""
    person = user or _person(client, role)
    return Actor(
        hub="client", organization_id=client.id, roles=frozenset({role}), user_id=person.id
    )


def partner_actor(partner, role: str = "owner") -> Actor:
    """A partner-hub person acting in ``partner`` (an account of it, as a bearer token names)."""
    person = _person(partner, role)
    return Actor(
        hub="partner", organization_id=partner.id, roles=frozenset({role}), user_id=person.id
    )


def make_grant(client, partner, channels, *, scope: str = DEFAULT_CONSENT_SCOPE, user=None):
    """An active grant from ``client`` to ``partner`` covering ``channels``."""
    grant = ConsentGrant(
        id=new_id("gr"),
        client_id=client.id,
        partner_id=partner.id,
        oauth_client_id=None,
        scope=scope,
        granted_by_id=user.id if user else None,
        updated_at=utcnow(),
    )
    grant.channels = [GrantChannel(channel_id=c.id) for c in channels]
    db.session.add(grant)
    db.session.commit()
    return grant


def make_key(channel, *, partner=None, client=None) -> str:
    """Generate a key for ``channel`` as its client, or as ``partner`` when given."""
    if partner is not None:
        _, text = keys.create_key(partner_actor(partner), "partner", partner.id, channel.id)
    else:
        owner = client or channel.client
        _, text = keys.create_key(client_actor(owner), "client", owner.id, channel.id)
    return text


def two_of_each():
    """Clients A and B, partners P and Q, and the support organization (committed)."""
    orgs = {
        "a": make_org("client", "Client A"),
        "b": make_org("client", "Client B"),
        "p": make_org("partner", "Partner P"),
        "q": make_org("partner", "Partner Q"),
        "support": make_org("support", "Support"),
    }
    db.session.commit()
    return orgs


def people_of(orgs: dict) -> dict:
    """One user per role that matters, by name, each with the organization it acts in."""
    spec = {
        "a_owner": ("client", "a", "owner"),
        "a_member": ("client", "a", "member"),
        "b_owner": ("client", "b", "owner"),
        "p_owner": ("partner", "p", "owner"),
        "p_member": ("partner", "p", "member"),
        "q_owner": ("partner", "q", "owner"),
        "support": ("support", "support", "admin"),
    }
    people = {
        name: (make_user(hub, orgs[org], role), orgs[org])
        for name, (hub, org, role) in spec.items()
    }
    db.session.commit()
    return people


def bearers_of(people: dict) -> dict:
    """An Authorization header per person."""
    return {name: bearer_for(user, org) for name, (user, org) in people.items()}


CONSENT_REDIRECT = "https://partner.example/consent/callback"
CONSENT_SECRET = "partner-consent-client-secret-for-tests-0123456789"


def make_consent_client(partner, *, redirect_uris=(CONSENT_REDIRECT,), client_id=None):
    """A partner's confidential OAuth client that may run the consent flow."""
    from idp.oauth.models import OAuthClient, sha256_hex

    row = OAuthClient(
        client_id=client_id or new_id("oc"),
        client_secret_hash=sha256_hex(CONSENT_SECRET),
        name=f"{partner.name} app",
        kind="partner",
        hub="partner",
        organization_id=partner.id,
        redirect_uris=list(redirect_uris),
        post_logout_redirect_uris=[],
        scope="api_keys:manage channels:read",
    )
    db.session.add(row)
    db.session.commit()
    return row
