"""``make run``'s gunicorn writes no link secret into its access log."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECRET = "LinkSecretNeverLogged0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve_as_make_run(tmp_path: Path, port: int, log: Path) -> subprocess.Popen:
    """gunicorn with the Makefile's own arguments, from the project root."""
    line = re.search(r"\$\(BIN\)/gunicorn\s+(.+)$", (ROOT / "Makefile").read_text(), re.M)
    arguments = line.group(1).replace("$(WORKERS)", "1").replace("$(HOST)", "127.0.0.1")
    arguments = arguments.replace("$(PORT)", str(port))
    env = dict(
        os.environ,
        IDP_INSTANCE_PATH=str(tmp_path / "instance"),
        IDP_DATABASE_URL=f"sqlite:///{tmp_path / 'idp.sqlite3'}",
        IDP_ISSUER=f"http://127.0.0.1:{port}",
    )
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603 (our own gunicorn, the Makefile's arguments)
            [gunicorn, *shlex.split(arguments)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_the_access_log_names_paths_without_their_link_secrets(tmp_path):
    port, log = _free_port(), tmp_path / "gunicorn.log"
    server = _serve_as_make_run(tmp_path, port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        paths = ("/password-reset/confirm", "/signup/verify", "/invitations/accept")
        for path in paths:
            with contextlib.suppress(OSError):  # any answer: only the log matters here
                urllib.request.urlopen(f"{base}{path}?token={SECRET}", timeout=5)
    finally:
        server.terminate()
        server.wait(10)
    logged = log.read_text()
    assert all(f"GET {path} HTTP/1.1" in logged for path in paths), logged[-2000:]
    assert SECRET not in logged
