"""The everyday requests of the token and introspection endpoints, without Authlib's plumbing.

A partner's server asking for a client-credentials token, and the gateway
introspecting an access token, are most of what these two endpoints serve.
For that one well-formed shape of request (an urlencoded body holding only
the expected fields, once each, and HTTP Basic client authentication that
succeeds), building Authlib's generic request object, walking its grant and
client-authentication registries and rendering through its response hook
cost more than the work itself. Here the request is read once and the same
hooks our Authlib subclasses implement are called directly: the client's
rules (``ClientRules``), the client-credentials grant's ``machine_scope`` and
``machine_token``, and the introspection endpoint's own ``query_token``,
``check_permission`` and ``create_introspection_payload``; with Redis, an
active access token's answer is kept and given again while it stays true
(``idp.oauth.introspection_answers``), and a client-credentials request made
before with the same credentials and scope only signs a token
(``idp.oauth.machine_requests``).

Anything else (another grant or authentication method, an unknown or
repeated field, a query string, a failed authentication, a scope the client
lacks) returns None and the view hands the request to Authlib, so every
refusal is Authlib's RFC 6749 section 5.2 or RFC 7662 answer. The rules
the server adds to Authlib's (parameters from the form body only, each once,
one client authentication: ``server.IdpAuthorizationServer``) cost nothing
here: a request this path answers already holds only the expected fields,
once each, in the body, and authenticates with HTTP Basic alone.
``tests/oauth/test_hot_paths.py`` sends requests of both kinds through both
paths and expects the same answers.
"""

from __future__ import annotations

import functools
import io
import json
from urllib.parse import parse_qsl

from authlib.common.security import is_secure_transport
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from flask import Response, current_app, request

from idp.oauth.introspection_answers import answer_key, keep_answer, kept_answer
from idp.oauth.machine_grant import machine_family, machine_scope, machine_token
from idp.oauth.machine_requests import keep_request, known_request, request_key
from idp.oauth.models import ClientRules
from idp.oauth.server import (
    TokenIntrospection,
    authorization_server,
    basic_credentials,
    query_client,
)

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_BODY = 16 * 1024  # larger bodies are Authlib's (and the request size limit's) to judge
_TOKEN_FIELDS = frozenset({"grant_type", "scope"})
_INTROSPECTION_FIELDS = frozenset({"token", "token_type_hint"})
JSON_TYPE = "application/json"
# Authlib's ``default_json_headers`` but the type: RFC 6749 section 5.1's no caching.
_NO_STORE = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]


def _form(fields: frozenset[str]) -> dict[str, str] | None:
    """The urlencoded body as one value per field, or None unless it holds only ``fields``.

    Read from the WSGI environ: Werkzeug's request properties and its limited
    input stream cost more than parsing the body. The body is read only when
    its length is declared and small (a chunked body is Authlib's), and put
    back as a fresh stream, so that Authlib reads the same bytes should it take
    over.
    """
    req = request._get_current_object()  # one context lookup instead of one per attribute
    environ = req.environ
    declared = environ.get("CONTENT_LENGTH", "")
    length = -1
    if declared.isascii() and declared.isdigit() and not environ.get("HTTP_TRANSFER_ENCODING"):
        length = int(declared)  # a transfer coding overrides the length (RFC 9112 section 6.3)
    if (
        environ.get("REQUEST_METHOD") != "POST"
        or environ.get("QUERY_STRING")
        or not 0 <= length <= min(MAX_BODY, req.max_content_length or MAX_BODY)
        or environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != FORM_TYPE
        or not _secure_transport(req.scheme, req.host)
    ):
        return None
    body = environ["wsgi.input"].read(length)
    environ["wsgi.input"] = io.BytesIO(body)
    if len(body) != length:  # the client hung up early, or the body was read before
        return None
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=True, max_num_fields=4
        )
    except ValueError:  # not UTF-8, malformed, or too many fields
        return None
    form = dict(pairs)
    if len(form) != len(pairs) or not form.keys() <= fields:
        return None
    return form


@functools.lru_cache(maxsize=64)
def _secure_transport(scheme: str, host: str) -> bool:
    """Authlib's transport rule (https, or http to a loopback host), which reads nothing else."""
    return is_secure_transport(f"{scheme}://{host}/")


def _basic_client(endpoint: str) -> ClientRules | None:
    """The client that authenticated with HTTP Basic (RFC 6749 section 2.3.1), else None."""
    authenticated = _basic_authentication(endpoint)
    return authenticated[0] if authenticated is not None else None


def _basic_authentication(endpoint: str) -> tuple[ClientRules, str] | None:
    """The client that authenticated with HTTP Basic and the secret it sent, else None."""
    client_id, secret = basic_credentials(request.headers)
    if not client_id or not secret:
        return None
    client = query_client(client_id)
    if (
        client is None
        or not client.check_client_secret(secret)
        or not client.check_endpoint_auth_method("client_secret_basic", endpoint)
    ):
        return None
    return client, secret


def _json(body: dict | str) -> Response:
    """What Authlib's Flask integration answers: the JSON body with ``no-store`` headers."""
    text = body if isinstance(body, str) else json.dumps(body)
    response = Response(text, mimetype=JSON_TYPE)  # cheaper than a list of headers to check
    response.headers.extend(_NO_STORE)
    return response


def client_credentials() -> Response | None:
    """RFC 6749 section 4.4.3 success for a client authenticated with HTTP Basic, else None.

    With Redis, a request made before with the same credentials and scope
    only signs a token (``idp.oauth.machine_requests``).
    """
    form = _form(_TOKEN_FIELDS)
    if form is None or form.get("grant_type") != "client_credentials":
        return None
    requested = form.get("scope")
    authorization = request.environ.get("HTTP_AUTHORIZATION")
    key = request_key(authorization, requested) if authorization else None
    lifetime = current_app.config["IDP_ACCESS_TOKEN_TTL"]
    known = known_request(key, lifetime) if key is not None else None
    if known is not None:
        return _json(machine_token(known.client, known.scope, known.family))
    authenticated = _basic_authentication("token")
    if authenticated is None:
        return None
    client, secret = authenticated
    if not client.check_grant_type("client_credentials"):
        return None
    try:
        authorization_server.validate_requested_scope(requested)
    except InvalidScopeError:
        return None
    scope = machine_scope(client, requested)
    if scope is None:
        return None
    family = machine_family(client)
    token = machine_token(client, scope, family)
    if key is not None:
        keep_request(key, client, secret, scope, family)
    return _json(token)


_introspection = TokenIntrospection(authorization_server)


def introspection() -> Response | None:
    """RFC 7662 section 2.2 answer for a client authenticated with HTTP Basic, else None."""
    form = _form(_INTROSPECTION_FIELDS)
    if form is None or "token" not in form:
        return None
    hint = form.get("token_type_hint")
    if hint and hint not in _introspection.SUPPORTED_TOKEN_TYPES:
        return None
    client = _basic_client(_introspection.ENDPOINT_NAME)
    if client is None:
        return None
    # A refresh token is read from the database first, as the hint asks, and never kept.
    key = answer_key(form["token"], client) if hint != "refresh_token" else None
    kept = kept_answer(key) if key is not None else None
    if kept is not None:
        return _json(kept)
    token = _introspection.query_token(form["token"], hint)
    if token and not _introspection.check_permission(token, client, request):
        token = None
    payload = _introspection.create_introspection_payload(token)
    body = json.dumps(payload)
    if key is not None and payload.get("active"):
        keep_answer(key, token, body)
    return _json(body)
