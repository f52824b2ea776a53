"""An ``idp`` command whose database cannot be reached says so in one line, exit status 3.

The database is a real closed port (and, for SQLite, a file that cannot be
opened): no traceback, the host and port or the file named, never the password.
"""

from __future__ import annotations

import socket
import time

import pytest
from click.testing import CliRunner

from idp.cli import DATABASE_UNREACHABLE, main
from idp.config import DATABASE_CONNECT_TIMEOUT

REFUSED = "Connection refused"

COMMANDS = [
    ["clients", "list"],
    ["clients", "set-hub", "--hub", "partner", "--redirect-uri", "https://p.example/cb"],
    ["clients", "rotate-secret", "cl_x"],
    ["support", "create-staff", "--email", "a@support.example", "--name", "A", "--role", "admin"],
    ["keys", "list"],
    ["keys", "rotate"],
    ["sessions", "end-all", "--ticket", "INC-1", "--reason", "session store copied"],
    ["audit", "export"],
    ["purge", "--dry-run"],
    ["outbox", "list"],
    ["worker", "--once"],
    ["demo"],
    ["db", "upgrade"],
    ["db", "current"],
]


@pytest.fixture
def closed_port():
    """A port of this machine that nothing listens on: a connection to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening
        yield sock.getsockname()[1]


def run(monkeypatch, tmp_path, url: str, command: list[str]):
    monkeypatch.setenv("IDP_DATABASE_URL", url)
    monkeypatch.setenv("IDP_INSTANCE_PATH", str(tmp_path))
    return CliRunner().invoke(main, command)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_refused_connection_is_one_line_naming_host_and_port(
    monkeypatch, tmp_path, closed_port, command
):
    url = f"postgresql+psycopg://idp:hunter2-secret@127.0.0.1:{closed_port}/idp"
    result = run(monkeypatch, tmp_path, url, command)
    assert result.exit_code == DATABASE_UNREACHABLE == 3, result.output
    assert result.stdout == ""
    where = f"127.0.0.1:{closed_port}/idp"
    assert result.stderr == f"Error: cannot connect to the database at {where}: {REFUSED}\n"
    assert "hunter2" not in result.output


def test_an_unknown_host_is_named_with_the_reason(monkeypatch, tmp_path):
    url = "postgresql+psycopg://idp:hunter2-secret@db.invalid/idp"
    result = run(monkeypatch, tmp_path, url, ["clients", "list"])
    assert result.exit_code == 3, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("Error: cannot connect to the database at db.invalid:5432/idp: ")
    assert "db.invalid" in line.split(": ", 2)[2]  # the resolver's reason names the host
    assert "hunter2" not in result.output


def test_a_sqlite_file_that_cannot_be_opened_is_named(monkeypatch, tmp_path):
    path = tmp_path / "missing-directory" / "idp.sqlite3"
    result = run(monkeypatch, tmp_path, f"sqlite:///{path}", ["clients", "list"])
    assert result.exit_code == 3, result.output
    assert result.stderr == (
        f"Error: cannot connect to the database at {path}: unable to open database file\n"
    )


def test_an_error_of_a_reached_database_is_not_called_unreachable(monkeypatch, tmp_path):
    # A database without the schema is reached: its error is not about the connection.
    path = tmp_path / "empty.sqlite3"
    result = run(monkeypatch, tmp_path, f"sqlite:///{path}", ["clients", "list"])
    assert result.exit_code == 1
    assert "cannot connect" not in result.output


@pytest.fixture
def silent_port():
    """A port that takes connections and never answers, as a host dropping packets does."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)  # the kernel completes the handshake; nothing ever reads or replies
        yield sock.getsockname()[1]


def test_a_database_that_never_answers_is_given_up_after_the_connect_timeout(
    monkeypatch, tmp_path, silent_port
):
    url = f"postgresql+psycopg://idp:hunter2-secret@127.0.0.1:{silent_port}/idp"
    started = time.monotonic()
    result = run(monkeypatch, tmp_path, url, ["clients", "list"])
    waited = time.monotonic() - started
    assert result.exit_code == 3, result.output
    assert result.stderr.startswith(
        f"Error: cannot connect to the database at 127.0.0.1:{silent_port}/idp: "
    )
    assert "hunter2" not in result.output
    # The default bound, not the operating system's minutes of TCP retries.
    assert DATABASE_CONNECT_TIMEOUT <= waited < 4 * DATABASE_CONNECT_TIMEOUT
