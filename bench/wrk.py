"""Driving wrk: pre-rendered requests in, median-ready figures out."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

LUA = Path(__file__).resolve().parent / "lua" / "replay.lua"
SEPARATOR = b"\n--wrk-request--\n"


class WrkMissing(RuntimeError):
    """wrk is not installed (``make bench`` installs Debian's package when root)."""


def render(
    method: str, url: str, headers: dict[str, str] | None = None, body: bytes | str = b""
) -> bytes:
    """One complete HTTP/1.1 request, as wrk sends it verbatim."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    data = body.encode() if isinstance(body, str) else body
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if data or method in {"POST", "PUT", "PATCH"}:
        lines.append(f"Content-Length: {len(data)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def write_requests(path: Path, requests: list[bytes]) -> Path:
    """Store requests for ``replay.lua``."""
    if any(SEPARATOR in r for r in requests):
        raise ValueError("a request contains the separator line")
    path.write_bytes(SEPARATOR.join(requests))
    return path


def run(
    base_url: str, requests_file: Path, *, connections: int, seconds: float, timeout: int = 10
) -> dict:
    """Run wrk once and return its ``done`` figures plus requests per second."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise WrkMissing("wrk is not installed: apt-get install wrk")
    command = [
        wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"--timeout={timeout}s",
        "-s", str(LUA), base_url, "--", str(requests_file), str(connections),
    ]  # fmt: skip
    out = subprocess.run(  # noqa: S603 (fixed arguments, wrk from PATH)
        command, capture_output=True, text=True, check=True, timeout=seconds + 60
    )
    line = next(ln for ln in reversed(out.stdout.splitlines()) if ln.startswith("{"))
    figures = json.loads(line)
    seconds_run = figures["duration_us"] / 1e6
    errors = figures["errors"]
    figures["rps"] = (figures["requests"] - errors["status"]) / seconds_run
    return figures
