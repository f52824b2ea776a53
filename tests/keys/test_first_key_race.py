"""Two instances making an algorithm's first key at once store one key, not two.

A first key is made when a request finds none (the JWKS, a signature) or an
operator registers a client for its algorithm. The request is paused between
finding no key and storing its own while another instance makes and commits
one on its own connection (``tests.consent.interleave``).
"""

from __future__ import annotations

import pytest

from idp.extensions import db
from idp.keys import service
from idp.keys.jwks import published_jwks
from idp.keys.models import SigningKey
from tests.consent.interleave import Competitor, pause_before


def _kids(algorithm: str) -> list[str]:
    query = db.select(SigningKey.kid).where(SigningKey.algorithm == algorithm)
    return list(db.session.scalars(query))


@pytest.mark.parametrize("algorithm", ["ES256", "RS256"])
def test_concurrent_first_keys_of_an_algorithm_leave_one_key_that_signs(
    app_ctx, monkeypatch, algorithm
):
    competitor = Competitor(app_ctx, lambda: service.ensure_signing_key(algorithm))
    pause_before(monkeypatch, service, "create_key", competitor)
    service.ensure_signing_key(algorithm)
    competitor.finish()

    db.session.rollback()
    (kid,) = _kids(algorithm)
    assert service.active_key(algorithm).kid == kid
    assert kid in {k["kid"] for k in published_jwks()["keys"]}


def test_a_first_request_that_lost_the_race_still_serves_the_jwks(app_ctx, monkeypatch):
    competitor = Competitor(app_ctx, service.ensure_signing_key)
    pause_before(monkeypatch, service, "create_key", competitor)
    response = app_ctx.test_client().get("/oauth/jwks")
    competitor.finish()

    db.session.rollback()
    (kid,) = _kids("ES256")
    assert response.status_code == 200
    assert [k["kid"] for k in response.get_json()["keys"]] == [kid]
