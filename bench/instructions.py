"""``python -m bench.instructions --scale 10k``: user-space instructions per request.

Wall-clock figures on a shared machine move too much to judge a small change
by. This replays each scenario's requests (the ones wrk sends) in-process into
the WSGI application under ``valgrind --tool=callgrind`` and counts the
instructions of ``--requests`` of them after a warm-up: a count the
neighbours' load does not move, within about 1% from run to run. System
calls and waits for PostgreSQL or Redis are not in it, and gunicorn's own
share is not either. The database
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
from urllib.parse import urlencode

from bench import database, driver
from bench.flows import (
    EMPTY_FLOW_PATHS,
    LOGIN_PATH,
    ROUND_TRIP_CLIENT,
    login_requests,
    round_trip_user,
)
from bench.run import INSTANCE, bench_env, scenarios
from bench.scenarios import FORM, Context
from bench.seed import BENCH_PASSWORD, BENCH_REDIRECT_URI, parse_scale

# Every scenario, each replayed in-process; the two flows count whole round trips.
SCENARIOS = (
    "ceiling_json",
    "ceiling_sign",
    "apikey_check",
    "introspection",
    "client_credentials",
    "ceiling_argon2",
    "password_login",
    "ceiling_round_trip",
    "authorization_code",
)
FLOWS = {"ceiling_round_trip": EMPTY_FLOW_PATHS, "authorization_code": ()}
PORT = 8765  # only names the issuer and the Host header; nothing listens
# Warm-up and measured requests per scenario: an argon2id check or a round trip costs
# tens of millions of instructions, so fewer of them give as steady a count.
WARMUP = {"default": 300, "slow": 30}
MEASURED = {"default": 200, "slow": 20}
SLOW = frozenset({"ceiling_argon2", "password_login", *FLOWS})

_MARKS_C = """#include <valgrind/callgrind.h>
void marks_start(void) { CALLGRIND_START_INSTRUMENTATION; CALLGRIND_ZERO_STATS; }
void marks_stop(void) { CALLGRIND_DUMP_STATS; CALLGRIND_STOP_INSTRUMENTATION; }
"""
_TOTALS = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def _kind(name: str) -> str:
    return "slow" if name in SLOW else "default"


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


class Replay:
    """Requests sent straight into the WSGI application, as gunicorn would hand them over."""

    def __init__(self, app):
        self.app = app
        self.base_url = f"http://127.0.0.1:{PORT}"

    def environ(self, method: str, path: str, headers: dict, body: str = "") -> tuple[dict, bytes]:
        """A request's WSGI environ (to copy per call) and its body."""
        from werkzeug.test import EnvironBuilder

        path, _, query = path.partition("?")
        data = body.encode()
        builder = EnvironBuilder(
            path=path,
            query_string=query,
            method=method,
            headers=headers,
            data=data,
            base_url=self.base_url,
        )
        return builder.get_environ(), data

    def send(self, environ: dict, body: bytes) -> tuple[int, dict, bytes]:
        """Status, headers (the last of each name) and body of one request."""
        answer = []

        def start_response(status, headers, exc_info=None):
            answer[:] = status, headers

        result = self.app.wsgi_app(
            dict(environ, **{"wsgi.input": io.BytesIO(body)}), start_response
        )
        try:
            data = b"".join(result)
        finally:
            getattr(result, "close", lambda: None)()
        status, headers = answer
        return int(status.split()[0]), dict(headers), data

    def request(self, method: str, path: str, headers: dict | None = None, body: str = ""):
        """Build and send one request."""
        return self.send(*self.environ(method, path, headers or {}, body))

    def login_page(self) -> tuple[str, str]:
        """The Client Hub login page's session cookie and CSRF token."""
        status, headers, body = self.request("GET", LOGIN_PATH)
        match = driver.CSRF.search(body.decode())
        if status != 200 or match is None:
            raise SystemExit(f"the login page answered {status}")
        return _cookie(headers), match.group(1)

    def logged_in(self, email: str) -> str:
        """The session cookie of ``email`` after a password login."""
        cookie, csrf = self.login_page()
        form = urlencode({"email": email, "password": BENCH_PASSWORD, "csrf_token": csrf})
        status, headers, _ = self.request("POST", LOGIN_PATH, FORM | {"Cookie": cookie}, form)
        if status != 302:
            raise SystemExit(f"the login of {email} answered {status}")
        return _cookie(headers)


