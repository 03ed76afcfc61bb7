"""Reading the cells of an .xlsx workbook, as a carrier's validator needs them.

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
  custom ``numFmts`` or the built-in table as far as ``@`` (49) and ``General`` (0) matter).

Rows are returned as a rectangle from A1 to the last used cell, empty cells filled as
openpyxl fills them (value None, ``data_type "n"``, format ``General``).

Safety: the caller checks the zip first (``io.safezip.check_nested_zip``: sizes, ratio,
nesting); a part holding a DTD (``<!DOCTYPE``, never in a real workbook; the door to entity
expansion) is refused, and expat ≥ 2.4 bounds entity amplification anyway.
"""
from __future__ import annotations

import posixpath
import zipfile
from typing import NamedTuple
from xml.etree import ElementTree as ET

_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_REL_ID = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"
_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"
#: built-in number formats that matter here (ECMA-376 §18.8.30): the rest are not text
BUILTIN_FORMATS = {0: "General", 49: "@"}


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


def _formats(z) -> list[str]:
    """number format code per ``cellXfs`` index."""
    data = _read(z, "xl/styles.xml", required=False)
    if data is None:
        return ["General"]
    root = _tree(data, "xl/styles.xml")
    custom = {int(el.get("numFmtId", "0")): el.get("formatCode", "") for el in root.iter(f"{_NS}numFmt")}
    xfs = []
    for cell_xfs in root.iter(f"{_NS}cellXfs"):
        for xf in cell_xfs.iterfind(f"{_NS}xf"):
            fid = int(xf.get("numFmtId", "0"))
            xfs.append(custom.get(fid, BUILTIN_FORMATS.get(fid, f"builtin {fid}")))
    return xfs or ["General"]


def _sheet_parts(z) -> dict[str, str]:
    """sheet name → zip member of its worksheet, in the workbook's order."""
    rels = {}
    for el in _tree(_read(z, "xl/_rels/workbook.xml.rels"), "xl/_rels/workbook.xml.rels").iter(_PKG_REL):
        target = el.get("Target", "")
        rels[el.get("Id")] = (target.lstrip("/") if target.startswith("/")
                              else posixpath.normpath(posixpath.join("xl", target)))
    return {el.get("name", ""): rels.get(el.get(_REL_ID), "")
            for el in _tree(_read(z, "xl/workbook.xml"), "xl/workbook.xml").iter(f"{_NS}sheet")}


def _number(text: str):
    """openpyxl's cast: an int unless the text has a point or an exponent."""
    if "." in text or "E" in text or "e" in text:
        return float(text)
    return int(text)


_F, _V, _IS = f"{_NS}f", f"{_NS}v", f"{_NS}is"


def _cell(c, strings: list[str], formats: list[str]) -> tuple[object, str, str]:
    """(value, data_type, number_format) of a ``<c>`` element."""
    t = c.get("t", "n")
    style = int(c.get("s") or 0)
    fmt = formats[style] if 0 <= style < len(formats) else "General"
    f = v = is_ = None
    for child in c:
        tag = child.tag
        if tag == _F:
            f = child
        elif tag == _V:
            v = child.text
        elif tag == _IS:
            is_ = child
    if f is not None:
        return "=" + (f.text or ""), "f", fmt
    if t == "inlineStr":       # as openpyxl: 's' with its text, 'inlineStr' without one
        return (None, "inlineStr", fmt) if is_ is None else (_text_of(is_), "s", fmt)
    if v is None:
        return None, ("s" if t in ("s", "str") else t), fmt
    if t == "s":
        return strings[int(v)], "s", fmt
    if t == "str":
        return v, "s", fmt
    if t == "b":
        return bool(int(v)), "b", fmt
    if t == "e":
        return v, "e", fmt
    return _number(v), "n", fmt


def _sheet_rows(data: bytes, part: str, strings, formats) -> list[list[Cell]]:
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
            cells[col] = _cell(c, strings, formats)
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


def read_workbook(path) -> dict[str, list[list[Cell]]]:
    """sheet name → rows of :class:`Cell` (A1 to the last used cell). Raises
    :class:`XlsxError` for a file that is not a readable workbook."""
    try:
        with zipfile.ZipFile(path) as z:
            strings = _shared_strings(z)
            formats = _formats(z)
            out = {}
            for name, part in _sheet_parts(z).items():
                out[name] = _sheet_rows(_read(z, part), part, strings, formats)
            return out
    except (zipfile.BadZipFile, ET.ParseError, IndexError, ValueError, KeyError, OSError) as exc:
        if isinstance(exc, XlsxError):
            raise
        raise XlsxError(f"{exc.__class__.__name__}: {exc}") from None
