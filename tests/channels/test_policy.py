"""The visibility rules in ``policies.partners`` as pure functions."""

from __future__ import annotations

import pytest

from policies.actor import Actor
from policies.consent import GrantFacts
from policies.partners import (
    ClientRelation,
    can_provision,
    partner_hears_of_key,
    partner_may_manage_keys,
    partner_sees_channel,
    partner_sees_client,
)


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


KEYS_ONLY = frozenset({"api_keys:manage"})


@pytest.mark.parametrize(
    ("onboarding", "grant", "allowed"),
    [
        ("pa_p", None, True),
        (None, _grant(), True),
        (None, _grant(scopes=KEYS_ONLY, channel_ids=frozenset()), True),
        ("pa_q", None, False),
        (None, None, False),
        (None, _grant(active=False), False),
        (None, _grant(partner_id="pa_q"), False),
    ],
)
def test_a_partner_sees_clients_it_onboarded_or_is_granted(onboarding, grant, allowed):
    relation = ClientRelation("cl_a", onboarding, grant)
    decision = partner_sees_client("pa_p", relation)
    assert decision.allowed is allowed
    if not allowed:
        assert decision.code == "not_found"


@pytest.mark.parametrize(
    ("onboarding", "grant", "channel", "allowed"),
    [
        ("pa_p", None, "ch_9", True),  # its own client: every number
        ("pa_p", _grant(scopes=KEYS_ONLY), "ch_9", True),
        (None, _grant(), "ch_1", True),  # shared with channels:read
        (None, _grant(), "ch_2", False),  # not shared
        (None, _grant(scopes=KEYS_ONLY), "ch_1", False),  # keys only: no status
        (None, _grant(scopes=frozenset({"channels:read"})), "ch_1", True),
        (None, _grant(active=False), "ch_1", False),
        (None, _grant(partner_id="pa_q"), "ch_1", False),
        (None, _grant(client_id="cl_b"), "ch_1", False),
        ("pa_q", None, "ch_1", False),
        (None, None, "ch_1", False),
    ],
)
def test_a_partner_sees_a_number_it_onboarded_or_whose_status_is_shared(
    onboarding, grant, channel, allowed
):
    decision = partner_sees_channel("pa_p", ClientRelation("cl_a", onboarding, grant), channel)
    assert decision.allowed is allowed
    if not allowed:
        assert decision.code == "not_found"


def test_an_unknown_client_hides_its_numbers():
    assert partner_sees_channel("pa_p", None, "ch_1").code == "not_found"


@pytest.mark.parametrize(
    ("key_partner", "onboarding", "grant", "channel", "allowed"),
    [
        ("pa_p", None, None, "ch_1", True),  # its own key, grant ended
        (None, None, _grant(scopes=KEYS_ONLY), "ch_1", True),  # the number is granted
        (None, None, _grant(scopes=frozenset({"channels:read"})), "ch_1", True),
        (None, None, _grant(), "ch_2", False),  # another number
        (None, None, _grant(active=False), "ch_1", False),
        ("pa_q", None, _grant(partner_id="pa_q"), "ch_1", False),
        (None, "pa_p", None, "ch_1", False),  # onboarding the client is not enough
    ],
)
def test_a_partner_hears_of_its_own_keys_and_those_of_numbers_granted_to_it(
    key_partner, onboarding, grant, channel, allowed
):
    relation = ClientRelation("cl_a", onboarding, grant)
    assert partner_hears_of_key("pa_p", key_partner, relation, channel).allowed is allowed


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
