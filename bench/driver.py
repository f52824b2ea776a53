"""A browser-like client for the authorization-code round trip, one process per client.

Each process logs in once (a live session cookie), then repeats authorize ->
code -> token for the run's length and records each round trip's time. Only
the standard library is imported here, so the processes start fast.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import multiprocessing
import re
import secrets
import threading
import time
from urllib.parse import parse_qs, urlencode, urlsplit

CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


class Browser:
    """One keep-alive connection with a cookie jar of one cookie (the session)."""

    def __init__(self, host: str, port: int):
        self.conn = http.client.HTTPConnection(host, port, timeout=30)
        self.cookies: dict[str, str] = {}

    def reconnect(self) -> None:
        """A new connection, same cookies."""
        self.conn.close()
        self.conn = http.client.HTTPConnection(self.conn.host, self.conn.port, timeout=30)

    def request(self, method: str, path: str, form: dict | None = None, *, cookies: bool = True):
        """Send a request (with the session cookie unless ``cookies`` is false).

        Returns (status, headers, body).
        """
        headers = {}
        if cookies and self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        for header, value in resp.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        return resp.status, resp, data


def login_form(browser: Browser, path: str) -> str:
    """GET the login page and return its CSRF token."""
    status, _, body = browser.request("GET", path)
    match = CSRF.search(body.decode("utf-8", "replace"))
    if status != 200 or match is None:
        raise RuntimeError(f"GET {path} answered {status} without a CSRF token")
    return match.group(1)


def log_in(browser: Browser, hub: str, email: str, password: str) -> None:
    """Sign in through the login page (form post with its CSRF token)."""
    path = f"/login?hub={hub}"
    token = login_form(browser, path)
    form = {"email": email, "password": password, "csrf_token": token}
    status, _, body = browser.request("POST", path, form)
    if status != 302:
        raise RuntimeError(f"login of {email} answered {status}: {body[:200]!r}")


AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"


def authorization_query(client_id: str, redirect_uri: str) -> tuple[dict, str]:
    """A code request's parameters with a fresh PKCE S256 pair, and its verifier."""
    verifier = secrets.token_urlsafe(32)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": "openid",
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(16),  # as a hub's OpenID Connect login sends one
        "code_challenge": challenge.decode().rstrip("="),
        "code_challenge_method": "S256",
    }
    return params, verifier


def code_of(location: str) -> str | None:
    """The ``code`` of an authorization response's redirect, if any."""
    return parse_qs(urlsplit(location).query).get("code", [None])[0]


def token_form(code: str, client_id: str, redirect_uri: str, verifier: str) -> dict:
    """The code exchange of a public client (RFC 6749 4.1.3 with the PKCE verifier)."""
    return {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "code_verifier": verifier,
    }


def round_trip(
    browser: Browser,
    client_id: str,
    redirect_uri: str,
    authorize_path: str = AUTHORIZE_PATH,
    token_path: str = TOKEN_PATH,
) -> None:
    """authorize (live session) -> code -> token; raises unless tokens come back."""
    params, verifier = authorization_query(client_id, redirect_uri)
    status, resp, body = browser.request("GET", f"{authorize_path}?{urlencode(params)}")
    location = resp.getheader("Location", "")
    code = code_of(location)
    if status != 302 or code is None:
        raise RuntimeError(f"authorize answered {status} -> {location[:120]!r} {body[:200]!r}")
    form = token_form(code, client_id, redirect_uri, verifier)
    # The hub's code (its backend, or its page's cross-origin fetch) redeems the code:
    # a request that carries no idp session cookie.
    status, _, body = browser.request("POST", token_path, form, cookies=False)
    if status != 200 or b"access_token" not in body:
        raise RuntimeError(f"token answered {status}: {body[:200]!r}")


def _client(job: dict, ready, results) -> None:
    parts = urlsplit(job["base_url"])
    browser = Browser(parts.hostname, parts.port)
    try:
        log_in(browser, job["hub"], job["email"], job["password"])
    except (RuntimeError, OSError, http.client.HTTPException) as exc:
        ready.abort()
        results.put({"latencies": [], "errors": 1, "last_error": str(exc)})
        return
    try:
        ready.wait(timeout=120)
    except threading.BrokenBarrierError:
        results.put({"latencies": [], "errors": 0, "last_error": "another client could not log in"})
        return
    # The others' logins may have outlasted the server's keep-alive: start afresh.
    browser.reconnect()
    latencies, errors, last_error = [], 0, ""
    deadline = time.perf_counter() + job["seconds"]
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        try:
            round_trip(browser, job["client_id"], job["redirect_uri"], *job.get("paths", ()))
        except (RuntimeError, OSError, http.client.HTTPException) as exc:
            errors += 1
            last_error = str(exc)
            browser = Browser(parts.hostname, parts.port)
            log_in(browser, job["hub"], job["email"], job["password"])
            continue
        latencies.append(time.perf_counter() - started)
    results.put({"latencies": latencies, "errors": errors, "last_error": last_error})


def _percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))
    return ordered[index]


def run(jobs: list[dict], seconds: float) -> dict:
    """Run one process per job for ``seconds``; figures shaped like ``bench.wrk.run``'s.

    Every client logs in first; the clock starts when all of them are ready.
    Processes are forked (nothing is re-imported) and use no inherited connection.
    """
    context = multiprocessing.get_context("fork")
    ready = context.Barrier(len(jobs))
    results = context.Queue()
    processes = [
        context.Process(target=_client, args=(job | {"seconds": seconds}, ready, results))
        for job in jobs
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=seconds + 120) for _ in processes]
    for process in processes:
        process.join(timeout=10)
    latencies = [lat for o in outcomes for lat in o["latencies"]]
    errors = sum(o["errors"] for o in outcomes)
    return {
        "requests": len(latencies),
        "duration_us": int(seconds * 1e6),
        "errors": {"connect": 0, "read": 0, "write": 0, "status": errors, "timeout": 0},
        "latency_us": {
            "mean": 1e6 * sum(latencies) / len(latencies) if latencies else 0.0,
            "p50": int(1e6 * _percentile(latencies, 50)),
            "p90": int(1e6 * _percentile(latencies, 90)),
            "p99": int(1e6 * _percentile(latencies, 99)),
            "max": int(1e6 * max(latencies, default=0)),
        },
        "rps": len(latencies) / seconds,
        "last_error": next((o["last_error"] for o in outcomes if o["last_error"]), ""),
    }
