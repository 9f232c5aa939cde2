"""A portable dump of the whole catalog (every table, as gzipped JSON lines) and its load into an
empty catalog of either backend: what ``lloco backup`` / ``lloco restore`` carry.

The dump is read from one consistent snapshot: on SQLite a copy made with SQLite's online backup
API (one read transaction, while writers go on), elsewhere a REPEATABLE READ transaction. Tables
are reflected from the database itself, so a dump records the schema revision it was taken at; a
load creates that revision's schema, inserts the rows with their ids, and then upgrades to this
code's head, so a backup made by an older lloco restores into a newer one.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, MetaData, func, select, text

from indexing.catalog import known_revisions, make_engine, upgrade
from model.errors import InvalidInputError

VERSION_TABLE = "alembic_version"
BATCH = 1000


def _encode(value: Any) -> Any:
    """A JSON-safe form of a column value; bytes and datetimes are tagged so they load back as such."""
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        (tag, raw), = value.items()
        if tag == "$bytes":
            return base64.b64decode(raw)
        if tag == "$datetime":
            return datetime.fromisoformat(raw)
        if tag == "$date":
            return date.fromisoformat(raw)
    return value


@contextlib.contextmanager
def snapshot(url: str) -> Iterator[Connection]:
    """A connection that sees the catalog at ``url`` as of one instant, for as long as it is open."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        with tempfile.TemporaryDirectory(prefix="lloco-snapshot-") as scratch:
            copy = Path(scratch) / "catalog.sqlite"
            source, target = sqlite3.connect(path, timeout=30), sqlite3.connect(copy)
            try:
                source.backup(target)  # all pages in one step: one read transaction, a consistent copy
            finally:
                source.close()
                target.close()
            engine = make_engine(f"sqlite:///{copy}")
            try:
                with engine.connect() as connection:
                    yield connection
            finally:
                engine.dispose()
        return
    engine = make_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as connection, connection.begin():
            yield connection
    finally:
        engine.dispose()


def revision_of(connection: Connection) -> str | None:
    meta = MetaData()
    meta.reflect(connection, only=lambda name, _m: name == VERSION_TABLE)
    if VERSION_TABLE not in meta.tables:
        return None
    return connection.scalar(select(meta.tables[VERSION_TABLE].c.version_num))


def dump(connection: Connection, folder: Path) -> tuple[str, dict[str, int]]:
    """Write every table of the catalog behind ``connection`` to ``folder/<table>.jsonl.gz``; return
    the schema revision and the rows per table."""
    revision = revision_of(connection)
    if revision is None:
        raise InvalidInputError("the catalog has no schema yet: nothing to back up")
    meta = MetaData()
    meta.reflect(connection)
    folder.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for table in meta.sorted_tables:
        if table.name == VERSION_TABLE:
            continue
        order = list(table.primary_key.columns) or list(table.columns)
        n = 0
        with gzip.open(folder / f"{table.name}.jsonl.gz", "wt", encoding="utf-8") as fh:
            for row in connection.execution_options(yield_per=BATCH).execute(select(table).order_by(*order)).mappings():
                fh.write(json.dumps({k: _encode(v) for k, v in row.items()}, ensure_ascii=False) + "\n")
                n += 1
        counts[table.name] = n
    return revision, counts


def stored_rows(engine: Engine) -> dict[str, int]:
    """Rows per non-empty table of the catalog at ``engine`` (empty: nothing would be overwritten)."""
    meta = MetaData()
    with engine.connect() as connection:
        meta.reflect(connection)
        counts = {t.name: connection.scalar(select(func.count()).select_from(t)) for t in meta.sorted_tables
                  if t.name != VERSION_TABLE}
    return {name: n for name, n in counts.items() if n}


def ensure_empty(engine: Engine) -> None:
    """Refuse a catalog that holds any row: a restore never overwrites what is stored."""
    if held := stored_rows(engine):
        raise InvalidInputError(f"the target catalog is not empty ({', '.join(f'{n} {t}' for t, n in held.items())}): "
                                "restore into an empty home or database; nothing was changed")


def _drop_all(engine: Engine) -> None:
    meta = MetaData()
    with engine.begin() as connection:
        meta.reflect(connection)
        meta.drop_all(connection)


def load(url: str, folder: Path, revision: str, counts: dict[str, int], *,
         rewrite: Callable[[Any], Any] = lambda v: v) -> None:
    """Load a dump into the *empty* catalog at ``url``: the schema at ``revision``, every row with its
    id (``rewrite`` applied to each value), then upgraded to head. If anything fails the catalog is
    left empty again, as it was."""
    revisions = known_revisions()
    if revision not in revisions:
        raise InvalidInputError(f"the backup's catalog is at schema revision {revision}, which this lloco does not "
                                f"know (it knows {revisions[0]}..{revisions[-1]}): restore it with a newer lloco")
    engine = make_engine(url)
    try:
        ensure_empty(engine)
        _drop_all(engine)  # empty tables at whatever revision: start from nothing
        try:
            upgrade(engine, revision)
            meta = MetaData()
            with engine.begin() as connection:
                meta.reflect(connection)
                for table in meta.sorted_tables:
                    if table.name == VERSION_TABLE or not counts.get(table.name):
                        continue
                    missing = {k for k in _first_row(folder, table.name)} - set(table.columns.keys())
                    if missing:
                        raise InvalidInputError(f"backup damaged: table {table.name} has columns {sorted(missing)} "
                                                f"that schema revision {revision} does not")
                    for batch in _rows(folder, table.name, rewrite):
                        connection.execute(table.insert(), batch)
                    loaded = connection.scalar(select(func.count()).select_from(table))
                    if loaded != counts[table.name]:
                        raise InvalidInputError(f"backup damaged: table {table.name} should hold {counts[table.name]} "
                                                f"rows, its file holds {loaded}")
                if engine.dialect.name == "postgresql":
                    _reset_sequences(connection, meta)
            upgrade(engine)
        except BaseException:
            _drop_all(engine)
            raise
    finally:
        engine.dispose()


def _first_row(folder: Path, table: str) -> dict[str, Any]:
    with gzip.open(folder / f"{table}.jsonl.gz", "rt", encoding="utf-8") as fh:
        line = fh.readline()
    return json.loads(line) if line else {}


def _rows(folder: Path, table: str, rewrite: Callable[[Any], Any]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    with gzip.open(folder / f"{table}.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            batch.append({k: rewrite(_decode(v)) for k, v in json.loads(line).items()})
            if len(batch) >= BATCH:
                yield batch
                batch = []
    if batch:
        yield batch


def _reset_sequences(connection: Connection, meta: MetaData) -> None:
    """Rows were inserted with their ids: move each id sequence past the highest, so new rows don't collide."""
    for table in meta.sorted_tables:
        if "id" in table.columns and table.name != VERSION_TABLE:
            connection.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608 - reflected names
                                    f"COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {table.name}"))
