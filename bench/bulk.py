"""Bulk loading for the seeder: ``COPY`` on PostgreSQL, batched ``executemany`` elsewhere."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa


class BulkWriter:
    """Append rows to a table: ``COPY`` on PostgreSQL, batched ``executemany`` elsewhere."""

    BATCH = 5_000

    def __init__(self, connection: sa.Connection):
        self.connection = connection
        self.postgres = connection.dialect.name == "postgresql"

    def write(self, table: str, columns: list[str], rows: Iterable[tuple]) -> int:
        """Write ``rows`` (tuples in ``columns`` order) and return how many were written."""
        if self.postgres:
            return self._copy(table, columns, rows)
        return self._executemany(table, columns, rows)

    def _copy(self, table: str, columns: list[str], rows: Iterable[tuple]) -> int:
        raw = self.connection.connection.driver_connection
        count = 0
        names = ", ".join(f'"{c}"' for c in columns)
        with raw.cursor() as cursor:
            # Rows are consistent by construction: skip the per-row foreign-key
            # triggers, and build secondary indexes once after the load instead
            # of row by row (both only for this transaction; constraints stay).
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
            definitions = self._drop_secondary_indexes(cursor, table)
            with cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
            for definition in definitions:
                cursor.execute(definition)
        return count

    @staticmethod
    def _drop_secondary_indexes(cursor, table: str) -> list[str]:
        """Drop the table's indexes that back no constraint; return their definitions."""
        cursor.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s"
            " AND i.schemaname = current_schema() AND NOT EXISTS ("
            " SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            (table,),
        )
        found = cursor.fetchall()
        for name, _ in found:
            cursor.execute(f'DROP INDEX "{name}"')
        return [definition for _, definition in found]

    def _executemany(self, table: str, columns: list[str], rows: Iterable[tuple]) -> int:
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        sql = f'INSERT INTO "{table}" ({names}) VALUES ({marks})'  # noqa: S608 (names are ours)
        count = 0
        batch: list[tuple] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= self.BATCH:
                self.connection.exec_driver_sql(sql, batch)
                count += len(batch)
                batch = []
        if batch:
            self.connection.exec_driver_sql(sql, batch)
            count += len(batch)
        return count
