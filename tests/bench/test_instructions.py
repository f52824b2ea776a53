"""The instruction counter replays every scenario to its outcome and reads callgrind."""

from __future__ import annotations

import pytest

from bench.instructions import SCENARIOS, instructions_in, outcome, wsgi_calls


@pytest.mark.parametrize("name", SCENARIOS)
def test_each_counted_scenario_replays_to_a_success(bench_app, bench_manifest, name):
    call = wsgi_calls(bench_app, bench_manifest, name)
    for i in range(3):
        status, body = call(i)
        assert outcome(name)(status, body), (status, body[:300])


def test_the_total_is_read_from_callgrind_output():
    assert instructions_in("events: Ir\nsummary: 1234567\n") == 1234567
    assert instructions_in("events: Ir\ntotals: 42\n") == 42
    assert instructions_in("events: Ir\n") == 0
