"""``python -m bench.buffers --scale 1m``: pages the hot paths read from outside the buffers.

A request that stays fast as the data grows finds what it reads and writes
in PostgreSQL's shared buffers; a page read from outside them (the operating
system's cache, or at worst the disk) is what grows with the tables. This
replays each scenario's requests in-process into the WSGI application, as
``bench.instructions`` does, first to warm up and then again measured, and
reports from ``pg_statio_user_tables`` and ``pg_statio_user_indexes`` the
pages read per request (or round trip), each table and index on its own line.
PostgreSQL only: SQLite has no shared buffers to count.
"""

from __future__ import annotations

import argparse
import os
import sys

from bench import database
from bench.instructions import PORT, SCENARIOS, _manifest, outcome, wsgi_calls
from bench.run import INSTANCE, bench_env

DEFAULT = ("authorization_code", "password_login", "apikey_check", "introspection")
_STATIO = """
    SELECT 'index ' || indexrelname, coalesce(idx_blks_read, 0), coalesce(idx_blks_hit, 0)
      FROM pg_statio_user_indexes
    UNION ALL
    SELECT 'table ' || relname, coalesce(heap_blks_read, 0), coalesce(heap_blks_hit, 0)
      FROM pg_statio_user_tables
"""


def statio(db) -> dict[str, tuple[int, int]]:
    """Pages read and found in the buffers so far, by table and index (this backend's included)."""
    # A backend reports its counts when idle, at most once a second; ask for it now.
    db.session.execute(db.text("SELECT pg_stat_force_next_flush()"))
    db.session.commit()
    counts = {name: (read, hit) for name, read, hit in db.session.execute(db.text(_STATIO))}
    db.session.commit()
    return counts


def per_request(
    before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]], requests: int
) -> dict[str, tuple[float, float]]:
    """Pages read and hit per request between two ``statio`` readings, for what read any."""
    rates = {}
    for name, (read, hit) in after.items():
        was_read, was_hit = before.get(name, (0, 0))
        if read - was_read or hit - was_hit:
            rates[name] = ((read - was_read) / requests, (hit - was_hit) / requests)
    return rates


def measure(app, db, manifest: dict, name: str, requests: int) -> dict[str, tuple[float, float]]:
    """Replay ``requests`` of scenario ``name`` after as many to warm up; pages per request."""
    call = wsgi_calls(app, manifest, name, round_trips=2 * requests)
    succeeded = outcome(name)
    for i in range(requests):
        call(i)
    with app.app_context():
        before = statio(db)
    answers = [call(i) for i in range(requests, 2 * requests)]
    with app.app_context():
        after = statio(db)
    failed = [status for status, body in answers if not succeeded(status, body)]
    if failed:
        raise SystemExit(f"{name}: {len(failed)} measured requests failed (status {failed[0]})")
    return per_request(before, after, requests)


def main(argv: list[str] | None = None) -> int:
    """Print the pages each scenario reads per request, from outside the buffers and in them."""
    parser = argparse.ArgumentParser(prog="bench.buffers", description=__doc__)
    parser.add_argument("--scale", default="1m", help="10k, 100k, 1m or a user count")
    parser.add_argument("--requests", type=int, default=2000, help="measured per scenario")
    parser.add_argument("--only", help=f"comma-separated scenarios (default {','.join(DEFAULT)})")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(DEFAULT)
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        raise SystemExit(f"--only: unknown scenario {', '.join(unknown)}; choose from {SCENARIOS}")
    INSTANCE.mkdir(parents=True, exist_ok=True)
    target = database.choose(args.scale, INSTANCE)
    if target.kind != "postgresql":
        raise SystemExit("bench.buffers counts PostgreSQL's buffers: no PostgreSQL is reachable")
    os.environ.update(bench_env(target, PORT))
    from idp import create_app
    from idp.extensions import db

    app = create_app()
    manifest = _manifest(app, target, args.scale)
    print(f"database: {target.name}; {args.requests} measured requests each, after as many")
    for name in names:
        rates = measure(app, db, manifest, name, args.requests)
        read = sum(r for r, _ in rates.values())
        hit = sum(h for _, h in rates.values())
        print(f"{name}: {read:.2f} pages read, {hit:.2f} found in the buffers, per request")
        for relation, (r, h) in sorted(rates.items(), key=lambda item: -item[1][0]):
            if r >= 0.01:
                print(f"    {relation:<58} {r:6.2f} read  {h:6.2f} found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
