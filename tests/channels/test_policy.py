"""The visibility rules in ``policies.partners`` as pure functions."""

from __future__ import annotations

import pytest

from policies.actor import Actor
from policies.consent import GrantFacts
from policies.partners import (
    ClientRelation,
    can_provision,
    partner_may_manage_keys,
    partner_sees_client,
)


@pytest.mark.parametrize(
    ("onboarding", "granted", "allowed"),
    [("pa_p", False, True), (None, True, True), ("pa_q", False, False), (None, False, False)],
)
def test_a_partner_sees_clients_it_onboarded_or_is_granted(onboarding, granted, allowed):
    relation = ClientRelation("cl_a", onboarding, granted)
    decision = partner_sees_client("pa_p", relation)
    assert decision.allowed is allowed
    if not allowed:
        assert decision.code == "not_found"


def _grant(**overrides):
    facts = {
        "id": "gr_1",
        "client_id": "cl_a",
        "partner_id": "pa_p",
        "scopes": frozenset({"api_keys:manage", "channels:read"}),
        "channel_ids": frozenset({"ch_1"}),
        "active": True,
    }
    return GrantFacts(**(facts | overrides))


@pytest.mark.parametrize(
    ("grant", "status", "code"),
    [
        (_grant(), "live", "ok"),
        (None, "live", "grant_required"),
        (_grant(active=False), "live", "grant_required"),
        (_grant(channel_ids=frozenset({"ch_2"})), "live", "grant_required"),
        (_grant(scopes=frozenset({"channels:read"})), "live", "scope_required"),
        (_grant(), "pending", "channel_status"),
    ],
)
def test_key_management_needs_a_covering_grant_with_the_scope(grant, status, code):
    assert partner_may_manage_keys("pa_p", "ch_1", status, grant).code == code


@pytest.mark.parametrize(
    ("actor", "allowed"),
    [
        (Actor("support", "su_1", scopes=frozenset({"channels:write"}), client_id="prov"), True),
        (Actor("support", "su_1", scopes=frozenset({"channels:read"}), client_id="prov"), False),
        (Actor("partner", "pa_p", scopes=frozenset({"channels:write"}), client_id="p"), False),
        (Actor("support", "su_1", roles=frozenset({"admin"}), user_id="usr_1"), False),
    ],
)
def test_only_the_provisioning_service_may_provision(actor, allowed):
    assert can_provision(actor).allowed is allowed
