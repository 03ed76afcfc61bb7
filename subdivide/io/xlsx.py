"""Reading the cells of an .xlsx workbook: the one .xlsx reader (the validator's workbook
checks, and through :mod:`subdivide.io.tables` every table a user hands us).

The validator asks of each cell what openpyxl's ``load_workbook(data_only=False)`` tells:
its value, whether it is text, a number or a formula, and whether its number format is
text (``@``, which keeps the leading zeros of codes). openpyxl builds a Python object
per cell and descriptor per attribute (1.2 s for the 10,000-row area-code list, issue 19);
this parses each part once with ``xml.etree`` (C; 0.55 s against 1.4 s there), and gives the
same answers for what Excel, LibreOffice, openpyxl and subdivide write:

- shared strings (``t="s"``, rich-text runs joined, phonetic ``rPh`` runs left out) and
  inline strings (``t="inlineStr"``) are text, ``data_type == "s"``;
- a cell with an ``<f>`` element is a formula (``data_type == "f"``, value ``"=" + formula``);
- numbers are ``int`` or ``float`` (as openpyxl casts them), booleans ``True``/``False``,
  errors (``#N/A`` …) their text;
- ``number_format`` comes from the cell's style (``styles.xml`` ``cellXfs`` → ``numFmtId``,
  custom ``numFmts`` or the built-in table, ECMA-376 §18.8.30; other built-in ids read as
  ``General``, as openpyxl reads them);
- a number under a date or time format is a ``datetime`` (a ``time`` below one day, a
  ``timedelta`` under an elapsed-time format such as ``[h]:mm``), ``data_type == "d"``,
  counted from 1899-12-30 or, in a 1904-based workbook, 1904-01-01 (Excel's 1900 leap-year
  slip kept, as openpyxl keeps it); a serial beyond the dates is the error ``#VALUE!``.

``formulas=False`` reads what Excel last showed instead of the formula (openpyxl's
``data_only=True``): the cached value, typed as any other cell; a table a user saved from
Excel is read this way.

Rows are returned as a rectangle from A1 to the last used cell, empty cells filled as
openpyxl fills them (value None, ``data_type "n"``, format ``General``).

Safety: the caller checks the zip first (``io.safezip.check_nested_zip``: sizes, ratio,
nesting); a part holding a DTD (``<!DOCTYPE``, never in a real workbook; the door to entity
expansion) is refused, and expat ≥ 2.4 bounds entity amplification anyway.
"""
from __future__ import annotations

import datetime as dt
import posixpath
import re
import zipfile
import zlib
from typing import NamedTuple
from xml.etree import ElementTree as ET

_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
#: the built-in number formats (ECMA-376 §18.8.30), as openpyxl spells them; any other id
#: without a custom ``numFmt`` reads as General
BUILTIN_FORMATS = {
    0: "General", 1: "0", 2: "0.00", 3: "#,##0", 4: "#,##0.00",
    5: '"$"#,##0_);("$"#,##0)', 6: '"$"#,##0_);[Red]("$"#,##0)', 7: '"$"#,##0.00_);("$"#,##0.00)',
    8: '"$"#,##0.00_);[Red]("$"#,##0.00)', 9: "0%", 10: "0.00%", 11: "0.00E+00", 12: "# ?/?",
    13: "# ??/??", 14: "mm-dd-yy", 15: "d-mmm-yy", 16: "d-mmm", 17: "mmm-yy", 18: "h:mm AM/PM",
    19: "h:mm:ss AM/PM", 20: "h:mm", 21: "h:mm:ss", 22: "m/d/yy h:mm",
    37: "#,##0_);(#,##0)", 38: "#,##0_);[Red](#,##0)", 39: "#,##0.00_);(#,##0.00)",
    40: "#,##0.00_);[Red](#,##0.00)", 41: r'_(* #,##0_);_(* \(#,##0\);_(* "-"_);_(@_)',
    42: r'_("$"* #,##0_);_("$"* \(#,##0\);_("$"* "-"_);_(@_)',
    43: r'_(* #,##0.00_);_(* \(#,##0.00\);_(* "-"??_);_(@_)',
    44: r'_("$"* #,##0.00_)_("$"* \(#,##0.00\)_("$"* "-"??_)_(@_)',
    45: "mm:ss", 46: "[h]:mm:ss", 47: "mmss.0", 48: "##0.0E+0", 49: "@",
}
#: what does not make a format a date one: quoted text, and [..] other than [h] [m] [s]
_NOT_DATE = re.compile(r'".*?"|\[(?!hh?\]|mm?\]|ss?\])[^\]]*\]')
_DATE_PART = re.compile(r"(?<![_\\])[dmhysDMHYS]")
_ELAPSED = re.compile(r"\[hh?\](:mm(:ss(\.0*)?)?)?|\[mm?\](:ss(\.0*)?)?|\[ss?\](\.0*)?", re.I)
WINDOWS_EPOCH = dt.datetime(1899, 12, 30)
MAC_EPOCH = dt.datetime(1904, 1, 1)


