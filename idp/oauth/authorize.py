"""The authorization endpoint's pluggable middle: who decides, and how the answer is sent.

``/oauth/authorize`` validates the request (client, exact redirect URI, PKCE
S256, scope), stores it in the browser session as an ``AuthorizationRequest``,
makes sure the user is logged in, and hands it to the handler registered for
the client's ``kind`` in ``AUTHORIZATION_HANDLERS``. A handler renders what it
needs (partner picker, consent screen) and finishes with
``issue_authorization_response`` or ``deny_authorization``.

The answer reaches the client in the request's ``response_mode``
(``authorization_response``): in the query, or posted by the browser.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import Response, current_app, redirect, render_template, session, url_for

from idp.accounts.models import User
from idp.extensions import db
from idp.login.session import PENDING_PREFIX, auth_time, current_user
from idp.oauth.models import OAuthClient
from idp.oauth.server import authorization_server, query_client

# The authorization request parameters kept while the user logs in or decides.
STORED_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "organization",
    "login_hint",
    "response_mode",
)
# OAuth 2.0 Multiple Response Type Encoding Practices 2.1: the code flow answers in the
# query unless the client asks otherwise; OAuth 2.0 Form Post Response Mode keeps the
# code out of URLs. Fragment and JWT-secured modes are not offered.
RESPONSE_MODES = ("query", "form_post")
MAX_PENDING = 3  # the session is a cookie: keep it small

AuthorizationHandler = Callable[["AuthorizationRequest"], Response]
# client kind -> handler(authz_request) -> Response. "hub" is registered below;
# the consent flow registers "partner".
AUTHORIZATION_HANDLERS: dict[str, AuthorizationHandler] = {}


class _StoredOAuth2Request(OAuth2Request):
    """An authorization request rebuilt from the session to finish it on a later page."""

    def __init__(self, params: dict):
        super().__init__("GET", url_for("oauth.authorize", _external=True))
        self.payload = BasicOAuth2Payload(params)

    @property
    def args(self):
        """The stored parameters, as if from the query string."""
        return self.payload.data

    @property
    def form(self):
        """No form body: an authorization request is a GET."""
        return {}


@dataclass
class AuthorizationRequest:
    """A validated authorization request waiting for the user.

    Attributes for handlers: ``client`` (OAuthClient), ``scope`` (granted by
    the client's registration), ``redirect_uri``, ``state``, ``user`` (the
    logged-in User or None), ``organization`` (requested organization id or
    None), ``id`` and ``resume_url`` (where to send the browser to continue).

    ``force_login`` marks a request that asked for the password again
    (``prompt=login``, or a login older than ``max_age``): nothing answers it
    until a password login at the login page clears it (OpenID Connect Core
    3.1.2.1), whichever page the browser comes back through.

    A new request is written to the browser session only once something reads
    its ``id`` (a URL of a later page: login, picker, consent screen), so one
    that is answered at once leaves the session cookie as it was.
    """

    request_id: str
    params: dict = field(default_factory=dict)
    scope: str = ""
    force_login: bool = False
    started: float = 0.0
    kept: bool = False
    # The grant that validated this request during the current HTTP request (never stored):
    # a handler answering at once issues the code without validating it all again.
    grant: object | None = field(default=None, repr=False, compare=False)

    @property
    def id(self) -> str:
        """This request's id in the session; reading it keeps the request there."""
        if not self.kept:
            self.save()
        return self.request_id

    @property
    def client(self) -> OAuthClient | None:
        """The requesting client (None if it was deleted meanwhile)."""
        return query_client(self.params.get("client_id", ""))

    @property
    def redirect_uri(self) -> str:
        """The validated, exactly registered redirect URI."""
        return self.params["redirect_uri"]

    @property
    def state(self) -> str | None:
        """The client's ``state``, echoed in the response."""
        return self.params.get("state")

    @property
    def response_mode(self) -> str:
        """How the answer reaches the client: ``query`` or ``form_post`` (checked at the start)."""
        return response_mode_of(self.params.get("response_mode"))

    @property
    def organization(self) -> str | None:
        """The organization the client asked for (switching partner), if any."""
        return self.params.get("organization")

    @property
    def user(self) -> User | None:
        """The logged-in user of this browser."""
        return current_user()

    @property
    def silent(self) -> bool:
        """``prompt=none``: nothing may be shown to the person (OpenID Connect Core 3.1.2.1)."""
        return "none" in (self.params.get("prompt") or "").split()

    @property
    def resume_url(self) -> str:
        """Where the browser continues this request (after login, for instance)."""
        return url_for("oauth.resume", request_id=self.id)

    @classmethod
    def start(cls, params: dict, grant, *, force_login: bool = False) -> AuthorizationRequest:
        """A request ``grant`` has just validated, kept in the session once its ``id`` is read."""
        kept = {k: params[k] for k in STORED_PARAMS if params.get(k) is not None}
        return cls(
            request_id=secrets.token_urlsafe(12),
            params=kept,
            scope=grant.request.scope or "",
            force_login=force_login,
            started=time.time(),
            grant=grant,
        )

    def save(self) -> None:
        """Write this request to the session; the oldest pending ones give way to a new one."""
        if not self.kept:
            pending = sorted(
                (k for k in session if k.startswith(PENDING_PREFIX)),
                key=lambda k: session[k].get("started", 0) if isinstance(session[k], dict) else 0,
            )
            for key in pending[: max(0, len(pending) - MAX_PENDING + 1)]:
                session.pop(key, None)
            self.kept = True
        session[PENDING_PREFIX + self.request_id] = {
            "started": self.started or time.time(),
            "params": self.params,
            "scope": self.scope,
            "force_login": self.force_login,
        }

    @classmethod
    def load(cls, request_id: str | None) -> AuthorizationRequest | None:
        """The pending request ``request_id`` of this browser, or None."""
        data = session.get(PENDING_PREFIX + (request_id or ""))
        if not request_id or not isinstance(data, dict):
            return None
        return cls(
            request_id=request_id,
            params=dict(data.get("params", {})),
            scope=data.get("scope", ""),
            force_login=bool(data.get("force_login")),
            started=float(data.get("started", 0)),
            kept=True,
        )

    def discard(self) -> None:
        """Forget this request (it was answered)."""
        if self.kept:
            session.pop(PENDING_PREFIX + self.request_id, None)
            self.kept = False

    def hub(self) -> str | None:
        """Which hub's login page serves this request (partner apps serve Client Hub users)."""
        client = self.client
        return client.login_hub if client is not None else None


