"""``lloco backup PATH`` / ``lloco restore PATH``: the whole home in one folder — the catalog (every
table, portable between SQLite and PostgreSQL), each collection's FAISS index, summary store and
adapters, and the kept original PDFs — with a manifest of SHA-256 checksums.

A backup is consistent while the web app, the API or CLI commands run: it holds every collection's
write lock (readers go on; writers wait) while it takes one snapshot of the catalog and copies the
files that snapshot names, and it is written under a temporary name and renamed when complete, so
a folder named PATH is always a whole backup. A restore checks every checksum before it touches
anything, only fills an empty home and catalog, and leaves them empty again if it fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexing.loaders import file_sha256
from model.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from app.config import Settings

FORMAT = "lloco-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CATALOG = "catalog"
FILES = "home"  # the home's files, by their path relative to the home
RETRIES = 3  # a rebuild that commits between the snapshot and the copy unlinks the file the snapshot names: retry


@dataclass(frozen=True)
class BackupResult:
    """What a backup holds (also what a restore put back)."""

    path: Path
    revision: str
    rows: dict[str, int]
    collections: list[str]
    files: int
    bytes: int
    external_adapters: list[str] = field(default_factory=list)  # adapter folders outside the home: not copied
    missing_originals: int = 0  # PDFs whose kept original was gone (their cited pages will not render)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path)}


def _sqlite_file(url: str) -> Path | None:
    return Path(url.split("///", 1)[-1]) if url.startswith("sqlite") else None


def backup_home(settings: Settings, path: Path) -> BackupResult:
    """Back up the home and catalog of ``settings`` into the new folder ``path``."""
    path = Path(path).expanduser().absolute()
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InvalidInputError(f"{path} already exists: back up into a new folder (nothing was overwritten)")
    url = settings.resolved_database_url
    db_file = _sqlite_file(url)
    if db_file is not None and not db_file.is_file():
        raise NotFoundError(f"no catalog at {db_file}: nothing to back up")
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    for attempt in range(1, RETRIES + 1):
        shutil.rmtree(partial, ignore_errors=True)
        try:
            result = _write_backup(settings, url, partial, path)
            break
        except FileNotFoundError:
            shutil.rmtree(partial, ignore_errors=True)
            if attempt == RETRIES:
                raise
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.rmdir()  # an empty folder the caller made
    os.replace(partial, path)
    return result


def _write_backup(settings: Settings, url: str, partial: Path, final: Path) -> BackupResult:
    from sqlalchemy import select

    from indexing.catalog import Collection, make_engine, upgrade
    from indexing.catalog_dump import dump, snapshot
    from indexing.collection_index import folder_write_lock

    engine = make_engine(url)
    try:
        upgrade(engine)  # the schema at this code's head, as the files below assume
        with engine.connect() as connection:
            ids = sorted(connection.scalars(select(Collection.id)))
    finally:
        engine.dispose()
    with contextlib.ExitStack() as locks:
        locked: set[int] = set()
        for cid in ids:  # one writer at a time holds any one lock, so taking them in order cannot deadlock
            locks.enter_context(folder_write_lock(settings.collection_dir(cid)))
            locked.add(cid)
        with snapshot(url) as connection:
            revision, rows = dump(connection, partial / CATALOG)
            plan = _files_named(settings, connection)
        for cid in sorted(set(plan.collections) - locked):  # created since the listing
            locks.enter_context(folder_write_lock(settings.collection_dir(cid)))
        copied = {}
        for rel in plan.files:
            target = partial / FILES / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(settings.home / rel, target)  # FileNotFoundError: the caller retries
            copied[str(rel)] = file_sha256(target)
    catalog = {f"{CATALOG}/{p.name}": file_sha256(p) for p in sorted((partial / CATALOG).iterdir())}
    manifest = {"format": FORMAT, "version": FORMAT_VERSION, "created_at": datetime.now(UTC).isoformat(),
                "source_home": str(settings.home.absolute()), "database": url.split(":", 1)[0].split("+")[0],
                "revision": revision, "rows": rows, "collections": plan.collections,
                "external_adapters": plan.external_adapters, "missing_originals": plan.missing_originals,
                "catalog": catalog, "files": copied}
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=1))
    size = sum(p.stat().st_size for p in partial.rglob("*") if p.is_file())
    return BackupResult(final, revision, rows, sorted(plan.collections.values()), len(copied) + len(catalog) + 1, size,
                        plan.external_adapters, plan.missing_originals)


@dataclass
class _Plan:
    collections: dict[int, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # relative to the home
    external_adapters: list[str] = field(default_factory=list)
    missing_originals: int = 0


def _files_named(settings: Settings, connection: Connection) -> _Plan:
    """The home's files that the catalog snapshot refers to: per collection its FAISS index, the summary
    store it names and its adapters; the kept originals of its PDFs."""
    from sqlalchemy import func, select

    from app.core.originals import KEPT_SUFFIXES, OriginalStore
    from indexing.catalog import Chunk, Collection, Document
    from indexing.faiss_store import INDEX_FILE
    from indexing.summary_store import STORE_FILE

    home = settings.home.absolute()
    plan = _Plan()
    with_chunks = set(connection.scalars(select(Chunk.collection_id).group_by(Chunk.collection_id)
                                         .having(func.count() > 0)))
    for row in connection.execute(select(Collection.id, Collection.name, Collection.summary_file,
                                         Collection.adapter_path)):
        plan.collections[row.id] = row.name
        folder = settings.collection_dir(row.id).absolute()
        summary = folder / (row.summary_file or STORE_FILE)
        if row.id in with_chunks or summary.is_file():
            plan.files.append(summary.relative_to(home))  # missing: FileNotFoundError, retried
        if (folder / INDEX_FILE).is_file():
            plan.files.append((folder / INDEX_FILE).relative_to(home))  # FAISS is rebuilt from SQL if it lags
        adapters = folder / "adapters"
        if adapters.is_dir():
            plan.files.extend(p.relative_to(home) for p in sorted(adapters.rglob("*")) if p.is_file())
        if row.adapter_path and not Path(row.adapter_path).absolute().is_relative_to(home):
            plan.external_adapters.append(row.adapter_path)
    store = OriginalStore(settings.originals_dir)
    hashes = connection.execute(select(Document.content_hash, Document.filename).distinct())
    for content_hash, filename in hashes:
        suffix = Path(filename).suffix.lower()
        if suffix not in KEPT_SUFFIXES:
            continue
        original = store.path_for(content_hash, suffix).absolute()
        if original.is_file():
            plan.files.append(original.relative_to(home))
        else:
            plan.missing_originals += 1
    plan.files = sorted(set(plan.files))
    return plan


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the backup in ``path``, after checking every file against its checksum."""
    path = Path(path).expanduser()
    if not (path / MANIFEST).is_file():
        raise NotFoundError(f"{path} is not a lloco backup (no {MANIFEST})")
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"backup damaged: {path / MANIFEST} is not valid JSON ({exc})") from exc
    if manifest.get("format") != FORMAT:
        raise InvalidInputError(f"{path} is not a lloco backup (format {manifest.get('format')!r})")
    if manifest.get("version") != FORMAT_VERSION:
        raise InvalidInputError(f"{path} is a version {manifest.get('version')} backup; this lloco reads version "
                                f"{FORMAT_VERSION}")
    listed = {**manifest["catalog"], **{f"{FILES}/{rel}": digest for rel, digest in manifest["files"].items()}}
    for rel, digest in listed.items():
        file = path / rel
        if not file.is_file():
            raise InvalidInputError(f"backup damaged: {rel} is missing")
        if file_sha256(file) != digest:
            raise InvalidInputError(f"backup damaged: {rel} does not match its checksum")
    return manifest


