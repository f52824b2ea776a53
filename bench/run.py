"""``python -m bench.run --scale 10k``: the whole benchmark, end to end.

Seeds (or reuses) the bench database, starts gunicorn in bench mode on a free
loopback port, measures every available scenario at a few concurrency levels
several times, and prints medians, ratios to the ceilings and the targets.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import database, report, server, wrk
from bench.scenarios import CEILINGS, Context, NotAvailable, WrongOutcome, verify
from bench.seed import SCALES, parse_scale

PROJECT_ROOT = Path(__file__).resolve().parent.parent
INSTANCE = PROJECT_ROOT / "instance" / "bench"


# With --rate-limits: two limits per endpoint as in production, counted on every request
# and never reached.
UNREACHED_LIMIT = "100000000/minute;1000000000/hour"


def bench_env(target: database.Target, port: int, rate_limits: bool = False) -> dict[str, str]:
    """The fixed environment of the service under test (and of this process's app).

    Rate limits are off: at their production values they would cap the very
    throughput being measured. ``rate_limits`` turns them on at values never
    reached, so that a run measures what evaluating and counting them costs.
    """
    env = dict(os.environ)
    env.update(
        IDP_ENV="development",
        IDP_BENCH_MODE="1",
        IDP_DATABASE_URL=target.url,
        IDP_ISSUER=f"http://127.0.0.1:{port}",
        IDP_INSTANCE_PATH=str(INSTANCE),
        IDP_SECRET_KEY="bench-secret-key-not-for-production",
        IDP_KEY_ENCRYPTION_KEY="bench-key-encryption-key-not-for-production",
        IDP_REDIS_PREFIX="idp-bench:",
        IDP_RATELIMIT_ENABLED="1" if rate_limits else "0",
        IDP_LOGIN_RATE_LIMIT=UNREACHED_LIMIT,
        IDP_TOKEN_RATE_LIMIT=UNREACHED_LIMIT,
        IDP_LOG_LEVEL="WARNING",
    )
    env.pop("IDP_REDIS_URL", None)
    if target.redis_url:
        env["IDP_REDIS_URL"] = target.redis_url
    return env


def scenarios() -> list:
    """Every scenario, ceilings first (the others are divided by them)."""
    from bench.flows import FLOWS

    return CEILINGS + FLOWS


def prepare_scenario(scenario, ctx: Context, workdir: Path):
    """Build and verify a scenario; return its result record and a ``(level, seconds)`` runner.

    The runner is None when the scenario is not available in this build.
    """
    data = {"title": scenario.title, "ceiling": scenario.ceiling}
    try:
        requests = scenario.build(ctx)
        if scenario.drive is None:
            verify(scenario, ctx, requests)
        else:
            scenario.drive(ctx, 1, 0.5)
    except (NotAvailable, WrongOutcome, RuntimeError) as exc:
        data["reason"] = str(exc)
        print(f"  {scenario.title}: not available ({exc})", flush=True)
        return data, None
    if scenario.drive is not None:
        return data, lambda level, seconds: scenario.drive(ctx, level, seconds)
    rendered = [wrk.render(r.method, ctx.base_url + r.path, r.headers, r.body) for r in requests]
    if scenario.cached:
        data["distinct_requests"] = len(rendered)
    path = wrk.write_requests(workdir / f"{scenario.name}.http", rendered)
    return data, lambda level, seconds: wrk.run(
        ctx.base_url, path, connections=level, seconds=max(seconds, scenario.min_seconds)
    )


# wrk picks requests at random and gunicorn hands connections to either worker: this
# many picks per distinct request and worker leave about 1% of them unseen (e^-5).
WARM_PASSES = 5
WARM_LIMIT = 60.0  # seconds of warm-up per scenario at most


def warm_up(runner, level: int, seconds: float, distinct: int) -> None:
    """Unmeasured runs until the per-process caches hold what the scenario asks for.

    A scenario whose answers the service caches per process (``distinct`` > 0)
    is measured in its steady state, as a gateway that checks the same keys all
    day sees it; the others run once for ``seconds``.
    """
    wanted, sent, spent = WARM_PASSES * server.WORKERS * distinct, 0, 0.0
    while True:
        sent += runner(level, seconds)["requests"]
        spent += seconds
        if sent >= wanted or spent >= WARM_LIMIT:
            return


def settling(runner, settle):
    """``runner`` followed by ``settle``, so no run meets the backlog of the one before.

    The seconds spent settling are kept with the run's figures (``settle_s``).
    """

    def run(level: int, seconds: float) -> dict:
        figures = runner(level, seconds)
        figures["settle_s"] = round(settle(), 3)
        return figures

    return run


def measure(prepared: dict, args) -> None:
    """Warm every scenario up, then run each one right after its ceiling, cycle after cycle.

    A shared machine's load drifts within seconds; dividing each run by the
    ceiling run just before it, and taking the median of those ratios, keeps
    that drift out of the ratio. Cycles repeat ``args.runs`` times.
    """
    for data, runner, levels, _ in prepared.values():
        warm_up(runner, max(levels), args.warmup, data.get("distinct_requests", 0))
    runs: dict[tuple[str, int], list[dict]] = {}
    pairs: dict[tuple[str, int], list[float]] = {}
    paired = {ceiling for *_, ceiling in prepared.values() if ceiling in prepared}
    for cycle in range(args.runs):
        print(f"  cycle {cycle + 1}/{args.runs} of every scenario ...", flush=True)
        for name, (_, runner, levels, ceiling) in prepared.items():
            if name in paired:
                continue
            for level in levels:
                if ceiling in prepared:
                    base = prepared[ceiling][1](level, args.seconds)
                    runs.setdefault((ceiling, level), []).append(base)
                figures = runner(level, args.seconds)
                runs.setdefault((name, level), []).append(figures)
                if ceiling in prepared and base["rps"]:
                    pairs.setdefault((name, level), []).append(figures["rps"] / base["rps"])
    for (name, level), level_runs in sorted(runs.items(), key=lambda item: _order(prepared, item)):
        data = prepared[name][0]
        figures = report.median_of(level_runs) | {"runs": level_runs}
        if (name, level) in pairs:
            figures["rps_ratio"] = round(statistics.median(pairs[(name, level)]), 3)
            figures["paired_ratios"] = [round(r, 3) for r in pairs[(name, level)]]
        data.setdefault("levels", {})[str(level)] = figures
        print(
            f"  {data['title']:<34} c={level:<3} {figures['rps']:>9,.1f} req/s  "
            f"p50 {figures['p50_ms']:>7.2f} ms  p99 {figures['p99_ms']:>7.2f} ms"
            + (f"  errors {figures['errors']}" if figures["errors"] else ""),
            flush=True,
        )


def _order(prepared: dict, item) -> tuple[int, int]:
    (name, level), _ = item
    return list(prepared).index(name), level


def selected(every: list, only: str | None) -> set[str] | None:
    """The scenarios ``--only`` names and the ceilings they are divided by (None: all).

    An unknown name is an error, so a typo cannot pass for a run of nothing.
    """
    if not only:
        return None
    names = {name.strip() for name in only.split(",") if name.strip()}
    by_name = {scenario.name: scenario for scenario in every}
    unknown = sorted(names - by_name.keys())
    if unknown or not names:
        raise SystemExit(
            f"--only: unknown scenario {', '.join(unknown) or '(none named)'}; "
            f"choose from {', '.join(by_name)}"
        )
    return names | {by_name[name].ceiling for name in names if by_name[name].ceiling}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (``make bench`` passes ``--scale``)."""
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--scale", default="10k", help="10k, 100k, 1m or a user count")
    parser.add_argument("--runs", type=int, default=9, help="runs per concurrency level")
    parser.add_argument("--seconds", type=float, default=2, help="length of one run")
    parser.add_argument("--warmup", type=float, default=2, help="unmeasured run per scenario")
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[8, 32],
        help="comma-separated connection counts",
    )
    parser.add_argument(
        "--only", help="comma-separated scenario names (with the ceilings they are divided by)"
    )
    parser.add_argument(
        "--rate-limits",
        action="store_true",
        help="login and token rate limits on (never reached), to measure their cost",
    )
    parser.add_argument("--fresh", action="store_true", help="re-seed even if a seed matches")
    parser.add_argument("--seed-only", action="store_true", help="prepare the data and stop")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and return the process exit status."""
    args = parse_args(argv)
    only = selected(scenarios(), args.only)
    users = parse_scale(args.scale)
    scale_name = args.scale.lower()
    INSTANCE.mkdir(parents=True, exist_ok=True)
    target = database.choose(scale_name, INSTANCE)
    port = server.free_port()
    env = bench_env(target, port, rate_limits=args.rate_limits)
    os.environ.update(env)
    print(
        f"database: {target.kind} ({target.name})"
        + ("" if target.kind == "postgresql" else " -- PostgreSQL unreachable, using SQLite")
        + f"; redis: {'yes' if target.redis_url else 'no (in-process counters)'}"
        + ("; rate limits on (never reached)" if args.rate_limits else ""),
        flush=True,
    )

    from idp import create_app

    app = create_app()
    started = time.monotonic()
    with app.app_context():
        manifest = database.prepare(target, users, fresh=args.fresh)
    how = "reused" if manifest["reused"] else f"seeded in {manifest['seed_seconds']} s"
    print(f"data: {users:,} users, {manifest['counts']} ({how})", flush=True)
    if args.seed_only:
        return 0
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    results = {
        "started_at": stamp,
        "scale": scale_name,
        "users": users,
        "database": target.kind,
        "redis": bool(target.redis_url),
        "machine": report.machine(),
        "gunicorn": server.settings(),
        "wrk": {"threads": 1, "seconds": args.seconds, "runs": args.runs},
        "seed": {k: manifest[k] for k in ("counts", "seed_seconds", "reused") if k in manifest},
        "only": args.only,
        "rate_limits": args.rate_limits,
        "scenarios": {},
    }
    with tempfile.TemporaryDirectory(prefix="idp-bench-") as tmp:
        srv = server.Server(env, port, Path(tmp) / "gunicorn.log")
        try:
            srv.start()
            print(f"gunicorn: {server.settings()} on {srv.url}", flush=True)
            ctx = Context(app=app, base_url=srv.url, manifest=manifest)
            prepared = {}
            with app.app_context():
                for scenario in scenarios():
                    if only is not None and scenario.name not in only:
                        continue
                    data, runner = prepare_scenario(scenario, ctx, Path(tmp))
                    results["scenarios"][scenario.name] = data
                    if runner is not None:
                        runner = settling(runner, srv.settle)
                        levels = scenario.levels or args.concurrency
                        prepared[scenario.name] = (data, runner, levels, scenario.ceiling)
                measure(prepared, args)
                results["revocation"] = revocation_checks(ctx)
            results["rss_mb"] = {str(k): round(v, 1) for k, v in srv.peak_rss_mb().items()}
        finally:
            srv.stop()
    results["elapsed_seconds"] = round(time.monotonic() - started, 1)
    report.ratios(results)
    # A 10k run is its own baseline, whether or not an older one exists.
    baseline_users = parse_scale("10k")
    baseline = results if users == baseline_users else report.latest(baseline_users, target.kind)
    results["targets"] = report.check_targets(results, baseline)
    path = report.save(results, stamp)
    if report.is_complete(results) and scale_name in SCALES:
        report.save_markdown(results)
    print()
    print(report.table(results))
    print()
    print(report.targets_table(results["targets"]))
    print(f"\npeak RSS per worker (MiB): {results['rss_mb']}")
    print(f"results: {path.relative_to(PROJECT_ROOT)}  ({results['elapsed_seconds']} s)")
    return 0


def revocation_checks(ctx: Context) -> list[dict]:
    """Revoke what the scenarios used and prove every worker refuses it on the next request."""
    from bench.flows import REVOCATION_CHECKS

    checks = []
    for check in REVOCATION_CHECKS:
        try:
            checks.append(check(ctx))
        except NotAvailable:
            continue
        except Exception as exc:  # a broken check is reported, the figures are kept
            from idp.extensions import db

            db.session.rollback()
            checks.append({"what": check.__name__, "ok": False, "detail": f"failed: {exc!r:.300}"})
    return checks


if __name__ == "__main__":
    sys.exit(main())
