"""``policies/support.py``: pure rules, walked over every kind of caller and target hub."""

from __future__ import annotations

import pytest

from policies.actor import Actor
from policies.permissions import Permission as P
from policies.support import can_act_on_account, can_use_support_tool

AGENT = Actor("support", "su_1", frozenset({"agent"}), user_id="usr_agent")
ADMIN = Actor("support", "su_1", frozenset({"admin"}), user_id="usr_admin")
MACHINE = Actor("support", "su_1", scopes=frozenset({"channels:read"}), client_id="provisioning")
MACHINE_WITH_SUPPORT_SCOPE = Actor(
    "support", "su_1", scopes=frozenset({P.SUPPORT_ACCOUNTS_READ.value}), client_id="x"
)
PARTNER_OWNER = Actor("partner", "pa_1", frozenset({"owner"}), user_id="usr_p")
PARTNER_CLAIMING_ADMIN = Actor("partner", "pa_1", frozenset({"admin"}), user_id="usr_p")
CLIENT_OWNER = Actor("client", "cl_1", frozenset({"owner"}), user_id="usr_c")
SUPPORT_WITHOUT_ROLE = Actor("support", "su_1", frozenset(), user_id="usr_s")

ACCOUNT_PERMISSIONS = [
    P.SUPPORT_ACCOUNTS_READ,
    P.SUPPORT_ACCOUNTS_REASSIGN_EMAIL,
    P.SUPPORT_ACCOUNTS_DISABLE,
    P.SUPPORT_ACCOUNTS_RESET_PASSWORD,
    P.SUPPORT_ACCOUNTS_END_SESSIONS,
]


@pytest.mark.parametrize("permission", ACCOUNT_PERMISSIONS + [P.SUPPORT_CONFLICTS_READ])
@pytest.mark.parametrize(
    "actor, allowed",
    [
        (AGENT, True),
        (ADMIN, True),
        (MACHINE, False),
        (MACHINE_WITH_SUPPORT_SCOPE, False),
        (PARTNER_OWNER, False),
        (PARTNER_CLAIMING_ADMIN, False),
        (CLIENT_OWNER, False),
        (SUPPORT_WITHOUT_ROLE, False),
    ],
)
def test_support_tools_are_for_support_staff(actor, allowed, permission):
    assert bool(can_use_support_tool(actor, permission)) is allowed


@pytest.mark.parametrize("actor, allowed", [(AGENT, False), (ADMIN, True)])
def test_only_admins_read_the_audit_log(actor, allowed):
    assert bool(can_use_support_tool(actor, P.AUDIT_READ)) is allowed


@pytest.mark.parametrize(
    "actor, allowed",
    [(AGENT, False), (ADMIN, True), (PARTNER_CLAIMING_ADMIN, False), (MACHINE, False)],
)
def test_only_admins_remove_a_second_step(actor, allowed):
    assert bool(can_use_support_tool(actor, P.SUPPORT_ACCOUNTS_RESET_TWO_STEP)) is allowed


def test_agents_may_look_at_support_accounts():
    assert can_act_on_account(AGENT, P.SUPPORT_ACCOUNTS_READ, "support")


@pytest.mark.parametrize("permission", ACCOUNT_PERMISSIONS[1:])
@pytest.mark.parametrize(
    "actor, target_hub, allowed",
    [
        (AGENT, "partner", True),
        (AGENT, "client", True),
        (AGENT, "support", False),
        (ADMIN, "partner", True),
        (ADMIN, "client", True),
        (ADMIN, "support", True),
        (PARTNER_OWNER, "partner", False),
        (CLIENT_OWNER, "client", False),
        (MACHINE, "client", False),
    ],
)
def test_support_accounts_are_changed_by_admins_only(actor, target_hub, allowed, permission):
    decision = can_act_on_account(actor, permission, target_hub)
    assert bool(decision) is allowed
    assert decision.reason