def _cookie(headers: dict) -> str:
    return headers.get("Set-Cookie", "").split(";", 1)[0]


def wsgi_calls(app, manifest: dict, name: str, round_trips: int = 64):
    """A function replaying the ``i``-th request (or round trip) of scenario ``name``.

    It returns the answer's ``(status, body)``, which ``outcome(name)`` judges
    once the counting has stopped. A flow ignores ``i``: each of its
    ``round_trips`` calls starts a new authorization, with its own PKCE pair
    and nonce (a nonce used twice is refused).
    """
    replay = Replay(app)
    if name in FLOWS:
        return _round_trips(replay, manifest, FLOWS[name], round_trips)
    with app.app_context():
        if name == "password_login":
            requests = login_requests(manifest, *replay.login_page())
        else:
            ctx = Context(app=app, base_url=replay.base_url, manifest=manifest)
            requests = _scenario(name).build(ctx)
        prepared = [replay.environ(r.method, r.path, r.headers, r.body) for r in requests]

    def call(i: int) -> tuple[int, bytes]:
        status, _, data = replay.send(*prepared[i % len(prepared)])
        return status, data

    return call


def outcome(name: str):
    """Whether an answer of scenario ``name`` (``status, body``) is the scenario's outcome."""
    if name in FLOWS:
        return _issued
    return _scenario(name).expect


def _scenario(name: str):
    return {s.name: s for s in scenarios()}[name]


def _issued(status: int, body: bytes) -> bool:
    return status == 200 and b"access_token" in body


def _round_trips(replay: Replay, manifest: dict, paths: tuple[str, ...], count: int):
    """authorize -> code -> token with a logged-in session, as the benchmark's clients do.

    Answers with the token request's status and body, or the authorize's when it
    gave no code.
    """
    authorize_path, token_path = paths or (driver.AUTHORIZE_PATH, driver.TOKEN_PATH)
    with replay.app.app_context():
        jar = {"HTTP_COOKIE": replay.logged_in(round_trip_user(manifest, 0))}
    client, redirect_uri = ROUND_TRIP_CLIENT, BENCH_REDIRECT_URI
    pending = []
    for _ in range(count):
        params, verifier = driver.authorization_query(client, redirect_uri)
        query = f"{authorize_path}?{urlencode(params)}"
        pending.append((replay.environ("GET", query, {}), verifier))
    pending.reverse()
    exchange, _ = replay.environ("POST", token_path, FORM)

    def call(i: int) -> tuple[int, bytes]:
        (authorize, body), verifier = pending.pop()  # each its own code, PKCE pair and nonce
        # With the cookie the service sent last, as a browser keeps it (it slides once a minute).
        status, headers, data = replay.send(dict(authorize, **jar), body)
        if "Set-Cookie" in headers:
            jar["HTTP_COOKIE"] = _cookie(headers)
        code = driver.code_of(headers.get("Location", ""))
        if code is None:
            return status, data
        form = urlencode(driver.token_form(code, client, redirect_uri, verifier)).encode()
        status, _, data = replay.send(dict(exchange, CONTENT_LENGTH=str(len(form))), form)
        return status, data

    return call


