"""The authorization server metadata (OpenID Connect Discovery 1.0, RFC 8414)."""

from __future__ import annotations

from flask import current_app, url_for

from idp.keys.models import SIGNING_ALGORITHMS
from idp.oauth.authorize import RESPONSE_MODES
from idp.oauth.grants import CLIENT_AUTH, CONFIDENTIAL_AUTH
from idp.oauth.models import TOKEN_EXCHANGE
from policies.permissions import Permission

OPENID_SCOPES = ("openid", "email", "profile")


def supported_scopes() -> list[str]:
    """OpenID scopes plus every permission a machine client may be given."""
    return list(OPENID_SCOPES) + sorted(p.value for p in Permission)


def server_metadata() -> dict:
    """Every endpoint and capability, stated truthfully."""
    issuer = current_app.config["IDP_ISSUER"]

    def url(endpoint: str) -> str:
        """Absolute URL of ``endpoint`` under the issuer."""
        return issuer + url_for(endpoint)

    return {
        "issuer": issuer,
        "authorization_endpoint": url("oauth.authorize"),
        "token_endpoint": url("oauth.token"),
        "userinfo_endpoint": url("oauth.userinfo"),
        "jwks_uri": url("oauth.jwks"),
        "revocation_endpoint": url("oauth.revoke"),
        "introspection_endpoint": url("oauth.introspect"),
        "end_session_endpoint": url("oauth.logout"),
        "scopes_supported": supported_scopes(),
        "response_types_supported": ["code"],
        "response_modes_supported": list(RESPONSE_MODES),
        "grant_types_supported": [
            "authorization_code",
            "refresh_token",
            "client_credentials",
            TOKEN_EXCHANGE,
        ],
        "subject_types_supported": ["public"],
        # OpenID Connect Discovery 1.0 section 3: RS256 MUST be listed.
        "id_token_signing_alg_values_supported": list(SIGNING_ALGORITHMS),
        "token_endpoint_auth_methods_supported": CLIENT_AUTH,
        "revocation_endpoint_auth_methods_supported": CLIENT_AUTH,
        "introspection_endpoint_auth_methods_supported": CONFIDENTIAL_AUTH,
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "azp",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "amr",
            "sid",
            "at_hash",
            "email",
            "email_verified",
            "name",
            "hub",
            "org",
        ],
        "authorization_response_iss_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "claims_parameter_supported": False,
        "frontchannel_logout_supported": False,
        "backchannel_logout_supported": False,
    }
