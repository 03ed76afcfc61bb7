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

Rows are returned as a rectangle from A1 to the last cell written as data (a value or a
type), empty cells filled as openpyxl fills them (value None, ``data_type "n"``, format
``General``). Unlike openpyxl, cells after it that only carry formatting (an empty styled
cell at XFD1048576 would make a 17-billion-cell grid) are left out, a reference outside the
sheet is refused, and so is a used range over :data:`MAX_CELLS` cells. Unlike openpyxl,
the Japanese built-in date formats (ids 27–36, 50–58, which Japanese Excel writes without
defining them) are dates. Parts are found through the package's relationships, chart
sheets left out.

Safety: the caller checks the zip first (``io.safezip.check_nested_zip``: sizes, ratio,
nesting); a part declaring a DTD (never in a real workbook; the door to entity expansion) is
refused, found by expat in whatever encoding the part declares, and expat ≥ 2.4 bounds
entity amplification anyway.
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
#: the Japanese built-in date formats (ECMA-376 §18.8.30, ja-JP), which Japanese Excel writes
#: by id without defining them; openpyxl reads such cells as General numbers (46357), here
#: they are dates as Excel shows them
JA_BUILTIN_DATES = {
    27: '[$-411]ge.m.d', 28: '[$-411]ggge"年"m"月"d"日"', 29: '[$-411]ggge"年"m"月"d"日"', 30: "m/d/yy",
    31: 'yyyy"年"m"月"d"日"', 32: 'h"時"mm"分"', 33: 'h"時"mm"分"ss"秒"', 34: 'yyyy"年"m"月"',
    35: 'm"月"d"日"', 36: '[$-411]ge.m.d', 50: '[$-411]ge.m.d', 51: '[$-411]ggge"年"m"月"d"日"',
    52: 'yyyy"年"m"月"', 53: 'm"月"d"日"', 54: '[$-411]ggge"年"m"月"d"日"', 55: 'yyyy"年"m"月"',
    56: 'm"月"d"日"', 57: '[$-411]ge.m.d', 58: '[$-411]ggge"年"m"月"d"日"',
}
#: the largest sheet Excel makes, and the most cells (the used range, A1 to the last cell
#: holding a value) read into memory
MAX_ROW, MAX_COLUMN = 1_048_576, 16_384
MAX_CELLS = 5_000_000
_ISO_DATE = re.compile(r"(?P<date>(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2}))?T?"
                       r"(?P<time>(?P<hour>\d{2}):(?P<minute>\d{2})(:(?P<second>\d{2})"
                       r"(?P<fraction>\.\d{1,3})?)?)?Z?")
_ISO_DURATION = re.compile(r"PT((?P<hours>\d+)H)?((?P<minutes>\d+)M)?((?P<seconds>\d+(\.\d{1,3})?)S)?")
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


class _RootReached(Exception):
    pass


def _refuse_dtd(data: bytes, part: str) -> None:
    """A DTD (the door to entity expansion; never in a real workbook) comes before the root
    element: expat reads the prolog in whatever encoding the part declares (UTF-16, EBCDIC …,
    where a byte search would miss it) and stops at the root."""
    from xml.parsers import expat

    def doctype(*_):
        raise XlsxError(f"{part} declares a DTD (not allowed in a workbook)")

    def root(*_):
        raise _RootReached

    prolog = expat.ParserCreate()
    prolog.StartDoctypeDeclHandler = doctype
    prolog.StartElementHandler = root
    try:
        prolog.Parse(data, True)
    except (_RootReached, expat.ExpatError):    # malformed XML: the tree's parse says so
        pass


def _tree(data: bytes, part: str):
    """The parsed part (one C-level pass; parts are size-checked before), refused when it
    declares a DTD."""
    _refuse_dtd(data, part)
    return ET.fromstring(data)


def _read(z: zipfile.ZipFile, part: str | None, *, required: bool = True, what: str = "") -> bytes | None:
    try:
        if part:
            return z.read(part)
    except KeyError:
        pass
    if required:
        raise XlsxError(f"{part or what or 'a part'} is missing")
    return None


def _text_of(elem) -> str:
    """The text of a string item (``<si>`` or ``<is>``): its plain ``<t>`` followed by its
    runs' ``<t>``, without the phonetic (``rPh``) runs Japanese Excel adds."""
    t = elem.find(f"{_NS}t")
    plain = (t.text or "") if t is not None else ""
    return plain + "".join((r.findtext(f"{_NS}t") or "") for r in elem.iterfind(f"{_NS}r"))


