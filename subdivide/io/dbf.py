"""dBase (.dbf) header: the language-driver byte and a sanity check before GDAL reads it.

Layout (dBase III+/IV as written by GDAL and e-Stat): byte 0 version, bytes 1–3 date of
last update (YY-1900, MM, DD), 4–7 record count (uint32 LE), 8–9 header length,
10–11 record length, 29 language driver id (LDID; 0x13 = Japanese Shift-JIS / CP932),
then 32-byte field descriptors (name 11 bytes NUL-padded, type at 11, length at 16),
closed by 0x0D. Records follow, each starting with a deletion flag byte; an optional
0x1A ends the file.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

LDID_OFFSET = 29
DATE_OFFSET = 1
LDID_CP932 = 0x13
FIELD_TYPES = set(b"CNFLDMIBT@O+Y0G")

#: refuse DBF files larger than this many records (a municipality has a few thousand)
MAX_RECORDS = 2_000_000
MAX_FIELDS = 255


@dataclass(frozen=True)
class DbfField:
    name: str
    type: str
    length: int
    decimals: int


@dataclass(frozen=True)
class DbfHeader:
    version: int
    date: tuple[int, int, int]
    n_records: int
    header_length: int
    record_length: int
    ldid: int
    fields: tuple[DbfField, ...]


class DbfError(ValueError):
    """The file is not a sane dBase table (message says why)."""


def read_dbf_header(path: str | Path, *, max_records: int = MAX_RECORDS) -> DbfHeader:
    """Parse and sanity-check a DBF header without trusting any count in it.

    Raises :class:`DbfError` when the header is truncated, a field descriptor is
    malformed, the record length disagrees with the fields, the record count exceeds
    ``max_records``, or the file size does not match ``header + n × record`` (± EOF byte).
    """
    p = Path(path)
    size = p.stat().st_size
    with open(p, "rb") as f:
        head = f.read(32)
        if len(head) < 32:
            raise DbfError(f"{p.name}: {size} bytes, shorter than a dBase header (32)")
        version, yy, mm, dd, n_rec, hdr_len, rec_len = struct.unpack("<BBBBIHH", head[:12])
        if version & 0x07 not in (3, 4):
            raise DbfError(f"{p.name}: version byte 0x{version:02x} is not dBase III/IV")
        if n_rec > max_records:
            raise DbfError(f"{p.name}: header claims {n_rec} records, more than the limit {max_records}")
        if hdr_len < 33 or (hdr_len - 33) // 32 > MAX_FIELDS:
            raise DbfError(f"{p.name}: header length {hdr_len} is impossible")
        if hdr_len > size:
            raise DbfError(f"{p.name}: header length {hdr_len} exceeds the file size {size}")
        desc = f.read(hdr_len - 32)
    fields = _parse_fields(desc, p.name)
    if rec_len != 1 + sum(fd.length for fd in fields):
        raise DbfError(f"{p.name}: record length {rec_len} ≠ 1 + sum of field lengths "
                       f"({1 + sum(fd.length for fd in fields)})")
    expected = hdr_len + n_rec * rec_len
    if size not in (expected, expected + 1):
        raise DbfError(f"{p.name}: file is {size} bytes but the header implies {expected} "
                       f"({n_rec} records × {rec_len} bytes + {hdr_len})")
    return DbfHeader(version, (1900 + yy, mm, dd), n_rec, hdr_len, rec_len, head[LDID_OFFSET],
                     tuple(fields))


def _parse_fields(desc: bytes, name: str) -> list[DbfField]:
    """The 32-byte field descriptors up to the 0x0D terminator (DbfError when malformed)."""
    fields: list[DbfField] = []
    off = 0
    while off < len(desc) and desc[off] != 0x0D:
        d = desc[off:off + 32]
        if len(d) < 32:
            raise DbfError(f"{name}: field descriptor {len(fields) + 1} is truncated (no 0x0D terminator)")
        raw_name = d[:11].split(b"\x00", 1)[0]
        if not raw_name or any(c < 0x20 or c == 0x7F for c in raw_name):
            raise DbfError(f"{name}: field {len(fields) + 1} has an empty or control-character name {raw_name!r}")
        if d[11] not in FIELD_TYPES:
            raise DbfError(f"{name}: field {raw_name!r} has unknown type {bytes([d[11]])!r}")
        if d[16] == 0:
            raise DbfError(f"{name}: field {raw_name!r} has length 0")
        fields.append(DbfField(raw_name.decode("latin-1"), chr(d[11]), d[16], d[17]))
        off += 32
    if off >= len(desc):
        raise DbfError(f"{name}: field descriptors are not terminated by 0x0D")
    if not fields:
        raise DbfError(f"{name}: no fields")
    return fields


def patch_dbf_header(path: str | Path, *, ldid: int, date: tuple[int, int, int] = (2000, 1, 1)) -> None:
    """Set the LDID byte and the last-update date in place.

    GDAL writes a .cpg for ``encoding="cp932"`` but leaves LDID 0 and stamps today's date;
    carriers' older tools read the LDID, and the date would make outputs differ day to day.
    """
    y, m, d = date
    with open(path, "r+b") as f:
        f.seek(DATE_OFFSET)
        f.write(bytes([y - 1900, m, d]))
        f.seek(LDID_OFFSET)
        f.write(bytes([ldid]))


def read_character_fields(path: str | Path, header: DbfHeader) -> dict[str, list[bytes]]:
    """Raw bytes (right-stripped of spaces) of every character field, per field name."""
    char = [(i, fd) for i, fd in enumerate(header.fields) if fd.type == "C"]
    offsets, pos = [], 1
    for fd in header.fields:
        offsets.append(pos)
        pos += fd.length
    out: dict[str, list[bytes]] = {fd.name: [] for _, fd in char}
    with open(path, "rb") as f:
        f.seek(header.header_length)
        data = f.read(header.n_records * header.record_length)
    for r in range(header.n_records):
        rec = data[r * header.record_length:(r + 1) * header.record_length]
        for i, fd in char:
            out[fd.name].append(rec[offsets[i]:offsets[i] + fd.length].rstrip(b" \x00"))
    return out


def rewrite_field(path: str | Path, name: str, values, *, encoding: str = "cp932", as_text: bool = True) -> None:
    """Overwrite one field of every record in place (``values``: one str/number per record,
    ``None`` keeps a record's value); with ``as_text`` the field becomes a character field (C).

    For building test fixtures that mimic a re-exported file (counts as text with e-Stat
    marks, edited names). Values longer than the field are refused, never truncated."""
    header = read_dbf_header(path)
    fields = {fd.name: i for i, fd in enumerate(header.fields)}
    if name not in fields:
        raise DbfError(f"{Path(path).name}: no field {name!r} (has {', '.join(fields)})")
    idx = fields[name]
    fd = header.fields[idx]
    offset = 1 + sum(f.length for f in header.fields[:idx])
    values = list(values)
    if len(values) != header.n_records:
        raise DbfError(f"{len(values)} values for {header.n_records} records")
    with open(path, "r+b") as f:
        if as_text:
            f.seek(32 + 32 * idx + 11)
            f.write(b"C")
            f.seek(32 + 32 * idx + 17)
            f.write(b"\x00")
        for r, v in enumerate(values):
            if v is None:
                continue
            raw = str(v).encode(encoding)
            if len(raw) > fd.length:
                raise DbfError(f"value {v!r} is longer than field {name} ({fd.length} bytes)")
            cell = raw.ljust(fd.length) if as_text else raw.rjust(fd.length)
            f.seek(header.header_length + r * header.record_length + offset)
            f.write(cell)
