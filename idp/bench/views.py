"""The three ceiling endpoints: bare JSON, sign-only JWT, one argon2id verification.

Registered only when ``IDP_BENCH_MODE`` is true (see ``idp._register_blueprints``);
they expose nothing secret but cost CPU on demand, so production never has them.
"""

from __future__ import annotations

import time

from flask import Blueprint, current_app, jsonify, request

from idp.accounts.passwords import HASHER, verify_password
from idp.extensions import csrf
from idp.keys.service import sign_jwt

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


@blp.get("/ceiling/sign")
def sign_only():
    """Sign one access-token-shaped JWT with the service's active key and algorithm."""
    now = int(time.time())
    claims = {
        "iss": current_app.config["IDP_ISSUER"],
        "sub": "bench",
        "aud": current_app.config["IDP_ISSUER"],
        "exp": now + 900,
        "iat": now,
        "client_id": "bench",
        "scope": "bench",
    }
    return jsonify(access_token=sign_jwt(claims, typ="at+jwt"), token_type="Bearer")


@blp.post("/ceiling/argon2")
def argon2_verify():
    """Verify one password against an argon2id hash with the service's parameters."""
    ok = verify_password(_stored_hash(), request.form.get("password", ""))
    return jsonify(valid=ok)
