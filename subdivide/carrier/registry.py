"""The national registry of subdivided municipalities (embedded SQLite).

The carriers' systems accept at most 25 municipalities with an active subdivision, each
with at most 14 sub-areas (DOMAIN.md §1). :class:`Registry` records validated packages
and enforces both limits *atomically*: every change runs in one ``BEGIN IMMEDIATE``
transaction (a single writer at a time, WAL journal so readers never block), and SQL
triggers refuse a 26th active municipality or a 15th sub-area even if another program
writes to the file. Concurrent registrations from many processes therefore never exceed
the limits.

Tables (schema version :data:`SCHEMA_VERSION`, recorded in ``schema_version``):

- ``registrations``: one row per registered package (status active / superseded /
  withdrawn), with the manifest, package sha256 and counts;
- ``subareas``: the sub-area table of each registration;
- ``audit``: append-only log of every change (register, supersede, withdraw, migrate).

Default database: ``--db PATH``, else ``$SUBDIVIDE_REGISTRY``, else
``./subdivide-registry.sqlite``.

Times are Japan Standard Time with their offset (``2026-12-01T22:15:03+09:00``), written so
and returned so; times that an older registry stored in UTC are returned in JST as well.
"""
from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import sqlite3
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from subdivide.core.constants import MAX_MUNICIPALITIES, MAX_SUBAREAS
from subdivide.core.codes import normalize_municipality_code
from subdivide.core.errors import UserError
from subdivide.io.output import sha256_file

SCHEMA_VERSION = 1
DEFAULT_DB = "subdivide-registry.sqlite"
ENV_DB = "SUBDIVIDE_REGISTRY"
BUSY_TIMEOUT_S = 60.0

MIGRATIONS: dict[int, tuple[str, str]] = {
    1: ("registrations, subareas, audit; limit triggers", f"""
CREATE TABLE registrations (
    id              INTEGER PRIMARY KEY,
    muni_code       TEXT NOT NULL CHECK (length(muni_code) = 5),
    muni_name       TEXT,
    n_subareas      INTEGER NOT NULL CHECK (n_subareas BETWEEN 1 AND {MAX_SUBAREAS}),
    n_townblocks    INTEGER NOT NULL CHECK (n_townblocks >= 1),
    population      INTEGER,
    package_sha256  TEXT NOT NULL,
    package_name    TEXT,
    manifest        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('active', 'superseded', 'withdrawn')),
    registered_at   TEXT NOT NULL,
    registered_by   TEXT,
    ended_at        TEXT,
    end_reason      TEXT
);
CREATE UNIQUE INDEX registrations_one_active ON registrations(muni_code) WHERE status = 'active';
CREATE INDEX registrations_muni ON registrations(muni_code, id);
CREATE TABLE subareas (
    registration_id INTEGER NOT NULL REFERENCES registrations(id),
    subarea         INTEGER NOT NULL CHECK (subarea BETWEEN 1 AND {MAX_SUBAREAS}),
    code            TEXT NOT NULL,
    name            TEXT NOT NULL,
    display_order   INTEGER NOT NULL,
    n_blocks        INTEGER,
    population      INTEGER,
    area_km2        REAL,
    PRIMARY KEY (registration_id, subarea)
);
CREATE TABLE audit (
    id              INTEGER PRIMARY KEY,
    at              TEXT NOT NULL,
    action          TEXT NOT NULL,
    muni_code       TEXT,
    registration_id INTEGER,
    actor           TEXT,
    detail          TEXT
);
CREATE TRIGGER limit_municipalities_insert BEFORE INSERT ON registrations
WHEN NEW.status = 'active'
 AND (SELECT COUNT(*) FROM registrations WHERE status = 'active') >= {MAX_MUNICIPALITIES}
BEGIN SELECT RAISE(ABORT, 'LIMIT-MUNICIPALITIES'); END;
CREATE TRIGGER limit_municipalities_update BEFORE UPDATE OF status ON registrations
WHEN NEW.status = 'active' AND OLD.status <> 'active'
 AND (SELECT COUNT(*) FROM registrations WHERE status = 'active') >= {MAX_MUNICIPALITIES}
BEGIN SELECT RAISE(ABORT, 'LIMIT-MUNICIPALITIES'); END;
CREATE TRIGGER limit_subareas BEFORE INSERT ON subareas
WHEN (SELECT COUNT(*) FROM subareas WHERE registration_id = NEW.registration_id) >= {MAX_SUBAREAS}
BEGIN SELECT RAISE(ABORT, 'LIMIT-SUBAREAS'); END;
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit table is append-only'); END;
"""),
}


