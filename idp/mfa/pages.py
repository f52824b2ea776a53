"""The signed-in person's two-step sign-in page: on, new recovery codes, off."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from idp.accounts.password_change import CurrentPasswordRefused
from idp.errors import DomainError, InvalidInput
from idp.login.session import current_user
from idp.mfa import service
from idp.ratelimits import rate_limited, succeeded

bp = Blueprint("mfa_pages", __name__)

TEMPLATE = "accounts/two_step.html"
# The set-up's checkbox: ticked (its only value), or absent as a browser leaves it unticked.
SIGN_OUT_OTHERS = "sign_out_others"
TICKED = "yes"
# Each form's fields, by the names the service uses -> their ids on the page.
FIELD_IDS = {
    "start": {"current_password": "current_password"},
    "confirm": {"code": "code", "sign_out_others": "sign-out-others"},
    "codes": {"current_password": "codes-password", "code": "codes-code"},
    "off": {
        "current_password": "off-password",
        "code": "off-code",
        "recovery_code": "off-recovery-code",
    },
}


def _page(user, status: int = 200, headers: dict | None = None, **context):
    context.setdefault("errors", {})
    context.setdefault("refused", None)
    context.setdefault("sign_out_others", True)  # ticked until the person unticks it
    page = render_template(
        TEMPLATE, user=user, two_step=service.status_of(user), field_ids=FIELD_IDS, **context
    )
    return page, status, headers or {}


def _refused(user, form: str, exc: DomainError, **context):
    """The page again, with what to fix in ``form`` under its fields' ids."""
    ids = FIELD_IDS[form]
    first = next(iter(ids.values()))
    errors = {ids.get(name, first): messages for name, messages in (exc.fields or {}).items()}
    if not errors:
        errors = {first: [exc.detail or exc.title]}
    retry_after = getattr(exc, "retry_after", 0)
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    return _page(user, exc.status, headers, errors=errors, refused=form, **context)


@bp.route("/account/two-step", methods=["GET", "POST"])
# The password is checked, as at /login.
@rate_limited("IDP_LOGIN_RATE_LIMIT", given_back_when=succeeded)
def two_step():
    """Two-step sign-in of the signed-in account, by the ``step`` its forms post."""
    user = current_user()
    if user is None:
        return redirect(url_for("login.login", next=url_for("mfa_pages.two_step")))
    if request.method == "GET":
        return _page(user)
    form = request.form.get("step", "")
    if form not in FIELD_IDS:
        return _page(user, 400, errors={}, refused=None)
    password = request.form.get("current_password", "")
    code = request.form.get("code", "")
    address = request.remote_addr or ""
    try:
        if form == "start":
            enrolment = service.start_enrolment(user, password, address=address)
            return _page(user, enrolment=enrolment)
        if form == "confirm":
            sign_out_others = _ticked(SIGN_OUT_OTHERS)
            codes = service.finish_enrolment(user, code, sign_out_others=sign_out_others)
            return _codes_page("Two-step sign-in is on", codes, signed_out_others=sign_out_others)
        if form == "codes":
            codes = service.regenerate_recovery_codes(user, password, code=code, address=address)
            return _codes_page("New recovery codes", codes)
        service.disable(
            user,
            password,
            code=code,
            recovery_code=request.form.get("recovery_code", ""),
            address=address,
        )
    except (InvalidInput, CurrentPasswordRefused, service.SecondStepRefused) as exc:
        # A wrong code at set-up leaves the form to type the next one (the secret is not
        # shown again); any other refusal shows the form it came from again.
        return _refused(
            user,
            form,
            exc,
            confirming=form == "confirm",
            sign_out_others=request.form.getlist(SIGN_OUT_OTHERS) == [TICKED],
        )
    except service.TwoStepStateConflict as exc:
        return _page(user, exc.status, notice=exc.detail)
    return render_template(
        "message.html",
        title="Two-step sign-in is off",
        message="Signing in asks for your password only. Your recovery codes no longer work.",
        link={"href": url_for("mfa_pages.two_step"), "text": "Two-step sign-in"},
    )


def _ticked(name: str) -> bool:
    """Whether checkbox ``name`` was ticked: sent once with its value, or not sent at all."""
    sent = request.form.getlist(name)
    if sent and sent != [TICKED]:
        message = "Tick the box or leave it empty."
        raise InvalidInput(message, fields={name: [message]})
    return bool(sent)


def _codes_page(title: str, codes: list[str], *, signed_out_others: bool = False):
    return render_template(
        "accounts/recovery_codes.html",
        title=title,
        codes=codes,
        signed_out_others=signed_out_others,
    )
