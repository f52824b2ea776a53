"""The verdicts the benchmark prints: ratios against ceilings, RSS, scale, unavailable paths."""

from __future__ import annotations

from bench import report
from bench.wrk import render


def _level(rps: float, p99_ms: float = 5.0, **extra) -> dict:
    return {"rps": rps, "p50_ms": 1.0, "p99_ms": p99_ms, "errors": 0} | extra


def _results(users: int = 10_000, **scenarios) -> dict:
    base = {
        "ceiling_sign": {"title": "sign", "levels": {"8": _level(1000)}},
        "ceiling_json": {"title": "json", "levels": {"8": _level(2000)}},
    }
    return {"users": users, "rss_mb": {"1": 120.0, "2": 160.0}, "scenarios": base | scenarios}


def _verdicts(checks: list[dict]) -> dict:
    return {c["target"]: c["met"] for c in checks}


def test_a_ratio_to_the_ceiling_decides_the_target():
    results = _results(
        client_credentials={"title": "cc", "ceiling": "ceiling_sign", "levels": {"8": _level(850)}},
        apikey_check={"title": "key", "ceiling": "ceiling_json", "levels": {"8": _level(1000)}},
    )
    report.ratios(results)
    verdicts = _verdicts(report.check_targets(results, None))
    assert verdicts["client_credentials req/s >= 0.8 x ceiling_sign (c=8)"] is True
    assert verdicts["apikey_check req/s >= 0.7 x ceiling_json (c=8)"] is False


def test_a_paired_ratio_wins_over_the_ratio_of_medians():
    paired = _level(500, rps_ratio=0.75)
    results = _results(
        apikey_check={"title": "key", "ceiling": "ceiling_json", "levels": {"8": paired}}
    )
    report.ratios(results)
    assert results["scenarios"]["apikey_check"]["levels"]["8"]["rps_ratio"] == 0.75


def test_rss_over_the_limit_and_missing_endpoints_are_reported():
    results = _results(introspection={"title": "i", "reason": "POST /oauth/introspect missing"})
    checks = report.check_targets(results, None)
    rss = next(c for c in checks if c["target"].startswith("peak RSS"))
    assert (rss["measured"], rss["met"]) == (160.0, False)
    missing = next(c for c in checks if c["target"].startswith("introspection"))
    assert missing["met"] is None and "missing" in missing["note"]
    assert "not available" in report.table(results)


def test_scale_compares_each_figure_with_the_10k_run():
    def run(users: int, ratio: float) -> dict:
        level = _level(100, rps_ratio=ratio)
        return _results(users, apikey_check={"title": "k", "ceiling": "ceiling_json",
                                             "levels": {"8": level}})  # fmt: skip

    checks = report.check_targets(run(10**6, 0.45), run(10_000, 0.5))
    scale = [c for c in checks if c["target"].startswith("scale: apikey_check")]
    assert scale == [
        {"target": "scale: apikey_check c=8 rps_ratio >= 0.9 x 10k", "measured": 0.9, "met": True}
    ]


def test_rendered_requests_carry_host_and_length():
    raw = render("POST", "http://127.0.0.1:5000/oauth/token?x=1", {"A": "b"}, "k=v")
    head, body = raw.split(b"\r\n\r\n")
    assert head.split(b"\r\n")[:2] == [b"POST /oauth/token?x=1 HTTP/1.1", b"Host: 127.0.0.1:5000"]
    assert b"Content-Length: 3" in head and body == b"k=v"


def test_the_code_round_trip_is_judged_by_its_p99_beside_the_empty_round_trip():
    results = _results(
        ceiling_round_trip={"title": "empty", "levels": {"8": _level(400, p99_ms=30.0)}},
        authorization_code={
            "title": "code",
            "ceiling": "ceiling_round_trip",
            "levels": {"8": _level(100, p99_ms=120.0)},
        },
    )
    report.ratios(results)
    assert results["scenarios"]["authorization_code"]["levels"]["8"]["rps_ratio"] == 0.25
    check = next(c for c in report.check_targets(results, None) if "p99" in c["target"])
    assert (check["target"], check["measured"], check["met"]) == (
        "authorization_code p99 <= 25 ms (c=8)",
        120.0,
        False,
    )
    assert "| 120.0 (ceiling_round_trip p99 30 ms) | NO |" in report.targets_table([check])


def _complete_run(stamp: str, **extra) -> dict:
    run = {"started_at": stamp, "users": 10_000, "database": "postgresql", "only": None}
    return run | {"gunicorn": {"app": "wsgi:app"}} | extra


def test_a_run_with_rate_limits_is_never_the_baseline_or_the_latest_sample(tmp_path, monkeypatch):
    import json

    monkeypatch.setattr(report, "RESULTS_DIR", tmp_path)
    plain = _complete_run("20261201T000000Z", rate_limits=False)
    limited = _complete_run("20261202T000000Z", rate_limits=True)
    for run in (plain, limited):
        (tmp_path / f"{run['started_at']}.json").write_text(json.dumps(run))
    assert report.is_complete(plain)
    assert not report.is_complete(limited)
    assert report.latest(10_000, "postgresql")["started_at"] == plain["started_at"]


def test_the_rate_limited_environment_counts_limits_it_never_reaches():
    from bench.database import Target
    from bench.run import UNREACHED_LIMIT, bench_env
    from idp.config_checks import _check_rate_limit

    target = Target(kind="sqlite", name="idp_bench_10k", url="sqlite://", redis_url=None)
    assert bench_env(target, 8000)["IDP_RATELIMIT_ENABLED"] == "0"
    limited = bench_env(target, 8000, rate_limits=True)
    assert limited["IDP_RATELIMIT_ENABLED"] == "1"
    for name in ("IDP_LOGIN_RATE_LIMIT", "IDP_TOKEN_RATE_LIMIT"):
        assert limited[name] == UNREACHED_LIMIT
        _check_rate_limit(name, limited[name])
