"""Who may use which support route: support staff only, support accounts by admins only."""

from __future__ import annotations

import pytest

from idp.audit.models import AuditEvent
from idp.extensions import db
from tests.factories import bearer_for, make_org, make_user

BODY = {"ticket": "SUP-1", "reason": "permission matrix"}
ROUTES = {
    "search": ("GET", "/v1/support/accounts?email=target@example.com", None),
    "read": ("GET", "/v1/support/accounts/{target}", None),
    "reassign": ("POST", "/v1/support/accounts/{target}/email", BODY | {"email": "n@example.com"}),
    "disable": ("POST", "/v1/support/accounts/{target}/disable", BODY),
    "reset": ("POST", "/v1/support/accounts/{target}/password-reset", BODY),
    "end": ("POST", "/v1/support/accounts/{target}/end-sessions", BODY),
    "resend": ("POST", "/v1/support/accounts/{target}/resend-verification", BODY),
    "conflicts": ("GET", "/v1/support/email-conflicts", None),
    "audit": ("GET", "/v1/audit-events", None),
}
OK = {"search": 200, "read": 200, "reassign": 200, "disable": 200, "reset": 202, "end": 200}
OK["resend"] = 409  # allowed through the gate; the target's address is already verified


def _callers(staff):
    partner = make_org("partner", "Acme")
    bakery = make_org("client", "Bakery")
    partner_owner = make_user("partner", partner, "owner")
    client_owner = make_user("client", bakery, "owner")
    return {
        "agent": staff.agent_auth,
        "admin": staff.admin_auth,
        "partner_owner": bearer_for(partner_owner, partner),
        "client_owner": bearer_for(client_owner, bakery),
        "support_machine": bearer_for(
            None,
            staff.org,
            client_id="provisioning",
            scope="channels:read channels:write",
            hub="support",
        ),
        "forged_support_role": bearer_for(partner_owner, partner, hub="partner", roles=["admin"]),
        "anonymous": {},
    }


def _expected(caller: str, route: str, target_hub: str) -> int:
    if caller == "anonymous":
        return 401
    if caller not in {"agent", "admin"}:
        return 403
    if route == "audit":
        return 200 if caller == "admin" else 403
    if route in {"search", "conflicts"}:
        return 200
    if target_hub == "support" and caller == "agent" and route != "read":
        return 403
    return OK[route]


@pytest.mark.parametrize("target_hub", ["client", "support"])
@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize(
    "caller",
    [
        "agent",
        "admin",
        "partner_owner",
        "client_owner",
        "support_machine",
        "forged_support_role",
        "anonymous",
    ],
)
def test_support_route_matrix(client, staff, caller, route, target_hub):
    target = make_user(
        target_hub,
        staff.org if target_hub == "support" else None,
        "agent" if target_hub == "support" else None,
        email="target@example.com",
    )
    headers = _callers(staff)[caller]
    db.session.commit()
    method, path, body = ROUTES[route]
    resp = client.open(path.format(target=target.id), method=method, json=body, headers=headers)
    assert resp.status_code == _expected(caller, route, target_hub), resp.json
    # every refusal of a known caller is on record once, naming the account it was about
    db.session.expire_all()
    denials = db.session.scalars(
        db.select(AuditEvent).where(AuditEvent.action == "support.access_denied")
    ).all()
    assert len(denials) == (1 if resp.status_code == 403 else 0)
    if denials and "{target}" in path:
        assert denials[0].target_id == target.id
