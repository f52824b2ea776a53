"""Consent links: a short, opaque URL a partner sends to a client to start the consent flow."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from flask import current_app, url_for

from idp.accounts.service import start_signup
from idp.auth.enforce import enforce
from idp.consent.events import audit
from idp.consent.models import ConsentLink
from idp.consent.oauth_bridge import consent_client
from idp.errors import DomainError, InvalidInput
from idp.extensions import db
from idp.ids import PREFIXES, new_id
from idp.timeutil import utcnow
from policies.actor import Actor
from policies.consent import DEFAULT_CONSENT_SCOPE, can_create_consent_link, can_request_scopes


class ConsentLinkExpired(DomainError):
    """The consent link is unknown or past its expiry."""

    status, code, title = 410, "consent_link_expired", "This link has expired"


def create_consent_link(actor: Actor, partner_id: str, request: dict) -> ConsentLink:
    """Store an authorization request of the partner's own client behind a short link; commit.

    The redirect URI must be exactly one registered for the client (RFC 9700
    section 2.1); the scopes must be consent scopes (what the client will be
    asked to grant); the PKCE challenge is required, as on every authorization
    request, so only the partner's server (holding the verifier) can use the code.
    """
    enforce(can_create_consent_link(actor, partner_id))
    client = consent_client(request["client_id"])
    if client is None or client.partner_id != partner_id:
        raise InvalidInput(
            "This partner has no consent client with that id.",
            fields={"client_id": ["unknown client"]},
        )
    if request["redirect_uri"] not in client.redirect_uris:
        raise InvalidInput(
            "The redirect URI must exactly match one registered for the client.",
            fields={"redirect_uri": ["not registered for this client"]},
        )
    scope = request.get("scope") or DEFAULT_CONSENT_SCOPE
    decision = can_request_scopes(scope, None)
    if not decision:
        raise InvalidInput(decision.reason, fields={"scope": [decision.reason]})
    now = utcnow()
    link = ConsentLink(
        id=new_id(PREFIXES["consent_link"]),
        partner_id=partner_id,
        oauth_client_id=client.client_id,
        redirect_uri=request["redirect_uri"],
        state=request["state"],
        scope=scope,
        login_hint=request.get("email"),
        code_challenge=request["code_challenge"],
        code_challenge_method=request["code_challenge_method"],
        created_by=actor.subject,
        created_at=now,
        expires_at=now + timedelta(seconds=request["expires_in"]),
    )
    db.session.add(link)
    audit(
        "consent_link.created",
        actor,
        target_type="consent_link",
        target_id=link.id,
        organization_id=partner_id,
        after={"client_id": client.client_id, "redirect_uri": link.redirect_uri, "scope": scope},
    )
    db.session.commit()
    return link


def link_url(link: ConsentLink) -> str:
    """The public URL of a consent link."""
    return current_app.config["IDP_ISSUER"] + url_for("consent_pages.open_link", link_id=link.id)


def resolve_link(link_id: str) -> tuple[str, ConsentLink]:
    """The authorization request (relative URL) a live consent link stands for, and the link."""
    link = db.session.get(ConsentLink, link_id)
    if link is None or link.expires_at <= utcnow():
        raise ConsentLinkExpired("Ask the partner who sent it for a new link.")
    params = {
        "response_type": "code",
        "client_id": link.oauth_client_id,
        "redirect_uri": link.redirect_uri,
        "scope": link.scope,
        "state": link.state,
    }
    if link.login_hint:
        params["login_hint"] = link.login_hint
    if link.code_challenge:
        params["code_challenge"] = link.code_challenge
        params["code_challenge_method"] = link.code_challenge_method or "S256"
    return authorization_path(params), link


def authorization_path(params: dict) -> str:
    """The relative ``/oauth/authorize`` URL that starts (or restarts) this request."""
    return "/oauth/authorize?" + urlencode(params)


def sign_up_through_link(link: ConsentLink, email: str, password: str, business_name: str) -> None:
    """Start a client sign-up whose organization records the link's partner as onboarding partner.

    The verification email brings the new owner back to the consent screen.
    """
    target, _ = resolve_link(link.id)
    start_signup(
        email,
        password,
        business_name,
        onboarding_partner_id=link.partner_id,
        continue_url=target,
    )


def sign_up_for_request(
    client_id: str, params: dict, email: str, password: str, business_name: str
) -> None:
    """Start a client sign-up from the login page of a partner's own authorization request.

    As through a consent link, the new organization records the client's
    partner as its onboarding partner, and the verification email brings the
    new owner back to the same authorization request (without ``prompt``, so
    the fresh login is not asked for again).
    """
    client = consent_client(client_id)
    if client is None:
        raise ConsentLinkExpired("Start again from the partner's app.")
    resumed = {k: v for k, v in params.items() if k != "prompt"}
    start_signup(
        email,
        password,
        business_name,
        onboarding_partner_id=client.partner_id,
        continue_url=authorization_path(resumed),
    )