class RegistryRefused(UserError):
    """A registry change refused by a rule (limit reached, nothing to withdraw …): exit 1.
    A package that does not validate is refused with the validator's errors as ``findings``."""

    exit_status = 1


def default_db_path(db: str | os.PathLike | None = None) -> Path:
    """``db``, else $SUBDIVIDE_REGISTRY, else ./subdivide-registry.sqlite."""
    return Path(db or os.environ.get(ENV_DB) or DEFAULT_DB)


def _japan_time_zone():
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("Asia/Tokyo")
    except Exception:  # no time-zone database (Windows without tzdata): Japan has no DST since 1951
        return timezone(timedelta(hours=9), "JST")


#: Japan Standard Time (Asia/Tokyo, UTC+09:00): the registry's times
JST = _japan_time_zone()
#: the columns of the registry's tables that hold times
TIME_FIELDS = ("registered_at", "ended_at", "at", "applied_at")


def _now() -> str:
    return datetime.now(JST).isoformat(timespec="seconds")


def to_jst(text):
    """An ISO 8601 time from the registry in JST with its offset; a time without an offset
    (or in UTC, as older registries stored it) is converted, anything else returned as is."""
    if not text or not isinstance(text, str):
        return text
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        return text
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.astimezone(JST).isoformat(timespec="seconds")


def _in_jst(row: dict) -> dict:
    for k in TIME_FIELDS:
        if k in row:
            row[k] = to_jst(row[k])
    return row


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


