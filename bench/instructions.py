"""``python -m bench.instructions --scale 10k``: user-space instructions per request.

Wall-clock figures on a shared machine move too much to judge a small change
by. This replays each scenario's requests (the ones wrk sends) in-process into
the WSGI application under ``valgrind --tool=callgrind`` and counts the
instructions of ``--requests`` of them after a warm-up: the same count run
after run, whatever the neighbours do. System calls and waits for PostgreSQL
or Redis are not in it, and gunicorn's own share is not either. The database
is the one ``make bench`` seeds at that scale (seeded here when missing).

Needs valgrind and a C compiler (``make bench-instructions`` installs
Debian's valgrind): a small library compiled from valgrind's ``callgrind.h``
lets the replay switch counting on and off around the measured requests.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import database
from bench.run import INSTANCE, bench_env, scenarios
from bench.scenarios import Context
from bench.seed import parse_scale

# Scenarios replayed without a server (the login and code flows need one).
SCENARIOS = ("ceiling_json", "ceiling_sign", "apikey_check", "introspection", "client_credentials")
PORT = 8765  # only names the issuer and the Host header; nothing listens
WARMUP = 300
_MARKS_C = """#include <valgrind/callgrind.h>
void marks_start(void) { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_ZERO_STATS; }
void marks_stop(void) { CALLGRIND_DUMP_STATS; CALLGRIND_STOP_INSTRUMENTATION; }
"""
_TOTALS = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def marks_library(directory: Path) -> Path:
    """The compiled start/stop marks (built once into ``directory``)."""
    library = directory / "callgrind_marks.so"
    if not library.exists():
        source = directory / "callgrind_marks.c"
        source.write_text(_MARKS_C)
        compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            raise SystemExit("bench.instructions needs a C compiler (cc or gcc)")
        subprocess.run(  # noqa: S603 (a fixed compiler command on our own file)
            [compiler, "-shared", "-fPIC", "-O2", "-o", str(library), str(source)], check=True
        )
    return library


def instructions_in(output: str) -> int:
    """The instruction total of one callgrind output file's text (0 if it has none)."""
    match = _TOTALS.search(output)
    return int(match.group(1)) if match else 0


def wsgi_calls(app, manifest: dict, name: str):
    """A function replaying the ``i``-th request of scenario ``name``; returns (status, body)."""
    from werkzeug.test import EnvironBuilder

    scenario = {s.name: s for s in scenarios()}[name]
    base_url = f"http://127.0.0.1:{PORT}"
    ctx = Context(app=app, base_url=base_url, manifest=manifest)
    prepared = []
    with app.app_context():
        for req in scenario.build(ctx):
            path, _, query = req.path.partition("?")
            body = req.body.encode()
            builder = EnvironBuilder(
                path=path,
                query_string=query,
                method=req.method,
                headers=req.headers,
                data=body,
                base_url=base_url,
            )
            prepared.append((builder.get_environ(), body))

    def call(i: int) -> tuple[int, bytes]:
        environ, body = prepared[i % len(prepared)]
        environ = dict(environ, **{"wsgi.input": io.BytesIO(body)})
        statuses = []
        result = app.wsgi_app(environ, lambda status, headers, exc=None: statuses.append(status))
        try:
            data = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
        return int(statuses[0].split()[0]), data

    return call


def _child(args, target: database.Target) -> int:
    """Inside valgrind: replay, counting only the measured requests, every one a success."""
    import ctypes

    from idp import create_app

    marks = ctypes.CDLL(str(args.marks))
    app = create_app()
    call = wsgi_calls(app, _manifest(app, target, args.scale), args.child)
    for i in range(WARMUP):
        call(i)
    marks.marks_start()
    answers = [call(i) for i in range(args.requests)]
    marks.marks_stop()
    for status, body in answers:
        if status != 200:
            raise SystemExit(f"{args.child}: request answered {status}: {body[:200]!r}")
    return 0


def _manifest(app, target: database.Target, scale: str) -> dict:
    with app.app_context():
        return database.prepare(
            target, parse_scale(scale), INSTANCE / f"{target.name}.json", fresh=False
        )


def main(argv: list[str] | None = None) -> int:
    """Count each scenario's instructions per request and print them."""
    parser = argparse.ArgumentParser(prog="bench.instructions", description=__doc__)
    parser.add_argument("--scale", default="10k", help="10k, 100k, 1m or a user count")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per scenario")
    parser.add_argument("--only", help="comma-separated scenario names")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--marks", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    INSTANCE.mkdir(parents=True, exist_ok=True)
    target = database.choose(args.scale, INSTANCE)
    os.environ.update(bench_env(target, PORT))
    if args.child:
        return _child(args, target)
    if shutil.which("valgrind") is None:
        raise SystemExit("bench.instructions needs valgrind (apt-get install valgrind)")
    from idp import create_app

    _manifest(create_app(), target, args.scale)  # seed before valgrind slows everything down
    marks = marks_library(INSTANCE)
    names = args.only.split(",") if args.only else list(SCENARIOS)
    print(f"database: {target.kind} ({target.name}); redis: {'yes' if target.redis_url else 'no'}")
    for name in names:
        with tempfile.TemporaryDirectory(prefix="idp-callgrind-") as tmp:
            command = [
                "valgrind", "--tool=callgrind", "--instr-atstart=no",
                f"--callgrind-out-file={tmp}/out.%p", sys.executable, "-m", "bench.instructions",
                "--scale", args.scale, "--requests", str(args.requests),
                "--child", name, "--marks", str(marks),
            ]  # fmt: skip
            run = subprocess.run(command, capture_output=True, text=True)  # noqa: S603
            if run.returncode != 0:
                print(run.stderr[-2000:], file=sys.stderr)
                raise SystemExit(f"{name}: the replay under valgrind failed")
            # The marks' dump is part 1 (``out.<pid>.1``); the file written at exit is not.
            dumps = sorted(Path(tmp).glob("out.*.1"))
            if not dumps:
                raise SystemExit(f"{name}: callgrind wrote no dump of the measured requests")
            total = instructions_in(dumps[0].read_text())
        print(f"  {name:<20} {total / args.requests / 1000:>9,.0f} k instructions per request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
