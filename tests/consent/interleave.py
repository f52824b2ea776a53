"""Forcing one interleaving of two transactions, for the grant and key race tests.

A request is paused between its check and its write (``pause_before``) while a
competing change runs in its own thread, application context and database
connection. The pause ends when the competitor has committed, or, on
PostgreSQL, as soon as it waits for a row lock the paused request holds: then
the request goes on and commits, and the competitor finishes after it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from idp.extensions import db

SETTLE_SECONDS = 10


class Competitor:
    """A change run on its own connection while the tested request is paused."""

    def __init__(self, app, change: Callable[[], Any]):
        self.app, self.change = app, change
        self.result: Any = None
        self.error: Exception | None = None
        self._pid: int | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.app.app_context():
            try:
                if db.engine.dialect.name == "postgresql":
                    # The session keeps this connection for the change's transaction.
                    self._pid = db.session.scalar(sa.text("SELECT pg_backend_pid()"))
                self._ready.set()
                self.result = self.change()
            except Exception as exc:  # noqa: BLE001 - handed to the test by finish()
                self.error = exc
                db.session.rollback()
            finally:
                self._ready.set()
                db.session.remove()

    def start_and_settle(self) -> str:
        """Start; return ``"done"`` once it finished, ``"waiting"`` once it waits for a lock."""
        self._thread.start()
        self._ready.wait(SETTLE_SECONDS)
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                return "done"
            if self._waits_for_a_lock():
                return "waiting"
            time.sleep(0.005)
        raise AssertionError("the competing change neither finished nor waited for a lock")

    def _waits_for_a_lock(self) -> bool:
        """Whether a connection of this database waits for a lock.

        The paused request runs nothing, so a waiting connection is the
        competitor's: its own, or another one if it committed on the way (the
        session then takes whichever connection the pool hands it).
        """
        if self._pid is None:
            return False
        with db.engine.connect() as conn:
            return bool(
                conn.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                    )
                )
            )

    def finish(self) -> Any:
        """Wait for the change to end; its result, or raise what it raised."""
        self._thread.join(SETTLE_SECONDS * 2)
        assert not self._thread.is_alive(), "the competing change never ended"
        if self.error is not None:
            raise self.error
        return self.result


def pause_before(monkeypatch, owner, name: str, competitor: Competitor) -> None:
    """Run ``competitor`` (until settled) the first time ``owner.name`` is called."""
    real = getattr(owner, name)
    fired: list[bool] = []

    def paused(*args, **kwargs):
        if not fired:
            fired.append(True)
            competitor.start_and_settle()
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, paused)
