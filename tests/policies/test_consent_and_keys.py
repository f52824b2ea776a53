"""Every consent and key action, walked across role x hub x relation x grant state x status.

The expectations are written as the product rules read in the issue, one
line each, independently of the policy code; a few rows are also spelled out.
"""

from __future__ import annotations

import itertools

import pytest

from policies.actor import Actor
from policies.apikeys import ChannelFacts, KeyFacts, can_manage_channel_keys, gateway_accepts
from policies.consent import (
    CONSENT_SCOPES,
    SCOPE_API_KEYS_MANAGE,
    GrantFacts,
    can_approve_consent,
    can_create_consent_link,
    can_read_grants,
    can_request_scopes,
    can_revoke_grant,
    describe_scopes,
)
from policies.permissions import Permission as P

MY_CLIENT, OTHER_CLIENT = "cl_mine", "cl_other"
MY_PARTNER, OTHER_PARTNER = "pa_mine", "pa_other"
SUPPORT = "su_1"

ACTORS = {
    "client owner": Actor("client", MY_CLIENT, frozenset({"owner"}), user_id="u1"),
    "client member": Actor("client", MY_CLIENT, frozenset({"member"}), user_id="u2"),
    "partner owner": Actor("partner", MY_PARTNER, frozenset({"owner"}), user_id="u3"),
    "partner member": Actor("partner", MY_PARTNER, frozenset({"member"}), user_id="u4"),
    "partner machine": Actor(
        "partner",
        MY_PARTNER,
        scopes=frozenset({"api_keys:create", "api_keys:read", "api_keys:revoke", "grants:read"}),
        client_id="oc_1",
    ),
    "partner machine without scopes": Actor("partner", MY_PARTNER, client_id="oc_2"),
    "support agent": Actor("support", SUPPORT, frozenset({"agent"}), user_id="u5"),
    "support admin": Actor("support", SUPPORT, frozenset({"admin"}), user_id="u6"),
    "no organization": Actor("client", None, frozenset({"owner"}), user_id="u7"),
}
# The organization named in the request path.
PATHS = {
    "my client": ("client", MY_CLIENT),
    "other client": ("client", OTHER_CLIENT),
    "my partner": ("partner", MY_PARTNER),
    "other partner": ("partner", OTHER_PARTNER),
}
CHANNEL_OWNERS = {"my client": MY_CLIENT, "other client": OTHER_CLIENT}
GRANT_STATES = (
    "none",
    "covers channel",
    "covers other channel",
    "no key scope",
    "revoked",
    "to other partner",
)
STATUSES = ("running", "pending", "terminated")
KEY_ACTIONS = (P.API_KEYS_CREATE, P.API_KEYS_READ, P.API_KEYS_REVOKE)


def make_grant(state: str, channel: ChannelFacts) -> GrantFacts | None:
    if state == "none":
        return None
    return GrantFacts(
        id="gr_1",
        client_id=channel.client_id,
        partner_id=OTHER_PARTNER if state == "to other partner" else MY_PARTNER,
        scopes=frozenset({"channels:read"} if state == "no key scope" else CONSENT_SCOPES),
        channel_ids=frozenset({"ch_else"} if state == "covers other channel" else {channel.id}),
        active=state != "revoked",
    )


def expected_key_outcome(actor_name, action, path, owner, grant_state, status) -> str:
    """The rules of the issue, restated: 'allow', or the denial code."""
    actor = ACTORS[actor_name]
    kind, org = PATHS[path]
    if actor.hub != kind or actor.organization_id != org:
        return "not_found"  # nobody acts through another organization's path
    if actor_name == "partner machine without scopes":
        return "forbidden"
    if kind == "client":
        if CHANNEL_OWNERS[owner] != org:
            return "not_found"
    else:
        if grant_state in ("none", "revoked", "to other partner"):
            return "not_found"
        if grant_state == "covers other channel":
            return "grant_required"
        if grant_state == "no key scope":
            return "scope_required"
    if action == P.API_KEYS_CREATE and status != "running":
        return "channel_status"
    return "allow"


CASES = list(itertools.product(ACTORS, KEY_ACTIONS, PATHS, CHANNEL_OWNERS, GRANT_STATES, STATUSES))


@pytest.mark.parametrize(("actor", "action", "path", "owner", "grant", "status"), CASES)
def test_channel_key_rules(actor, action, path, owner, grant, status):
    channel = ChannelFacts("ch_1", CHANNEL_OWNERS[owner], status)
    kind, org = PATHS[path]
    decision = can_manage_channel_keys(
        ACTORS[actor], action, kind, org, channel, make_grant(grant, channel)
    )
    outcome = "allow" if decision else decision.code
    assert outcome == expected_key_outcome(actor, action, path, owner, grant, status)
    assert decision.reason


