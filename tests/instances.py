"""More application instances over the test database, and a way to see what they read."""

from __future__ import annotations

import sqlalchemy as sa

from idp import create_app
from idp.extensions import db
from tests.conftest import REDIS_URL, app_config


def make_instance(database_url: str, prefix: str, redis_url: str | None = REDIS_URL):
    """One more application process's worth of state over the test database."""
    return create_app(app_config(database_url, prefix, IDP_REDIS_URL=redis_url))


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
