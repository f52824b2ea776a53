"""The members API: an organization's people list its members; partner owners manage them."""

from __future__ import annotations

from idp.api_inputs import Blueprint
from idp.auth.bearer import current_actor, require_auth
from idp.channels.schemas import PageArgs
from idp.openapi import ACCOUNT_NO_LONGER_ACTS, problem_responses
from idp.orgs import members
from idp.orgs.schemas import MemberOut, MemberPageOut, MemberRoleIn

blp = Blueprint(
    "members",
    __name__,
    url_prefix="/v1",
    description=(
        "An organization's members. A partner's owners change roles and remove members; "
        "any member may leave; a partner always keeps an owner."
    ),
)

LAST_OWNER = "The partner's only active owner cannot stop being one"


@blp.route("/partners/<string:partner_id>/members", methods=["GET"])
@require_auth
@blp.arguments(PageArgs, location="query")
@blp.response(200, MemberPageOut)
def list_partner_members(args: dict, partner_id: str):
    """The partner's members and their roles, longest-standing first."""
    return members.list_members(current_actor(), partner_id, "partner", **args)


@blp.route("/clients/<string:client_id>/members", methods=["GET"])
@require_auth
@blp.arguments(PageArgs, location="query")
@blp.response(200, MemberPageOut)
@blp.doc(**problem_responses(every_role_may=True))
def list_client_members(args: dict, client_id: str):
    """The client business's members and their roles, longest-standing first."""
    return members.list_members(current_actor(), client_id, "client", **args)


@blp.route("/partners/<string:partner_id>/members/<string:membership_id>", methods=["PATCH"])
@require_auth
@blp.arguments(MemberRoleIn)
@blp.response(200, MemberOut)
@blp.doc(
    **problem_responses(
        r401=ACCOUNT_NO_LONGER_ACTS,
        r409=(
            f"{LAST_OWNER}, or a disabled or held account cannot be made owner",
            members.LastOwner,
            members.MemberInactive,
        ),
    )
)
def change_role(args: dict, partner_id: str, membership_id: str):
    """Make a member owner or member; losing owner signs them out of this partner."""
    return members.change_role(current_actor(), partner_id, membership_id, args["role"])


@blp.route("/partners/<string:partner_id>/members/<string:membership_id>", methods=["DELETE"])
@require_auth
@blp.response(204)
@blp.doc(**problem_responses(r401=ACCOUNT_NO_LONGER_ACTS, r409=(LAST_OWNER, members.LastOwner)))
def remove(partner_id: str, membership_id: str):
    """Remove a member (owners), or leave (your own membership); their tokens end at once."""
    members.remove_member(current_actor(), partner_id, membership_id)
