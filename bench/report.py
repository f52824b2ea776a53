"""Medians, ratios against the ceilings, the performance targets, the table and the JSON file."""

from __future__ import annotations

import json
import os
import platform
import statistics
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# (scenario, ceiling or None, what is compared, threshold, concurrency or None = every level)
TARGETS = [
    ("client_credentials", "ceiling_sign", "rps_ratio", 0.8, None),
    ("introspection", "ceiling_json", "rps_ratio", 0.7, None),
    ("apikey_check", "ceiling_json", "rps_ratio", 0.7, None),
    ("password_login", "ceiling_argon2", "rps_ratio", 0.8, None),
    ("authorization_code", "ceiling_round_trip", "p99_ms_max", 25.0, 8),
]
RSS_LIMIT_MB = 150.0
SCALE_RATIO = 0.9


def median_of(runs: list[dict]) -> dict:
    """Median req/s, p50 and p99 (ms) over several runs, and the errors they had."""
    return {
        "rps": round(statistics.median(r["rps"] for r in runs), 1),
        "p50_ms": round(statistics.median(r["latency_us"]["p50"] for r in runs) / 1000, 2),
        "p99_ms": round(statistics.median(r["latency_us"]["p99"] for r in runs) / 1000, 2),
        "errors": sum(sum(r["errors"].values()) for r in runs),
    }


def machine() -> dict:
    """What the figures were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        mem_kb = 0
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def ratios(results: dict) -> None:
    """Each scenario's req/s ratio to its ceiling at the same concurrency.

    The runner already set the median of run-by-run ratios where it paired
    runs; otherwise the ratio of the medians is the best available.
    """
    scenarios = results["scenarios"]
    for data in scenarios.values():
        ceiling = scenarios.get(data.get("ceiling") or "", {})
        for level, figures in data.get("levels", {}).items():
            base = ceiling.get("levels", {}).get(level)
            if "rps_ratio" not in figures and base and base["rps"]:
                figures["rps_ratio"] = round(figures["rps"] / base["rps"], 3)


def _figure(results: dict, name: str, field: str, level: str) -> float | None:
    return results["scenarios"].get(name, {}).get("levels", {}).get(level, {}).get(field)


def check_targets(results: dict, baseline: dict | None) -> list[dict]:
    """Every performance target with its measured value and whether it is met."""
    checks = []
    for name, ceiling, field, threshold, only_level in TARGETS:
        data = results["scenarios"].get(name, {})
        if not data.get("levels"):
            checks.append(
                {
                    "target": f"{name} {field}",
                    "met": None,
                    "measured": None,
                    "note": data.get("reason", "not measured"),
                }  # fmt: skip
            )
            continue
        for level in data["levels"]:
            if only_level is not None and int(level) != only_level:
                continue
            if field == "rps_ratio":
                value = _figure(results, name, "rps_ratio", level)
                met = value is not None and value >= threshold
                label = f"{name} req/s >= {threshold} x {ceiling} (c={level})"
            else:
                value = _figure(results, name, "p99_ms", level)
                met = value is not None and value <= threshold
                label = f"{name} p99 <= {threshold:g} ms (c={level})"
            check = {"target": label, "measured": value, "met": met}
            floor = _figure(results, ceiling, "p99_ms", level) if ceiling else None
            if field != "rps_ratio" and floor is not None:
                # What the same clients see when the endpoints do nothing of their own.
                check["context"] = f"{ceiling} p99 {floor:g} ms"
            checks.append(check)
    peak = max(results.get("rss_mb", {}).values(), default=None)
    checks.append(
        {
            "target": f"peak RSS per worker <= {RSS_LIMIT_MB:g} MB",
            "measured": peak,
            "met": None if peak is None else peak <= RSS_LIMIT_MB,
        }  # fmt: skip
    )
    for check in results.get("revocation", []):
        checks.append(
            {
                "target": f"revocation effective at once: {check['what']}",
                "measured": check["detail"],
                "met": check["ok"],
            }  # fmt: skip
        )
    checks.extend(_scale_checks(results, baseline))
    return checks


def _unmeasured(target: str, note: str) -> dict:
    return {"target": target, "measured": None, "met": None, "note": note}


def _scale_checks(results: dict, baseline: dict | None) -> list[dict]:
    """Each figure at this scale against the same figure at 10k (normalised by its ceiling)."""
    label = f"scale: figures >= {SCALE_RATIO} x the 10k figures"
    if baseline is None:
        return [_unmeasured(label, "no 10k result on this database to compare with")]
    if baseline.get("users") == results.get("users"):
        return [_unmeasured(label, "this run is the 10k baseline")]
    checks = []
    for name, data in results["scenarios"].items():
        if name.startswith("ceiling_"):
            continue
        for level, figures in data.get("levels", {}).items():
            before = baseline["scenarios"].get(name, {}).get("levels", {}).get(level)
            if not before:
                continue
            # Ratios to the ceiling cancel the machine's noise between the two runs.
            field = "rps_ratio" if "rps_ratio" in figures and "rps_ratio" in before else "rps"
            if not before.get(field):
                continue
            value = round(figures.get(field, 0) / before[field], 3)
            checks.append(
                {
                    "target": f"scale: {name} c={level} {field} >= {SCALE_RATIO} x 10k",
                    "measured": value,
                    "met": value >= SCALE_RATIO,
                }  # fmt: skip
            )
    return checks


def is_complete(results: dict) -> bool:
    """Every scenario ran against the real application (not ``--only``, not a variant).

    A run with rate limits on is a variant too: its figures are compared with
    a run without, never taken as the baseline or the latest sample.
    """
    return (
        not results.get("only")
        and not results.get("rate_limits")
        and results.get("gunicorn", {}).get("app") == "wsgi:app"
    )


def latest(users: int, database: str, exclude: Path | None = None) -> dict | None:
    """The newest complete run (every scenario, the real app) at ``users`` on ``database``."""
    for path in sorted(RESULTS_DIR.glob("*.json"), reverse=True):
        if exclude is not None and path == exclude:
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if is_complete(data) and data.get("users") == users and data.get("database") == database:
            return data
    return None


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def table(results: dict) -> str:
    """The figures as a fixed-width (and Markdown-compatible) table."""
    rows = [
        "| scenario | c | req/s | p50 ms | p99 ms | ratio | vs | errors |",
        "|---|--:|--:|--:|--:|--:|---|--:|",
    ]
    for data in results["scenarios"].values():
        if not data.get("levels"):
            rows.append(f"| {data['title']} | | not available | | | | | |")
            continue
        for level, f in data["levels"].items():
            rows.append(
                f"| {data['title']} | {level} | {_fmt(f['rps'])} | {_fmt(f['p50_ms'], 2)} "
                f"| {_fmt(f['p99_ms'], 2)} | {_fmt(f.get('rps_ratio'), 2)} "
                f"| {data.get('ceiling') or ''} | {f['errors']} |"
            )
    return "\n".join(rows)


def targets_table(checks: list[dict]) -> str:
    """The targets with measured values and verdicts."""
    rows = ["| target | measured | met |", "|---|--:|---|"]
    for c in checks:
        verdict = {True: "yes", False: "NO", None: "n/a"}[c["met"]]
        measured = c["measured"] if c["measured"] is not None else c.get("note", "-")
        if c.get("context"):
            measured = f"{measured} ({c['context']})"
        rows.append(f"| {c['target']} | {measured} | {verdict} |")
    return "\n".join(rows)


def save(results: dict, stamp: str) -> Path:
    """Write ``bench/results/<stamp>.json``."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{stamp}.json"
    path.write_text(json.dumps(results, indent=2))
    return path


