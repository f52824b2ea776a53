"""The invitation accept page."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from idp.errors import DomainError, InvalidInput
from idp.login.service import TooManyAttempts
from idp.orgs import acceptance, invitations
from idp.ratelimits import rate_limited, succeeded
from idp.web import message_page, sign_in_link

bp = Blueprint("orgs_pages", __name__)


def _page(opened, token: str, errors: dict | None = None, status: int = 200):
    return render_template(
        "orgs/invitation_accept.html",
        opened=opened,
        situation=opened.situation,
        token=token,
        errors=errors or {},
        login_link=_login_link(),
    ), status


def _login_link() -> dict:
    """The way in once the invitation is accepted (or was, or need not be)."""
    return sign_in_link("partner", "Log in")


@bp.route("/invitations/accept", methods=["GET", "POST"])
# An existing account's password is checked, as at /login.
@rate_limited("IDP_LOGIN_RATE_LIMIT", given_back_when=succeeded)
def accept():
    """Show what accepting means for this address, and accept on POST."""
    token = request.values.get("token", "")
    try:
        opened = acceptance.open_invitation(token)
        if request.method == "GET":
            return _page(opened, token)
        password = request.form.get("password", "")
        if opened.situation == "new_account" and password != request.form.get(
            "password_confirm", ""
        ):
            return _page(opened, token, {"password_confirm": ["The two passwords differ."]}, 422)
        try:
            user = acceptance.accept_invitation(token, password, address=request.remote_addr or "")
        except InvalidInput as exc:
            return _page(opened, token, exc.fields, 422)
        except TooManyAttempts as exc:
            page, status = _page(opened, token, {"password": [exc.detail]}, exc.status)
            return page, status, {"Retry-After": str(exc.retry_after)}
    except (invitations.InvitationAccepted, invitations.AlreadyMember) as exc:
        # The account is in the partner already: the way on is the Partner Hub.
        return message_page(exc.title, exc.detail, exc.status, [_login_link()])
    except DomainError as exc:
        return message_page(exc.title, exc.detail, exc.status)
    membership = next(m for m in user.memberships if m.organization_id == opened.partner.id)
    return message_page(
        f"Welcome to {opened.partner.name}",
        f"{user.email} is now a {membership.role} of {opened.partner.name}. "
        "Log in to the Partner Hub to start.",
        links=[_login_link()],
    )
