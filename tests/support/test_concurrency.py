"""The UNIQUE index decides when reassignments race for one address (real HTTP, threads)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from idp.accounts.models import User
from idp.extensions import db
from tests.conftest import PG_URL
from tests.factories import make_user

RACERS = 8


def _race(live_server, staff) -> None:
    targets = [make_user("client", email=f"racer{n}@x.example") for n in range(RACERS)]
    db.session.commit()
    start = threading.Barrier(RACERS)

    def reassign(user_id: str) -> int:
        start.wait()
        resp = requests.post(
            f"{live_server.url}/v1/support/accounts/{user_id}/email",
            json={"email": "Wanted@Example.com", "ticket": "SUP-RACE", "reason": "race test"},
            headers=staff.agent_auth,
            timeout=30,
        )
        assert resp.headers["Content-Type"].startswith(
            "application/problem+json" if resp.status_code != 200 else "application/json"
        )
        return resp.status_code

    with ThreadPoolExecutor(RACERS) as pool:
        statuses = list(pool.map(reassign, [t.id for t in targets]))

    assert sorted(statuses) == [200] + [409] * (RACERS - 1)
    db.session.expire_all()
    owners = db.session.scalars(
        db.select(User).where(User.email_normalized == "wanted@example.com")
    ).all()
    assert len(owners) == 1
    others = db.session.scalars(
        db.select(User).where(User.id != owners[0].id, User.hub == "client")
    )
    assert all(u.email.startswith("racer") for u in others)


@pytest.mark.postgres
def test_concurrent_reassignments_leave_exactly_one_owner_on_postgresql(live_server, staff):
    assert db.engine.dialect.name == "postgresql"
    _race(live_server, staff)


@pytest.mark.skipif(PG_URL is not None, reason="the PostgreSQL variant runs instead")
def test_concurrent_reassignments_leave_exactly_one_owner_on_sqlite(live_server, staff):
    _race(live_server, staff)