def _shared_strings(z, part: str | None) -> list[str]:
    """The shared strings (``_x005F_`` escapes undone as openpyxl undoes them)."""
    data = _read(z, part, required=False)
    if data is None:
        return []
    return [_text_of(si).replace("x005F_", "") for si in _tree(data, part).iterfind(f"{_NS}si")]


class _Style(NamedTuple):
    """A ``cellXfs`` entry as the cells need it: its format code, and whether numbers under
    it are dates (and then whether durations)."""

    code: str
    date: bool = False
    elapsed: bool = False


_GENERAL = _Style("General")


def _styles(z, part: str | None) -> list[_Style]:
    """The :class:`_Style` per ``cellXfs`` index (a custom ``numFmt`` of the style sheet's
    ``numFmts`` first — not the differential formats' — then the built-in table, then the
    Japanese built-in dates)."""
    data = _read(z, part, required=False)
    if data is None:
        return [_GENERAL]
    root = _tree(data, part)
    fmts, cell_xfs = root.find(f"{_NS}numFmts"), root.find(f"{_NS}cellXfs")
    custom = {int(el.get("numFmtId", "0")): el.get("formatCode", "")
              for el in (() if fmts is None else fmts.iterfind(f"{_NS}numFmt"))}
    xfs = []
    for xf in (() if cell_xfs is None else cell_xfs.iterfind(f"{_NS}xf")):
        fid = int(xf.get("numFmtId", "0"))
        known = custom[fid] if fid in custom else BUILTIN_FORMATS.get(fid)
        if known is not None:
            date = is_date_format(known)
            xfs.append(_Style(known, date, date and is_elapsed_format(known)))
        elif fid in JA_BUILTIN_DATES:           # openpyxl reads these as General numbers
            xfs.append(_Style(JA_BUILTIN_DATES[fid], True, False))
        else:
            xfs.append(_GENERAL)
    return xfs or [_GENERAL]


_REL_TYPE = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"


def _relationships(z, rels_part: str, base: str) -> list[tuple[str, str, str]]:
    """(id, type, zip member) of each relationship in ``rels_part``, targets resolved
    against the folder ``base`` (absolute ones from the zip's root)."""
    data = _read(z, rels_part, required=False)
    if data is None:
        return []
    out = []
    for el in _tree(data, rels_part).iter(_PKG_REL):
        target = el.get("Target", "")
        member = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(base, target))
        out.append((el.get("Id", ""), el.get("Type", ""), member))
    return out


class _Parts(NamedTuple):
    sheets: dict          # worksheet name → zip member, in the workbook's order (chart sheets left out)
    strings: str | None
    styles: str | None
    epoch: dt.datetime


def _workbook_parts(z) -> _Parts:
    """Where the workbook's parts are, as the package's relationships say (``_rels/.rels`` →
    the workbook → its worksheets, shared strings and styles), and its date epoch."""
    book_part = next((m for _, t, m in _relationships(z, "_rels/.rels", "")
                      if t.endswith("/officeDocument")), "xl/workbook.xml")
    base, name = posixpath.split(book_part)
    rels = _relationships(z, posixpath.join(base, "_rels", name + ".rels"), base)
    by_id = {i: (t, m) for i, t, m in rels}
    first = {t.rsplit("/", 1)[-1]: m for _, t, m in reversed(rels)}
    book = _tree(_read(z, book_part, what="the workbook part"), book_part)
    pr = book.find(f"{_NS}workbookPr")
    epoch = MAC_EPOCH if pr is not None and pr.get("date1904", "").lower() in ("1", "true") else WINDOWS_EPOCH
    sheets = {}
    for el in book.iter(f"{_NS}sheet"):
        kind, member = by_id.get(el.get(_REL_ID), (_REL_TYPE + "worksheet", ""))
        if kind.endswith("/worksheet"):
            sheets[el.get("name", "")] = member
    return _Parts(sheets, first.get("sharedStrings"), first.get("styles"), epoch)


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
    """A ``t="d"`` cell's ISO 8601 text as openpyxl's ``from_ISO8601`` reads it: a date, a
    time or a datetime (an offset after the time is not read), or a ``PT…`` duration; other
    text stays text."""
    m = _ISO_DATE.match(text)
    if m and any(m.groups()):
        g = {k: int(v) if v and k not in ("date", "time", "fraction") else v for k, v in m.groupdict().items()}
        micro = int(float(g["fraction"]) * 1_000_000) if g["fraction"] else 0
        if not g["date"]:
            return dt.time(g["hour"] or 0, g["minute"] or 0, g["second"] or 0, micro)
        if not g["time"]:
            return dt.date(g["year"], g["month"], g["day"])
        return dt.datetime(g["year"], g["month"], g["day"], g["hour"], g["minute"], g["second"] or 0, micro)
    m = _ISO_DURATION.match(text)
    if m and any(m.groups()):
        return dt.timedelta(**{k: float(v) for k, v in m.groupdict().items() if v})
    return text


