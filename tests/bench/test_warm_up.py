"""The benchmark measures cached paths in their steady state, not while caches fill."""

from __future__ import annotations

from bench import run, server


class Runs:
    """Stands in for wrk: records each unmeasured run and reports a fixed request count."""

    def __init__(self, requests_per_run: int):
        self.requests_per_run = requests_per_run
        self.calls: list[tuple[int, float]] = []

    def __call__(self, level: int, seconds: float) -> dict:
        self.calls.append((level, seconds))
        return {"requests": self.requests_per_run}


def test_a_cached_scenario_warms_until_every_worker_met_each_request():
    runs = Runs(requests_per_run=1_000)
    run.warm_up(runs, 32, 2, distinct=500)
    wanted = run.WARM_PASSES * server.WORKERS * 500
    assert len(runs.calls) == -(-wanted // 1_000)  # whole runs, enough of them
    assert set(runs.calls) == {(32, 2)}


def test_an_uncached_scenario_warms_once():
    runs = Runs(requests_per_run=10)
    run.warm_up(runs, 8, 2, distinct=0)
    assert runs.calls == [(8, 2)]


def test_the_warm_up_ends_at_its_limit_however_slow_the_service():
    runs = Runs(requests_per_run=1)
    run.warm_up(runs, 8, 2, distinct=2_000)
    assert len(runs.calls) * 2 == run.WARM_LIMIT
