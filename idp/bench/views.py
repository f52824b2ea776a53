"""The ceiling endpoints: bare JSON, sign-only JWT, one argon2id verification, empty code flow.

The last two stand for the authorization-code round trip with everything of
the service's own taken out: ``/bench/ceiling/authorize`` redirects with a
random code (nothing checked or stored) and ``/bench/ceiling/token`` answers
with an access token and an ID token signed like the real ones (nothing
looked up or written). The benchmark's browser-like clients drive them exactly
as they drive the real endpoints, so the pair measures what the framework, the
signatures and the clients themselves cost on this machine.

Registered only when ``IDP_BENCH_MODE`` is true (see ``idp._register_blueprints``);
they expose nothing secret but cost CPU on demand, so production never has them.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlencode

from flask import Blueprint, abort, current_app, jsonify, redirect, request

from idp.accounts.passwords import HASHER, verify_password
from idp.extensions import csrf
from idp.keys.service import ALGORITHM, keyring, newest_active, sign_jwt, sign_with

blp = Blueprint("bench", __name__, url_prefix="/bench")
# Load generators post without a session; the endpoints change nothing.
csrf.exempt(blp)

CEILING_PASSWORD = "bench-ceiling-passphrase"
_ceiling_hash: str | None = None


def _stored_hash() -> str:
    """One argon2id hash made with the service's parameters, computed once per process."""
    global _ceiling_hash
    if _ceiling_hash is None:
        _ceiling_hash = HASHER.hash(CEILING_PASSWORD)
    return _ceiling_hash


@blp.get("/ceiling/json")
def bare_json():
    """The framework's floor: a small JSON body and nothing else."""
    return jsonify(status="ok")


def _bench_claims(audience: str) -> dict:
    now = int(time.time())
    return {
        "iss": current_app.config["IDP_ISSUER"],
        "sub": "bench",
        "aud": audience,
        "exp": now + 900,
        "iat": now,
    }


def _sign(claims: dict, typ: str) -> str:
    """Sign as the service does, with its active key, straight from the process's key ring.

    Finding whether that key was revoked since is the service's own
    per-request work, which the real endpoints' figures are measured against,
    not part of a ceiling.
    """
    key = newest_active(keyring().keys(), ALGORITHM)
    if key is None:  # no key yet: the service's own path makes the first one
        return sign_jwt(claims, typ=typ)
    return sign_with(key, claims, typ=typ)


@blp.get("/ceiling/sign")
def sign_only():
    """Sign one access-token-shaped JWT with the service's active key and algorithm."""
    claims = _bench_claims(current_app.config["IDP_ISSUER"]) | {
        "client_id": "bench",
        "scope": "bench",
    }
    return jsonify(access_token=_sign(claims, "at+jwt"), token_type="Bearer")


@blp.get("/ceiling/authorize")
def empty_authorize():
    """A code redirect with nothing checked or stored (to this service's own callback path)."""
    code = secrets.token_urlsafe(32)
    query = urlencode({"code": code, "state": request.args.get("state", "")})
    return redirect(f"/bench/ceiling/callback?{query}", code=302)


@blp.post("/ceiling/token")
def empty_token():
    """A token response for any code: an access token and an ID token, both signed."""
    form = request.form
    if not form.get("code") or not form.get("client_id"):
        abort(400)
    access = _sign(_bench_claims(current_app.config["IDP_ISSUER"]), "at+jwt")
    id_token = _sign(_bench_claims(form["client_id"]), "JWT")
    return jsonify(
        token_type="Bearer",
        access_token=access,
        id_token=id_token,
        refresh_token=secrets.token_urlsafe(32),
        expires_in=900,
    )


@blp.post("/ceiling/argon2")
def argon2_verify():
    """Verify one password against an argon2id hash with the service's parameters."""
    ok = verify_password(_stored_hash(), request.form.get("password", ""))
    return jsonify(valid=ok)