class Registry:
    """Open (creating or migrating as needed) the registry database at ``path``."""

    def __init__(self, path: str | os.PathLike | None = None, *, timeout: float = BUSY_TIMEOUT_S):
        self.path = default_db_path(path)
        self.timeout = timeout
        if self.path.exists() and not self.path.is_file():
            raise UserError(f"registry {self.path} is not a file", fix="pass --db PATH to a .sqlite file")
        check_registry_file(self.path)   # before any write: never touch someone else's database
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    # ------------------------------------------------------------------ plumbing
    def _connect(self) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
            con.row_factory = sqlite3.Row
            con.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
            self._wal(con)
            con.execute("PRAGMA foreign_keys = ON")
            con.execute("PRAGMA synchronous = FULL")
        except sqlite3.DatabaseError as exc:
            raise UserError(f"registry {self.path} is not a usable SQLite database ({exc})",
                            where=str(self.path), fix="pass --db PATH to a subdivide registry") from None
        return con

    def _wal(self, con: sqlite3.Connection) -> None:
        """Switch to the WAL journal. On a brand-new file several processes race to do
        this, and SQLite answers 'database is locked' at once (the busy handler does not
        cover a journal-mode change): retry until the timeout."""
        deadline = time.monotonic() + self.timeout
        delay = 0.005
        while True:
            try:
                if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    con.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One serialised write transaction (BEGIN IMMEDIATE … COMMIT / ROLLBACK)."""
        con = self._connect()
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            raise UserError(f"registry {self.path} is busy or locked ({exc})",
                            fix="retry; another registration is running") from None
        finally:
            con.close()

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        con = self._connect()
        try:
            yield con
        finally:
            con.close()

    def _migrate(self) -> None:
        with self._write() as con:
            has = con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='schema_version'").fetchone()
            if not has:
                con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL, "
                            "description TEXT NOT NULL)")
            current = con.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]
            if current > SCHEMA_VERSION:
                raise UserError(f"registry {self.path} has schema version {current}; this subdivide knows "
                                f"{SCHEMA_VERSION}", fix="upgrade subdivide")
            for v in range(current + 1, SCHEMA_VERSION + 1):
                desc, sql = MIGRATIONS[v]
                for stmt in (s.strip() for s in _split_sql(sql)):
                    if stmt:
                        con.execute(stmt)
                at = _now()
                con.execute("INSERT INTO schema_version VALUES (?, ?, ?)", (v, at, desc))
                con.execute("INSERT INTO audit (at, action, actor, detail) VALUES (?, 'migrate', ?, ?)",
                            (at, _actor(None), json.dumps({"to_version": v, "description": desc})))

    @property
    def schema_version(self) -> int:
        with self._read() as con:
            return int(con.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    # ------------------------------------------------------------------ changes
    def register(self, package, *, actor: str | None = None, name: str | None = None, profile=None,
                 outline=None) -> dict:
        """Validate ``package`` (directory or zip) and register it. Refuses (RegistryRefused)
        a package with validation errors, or when a limit would be exceeded."""
        from subdivide.carrier.validation import validate_package, visible_finding
        from subdivide.core.names import without_controls

        report = validate_package(package, profile=profile, outline=outline)
        if report.status != 0 or report.summary is None:
            raise RegistryRefused(f"the package does not validate (status {report.status}); not registered:",
                                  where=str(package), fix="run `subdivide validate` and fix the errors",
                                  findings=[visible_finding(f) for f in report.errors[:15]])
        record = dict(report.summary)
        record["muni_name"] = name
        stated = ((report.manifest or {}).get("municipality") or {}).get("name")
        record["package_muni_name"] = without_controls(stated) if isinstance(stated, str) else None
        record["package_name"] = Path(package).name
        record["package_sha256"] = package_digest(package)
        record["manifest"] = report.manifest or {}
        return self.register_record(record, actor=actor)

    def register_record(self, record: dict, *, actor: str | None = None) -> dict:
        """Register an already validated package summary: ``muni_code``, ``subareas`` (list of
        dicts with subarea, code, name, display_order …), ``n_townblocks``, ``package_sha256``
        and optionally ``muni_name``, ``population``, ``manifest``, ``package_name``. The
        name recorded: ``muni_name``, else the active registration's, else
        ``package_muni_name`` (the name the package's manifest states).

        In one BEGIN IMMEDIATE transaction: a municipality already active is superseded by
        the new package; a new one is refused when 25 are active. Returns the new row.
        """
        muni = normalize_municipality_code(str(record["muni_code"]), where="registration")
        subs = list(record.get("subareas") or [])
        if not 1 <= len(subs) <= MAX_SUBAREAS:
            raise RegistryRefused(f"LIMIT-SUBAREAS: {len(subs)} sub-areas; at most {MAX_SUBAREAS} are allowed",
                                  where=muni, fix="merge sub-areas (subdivide plan --max-subareas 14)")
        who = _actor(actor)
        try:
            with self._write() as con:
                cur = con.execute("SELECT * FROM registrations WHERE muni_code = ? AND status = 'active'",
                                  (muni,)).fetchone()
                if cur is not None and cur["package_sha256"] == record["package_sha256"]:
                    raise RegistryRefused(f"{muni}: this package is already the active registration "
                                          f"(#{cur['id']})", where=muni, fix="nothing to do")
                n_active = con.execute("SELECT COUNT(*) FROM registrations WHERE status = 'active'").fetchone()[0]
                if cur is None and n_active >= MAX_MUNICIPALITIES:
                    raise RegistryRefused(
                        f"LIMIT-MUNICIPALITIES: {n_active} municipalities already have an active subdivision; "
                        f"the carriers' systems accept at most {MAX_MUNICIPALITIES}. {muni} was not registered",
                        where=muni, fix="withdraw a subdivision first (subdivide registry withdraw CODE)")
                at = _now()
                if cur is not None:
                    con.execute("UPDATE registrations SET status = 'superseded', ended_at = ?, end_reason = ? "
                                "WHERE id = ?", (at, "superseded by a new package", cur["id"]))
                row = con.execute(
                    "INSERT INTO registrations (muni_code, muni_name, n_subareas, n_townblocks, population, "
                    "package_sha256, package_name, manifest, status, registered_at, registered_by) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?)",
                    (muni, record.get("muni_name") or (cur["muni_name"] if cur is not None else None)
                     or record.get("package_muni_name") or None, len(subs),
                     int(record["n_townblocks"]), record.get("population"), record["package_sha256"],
                     record.get("package_name"),
                     json.dumps(record.get("manifest") or {}, ensure_ascii=False, sort_keys=True), at, who))
                rid = row.lastrowid
                con.executemany(
                    "INSERT INTO subareas VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(rid, int(s["subarea"]), str(s["code"]), str(s["name"]), int(s["display_order"]),
                      s.get("n_blocks"), s.get("population"), s.get("area_km2")) for s in subs])
                action = "supersede" if cur is not None else "register"
                detail = {"package_sha256": record["package_sha256"], "n_subareas": len(subs),
                          "replaces": cur["id"] if cur is not None else None, "active_after": n_active + (cur is None)}
                con.execute("INSERT INTO audit (at, action, muni_code, registration_id, actor, detail) "
                            "VALUES (?, ?, ?, ?, ?, ?)", (at, action, muni, rid, who, json.dumps(detail)))
        except sqlite3.IntegrityError as exc:
            # the triggers and the unique index are the last line of defence
            raise RegistryRefused(f"{muni}: refused by the registry's constraints ({exc})", where=muni,
                                  fix="withdraw a subdivision first") from None
        return self.show(muni)

    def withdraw(self, muni_code: str, *, actor: str | None = None, reason: str | None = None) -> dict:
        """End the active subdivision of ``muni_code`` (frees one of the 25 places)."""
        muni = normalize_municipality_code(str(muni_code), where="withdraw")
        with self._write() as con:
            cur = con.execute("SELECT id FROM registrations WHERE muni_code = ? AND status = 'active'",
                              (muni,)).fetchone()
            if cur is None:
                raise RegistryRefused(f"{muni} has no active subdivision to withdraw", where=muni,
                                      fix="see `subdivide registry list`")
            at = _now()
            con.execute("UPDATE registrations SET status = 'withdrawn', ended_at = ?, end_reason = ? WHERE id = ?",
                        (at, reason or "withdrawn", cur["id"]))
            con.execute("INSERT INTO audit (at, action, muni_code, registration_id, actor, detail) "
                        "VALUES (?, 'withdraw', ?, ?, ?, ?)",
                        (at, muni, cur["id"], _actor(actor), json.dumps({"reason": reason})))
        return {"muni_code": muni, "registration_id": cur["id"], "status": "withdrawn", "ended_at": at}

    # ------------------------------------------------------------------ queries
    def list(self, *, include_ended: bool = False) -> list[dict]:
        """Registrations (active only by default), by municipality code."""
        where = "" if include_ended else "WHERE status = 'active'"
        with self._read() as con:
            rows = con.execute(f"SELECT id, muni_code, muni_name, n_subareas, n_townblocks, population, status, "
                               f"registered_at, registered_by, ended_at, package_sha256 FROM registrations {where} "
                               "ORDER BY muni_code, id").fetchall()
        return [_in_jst(dict(r)) for r in rows]

    def active_count(self) -> int:
        with self._read() as con:
            return int(con.execute("SELECT COUNT(*) FROM registrations WHERE status = 'active'").fetchone()[0])

    def show(self, muni_code: str) -> dict:
        """The municipality's registrations (newest first) with their sub-areas."""
        muni = normalize_municipality_code(str(muni_code), where="show")
        with self._read() as con:
            regs = [_in_jst(dict(r)) for r in con.execute(
                "SELECT * FROM registrations WHERE muni_code = ? ORDER BY id DESC", (muni,)).fetchall()]
            for r in regs:
                r["manifest"] = json.loads(r["manifest"])
                r["subareas"] = [dict(s) for s in con.execute(
                    "SELECT subarea, code, name, display_order, n_blocks, population, area_km2 FROM subareas "
                    "WHERE registration_id = ? ORDER BY display_order", (r["id"],)).fetchall()]
        if not regs:
            raise UserError(f"{muni} has never been registered", where=str(self.path),
                            fix="see `subdivide registry list --all`")
        active = [r for r in regs if r["status"] == "active"]
        return {"muni_code": muni, "active": active[0] if active else None, "registrations": regs}

    def history(self, muni_code: str | None = None) -> list[dict]:
        """The audit log (oldest first), for one municipality or all."""
        with self._read() as con:
            if muni_code:
                muni = normalize_municipality_code(str(muni_code), where="history")
                rows = con.execute("SELECT * FROM audit WHERE muni_code = ? ORDER BY id", (muni,)).fetchall()
            else:
                rows = con.execute("SELECT * FROM audit ORDER BY id").fetchall()
        out = []
        for r in rows:
            d = _in_jst(dict(r))
            d["detail"] = json.loads(d["detail"]) if d["detail"] else None
            out.append(d)
        return out


#: the tables of a registry (schema version 1); other SQLite internals are allowed
REGISTRY_TABLES = frozenset({"schema_version", "registrations", "subareas", "audit"})
SQLITE_MAGIC = b"SQLite format 3\x00"


def check_registry_file(path: Path) -> None:
    """Refuse a database that is not (or not yet) a registry, before anything is written to
    it: the file must be absent, empty (0 bytes or an SQLite file with no tables) or hold
    exactly the registry's tables. Read-only: no journal-mode switch, no schema change."""
    p = Path(path)
    if not p.exists() or p.stat().st_size == 0:
        return
    fix = "pass --db PATH to a subdivide registry, or to a new file name"
    try:
        with open(p, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise UserError(f"registry {p} cannot be read ({exc.strerror})", where=str(p), fix=fix) from None
    if head != SQLITE_MAGIC:
        raise UserError(f"registry {p} is not a usable SQLite database (not a subdivide registry); "
                        "it was left as it was",
                        where=str(p), fix=fix)
    side = [Path(f"{p}{s}") for s in ("-wal", "-shm")]
    had = [q.exists() for q in side]
    try:
        con = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            rows = con.execute("SELECT type, name FROM sqlite_master").fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        for q, existed in zip(side, had):   # SQLite may create the WAL files of a WAL database on open
            if not existed and q.is_file():
                q.unlink(missing_ok=True)
        raise UserError(f"registry {p} is not a usable SQLite database ({exc}); it was left as it was",
                        where=str(p), fix=fix) from None
    tables = {name for kind, name in rows if kind == "table" and not name.startswith("sqlite_")}
    if tables and not tables <= REGISTRY_TABLES:
        other = sorted(tables - REGISTRY_TABLES)
        shown = ", ".join(other[:5]) + (" …" if len(other) > 5 else "")
        raise UserError(f"{p} is not a subdivide registry (it holds the tables {shown}); it was left as it was",
                        where=str(p), fix=fix)
    if tables and "schema_version" not in tables:
        raise UserError(f"{p} holds registry tables but no schema_version; it was left as it was",
                        where=str(p), fix="restore the registry from a backup, or pass --db PATH to a new file")


def package_digest(package) -> str:
    """sha256 identifying a package: the zip file's, or a directory's manifest.json's (which
    holds the sha256 of every file). A directory without a manifest (a package made in QGIS)
    is identified by the sha256 of its files' relative paths and contents, in sorted order."""
    p = Path(package)
    if p.is_dir():
        m = p / "manifest.json"
        if m.is_file():
            return sha256_file(m)
        h = hashlib.sha256()
        for f in sorted((q for q in p.rglob("*") if q.is_file()), key=lambda q: q.relative_to(p).as_posix()):
            h.update(f.relative_to(p).as_posix().encode("utf-8") + b"\0" + sha256_file(f).encode("ascii") + b"\n")
        return h.hexdigest()
    return sha256_file(p)


def _split_sql(script: str) -> list[str]:
    """Split a migration script into statements (triggers contain ';' inside BEGIN … END)."""
    out, buf = [], []
    for line in script.splitlines():
        buf.append(line)
        text = "\n".join(buf).strip()
        if text.endswith(";") and sqlite3.complete_statement(text):
            out.append(text)
            buf = []
    if "\n".join(buf).strip():
        out.append("\n".join(buf))
    return out
