"""Acting inside an organization: only its own members, and only with their role's permissions."""

from __future__ import annotations

import pytest

from policies.actor import Actor
from policies.organizations import can, can_act_in_org, can_remove_member, keeps_an_owner
from policies.permissions import Permission as P

ACME, GLOBEX, BAKERY = "pa_acme", "pa_globex", "cl_bakery"


def person(hub: str, org: str | None, *roles: str) -> Actor:
    return Actor(hub=hub, organization_id=org, roles=frozenset(roles), user_id="usr_x")


def machine(hub: str, org: str | None, *scopes: str) -> Actor:
    return Actor(hub=hub, organization_id=org, scopes=frozenset(scopes), client_id="svc")


@pytest.mark.parametrize(
    ("actor", "permission", "org", "kind", "allowed", "code"),
    [
        (person("partner", ACME, "owner"), P.INVITATIONS_CREATE, ACME, "partner", True, "ok"),
        (person("partner", ACME, "owner"), P.INVITATIONS_READ, ACME, "partner", True, "ok"),
        (person("partner", ACME, "owner"), P.INVITATIONS_REVOKE, ACME, "partner", True, "ok"),
        (
            person("partner", ACME, "member"),
            P.INVITATIONS_CREATE,
            ACME,
            "partner",
            False,
            "forbidden",
        ),
        (
            person("partner", ACME, "member"),
            P.INVITATIONS_READ,
            ACME,
            "partner",
            False,
            "forbidden",
        ),
        (person("partner", ACME, "member"), P.MEMBERS_READ, ACME, "partner", True, "ok"),
        # another partner's organization is invisible, whatever the role
        (
            person("partner", GLOBEX, "owner"),
            P.INVITATIONS_CREATE,
            ACME,
            "partner",
            False,
            "not_found",
        ),
        # same id, wrong hub: a client owner cannot act on a partner
        (
            person("client", ACME, "owner"),
            P.INVITATIONS_CREATE,
            ACME,
            "partner",
            False,
            "not_found",
        ),
        (person("client", BAKERY, "owner"), P.GRANTS_REVOKE, BAKERY, "client", True, "ok"),
        (
            person("support", "su_1", "admin"),
            P.INVITATIONS_CREATE,
            ACME,
            "partner",
            False,
            "not_found",
        ),
        # a partner service client never manages people, even with a made-up scope
        (
            machine("partner", ACME, "invitations:create"),
            P.INVITATIONS_CREATE,
            ACME,
            "partner",
            False,
            "forbidden",
        ),
        (machine("partner", ACME, "clients:read"), P.CLIENTS_READ, ACME, "partner", True, "ok"),
        (
            person("partner", None, "owner"),
            P.INVITATIONS_CREATE,
            ACME,
            "partner",
            False,
            "not_found",
        ),
    ],
)
def test_acting_in_an_organization(actor, permission, org, kind, allowed, code):
    decision = can_act_in_org(actor, permission, org, kind)
    assert bool(decision) is allowed
    assert decision.code == code
    assert decision.reason


def test_roles_without_a_permission_are_denied_and_say_which():
    decision = can(person("partner", ACME, "member"), P.INVITATIONS_CREATE)
    assert not decision and "invitations:create" in decision.reason
    assert can(person("partner", ACME, "owner"), P.INVITATIONS_CREATE)


def test_several_roles_add_up():
    actor = person("partner", ACME, "member", "owner")
    assert can_act_in_org(actor, P.INVITATIONS_REVOKE, ACME, "partner")


@pytest.mark.parametrize(
    ("actor", "org", "member", "allowed", "code"),
    [
        (person("partner", ACME, "owner"), ACME, "usr_other", True, "ok"),
        (person("partner", ACME, "member"), ACME, "usr_x", True, "ok"),  # leaving
        (person("partner", ACME, "member"), ACME, "usr_other", False, "forbidden"),
        (person("partner", GLOBEX, "owner"), ACME, "usr_other", False, "not_found"),
        (person("partner", GLOBEX, "owner"), ACME, "usr_x", False, "not_found"),
        (person("client", BAKERY, "owner"), BAKERY, "usr_other", False, "not_found"),
        (machine("partner", ACME, "clients:read"), ACME, "usr_other", False, "forbidden"),
    ],
)
def test_owners_remove_members_and_members_leave(actor, org, member, allowed, code):
    decision = can_remove_member(actor, org, member)
    assert (bool(decision), decision.code) == (allowed, code)


@pytest.mark.parametrize(
    ("before", "after", "other_owners", "allowed"),
    [
        ("owner", "member", 0, False),
        ("owner", None, 0, False),
        ("owner", "member", 1, True),
        ("owner", None, 2, True),
        ("owner", "owner", 0, True),
        ("member", None, 0, True),
        ("member", "owner", 0, True),
    ],
)
def test_an_organization_keeps_an_owner(before, after, other_owners, allowed):
    decision = keeps_an_owner(before, after, other_owners)
    assert bool(decision) is allowed
    assert decision.code == ("ok" if allowed else "last_owner")