def is_date_format(code: str) -> bool:
    """Whether numbers under this format code are dates or times (its first section has a
    d, m, y, h or s outside quotes and locale brackets), as Excel and openpyxl decide."""
    return bool(_DATE_PART.search(_NOT_DATE.sub("", code.split(";")[0])))


def is_elapsed_format(code: str) -> bool:
    """Whether a format counts elapsed time (``[h]:mm``): its numbers are durations."""
    return bool(_ELAPSED.search(code.split(";")[0]))


def from_serial(value: float, *, epoch: dt.datetime = WINDOWS_EPOCH, elapsed: bool = False):
    """An Excel serial as openpyxl's ``from_excel`` gives it: a ``timedelta`` (``elapsed``), a
    ``time`` (below one day), else a ``datetime`` to the millisecond (1900-based serials
    below 60 are a day late: Excel counts a 29 February 1900)."""
    if elapsed:
        td = dt.timedelta(days=value)
        if td.microseconds:
            td = dt.timedelta(seconds=td.total_seconds() // 1, microseconds=round(td.microseconds, -3))
        return td
    day, fraction = divmod(value, 1)
    diff = dt.timedelta(milliseconds=round(fraction * 86_400_000))
    if 0 <= value < 1 and diff.days == 0:
        mins, secs = divmod(diff.seconds, 60)
        hours, mins = divmod(mins, 60)
        return dt.time(hours, mins, secs, diff.microseconds)
    if 0 < value < 60 and epoch == WINDOWS_EPOCH:
        day += 1
    return epoch + dt.timedelta(days=day) + diff


class XlsxError(ValueError):
    """The workbook cannot be read (not a workbook, a part missing or malformed, a DTD)."""


class Cell(NamedTuple):
    """One cell: ``coordinate`` ('B7'), ``value``, ``data_type`` ('s' text, 'n' number or
    empty, 'b' boolean, 'e' error, 'f' formula) and ``number_format`` ('@' is text)."""

    coordinate: str
    value: object
    data_type: str
    number_format: str


def column_letter(i: int) -> str:
    """1 → 'A', 27 → 'AA'."""
    s = ""
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def _column_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def _tree(data: bytes, part: str):
    """The parsed part (one C-level pass; parts are size-checked before)."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise XlsxError(f"{part} declares a DTD (not allowed in a workbook)")
    return ET.fromstring(data)


def _read(z: zipfile.ZipFile, part: str, *, required: bool = True) -> bytes | None:
    try:
        return z.read(part)
    except KeyError:
        if required:
            raise XlsxError(f"{part} is missing") from None
        return None


def _text_of(elem) -> str:
    """The text of a string item (``<si>`` or ``<is>``): its ``<t>``, or its runs' ``<t>``,
    without the phonetic (``rPh``) runs Japanese Excel adds."""
    t = elem.find(f"{_NS}t")
    if t is not None:
        return t.text or ""
    return "".join((r.findtext(f"{_NS}t") or "") for r in elem.iterfind(f"{_NS}r"))


def _shared_strings(z) -> list[str]:
    data = _read(z, "xl/sharedStrings.xml", required=False)
    if data is None:
        return []
    return [_text_of(si) for si in _tree(data, "xl/sharedStrings.xml").iterfind(f"{_NS}si")]


class _Style(NamedTuple):
    """A ``cellXfs`` entry as the cells need it: its format code, and whether numbers under
    it are dates (and then whether durations)."""

    code: str
    date: bool = False
    elapsed: bool = False


_GENERAL = _Style("General")


def _styles(z) -> list[_Style]:
    """The :class:`_Style` per ``cellXfs`` index (a custom ``numFmt`` first, then the
    built-in table)."""
    data = _read(z, "xl/styles.xml", required=False)
    if data is None:
        return [_GENERAL]
    root = _tree(data, "xl/styles.xml")
    custom = {int(el.get("numFmtId", "0")): el.get("formatCode", "") for el in root.iter(f"{_NS}numFmt")}
    xfs = []
    for cell_xfs in root.iter(f"{_NS}cellXfs"):
        for xf in cell_xfs.iterfind(f"{_NS}xf"):
            fid = int(xf.get("numFmtId", "0"))
            known = custom[fid] if fid in custom else BUILTIN_FORMATS.get(fid)
            code = known if known is not None else "General"
            date = known is not None and is_date_format(known)
            xfs.append(_Style(code, date, date and is_elapsed_format(known)))
    return xfs or [_GENERAL]


def _workbook_parts(z) -> tuple[dict[str, str], dt.datetime]:
    """(sheet name → zip member of its worksheet, in the workbook's order; the date epoch)."""
    rels = {}
    for el in _tree(_read(z, "xl/_rels/workbook.xml.rels"), "xl/_rels/workbook.xml.rels").iter(_PKG_REL):
        target = el.get("Target", "")
        rels[el.get("Id")] = (target.lstrip("/") if target.startswith("/")
                              else posixpath.normpath(posixpath.join("xl", target)))
    book = _tree(_read(z, "xl/workbook.xml"), "xl/workbook.xml")
    pr = book.find(f"{_NS}workbookPr")
    epoch = MAC_EPOCH if pr is not None and pr.get("date1904", "").lower() in ("1", "true") else WINDOWS_EPOCH
    return {el.get("name", ""): rels.get(el.get(_REL_ID), "") for el in book.iter(f"{_NS}sheet")}, epoch


def _number(text: str):
    """openpyxl's cast: an int unless the text has a point or an exponent."""
    if "." in text or "E" in text or "e" in text:
        return float(text)
    return int(text)


_F, _V, _IS = f"{_NS}f", f"{_NS}v", f"{_NS}is"


class _Book(NamedTuple):
    """What every cell of one workbook is read against."""

    strings: list[str]
    styles: list[_Style]
    epoch: dt.datetime
    formulas: bool


def _cell(c, book: _Book) -> tuple[object, str, str]:
    """(value, data_type, number_format) of a ``<c>`` element."""
    t = c.get("t", "n")
    style = int(c.get("s") or 0)
    st = book.styles[style] if 0 <= style < len(book.styles) else _GENERAL
    fmt = st.code
    f = v = is_ = None
    for child in c:
        tag = child.tag
        if tag == _F:
            f = child
        elif tag == _V:
            v = child.text
        elif tag == _IS:
            is_ = child
    if f is not None and book.formulas:
        return "=" + (f.text or ""), "f", fmt
    if t == "inlineStr":       # as openpyxl: 's' with its text, 'inlineStr' without one
        return (None, "inlineStr", fmt) if is_ is None else (_text_of(is_), "s", fmt)
    if not v:                  # openpyxl: an empty <v/> is no value
        return None, ("s" if t in ("s", "str") else t), fmt
    if t == "s":
        return book.strings[int(v)], "s", fmt
    if t == "str":
        return v, "s", fmt
    if t == "b":
        return bool(int(v)), "b", fmt
    if t == "e":
        return v, "e", fmt
    if t == "d":
        return _iso_date(v), "d", fmt
    number = _number(v)
    if st.date:
        try:
            return from_serial(number, epoch=book.epoch, elapsed=st.elapsed), "d", fmt
        except (OverflowError, ValueError):
            return "#VALUE!", "e", fmt
    return number, "n", fmt


def _iso_date(text: str):
    """A ``t="d"`` cell's ISO 8601 text as a datetime (a time or a date alone as given)."""
    text = text.strip().removesuffix("Z")
    for parse in (dt.datetime.fromisoformat, dt.time.fromisoformat):
        try:
            return parse(text)
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not an ISO 8601 date")


def _sheet_rows(data: bytes, part: str, book: _Book) -> list[list[Cell]]:
    grid: dict[int, dict[int, tuple]] = {}
    columns: dict[str, int] = {}
    row_no = 0
    sheet = _tree(data, part).find(f"{_NS}sheetData")
    for row in (() if sheet is None else sheet.iterfind(f"{_NS}row")):
        row_no = int(row.get("r") or row_no + 1)     # a row without its number follows the last
        col = 0
        cells = grid.setdefault(row_no, {})
        for c in row.iterfind(f"{_NS}c"):
            ref = c.get("r")
            if ref:
                letters = ref.rstrip("0123456789")
                col = columns.get(letters) or columns.setdefault(letters, _column_index(letters))
            else:                                      # a cell without its reference follows the last
                col += 1
            cells[col] = _cell(c, book)
    # rows as openpyxl's iter_rows gives them: A1 to the last used cell, gaps filled
    used = [r for r, cells in grid.items() if cells]
    max_r = max(used, default=0)
    max_c = max((max(cells) for cells in grid.values() if cells), default=0)
    letters = [column_letter(j) for j in range(1, max_c + 1)]
    empty = (None, "n", "General")
    out = []
    for r in range(1, max_r + 1):
        cells = grid.get(r, {})
        out.append([Cell(f"{letters[j - 1]}{r}", *cells.get(j, empty)) for j in range(1, max_c + 1)])
    return out


def read_workbook(path, *, formulas: bool = True, sheets: int | None = None) -> dict[str, list[list[Cell]]]:
    """sheet name → rows of :class:`Cell` (A1 to the last used cell), in the workbook's
    order. ``formulas=False``: a formula cell gives the value Excel cached for it.
    ``sheets``: read only the first that many. Raises :class:`XlsxError` for a file that is
    not a readable workbook."""
    try:
        with zipfile.ZipFile(path) as z:
            parts, epoch = _workbook_parts(z)
            book = _Book(_shared_strings(z), _styles(z), epoch, formulas)
            out = {}
            for name, part in list(parts.items())[:sheets]:
                out[name] = _sheet_rows(_read(z, part), part, book)
            return out
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError,
            ET.ParseError, IndexError, ValueError, KeyError, OSError) as exc:   # a damaged part
        if isinstance(exc, XlsxError):
            raise
        raise XlsxError(f"{exc.__class__.__name__}: {exc}") from None
