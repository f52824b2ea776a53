"""Partner API of invitations: invite, list pending, revoke (partner owners)."""

from __future__ import annotations

from idp.api_inputs import Blueprint
from idp.auth.bearer import current_actor, require_auth
from idp.auth.enforce import enforce
from idp.openapi import ACCOUNT_NO_LONGER_ACTS, problem_responses
from idp.orgs import invitations
from idp.orgs.invitations import INVITATION_ACCEPTED
from idp.orgs.schemas import InvitationIn, InvitationOut
from policies.organizations import can_act_in_org
from policies.permissions import Permission

blp = Blueprint(
    "invitations",
    __name__,
    url_prefix="/v1/partners/<string:partner_id>/invitations",
    description="Invite people to a partner; they accept through the emailed link.",
)


def _allow(permission: Permission, partner_id: str) -> None:
    enforce(can_act_in_org(current_actor(), permission, partner_id, "partner"))


@blp.route("", methods=["POST"])
@require_auth
@blp.arguments(InvitationIn)
@blp.response(201, InvitationOut)
@blp.doc(
    **problem_responses(
        r401=ACCOUNT_NO_LONGER_ACTS,
        r409=(
            "The address is a member already, or has a pending invitation",
            invitations.AlreadyMember,
            invitations.InvitationPending,
        ),
    )
)
def create(args: dict, partner_id: str):
    """Invite an address as owner or member; the invitee gets the accept link by email."""
    _allow(Permission.INVITATIONS_CREATE, partner_id)
    return invitations.create_invitation(current_actor(), partner_id, args["email"], args["role"])


@blp.route("", methods=["GET"])
@require_auth
@blp.response(200, InvitationOut(many=True))
def list_pending(partner_id: str):
    """List the invitations that can still be accepted."""
    _allow(Permission.INVITATIONS_READ, partner_id)
    return invitations.list_pending_invitations(partner_id)


@blp.route("/<string:invitation_id>", methods=["DELETE"])
@require_auth
@blp.response(204)
@blp.doc(**problem_responses(r409=("The invitation was accepted already", INVITATION_ACCEPTED)))
def revoke(partner_id: str, invitation_id: str):
    """Revoke a pending invitation; its link stops working at once."""
    _allow(Permission.INVITATIONS_REVOKE, partner_id)
    invitations.revoke_invitation(current_actor(), partner_id, invitation_id)