def restore_home(settings: Settings, path: Path) -> BackupResult:
    """Restore the backup in ``path`` into the (empty) home and catalog of ``settings``."""
    from indexing.catalog import make_engine
    from indexing.catalog_dump import ensure_empty, load

    path = Path(path).expanduser().absolute()
    manifest = read_manifest(path)
    home = settings.home.expanduser().absolute()
    url = settings.resolved_database_url
    collections_dir = home / "collections"
    if collections_dir.is_dir() and any(collections_dir.iterdir()):
        raise InvalidInputError(f"{home} already holds collection files ({collections_dir}): restore into an empty "
                                "home; nothing was changed")
    engine = make_engine(url)
    try:
        ensure_empty(engine)  # before any file is copied
    finally:
        engine.dispose()
    created: list[Path] = []
    try:
        for rel in manifest["files"]:
            target = home / rel
            if target.exists():  # a kept original with the same bytes (content-addressed): shared
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path / FILES / rel, target)
            created.append(target)
        old = manifest["source_home"].rstrip("/") + "/"
        new = str(home) + "/"

        def rewrite(value: Any) -> Any:  # absolute paths into the old home (adapters, sources) move with it
            return new + value[len(old):] if isinstance(value, str) and value.startswith(old) else value

        load(url, path / CATALOG, manifest["revision"], manifest["rows"], rewrite=rewrite)
    except BaseException:
        for file in created:
            file.unlink(missing_ok=True)
        shutil.rmtree(collections_dir, ignore_errors=True)  # empty before (checked above): all of it was ours
        raise
    size = sum((home / rel).stat().st_size for rel in manifest["files"])
    return BackupResult(path, manifest["revision"], manifest["rows"], sorted(manifest["collections"].values()),
                        len(manifest["files"]), size, manifest["external_adapters"], manifest["missing_originals"])
