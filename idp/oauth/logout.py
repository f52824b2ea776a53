"""OpenID Connect RP-Initiated Logout: end the browser session, revoke the login's tokens."""

from __future__ import annotations

import jwt
from flask import Response, redirect, render_template, request

from idp.audit.service import record_event
from idp.extensions import csrf, db
from idp.login.session import logout_user, signed_login
from idp.oauth.authorize import with_issuer
from idp.oauth.models import OAuthClient, TokenFamily, uri_registered
from idp.oauth.revocation import revoke_family, revoke_login_families
from idp.oauth.server import query_client
from idp.web import message_page, sign_in_link


class LogoutRefused(ValueError):
    """The logout request names a client or redirect that does not match."""


def _audience(claims: dict) -> str | None:
    """The client an ID token was issued to (its only, or first, audience)."""
    aud = claims.get("aud")
    if isinstance(aud, list):
        aud = aud[0] if aud else None
    return aud if isinstance(aud, str) else None


def _hint_claims(hint: str | None) -> dict | None:
    """The claims of ``hint`` if it is an ID token of ours, whichever of our algorithms signed it.

    RP-Initiated Logout 1.0 section 2 asks only that we issued it: a client that
    changed its ``id_token_signed_response_alg`` still holds ID tokens of the
    other algorithm. The header's ``alg`` must be that of the key its ``kid``
    names (``verify_jwt``), so neither key vouches for the other's signature.
    """
    if not hint:
        return None
    from idp.keys.models import SIGNING_ALGORITHMS
    from idp.keys.service import verify_jwt

    try:
        # Only an ID token (typ JWT) names the login to end; an access token is no hint.
        return verify_jwt(hint, verify_exp=False, typ="JWT", algorithms=SIGNING_ALGORITHMS)
    except (jwt.InvalidTokenError, ValueError):
        return None


def _client_for(params, claims: dict | None) -> OAuthClient | None:
    client_id = params.get("client_id")
    if claims is not None:
        hinted = _audience(claims)
        if client_id and client_id != hinted:
            raise LogoutRefused("client_id does not match the id_token_hint.")
        client_id = hinted
    return query_client(client_id) if client_id else None


def _post_logout_target(params, client: OAuthClient | None) -> str | None:
    uri = params.get("post_logout_redirect_uri")
    if not uri:
        return None
    registered = client.post_logout_redirect_uris if client is not None else []
    if not uri_registered(uri, registered):
        raise LogoutRefused("post_logout_redirect_uri is not registered for this client.")
    return uri


def sign_out() -> None:
    """Log this browser out and revoke the token families of its login; the caller commits.

    Every family a hub obtained in this browser login (its code's, a partner
    switch's) ends with it, as the user who signs out expects, even when the
    login itself has outlived ``IDP_SESSION_MAX_AGE``.
    """
    login = signed_login()
    if login is not None:
        user_id, login_session_id = login
        revoked = revoke_login_families(user_id, login_session_id, "logged_out", actor_id=user_id)
        record_event(
            "login.signed_out",
            actor_type="user",
            actor_id=user_id,
            target_type="user",
            target_id=user_id,
            after={"login_session_id": login_session_id, "token_families_revoked": revoked},
        )
    logout_user()


def end_session() -> Response:
    """Log out; ask first unless a valid ``id_token_hint`` of this browser's user came.

    An RP sends its request by GET or POST (RP-Initiated Logout 1.0, section 2);
    both are answered alike. Only the confirmation form's own POST, which carries
    a CSRF token, confirms by itself: its token is checked here (the route is
    exempt from the blanket check so that an RP's POST reaches this function).
    """
    params = request.values
    confirming = request.method == "POST" and "csrf_token" in request.form
    if confirming:
        csrf.protect()  # the token and, over HTTPS, the same-origin Referer (400 otherwise)
    hint = params.get("id_token_hint")
    claims = _hint_claims(hint)
    try:
        if hint and claims is None:
            raise LogoutRefused("The id_token_hint is not a valid ID token of ours.")
        client = _client_for(params, claims)
        target = _post_logout_target(params, client)
    except LogoutRefused as exc:
        body = render_template("oauth/error.html", error="invalid_request", description=str(exc))
        return Response(body, status=400, mimetype="text/html")
    # The login the cookie names, whether or not it still logs anyone in: reading the
    # logged-in user would forget a login past IDP_SESSION_MAX_AGE (and clear the cookie
    # before the confirmation's POST), so that its families outlived the sign-out.
    login = signed_login()
    confirmed = confirming or (
        claims is not None and (login is None or claims.get("sub") == login[0])
    )
    if not confirmed:
        carried = {k: v for k, v in params.to_dict().items() if k != "csrf_token"}
        body = render_template("oauth/logout_confirm.html", params=carried)
        return Response(body, mimetype="text/html")
    # The browser's login first: every path that ends a login locks it before its
    # families (``idp.oauth.revocation``), so two logouts at once cannot deadlock.
    sign_out()
    if claims is not None and claims.get("sid"):
        family = db.session.get(TokenFamily, claims["sid"])
        if family is not None and family.user_id == claims.get("sub"):
            # This family and the switches made from it; the rest of its login only
            # from the browser that holds the login (sign_out), not from a bare hint.
            revoke_family(family, "logged_out", actor_id=family.user_id)
    db.session.commit()
    if target:
        return redirect(with_issuer(target, {"state": params.get("state")}), code=302)
    return signed_out_page(client)


def signed_out_page(client: OAuthClient | None) -> Response:
    """The "Signed out" page, with the way back in: the client's hub login, else either hub's.

    The hub comes from the client the request named, never from the account, so
    the page tells whoever sees the screen next nothing about who was signed in.
    """
    hubs = [client.login_hub] if client is not None else ["partner", "client"]
    body, status = message_page(
        "Signed out", "You are signed out.", links=[sign_in_link(hub) for hub in hubs]
    )
    return Response(body, status=status, mimetype="text/html")