@pytest.mark.parametrize(
    ("actor", "action", "path", "owner", "grant", "status", "outcome"),
    [
        ("client member", P.API_KEYS_CREATE, "my client", "my client", "none", "running", "allow"),
        (
            "partner owner",
            P.API_KEYS_CREATE,
            "my partner",
            "other client",
            "covers channel",
            "running",
            "allow",
        ),
        (
            "partner owner",
            P.API_KEYS_CREATE,
            "my partner",
            "other client",
            "revoked",
            "running",
            "not_found",
        ),
        (
            "partner member",
            P.API_KEYS_READ,
            "my partner",
            "my client",
            "covers other channel",
            "running",
            "grant_required",
        ),
        (
            "client owner",
            P.API_KEYS_CREATE,
            "my client",
            "my client",
            "none",
            "pending",
            "channel_status",
        ),
        (
            "support admin",
            P.API_KEYS_READ,
            "my client",
            "my client",
            "none",
            "running",
            "not_found",
        ),
    ],
)
def test_channel_key_rules_spelled_out(actor, action, path, owner, grant, status, outcome):
    channel = ChannelFacts("ch_1", CHANNEL_OWNERS[owner], status)
    kind, org = PATHS[path]
    decision = can_manage_channel_keys(
        ACTORS[actor], action, kind, org, channel, make_grant(grant, channel)
    )
    assert ("allow" if decision else decision.code) == outcome


def test_an_unknown_channel_is_not_found_even_for_its_would_be_owner():
    decision = can_manage_channel_keys(
        ACTORS["client owner"], P.API_KEYS_READ, "client", MY_CLIENT, None
    )
    assert decision.code == "not_found"


def test_only_key_permissions_are_key_actions():
    channel = ChannelFacts("ch_1", MY_CLIENT, "running")
    decision = can_manage_channel_keys(
        ACTORS["client owner"], P.GRANTS_REVOKE, "client", MY_CLIENT, channel
    )
    assert not decision


@pytest.mark.parametrize("actor", ACTORS)
def test_who_may_approve_a_consent(actor):
    decision = can_approve_consent(ACTORS[actor])
    assert bool(decision) == (actor in ("client owner", "client member"))
    if ACTORS[actor].hub != "client" or ACTORS[actor].organization_id is None:
        assert "Client Hub" in decision.reason


@pytest.mark.parametrize(("actor", "path"), list(itertools.product(ACTORS, PATHS)))
def test_who_may_read_grants(actor, path):
    kind, org = PATHS[path]
    decision = can_read_grants(ACTORS[actor], org, kind)
    mine = path in ("my client", "my partner")
    same_hub = ACTORS[actor].hub == kind and ACTORS[actor].organization_id == org
    expected = mine and same_hub and actor != "partner machine without scopes"
    assert bool(decision) == expected


@pytest.mark.parametrize(
    ("actor", "path", "grant_state"),
    list(
        itertools.product(
            ACTORS,
            ("my client", "other client"),
            ("given by me", "given by other", "revoked", "none"),
        )
    ),
)
def test_who_may_revoke_a_grant(actor, path, grant_state):
    _, org = PATHS[path]
    grant = None
    if grant_state != "none":
        grant = GrantFacts(
            "gr_1",
            OTHER_CLIENT if grant_state == "given by other" else MY_CLIENT,
            MY_PARTNER,
            frozenset(CONSENT_SCOPES),
            frozenset({"ch_1"}),
            active=grant_state != "revoked",
        )
    decision = can_revoke_grant(ACTORS[actor], org, grant)
    own_path = actor in ("client owner", "client member") and path == "my client"
    if own_path and grant_state == "given by me":
        assert decision
    elif own_path and grant_state == "revoked":
        assert decision.code == "grant_revoked"
    else:
        assert decision.code == "not_found"


@pytest.mark.parametrize(("actor", "path"), list(itertools.product(ACTORS, PATHS)))
def test_who_may_create_a_consent_link(actor, path):
    kind, org = PATHS[path]
    decision = can_create_consent_link(ACTORS[actor], org)
    expected = path == "my partner" and actor in ("partner owner", "partner member")
    assert bool(decision) == expected


@pytest.mark.parametrize(
    ("requested", "registered", "ok"),
    [
        ("api_keys:manage", None, True),
        ("api_keys:manage channels:read", "api_keys:manage channels:read", True),
        ("channels:read", "api_keys:manage", False),
        ("openid", None, False),
        ("", None, False),
        (None, None, False),
    ],
)
def test_what_a_partner_may_ask_for(requested, registered, ok):
    assert bool(can_request_scopes(requested, registered)) == ok


def test_scopes_read_in_plain_words():
    assert describe_scopes("channels:read api_keys:manage unknown") == [
        "generate and manage API keys",
        "see channel status",
    ]


NOW = __import__("datetime").datetime(2026, 11, 25, 12, 0)
LATER = NOW.replace(hour=13)
EARLIER = NOW.replace(hour=11)


@pytest.mark.parametrize(
    ("facts", "outcome"),
    [
        (KeyFacts(None, None, "live", None), "allow"),
        (
            KeyFacts(None, None, "running", "pa", None, True, frozenset({SCOPE_API_KEYS_MANAGE})),
            "allow",
        ),
        (
            KeyFacts(None, None, "running", "pa", None, True, frozenset({"channels:read"})),
            "scope_required",
        ),
        (KeyFacts(EARLIER, None, "live", None), "revoked"),
        (KeyFacts(None, LATER, "live", None), "allow"),
        (KeyFacts(None, EARLIER, "live", None), "replaced"),
        (KeyFacts(None, None, "suspended", None), "channel_status"),
        (KeyFacts(None, None, "terminated", None), "channel_status"),
        (KeyFacts(None, None, "live", "pa", EARLIER, True), "grant_revoked"),
        (KeyFacts(None, None, "live", "pa", None, False), "grant_revoked"),
    ],
)
def test_when_the_gateway_accepts_a_key(facts, outcome):
    decision = gateway_accepts(facts, NOW)
    assert ("allow" if decision else decision.code) == outcome