def _sheet_rows(data: bytes, part: str, book: _Book) -> list[list[Cell]]:
    grid: dict[int, dict[int, tuple]] = {}
    columns: dict[str, int] = {}
    row_no = max_r = max_c = 0
    sheet = _tree(data, part).find(f"{_NS}sheetData")
    for row in (() if sheet is None else sheet.iterfind(f"{_NS}row")):
        row_no = int(row.get("r") or row_no + 1)     # a row without its number follows the last
        if not 1 <= row_no <= MAX_ROW:
            raise XlsxError(f"{part}: row {row_no} is outside a worksheet ({MAX_ROW:,} rows at most)")
        col = 0
        cells = grid.setdefault(row_no, {})
        for c in row.iterfind(f"{_NS}c"):
            ref = c.get("r")
            if ref:
                letters = ref.rstrip("0123456789")
                col = columns.get(letters) or columns.setdefault(letters, _column_index(letters))
            else:                                      # a cell without its reference follows the last
                col += 1
            if not 1 <= col <= MAX_COLUMN:
                raise XlsxError(f"{part}: cell {ref or col} is outside a worksheet (columns A–XFD)")
            cells[col] = value = _cell(c, book)
            if value[0] is not None or value[1] != "n":   # the used range: cells written as data
                max_r, max_c = max(max_r, row_no), max(max_c, col)
    # rows as openpyxl's iter_rows gives them, A1 to the last cell written as data (a value, or
    # a type); rows and columns after it that only carry formatting are left out, where
    # openpyxl would count them; gaps filled
    if max_r * max_c > MAX_CELLS:
        raise XlsxError(f"{part}: the used range A1:{column_letter(max_c)}{max_r} holds {max_r * max_c:,} cells; "
                        f"at most {MAX_CELLS:,} are read")
    letters = [column_letter(j) for j in range(1, max_c + 1)]
    empty = (None, "n", "General")
    out = []
    for r in range(1, max_r + 1):
        cells = grid.get(r, {})
        out.append([Cell(f"{letters[j - 1]}{r}", *cells.get(j, empty)) for j in range(1, max_c + 1)])
    return out


#: what reading a member of a damaged, encrypted (RuntimeError) or oddly compressed
#: (NotImplementedError: a method zipfile lacks) zip raises
_ZIP_FAILURES = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)


def read_workbook(path, *, formulas: bool = True, sheets: int | None = None) -> dict[str, list[list[Cell]]]:
    """sheet name → rows of :class:`Cell` (A1 to the last used cell), in the workbook's
    order. ``formulas=False``: a formula cell gives the value Excel cached for it.
    ``sheets``: read only the first that many. Raises :class:`XlsxError` for a file that is
    not a readable workbook."""
    try:
        with zipfile.ZipFile(path) as z:
            parts = _workbook_parts(z)
            book = _Book(_shared_strings(z, parts.strings), _styles(z, parts.styles), parts.epoch, formulas)
            out = {}
            for name, part in list(parts.sheets.items())[:sheets]:
                out[name] = _sheet_rows(_read(z, part, what=f"the part of sheet {name!r}"), part, book)
            return out
    except (*_ZIP_FAILURES, ET.ParseError, IndexError, ValueError, KeyError, OSError) as exc:   # a damaged part
        if isinstance(exc, XlsxError):
            raise
        raise XlsxError(f"{_why(exc)} ({exc.__class__.__name__}: {exc})") from None


def _why(exc: Exception) -> str:
    """What a low-level failure means for the person holding the file."""
    if isinstance(exc, _ZIP_FAILURES):
        return "the zip is damaged, encrypted or not a zip"
    if isinstance(exc, ET.ParseError):
        return "a part is not well-formed XML"
    if isinstance(exc, IndexError):
        return "a cell refers to a shared string or style that is not there"
    if isinstance(exc, ValueError):
        return "a cell's value does not match its type"
    return "a part cannot be read"
