"""``/healthz`` says the process is up; ``/readyz`` says the database answers."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, jsonify

from idp.errors import DATABASE_UNAVAILABLE, problem
from idp.extensions import db

blp = Blueprint("health", __name__)


@blp.get("/healthz")
def healthz():
    """Liveness: the process serves requests."""
    return jsonify(status="ok")


@blp.get("/readyz")
def readyz():
    """Readiness: the database answers a trivial query."""
    try:
        db.session.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError:
        db.session.rollback()
        return problem(
            503,
            DATABASE_UNAVAILABLE,
            "Service unavailable",
            "The database cannot be reached.",
            headers={"Retry-After": "5"},
        )
    return jsonify(status="ready")
