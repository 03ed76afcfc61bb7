"""The Shapefile's main (.shp) and index (.shx) files: record counts, checked before GDAL reads.

A .shp cut short (a failed copy, an interrupted download) still opens: GDAL returns the
records it can read, and a plan made from it silently lacks town-blocks. So the three
files must agree before anything is read:

- .shx: 100-byte header, then one 8-byte entry per record (offset and content length,
  big-endian, in 16-bit words), so ``records = (size − 100) / 8``;
- .shp: 100-byte header (file code 9994, file length in words at byte 24), then each
  record's 8-byte header and content at the offset the .shx gives;
- .dbf: the record count of its header (:mod:`subdivide.io.dbf`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SHP_FILE_CODE = 9994
HEADER_BYTES = 100


@dataclass(frozen=True)
class ShapeCounts:
    """What the .shp/.shx hold: index entries, records whose bytes are all present, sizes."""

    index_records: int      # entries in the .shx
    complete_records: int   # entries whose record lies wholly inside the .shp
    shp_bytes: int          # actual size of the .shp
    shp_declared_bytes: int  # file length its header declares
    first_missing: int | None  # 0-based record number of the first incomplete record


class ShapefileError(ValueError):
    """The .shp/.shx are not sane (the message says why)."""


def shape_counts(shx: bytes, shp_head: bytes, shp_size: int) -> ShapeCounts:
    """Count the records of a Shapefile from its whole .shx and the first 100 bytes of its .shp."""
    for name, head in ((".shx", shx), (".shp", shp_head)):
        if len(head) < HEADER_BYTES or int.from_bytes(head[:4], "big") != SHP_FILE_CODE:
            raise ShapefileError(f"the {name} has no valid Shapefile header (file code {SHP_FILE_CODE})")
    n = (len(shx) - HEADER_BYTES) // 8
    entries = np.frombuffer(shx, dtype=">i4", count=2 * n, offset=HEADER_BYTES).reshape(n, 2).astype(np.int64)
    ends = (entries[:, 0] + 4 + entries[:, 1]) * 2
    ok = ends <= shp_size
    missing = np.flatnonzero(~ok)
    return ShapeCounts(index_records=int(n), complete_records=int(ok.sum()), shp_bytes=int(shp_size),
                       shp_declared_bytes=int.from_bytes(shp_head[24:28], "big") * 2,
                       first_missing=int(missing[0]) if len(missing) else None)


def count_problem(counts: ShapeCounts, dbf_records: int) -> str | None:
    """Why the .shp/.shx/.dbf disagree (None when they agree)."""
    if counts.complete_records < counts.index_records or counts.shp_bytes < counts.shp_declared_bytes:
        return (f"the .shp is truncated: it is {counts.shp_bytes:,} bytes but its header declares "
                f"{counts.shp_declared_bytes:,}, and only {counts.complete_records:,} of the "
                f"{counts.index_records:,} indexed records are complete"
                + (f" (record {counts.first_missing + 1} onwards is missing)" if counts.first_missing is not None
                   else ""))
    if counts.index_records != dbf_records:
        return (f"the .shx indexes {counts.index_records:,} records but the .dbf holds {dbf_records:,} "
                "(one of the files is truncated or belongs to another Shapefile)")
    return None