def _child(args, target: database.Target) -> int:
    """Inside valgrind: replay, counting only the measured requests, every one a success."""
    import ctypes

    from idp import create_app

    marks = ctypes.CDLL(str(args.marks))
    app = create_app()
    warmup = WARMUP[_kind(args.child)]
    manifest = _manifest(app, target, args.scale)
    call = wsgi_calls(app, manifest, args.child, round_trips=warmup + args.requests)
    for i in range(warmup):
        call(i)
    marks.marks_start()
    # The same requests again (caches warm), but a round trip is always a new one.
    answers = [call(i) for i in range(args.requests)]
    marks.marks_stop()
    succeeded = outcome(args.child)
    for status, body in answers:
        if not succeeded(status, body):
            raise SystemExit(f"{args.child}: a measured request answered {status}: {body[:400]!r}")
    return 0


def _manifest(app, target: database.Target, scale: str) -> dict:
    with app.app_context():
        return database.prepare(target, parse_scale(scale), fresh=False)


def main(argv: list[str] | None = None) -> int:
    """Count each scenario's instructions per request and print them."""
    parser = argparse.ArgumentParser(prog="bench.instructions", description=__doc__)
    parser.add_argument("--scale", default="10k", help="10k, 100k, 1m or a user count")
    parser.add_argument(
        "--requests", type=int, help="measured requests per scenario (default 200; 20 if slow)"
    )
    parser.add_argument("--only", help="comma-separated scenario names")
    parser.add_argument(
        "--rate-limits",
        action="store_true",
        help="login and token rate limits on (never reached), to count their cost",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--marks", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    INSTANCE.mkdir(parents=True, exist_ok=True)
    target = database.choose(args.scale, INSTANCE)
    os.environ.update(bench_env(target, PORT, rate_limits=args.rate_limits))
    if args.child:
        return _child(args, target)
    if shutil.which("valgrind") is None:
        raise SystemExit("bench.instructions needs valgrind (apt-get install valgrind)")
    from idp import create_app

    _manifest(create_app(), target, args.scale)  # seed before valgrind slows everything down
    marks = marks_library(INSTANCE)
    names = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = sorted(set(names) - set(SCENARIOS))
    if unknown:
        raise SystemExit(f"--only: unknown scenario {', '.join(unknown)}; choose from {SCENARIOS}")
    print(
        f"database: {target.kind} ({target.name}); redis: {'yes' if target.redis_url else 'no'}"
        + ("; rate limits on (never reached)" if args.rate_limits else "")
    )
    ceilings = {s.name: s.ceiling for s in scenarios()}
    totals = {}
    for name in names:
        requests = args.requests or MEASURED[_kind(name)]
        totals[name] = _count(name, args.scale, requests, marks, args.rate_limits) / requests
        unit = "round trip" if name in FLOWS else "request"
        line = f"  {name:<20} {totals[name] / 1000:>9,.0f} k instructions per {unit}"
        ceiling = "ceiling_round_trip" if name == "authorization_code" else ceilings[name]
        if ceiling in totals:
            line += f"  ({(totals[name] - totals[ceiling]) / 1000:,.0f} k beyond {ceiling})"
        print(line, flush=True)
    return 0


def _count(name: str, scale: str, requests: int, marks: Path, rate_limits: bool = False) -> int:
    """The instructions of ``requests`` replays of ``name``, counted under callgrind."""
    with tempfile.TemporaryDirectory(prefix="idp-callgrind-") as tmp:
        command = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no",
            f"--callgrind-out-file={tmp}/out.%p", sys.executable, "-m", "bench.instructions",
            "--scale", scale, "--requests", str(requests), "--child", name, "--marks", str(marks),
        ] + (["--rate-limits"] if rate_limits else [])  # fmt: skip
        run = subprocess.run(command, capture_output=True, text=True)  # noqa: S603
        if run.returncode != 0:
            print(run.stderr[-2000:], file=sys.stderr)
            raise SystemExit(f"{name}: the replay under valgrind failed")
        # The marks' dump is part 1 (``out.<pid>.1``); the file written at exit is not.
        dumps = sorted(Path(tmp).glob("out.*.1"))
        if not dumps:
            raise SystemExit(f"{name}: callgrind wrote no dump of the measured requests")
        return instructions_in(dumps[0].read_text())


if __name__ == "__main__":
    sys.exit(main())
