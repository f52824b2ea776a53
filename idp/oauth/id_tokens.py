"""OpenID Connect ID tokens: the one place their claims are built and signed.

The code exchange issues the first (OpenID Connect Core 3.1.3.3); a refresh
of a login whose scope holds ``openid`` issues a new one (section 12.2) with
the same ``iss``, ``sub`` and ``aud``, a new ``iat``, the ``auth_time`` of the
original sign-in and no ``nonce``, and so does a partner switch (RFC 8693
token exchange), naming the organization switched to. Each is signed with its client's registered
``id_token_signed_response_alg`` by the key of that algorithm that signs now,
so a relying party renews the ``id_token_hint`` it logs out with, and after
``idp keys revoke`` gets one of the new key, without a new sign-in.
"""

from __future__ import annotations

import time

from authlib.oidc.core.util import create_half_hash
from flask import current_app

from idp.extensions import db
from idp.keys.service import sign_jwt
from idp.oauth.models import AuthorizationCode, TokenFamily, code_id_of_family
from idp.oauth.userinfo import user_claims

# Partner switches made one from another; a longer chain is not followed.
MAX_SWITCHES = 100


def sign_id_token(
    *,
    client,
    user,
    token: dict,
    family_id: str,
    organization_id: str | None,
    code: AuthorizationCode | None,
    nonce: str | None = None,
) -> str:
    """The ID token of ``user`` for ``client`` issued with ``token`` (the access token response).

    ``code`` is the authorization code of the sign-in, for its ``auth_time``
    and ``amr``; None when it is no longer known, and the token then says
    nothing about the sign-in rather than something wrong. ``nonce`` is the
    code's, at the code exchange only.
    Claims about the user are those of ``token``'s scope, as userinfo gives them.
    """
    alg = client.id_token_signed_response_alg
    now = int(time.time())
    claims = {
        "iss": current_app.config["IDP_ISSUER"],
        "sub": user.id,
        "aud": client.client_id,
        "azp": client.client_id,
        "iat": now,
        "exp": now + current_app.config["IDP_ID_TOKEN_TTL"],
        "sid": family_id,
        "at_hash": create_half_hash(token["access_token"], alg).decode(),
    }
    if code is not None:
        claims["auth_time"] = code.auth_time
        claims["amr"] = code.get_amr()
    if nonce:
        claims["nonce"] = nonce
    claims.update(user_claims(user, organization_id, token.get("scope", "")))
    return sign_jwt(claims, typ="JWT", algorithm=alg)


def renewed_id_token(*, client, user, token: dict, family: TokenFamily) -> str:
    """A new ID token for ``family`` (a refresh's or a partner switch's), of its sign-in."""
    return sign_id_token(
        client=client,
        user=user,
        token=token,
        family_id=family.id,
        organization_id=family.organization_id,
        code=sign_in_code(family),
    )


def sign_in_code(family: TokenFamily) -> AuthorizationCode | None:
    """The authorization code whose exchange began ``family``'s login, or None.

    A family opened by a code exchange is named after its code (older ones are
    named by the code's ``family_id``); a partner switch's family names the one
    it was switched from, back to that login's. Codes are kept as long as the
    family they opened can live (``idp.janitor``); a family switched from may
    be purged sooner (revoked alone), and then the code is not found.
    """
    seen = 0
    while family.parent_id is not None:
        seen += 1
        family = db.session.get(TokenFamily, family.parent_id)
        if family is None or seen > MAX_SWITCHES:
            return None
    return db.session.scalar(
        db.select(AuthorizationCode).where(
            (AuthorizationCode.id == code_id_of_family(family.id))
            | (AuthorizationCode.family_id == family.id)
        )
    )
