"""JSON API of accounts: client sign-up and password-reset requests."""

from __future__ import annotations

from idp.accounts import reset, service
from idp.accounts.limits import account_rate_limit
from idp.accounts.schemas import AcceptedOut, PasswordResetIn, SignupIn
from idp.api_inputs import Blueprint

blp = Blueprint(
    "accounts_api", __name__, url_prefix="/v1", description="Client sign-up and password reset"
)

SIGNUP_ACCEPTED = {
    "status": "accepted",
    "detail": "Check your inbox: we sent a message to this address with the next step.",
}
RESET_ACCEPTED = {
    "status": "accepted",
    "detail": "If an account uses this address, we sent it a link to choose a new password.",
}


@blp.route("/signup", methods=["POST"])
@account_rate_limit("signup")
@blp.arguments(SignupIn)
@blp.response(202, AcceptedOut)
def signup(args: dict):
    """Start a client sign-up; the answer is the same whether or not the address is taken."""
    service.start_signup(args["email"], args["password"], args["business_name"])
    return SIGNUP_ACCEPTED


@blp.route("/password-reset", methods=["POST"])
@account_rate_limit("password_reset")
@blp.arguments(PasswordResetIn)
@blp.response(202, AcceptedOut)
def password_reset(args: dict):
    """Email a password-reset link when an account uses the address; same answer otherwise."""
    reset.request_password_reset(args["email"])
    return RESET_ACCEPTED