def markdown(results: dict) -> str:
    """The run as Markdown: where it ran, the figures and the targets."""
    m, g = results["machine"], results["gunicorn"]
    seed = results.get("seed", {})
    lines = [
        f"# Benchmark at {results['scale']} ({results['users']:,} users)",
        "",
        f"- run: {results['started_at']}, {results.get('elapsed_seconds', '?')} s in all",
        f"- machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB, "
        f"Linux {m['kernel']}, Python {m['python']}",
        f"- database: {results['database']}; Redis: {'yes' if results['redis'] else 'no'}"
        + ("; rate limits on (never reached)" if results.get("rate_limits") else ""),
        f"- gunicorn: {g['workers']} {g['worker_class']} workers x {g['threads']} threads "
        f"({g.get('app', 'wsgi:app')}); wrk: 1 thread, {results['wrk']['runs']} runs of "
        f"{results['wrk']['seconds']:g} s per level, medians",
        f"- data: {seed.get('counts', {})}, "
        + ("reused" if seed.get("reused") else f"seeded in {seed.get('seed_seconds')} s"),
        "",
        table(results),
        "",
        targets_table(results.get("targets", [])),
        "",
        f"Peak RSS per worker (MiB): {results.get('rss_mb', {})}",
        "",
    ]
    return "\n".join(lines)


def save_markdown(results: dict) -> Path:
    """Write ``bench/results/latest-<scale>.md``, the committed sample of the newest run."""
    path = RESULTS_DIR / f"latest-{results['scale']}.md"
    path.write_text(markdown(results))
    return path
