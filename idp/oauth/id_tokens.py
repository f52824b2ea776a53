"""OpenID Connect ID tokens: the one place their claims are built and signed.

The code exchange issues the first (OpenID Connect Core 3.1.3.3); a refresh
of a login whose scope holds ``openid`` issues a new one (section 12.2) with
the same ``iss``, ``sub`` and ``aud``, a new ``iat``, the ``auth_time`` and
``amr`` of the original sign-in (kept by the token family since the code
exchange, and passed on to a partner switch's family; read from the code
for a family opened before it kept them) and no ``nonce``, and
so does a partner switch (RFC 8693 token exchange), naming the organization
switched to. Each is signed with its client's registered
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
    auth_time: int | None,
    amr: list[str] | None,
    nonce: str | None = None,
) -> str:
    """The ID token of ``user`` for ``client`` issued with ``token`` (the access token response).

    ``auth_time`` and ``amr`` are the sign-in's; with no ``auth_time`` (a login
    from before families kept it, whose code was gone) the token says nothing
    about the sign-in rather than something wrong. ``nonce`` is the code's, at
    the code exchange only.
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
    if auth_time is not None:
        claims["auth_time"] = auth_time
        claims["amr"] = list(amr or ["pwd"])
    if nonce:
        claims["nonce"] = nonce
    claims.update(user_claims(user, organization_id, token.get("scope", "")))
    return sign_jwt(claims, typ="JWT", algorithm=alg)


def renewed_id_token(*, client, user, token: dict, family: TokenFamily) -> str:
    """A new ID token for ``family`` (a refresh's or a partner switch's), of its sign-in."""
    auth_time, amr = family_sign_in(family)
    return sign_id_token(
        client=client,
        user=user,
        token=token,
        family_id=family.id,
        organization_id=family.organization_id,
        auth_time=auth_time,
        amr=amr,
    )


def family_sign_in(family: TokenFamily) -> tuple[int | None, list[str] | None]:
    """When and how the person of ``family``'s login signed in (``auth_time``, ``amr``).

    A partner switch passes it on to the family it opens. A family opened
    before families kept it (migration 0025) and not filled by 0026 yet has
    it from the family it was switched from, back to the login's, and from the
    code whose exchange opened that one (named after the code, older ones by
    the code's ``family_id``): (None, None) once the code or a family on the
    way is gone. Once every family opened before the upgrade has ended
    (``IDP_REFRESH_TOKEN_TTL`` after it), no family needs more than its own row.
    """
    seen = 0
    while family.auth_time is None and family.parent_id is not None:
        seen += 1
        family = db.session.get(TokenFamily, family.parent_id)
        if family is None or seen > MAX_SWITCHES:
            return None, None
    if family.auth_time is not None:
        return family.auth_time, family.amr
    code = db.session.scalar(
        db.select(AuthorizationCode).where(
            (AuthorizationCode.id == code_id_of_family(family.id))
            | (AuthorizationCode.family_id == family.id)
        )
    )
    return (code.auth_time, code.amr) if code is not None else (None, None)
