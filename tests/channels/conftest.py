"""Two partners, their clients and numbers, and the platform's provisioning token."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from idp.extensions import db
from tests.consent.factories import make_grant
from tests.factories import bearer_for, make_channel, make_org, make_user

PROVISIONING_SCOPE = "channels:read channels:write"


def provisioning_bearer(support_org) -> dict:
    """The platform provisioning service's machine token."""
    return bearer_for(
        None, support_org, client_id="provisioning", hub="support", scope=PROVISIONING_SCOPE
    )


@dataclass
class World:
    """Partners P and Q; P onboarded client A and holds a grant from client G; Q onboarded B."""

    orgs: dict
    channels: dict
    bearers: dict


@pytest.fixture
def world(app_ctx) -> World:
    p, q = make_org("partner", "Partner P"), make_org("partner", "Partner Q")
    support = make_org("support", "Platform")
    a = make_org("client", "Alpha Shoes", onboarding_partner_id=p.id)
    g = make_org("client", "Gamma Foods")
    b = make_org("client", "Beta Cars", onboarding_partner_id=q.id)
    channels = {
        "a1": make_channel(a, "live"),
        "a2": make_channel(a, "pending"),
        "g1": make_channel(g, "running"),
        "b1": make_channel(b, "live"),
    }
    db.session.commit()
    make_grant(g, p, [channels["g1"]])
    people = {
        "p_owner": (make_user("partner", p, "owner"), p),
        "p_member": (make_user("partner", p, "member"), p),
        "q_owner": (make_user("partner", q, "owner"), q),
        "a_owner": (make_user("client", a, "owner"), a),
        "a_member": (make_user("client", a, "member"), a),
        "b_owner": (make_user("client", b, "owner"), b),
        "support_admin": (make_user("support", support, "admin"), support),
    }
    db.session.commit()
    bearers = {name: bearer_for(user, org) for name, (user, org) in people.items()}
    bearers["provisioning"] = provisioning_bearer(support)
    bearers["p_server"] = bearer_for(
        None, p, client_id="p-server", hub="partner", scope="channels:read clients:read"
    )
    bearers["q_server"] = bearer_for(
        None, q, client_id="q-server", hub="partner", scope="channels:read clients:read"
    )
    orgs = {"p": p, "q": q, "a": a, "b": b, "g": g, "support": support}
    return World(orgs, channels, bearers)
