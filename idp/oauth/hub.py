"""The authorization handler of the hub frontends: hub check, organization choice, no consent."""

from __future__ import annotations

from flask import Response, redirect, render_template, url_for

from idp.accounts.models import User
from idp.extensions import db
from idp.login.session import current_organization_ids
from idp.oauth.authorize import (
    AUTHORIZATION_HANDLERS,
    AuthorizationRequest,
    deny_authorization,
    interaction_required,
    issue_authorization_response,
)
from idp.orgs.models import Membership, Organization

HUB_TITLES = {"partner": "Partner Hub", "client": "Client Hub", "support": "Support"}


def organizations_for(user: User) -> list[Organization]:
    """The user's organizations of the user's own hub, the last one used first."""
    orgs = list(
        db.session.scalars(
            db.select(Organization)
            .join(Membership, Membership.organization_id == Organization.id)
            .where(Membership.user_id == user.id, Organization.kind == user.hub)
            .order_by(Organization.name)
        )
    )
    orgs.sort(key=lambda org: org.id != user.last_organization_id)
    return orgs


def wrong_hub_page(user: User, expected_hub: str, request_id: str | None = None) -> Response:
    """Tell a person whose account belongs to another hub where to sign in instead.

    With the pending authorization request's ``request_id``, "Use another
    account" returns to that request's login page, for an account of its hub.
    """
    body = render_template(
        "login/wrong_hub.html",
        hub_title=HUB_TITLES.get(expected_hub, expected_hub),
        user_hub_title=HUB_TITLES.get(user.hub, user.hub),
        user_hub=user.hub,
        request_id=request_id,
    )
    return Response(body, status=403, mimetype="text/html")


def choose(authz: AuthorizationRequest, user: User, organization_id: str) -> Response:
    """Issue the code for ``organization_id`` and remember it as the last one used."""
    if user.last_organization_id != organization_id:  # else nothing to write
        user.last_organization_id = organization_id
        # Written before the code, which references the account: its row first.
        db.session.flush()
    return issue_authorization_response(authz, user, organization_id)


def hub_handler(authz: AuthorizationRequest) -> Response:
    """First-party hub login: the account must be of the client's hub; pick the organization."""
    user = authz.user
    client = authz.client
    if user.hub != client.hub:
        if authz.silent:
            return interaction_required(authz, "login_required", "Sign in with this hub's account.")
        return wrong_hub_page(user, client.hub, authz.id)
    # Only ids here, read with the session: the picker page reads the organizations it shows.
    org_ids = current_organization_ids()
    if authz.organization:
        # Switching organization with the live session: only to one of the user's own.
        if authz.organization not in org_ids:
            return deny_authorization(authz, "You are not a member of this organization.")
        return choose(authz, user, authz.organization)
    if not org_ids:
        authz.discard()
        body = render_template("login/no_organization.html", hub_title=HUB_TITLES[user.hub])
        return Response(body, status=403, mimetype="text/html")
    if len(org_ids) == 1:
        return choose(authz, user, next(iter(org_ids)))
    if authz.silent:
        return interaction_required(
            authz,
            "account_selection_required",
            "Name the organization, or ask without prompt=none.",
        )
    return redirect(url_for("login.choose_organization", request_id=authz.id))


AUTHORIZATION_HANDLERS["hub"] = hub_handler
