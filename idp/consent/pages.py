"""Client Hub pages of consent: the consent-link landing page and "Connected partners"."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, Email, Length

from idp.accounts.limits import account_rate_limit
from idp.accounts.passwords import MAX_LENGTH as MAX_PASSWORD_LENGTH
from idp.accounts.service import hub_name
from idp.channels.models import Channel
from idp.consent import links, screen, service
from idp.consent.web import actor_for_user, login_redirect
from idp.errors import DomainError
from idp.extensions import db
from idp.login.session import current_user
from idp.oauth.authorize import AuthorizationRequest, to_login
from idp.orgs.models import Organization
from idp.web import message_page
from policies.consent import describe_scopes

blp = Blueprint("consent_pages", __name__)


class ConsentRequestExpired(DomainError):
    """The consent screen's request is no longer pending in this browser."""

    status, code, title = 400, "consent_request_expired", "This request has expired"


class LinkSignupForm(FlaskForm):
    """Sign-up of a new client business through a partner's consent link."""

    email = EmailField("Work email", validators=[DataRequired(), Email(), Length(max=320)])
    # The password rules decide the rest (``idp.accounts.passwords``), as on /signup.
    password = PasswordField(
        "Password", validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)]
    )
    business_name = StringField("Business name", validators=[DataRequired(), Length(max=200)])

    def describe_errors(self) -> None:
        """Tie each refused field to its errors, so that a screen reader reads them with it."""
        for field in self:
            if field.errors:
                described = {"aria-invalid": "true", "aria-describedby": f"{field.id}-error"}
                field.render_kw = {**(field.render_kw or {}), **described}


@blp.route("/c/<link_id>", methods=["GET", "POST"])
@account_rate_limit("signup")  # the same sign-up counters as the /signup page
def open_link(link_id: str):
    """A consent link: the logged-in go to the consent screen, others log in or sign up."""
    target, link = links.resolve_link(link_id)
    if current_user() is not None:
        return redirect(target)
    return _signup_page(
        link.partner,
        url_for("login.login", hub="client", next=target),
        link.login_hint,
        lambda email, password, name: links.sign_up_through_link(link, email, password, name),
    )


@blp.route("/consent/<request_id>/signup", methods=["GET", "POST"])
@account_rate_limit("signup")
def signup(request_id: str):
    """Sign-up from the login page of a partner's own authorization request (no consent link)."""
    authz = _pending_partner_request(request_id)
    if current_user() is not None:
        return redirect(authz.resume_url)
    client = authz.client
    return _signup_page(
        db.session.get(Organization, client.organization_id),
        url_for("login.login", request_id=authz.id),
        authz.params.get("login_hint"),
        lambda email, password, name: links.sign_up_for_request(
            client.client_id, authz.params, email, password, name
        ),
    )


def _signup_page(partner, login_url: str, login_hint: str | None, sign_up):
    """The sign-up form naming ``partner``; ``sign_up(email, password, name)`` on a valid post."""
    form = LinkSignupForm(data={"email": login_hint} if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            sign_up(form.email.data, form.password.data, form.business_name.data)
        except DomainError as exc:
            for name, messages in (exc.fields or {"email": [exc.detail]}).items():
                field = getattr(form, name, form.email)
                field.errors = [*field.errors, *messages]
        else:
            return render_template(
                "message.html",
                title="Check your email",
                message="We sent you a link to confirm your address. "
                "It brings you back here to finish connecting.",
            )
    form.describe_errors()
    return render_template("consent/link.html", form=form, partner=partner, login_url=login_url)


def _pending_partner_request(request_id: str) -> AuthorizationRequest:
    """This browser's pending authorization request of a partner client, or raise."""
    authz = AuthorizationRequest.load(request_id)
    client = authz.client if authz is not None else None
    if client is None or client.kind != "partner":
        raise ConsentRequestExpired("Start again from the partner's link or app.")
    return authz


@blp.post("/consent/<request_id>")
def decide(request_id: str):
    """The consent screen's form: approve with the ticked numbers, or deny.

    Nothing is decided for a request that asked for the password again until it is typed.
    """
    authz = _pending_partner_request(request_id)
    if current_user() is None or authz.force_login:
        return to_login(authz)
    return screen.decide(authz)


@blp.get("/client/connected-partners")
def connected_partners():
    """The partners this client has granted something, with what and since when."""
    user = current_user()
    if user is None:
        return login_redirect()
    if user.hub != "client":
        return _for_client_hub_accounts(user.hub)
    actor = actor_for_user(user)
    grants = service.list_grants(actor, "client", actor.organization_id)
    channel_ids = {c for g in grants for c in g.channel_ids}
    channels = {
        c.id: c for c in db.session.scalars(db.select(Channel).where(Channel.id.in_(channel_ids)))
    }
    return render_template(
        "consent/connected_partners.html",
        grants=grants,
        channels=channels,
        scope_words=describe_scopes,
    )


def _for_client_hub_accounts(hub: str):
    """Tell a partner or support account that this page is a client's, and where to go instead."""
    back = {"href": url_for("login.signed_in"), "text": "Back to your account"}
    if hub == "support":
        instead = "Support staff see a client's grants in the support console."
        links = [{"href": url_for("support.search"), "text": "Open the support console"}, back]
    else:
        instead = "The grants your partner received are listed in the Partner Hub."
        links = [back]
    return message_page(
        "Connected partners is for Client Hub accounts",
        f"It lists what a client business shares with partners, and you are signed in "
        f"with a {hub_name(hub)} account. {instead}",
        403,
        links,
    )


@blp.post("/client/connected-partners/<grant_id>/revoke")
def revoke_grant(grant_id: str):
    """Revoke a whole grant from the Connected partners page."""
    user = current_user()
    if user is None:
        return login_redirect()
    actor = actor_for_user(user)
    grant = service.revoke_grant(actor, actor.organization_id, grant_id)
    flash(f"{grant.partner.name} can no longer act on your numbers.")
    return redirect(url_for(".connected_partners"))


@blp.post("/client/connected-partners/<grant_id>/channels/<channel_id>/revoke")
def revoke_grant_channel(grant_id: str, channel_id: str):
    """Take one number out of a grant from the Connected partners page."""
    user = current_user()
    if user is None:
        return login_redirect()
    actor = actor_for_user(user)
    grant = service.revoke_grant_channel(actor, actor.organization_id, grant_id, channel_id)
    flash(f"{grant.partner.name} can no longer act on that number.")
    return redirect(url_for(".connected_partners"))