def to_login(authz_request: AuthorizationRequest) -> Response:
    """Send the browser to the login page, which resumes ``authz_request`` after the password."""
    return redirect(url_for("login.login", request_id=authz_request.id))


def response_mode_of(requested: str | None) -> str:
    """The mode to answer in: ``requested`` if supported, else ``query`` (the code flow's default).

    A request naming a mode we do not offer is refused in the default mode: how
    the client wants that mode's answer cannot be known (RFC 6749 section 4.1.2.1).
    """
    return requested if requested in RESPONSE_MODES else "query"


def response_parameters(params: dict) -> list[tuple[str, str]]:
    """The present ``params`` and ``iss`` (RFC 9207 section 2), as sent to the client."""
    values = [(k, v) for k, v in params.items() if v is not None]
    values.append(("iss", current_app.config["IDP_ISSUER"]))
    return values


def with_issuer(uri: str, params: dict) -> str:
    """Add response parameters and ``iss`` (RFC 9207 section 2) to a redirect URI."""
    return add_params_to_uri(uri, response_parameters(params))


def authorization_response(redirect_uri: str, params: dict, response_mode: str) -> Response:
    """Send response ``params`` and ``iss`` to a validated redirect URI in ``response_mode``.

    ``query``: a 302 with them in the query (RFC 6749 section 4.1.2).
    ``form_post`` (OAuth 2.0 Form Post Response Mode section 2): a page whose
    form the browser posts to the redirect URI, so that the code is in no URL,
    history entry or Referer. A script of this host submits it (the
    Content-Security-Policy allows no inline script); without script the
    person presses its button. The page is never cached.
    """
    if response_mode != "form_post":
        return redirect(with_issuer(redirect_uri, params), code=302)
    body = render_template(
        "oauth/form_post.html", redirect_uri=redirect_uri, fields=response_parameters(params)
    )
    response = Response(body, status=200, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache, no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def error_response(
    redirect_uri: str,
    error: str,
    description: str | None,
    state: str | None,
    *,
    response_mode: str,
) -> Response:
    """RFC 6749 section 4.1.2.1 error response to a validated redirect URI, in ``response_mode``."""
    params = {"error": error, "error_description": description, "state": state}
    return authorization_response(redirect_uri, params, response_mode)


def issue_authorization_response(
    authz_request: AuthorizationRequest,
    user: User,
    organization_id: str | None,
    context: dict | None = None,
) -> Response:
    """Approve: store a code for ``user`` acting in ``organization_id`` and send it to the client.

    A request resumed from the session is validated again (the client may have
    changed meanwhile); one answered in the request that validated it is not.
    ``context`` is kept on the code and reaches ``TOKEN_RESPONSE_EXTRAS`` at the
    exchange. Commits the session, so whatever the handler added is saved
    with the code. Sends ``code``, ``state`` and ``iss`` to ``redirect_uri``
    in the request's response mode. A request still waiting for the password
    to be typed again (``force_login``) gets no code: what the handler added
    is rolled back and the browser goes to the login page.
    """
    if authz_request.force_login:
        db.session.rollback()
        return to_login(authz_request)
    mode = authz_request.response_mode
    grant = authz_request.grant
    try:
        if grant is None:
            oauth_request = _StoredOAuth2Request(authz_request.params)
            oauth_request.user = user
            grant = authorization_server.get_authorization_grant(oauth_request)
            redirect_uri = grant.validate_authorization_request()
        else:
            oauth_request, redirect_uri = grant.request, grant.redirect_uri
            oauth_request.user = user
        oauth_request.idp_organization_id = organization_id
        oauth_request.idp_context = context
        oauth_request.idp_auth_time = auth_time()
        params = grant.issue_code(user)
    except OAuth2Error as error:
        authz_request.discard()
        db.session.rollback()
        if error.redirect_uri:
            return error_response(
                error.redirect_uri,
                error.error,
                error.description,
                authz_request.state,
                response_mode=mode,
            )
        return authorization_error_page(error)
    authz_request.discard()
    db.session.commit()
    return authorization_response(redirect_uri, params, mode)


def _answer_error(authz_request: AuthorizationRequest, error: str, description: str) -> Response:
    """Forget ``authz_request`` and send ``error`` to its client, in its response mode.

    Only while the client still registers the request's redirect URI: one deleted,
    or whose URIs were replaced, since the request was validated gets the error
    page instead, as a code would (RFC 6749 section 4.1.2.1).
    """
    authz_request.discard()
    client = authz_request.client
    if client is None or not client.check_redirect_uri(authz_request.redirect_uri):
        return authorization_error_page(OAuth2Error(description, error=error))
    return error_response(
        authz_request.redirect_uri,
        error,
        description,
        authz_request.state,
        response_mode=authz_request.response_mode,
    )


def interaction_required(authz_request: AuthorizationRequest, error: str, description: str):
    """Answer ``prompt=none`` that needs a page: the OpenID Connect Core 3.1.2.6 error."""
    return _answer_error(authz_request, error, description)


def deny_authorization(authz_request: AuthorizationRequest, description: str | None = None):
    """Refuse: answer ``error=access_denied``, ``state`` and ``iss``."""
    return _answer_error(authz_request, "access_denied", description or "The request was denied.")


def authorization_error_page(error: OAuth2Error) -> Response:
    """An error that must not redirect (unknown client or redirect URI): shown to the person."""
    body = render_template(
        "oauth/error.html", error=error.error, description=error.get_error_description()
    )
    return Response(body, status=400, mimetype="text/html")


def dispatch(authz_request: AuthorizationRequest) -> Response:
    """Hand a request with a logged-in user to the handler of its client's kind.

    One that asked for the password again goes to the login page instead.
    """
    if authz_request.force_login:
        return to_login(authz_request)
    client = authz_request.client
    handler = AUTHORIZATION_HANDLERS.get(client.kind) if client is not None else None
    if handler is None:
        return _answer_error(
            authz_request, "unauthorized_client", "This client cannot sign people in."
        )
    return handler(authz_request)
