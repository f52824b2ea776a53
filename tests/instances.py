"""More application instances over the test database, and a way to see what they read."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import sqlalchemy as sa

from idp import create_app
from idp.extensions import db
from tests.conftest import REDIS_URL, app_config


def make_instance(database_url: str, prefix: str, redis_url: str | None = REDIS_URL, **overrides):
    """One more application process's worth of state over the test database."""
    return create_app(app_config(database_url, prefix, IDP_REDIS_URL=redis_url, **overrides))


def dispose(*instances) -> None:
    """Close the connection pools of ``instances``."""
    for instance in instances:
        with instance.app_context():
            db.engine.dispose()


class Reads:
    """Counts the SELECTs one application's engine runs against ``table``."""

    def __init__(self, application, table: str):
        self.table, self.count = table, 0
        with application.app_context():
            self.engine = db.engine

    def _seen(self, conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and f"FROM {self.table}" in statement:
            self.count += 1

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, "before_cursor_execute", self._seen)


class Partition:
    """A TCP forwarder to a real server that a test can cut and mend, as a network fault would.

    While cut, every forwarded connection is closed and new ones are closed on arrival.
    """

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.cut_off = False
        self.open: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self) -> str:
        """A redis:// URL that reaches the test Redis, database included, through this forwarder."""
        return f"redis://127.0.0.1:{self.port}{urlsplit(REDIS_URL).path}"

    def _accept(self) -> None:
        while True:
            try:
                inbound, _ = self.listener.accept()
            except OSError:
                return
            if self.cut_off:
                inbound.close()
                continue
            outbound = socket.create_connection(self.target)
            with self.lock:
                self.open += [inbound, outbound]
            for src, dst in ((inbound, outbound), (outbound, inbound)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every forwarded connection and refuse new ones."""
        self.cut_off = True
        with self.lock:
            for sock in self.open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.open.clear()

    def mend(self) -> None:
        """Forward again."""
        self.cut_off = False

    def close(self) -> None:
        """Stop listening and drop everything."""
        self.cut()
        self.listener.close()


@contextlib.contextmanager
def redis_partition() -> Iterator[Partition]:
    """A ``Partition`` in front of the test Redis, closed afterwards."""
    target = urlsplit(REDIS_URL)
    link = Partition(target.hostname, target.port or 6379)
    try:
        yield link
    finally:
        link.close()
