"""The buffer counter reports, per request, the pages a scenario reads and finds in PostgreSQL."""

from __future__ import annotations

import pytest

from bench.buffers import measure, per_request
from idp.extensions import db


def test_pages_per_request_are_the_differences_divided_by_the_requests():
    before = {"index a": (10, 100), "table b": (5, 50), "table idle": (7, 7)}
    after = {"index a": (30, 300), "table b": (5, 90), "table idle": (7, 7), "index new": (4, 4)}
    assert per_request(before, after, 20) == {
        "index a": (1.0, 10.0),
        "table b": (0.0, 2.0),
        "index new": (0.2, 0.2),
    }


@pytest.mark.postgres
def test_a_round_trip_reports_the_code_tables_and_indexes_it_uses(bench_app, bench_manifest):
    rates = measure(bench_app, db, bench_manifest, "authorization_code", 10)
    # Each round trip inserts a code, a family and a refresh token, and probes their keys.
    for relation in (
        "table oauth_authorization_codes",
        "index uq_oauth_authorization_codes_code_hash",
        "table token_families",
        "table oauth_refresh_tokens",
    ):
        read, found = rates[relation]
        assert read + found >= 1, (relation, rates[relation])
    assert "table channel_api_keys" not in rates
