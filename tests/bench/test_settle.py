"""No benchmark run starts while the workers still serve the run before it."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from bench import run, server


class OneAtATime(BaseHTTPRequestHandler):
    """Serves one request at a time, as one sync worker does: ``/slow`` takes a while."""

    slow_seconds = 0.8
    healthz_seconds = 0.0
    finished: list[tuple[str, float]]

    def do_GET(self):  # noqa: N802 (http.server's naming)
        time.sleep(self.slow_seconds if self.path == "/slow" else self.healthz_seconds)
        self.finished.append((self.path, time.monotonic()))
        try:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
        except OSError:
            pass  # the client left, as wrk does at its deadline

    def log_message(self, *args):
        pass


@pytest.fixture
def one_at_a_time():
    finished: list[tuple[str, float]] = []
    handler = type("Handler", (OneAtATime,), {"finished": finished})
    httpd = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, handler, finished
    httpd.shutdown()
    httpd.server_close()


def _leave_behind(port: int, path: str) -> None:
    """Send a request and hang up without waiting, like wrk when its time is up."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())


def test_settling_waits_for_the_requests_the_last_run_left_queued(one_at_a_time):
    httpd, _, finished = one_at_a_time
    _leave_behind(httpd.server_port, "/slow")
    url = f"http://127.0.0.1:{httpd.server_port}"
    waited = server.settle(url, prompt=0.2, in_a_row=2, limit=10)
    settled_at = time.monotonic()
    slow_done = [at for path, at in finished if path == "/slow"]
    assert slow_done and slow_done[0] <= settled_at
    assert waited >= 0.5


def test_an_idle_service_settles_at_once(one_at_a_time):
    httpd, _, finished = one_at_a_time
    waited = server.settle(f"http://127.0.0.1:{httpd.server_port}", prompt=0.2, in_a_row=3)
    assert waited < 0.5
    assert [path for path, _ in finished] == ["/healthz"] * 3


def test_settling_gives_up_at_its_limit(one_at_a_time):
    httpd, handler, _ = one_at_a_time
    handler.healthz_seconds = 0.15  # never prompt
    started = time.monotonic()
    server.settle(f"http://127.0.0.1:{httpd.server_port}", prompt=0.05, limit=0.6)
    assert 0.6 <= time.monotonic() - started < 2


def test_settling_gives_up_on_a_service_that_is_gone():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens once closed
    started = time.monotonic()
    server.settle(f"http://127.0.0.1:{port}", limit=0.3)
    assert time.monotonic() - started < 1.5


def test_every_run_is_followed_by_settling_and_says_how_long_it_took():
    events = []

    def runner(level, seconds):
        events.append(("run", level, seconds))
        return {"requests": 10}

    def settle():
        events.append(("settle",))
        return 0.25

    figures = run.settling(runner, settle)(8, 2)
    assert events == [("run", 8, 2), ("settle",)]
    assert figures == {"requests": 10, "settle_s": 0.25}


def test_only_runs_the_named_scenarios_and_their_ceilings():
    chosen = run.selected(run.scenarios(), "authorization_code,password_login")
    assert chosen == {
        "authorization_code",
        "ceiling_round_trip",
        "password_login",
        "ceiling_argon2",
    }
    assert run.selected(run.scenarios(), None) is None


def test_only_refuses_a_name_it_does_not_know():
    with pytest.raises(SystemExit, match="unknown scenario client_credential"):
        run.selected(run.scenarios(), "client_credential")
