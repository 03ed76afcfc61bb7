"""Reading messages to lint: a text file, a JSON file, or a CSV/XLSX sheet of many.

- **text** (``.txt`` or anything else): the first line is the title, the rest is the body.
  One final line break at the end of the file is dropped (editors add it; it is not part
  of the message). CRLF files are read as they are (CRLF counts as one line break).
- **JSON**: an object ``{"title": …, "body": …, "category": …, <context fields>}`` or a list
  of such objects.
- **CSV / XLSX**: one message per row, columns ``title``, ``body``, ``category`` and,
  optionally, ``id`` and any context field (``is_drill``, ``send_time``, ``target_area`` …,
  see docs/messages.md). The sheet written by ``subdivide message compose`` reads back as
  it is (``drill`` → ``is_drill``, ``subarea_name`` → ``target_area``). Cells are *not*
  stripped (spaces and line breaks count); the ``'`` that :mod:`subdivide.io.output` puts
  before a formula-like cell is removed again.

A file that cannot be read raises :class:`UserError` (exit 2), naming the file, row and column.
"""
from __future__ import annotations

import json
import re
from dataclasses import fields, replace
from datetime import datetime
from pathlib import Path

from subdivide.core.errors import UserError
from subdivide.io.output import unneutralise_cell
from subdivide.carrier.messages.message import CONTEXT_FIELDS, Context, Message

ALIASES = {"drill": "is_drill", "correction": "is_correction", "lifting": "is_lifting",
           "continuation": "is_continuation", "subarea_name": "target_area", "sender": "sender_type",
           "time": "send_time", "hazard": "hazard_cause"}
_TYPES = {f.name: f.type for f in fields(Context)}
_TRUE = {"1", "true", "yes", "y", "はい", "○", "x", "t", "on"}
_FALSE = {"0", "false", "no", "n", "いいえ", "", "f", "off", "none", "nan"}


def parse_time(value, *, where: str) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).strip().replace("/", "-"))
    except ValueError:
        raise UserError(f"send time {value!r} is not a date and time", where=where,
                        fix="write it as 2026-12-01T03:00 (or 2026-12-01 03:00)") from None


_SKIP = object()


def _convert(name: str, value, where: str):
    """A context field from a cell / JSON value; an empty cell keeps the default (_SKIP)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "nan", "none")):
        return _SKIP
    kind = str(_TYPES[name])
    v = value.strip() if isinstance(value, str) else value
    if kind.startswith("bool"):
        if isinstance(v, bool):
            return v
        s = str(v).lower()
        if s in _TRUE or s in _FALSE:
            return s in _TRUE
        raise UserError(f"{name} {value!r} is not yes/no", where=where, fix="write 1/0, true/false or はい/いいえ")
    if kind.startswith("int"):
        try:
            return int(float(v))
        except (TypeError, ValueError):
            raise UserError(f"{name} {value!r} is not a number", where=where, fix="write a whole number") from None
    if kind.startswith("datetime"):
        return parse_time(v, where=where)
    if kind.startswith("tuple"):
        items = v if isinstance(v, (list, tuple)) else str(v).replace("、", ",").split(",")
        return tuple(str(x).strip() for x in items if str(x).strip())
    return str(v)


def message_from_record(rec: dict, defaults: Context, *, where: str, default_id: str,
                        category: str = "") -> Message:
    """A message from a dict (JSON object or sheet row); context fields override ``defaults``."""
    rec = {ALIASES.get(str(k).strip(), str(k).strip()): unneutralise_cell(v) for k, v in rec.items()}
    for need in ("title", "body"):
        if need not in rec or rec[need] is None:
            raise UserError(f"no {need!r} field", where=where,
                            fix="give title, body and category (column headers in a sheet)")
    changes = {k: _convert(k, v, f"{where}, {k}") for k, v in rec.items() if k in CONTEXT_FIELDS}
    changes = {k: v for k, v in changes.items() if v is not _SKIP}
    try:
        ctx = replace(defaults, **changes)
    except UserError as exc:
        raise UserError(exc.what, where=where, fix=exc.fix) from None
    mid = str(rec.get("id") or "").strip() or default_id
    return Message(str(rec["title"]), str(rec["body"]), str(rec.get("category") or "").strip() or category, mid, ctx)


def read_messages(path, defaults: Context | None = None, *, category: str = "") -> list[Message]:
    """Messages from a file; ``category`` is used where a message names none."""
    p = Path(path)
    defaults = defaults or Context()
    if not p.exists():
        raise UserError(f"message file {p} does not exist", where=str(p), fix="check the path")
    suffix = p.suffix.lower()
    if suffix in (".csv", ".xlsx", ".xlsm"):
        return _read_sheet(p, defaults, category)
    from subdivide.io.tables import decode_text

    text = decode_text(p.read_bytes(), where=str(p), what=f"message file {p.name}")
    if suffix == ".json":
        return _read_json(p, text, defaults, category)
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith(("\n", "\r")):
        text = text[:-1]
    parts = re.split(r"\r\n|\r|\n", text, maxsplit=1)
    if len(parts) < 2:
        raise UserError(f"{p.name} has a title line but no body", where=str(p),
                        fix="write the title on the first line and the body below it")
    return [Message(parts[0], parts[1], category, p.stem, defaults)]


def _read_json(p: Path, text: str, defaults: Context, category: str) -> list[Message]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{p.name} is not valid JSON ({exc.msg}, line {exc.lineno})", where=str(p),
                        fix="give an object with title, body, category, or a list of them") from None
    items = data if isinstance(data, list) else [data]
    if not items or not all(isinstance(x, dict) for x in items):
        raise UserError(f"{p.name} must hold an object or a list of objects", where=str(p),
                        fix='e.g. {"title": "避難指示", "body": "…", "category": "避難指示"}')
    return [message_from_record(x, defaults, where=f"{p}, item {i}", default_id=f"{p.stem}#{i}", category=category)
            for i, x in enumerate(items, 1)]


def _read_sheet(p: Path, defaults: Context, category: str) -> list[Message]:
    """One message per row of a CSV or the first sheet of an XLSX (the one table reader,
    :func:`subdivide.io.tables.read_text_table`); a row's number is its line in Excel."""
    from subdivide.io.tables import read_text_table

    df = read_text_table(p, what="message sheet", strip=False)      # spaces and line breaks count
    if df.empty:
        raise UserError(f"{p.name} has no messages", where=str(p), fix="one message per row under a header row")
    known = set(CONTEXT_FIELDS) | set(ALIASES) | {"title", "body", "category", "id"}
    cols = [c for c in df.columns if c in known]
    return [message_from_record({c: row[c] for c in cols}, defaults, where=f"{p}, row {i + 2}",
                                default_id=f"row {i + 2}", category=category)
            for i, row in zip(df.index, df.to_dict("records"))]
