"""Carrier package profiles: file names, field names and encodings as a TOML file.

The carriers' exact layout is not public, so :mod:`subdivide.carrier.package` and
:mod:`subdivide.carrier.validation` take everything layout-related from a :class:`Profile`.
The default ships as ``subdivide/carrier/profiles/default.toml``; a user profile only needs the
keys it changes (it is merged over the default).

>>> p = load_profile()
>>> p.townblock_fields["key"], p.shapefile["ldid"]
('KEY_CODE', 19)
"""
from __future__ import annotations

import codecs
import copy
import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from subdivide.core.errors import UserError

DEFAULT_PROFILE = Path(__file__).with_name("default.toml")

#: canonical names every profile must map (value = profile section)
REQUIRED = {
    ("shapefile", "townblock_fields"): ("key", "name", "subarea", "subarea_name", "subarea_code", "population"),
    ("shapefile", "subarea_fields"): ("subarea", "name", "code", "code6", "display_order", "n_blocks",
                                      "population", "area_km2"),
    ("lists", "subarea_columns"): ("code", "code6", "name", "display_order", "subarea", "n_blocks",
                                   "population", "area_km2"),
    ("lists", "townblock_columns"): ("key", "name", "subarea", "subarea_code", "subarea_name"),
}
MAX_DBF_FIELD_BYTES = 10


@dataclass(frozen=True)
class Profile:
    """A parsed, checked profile. ``data`` is the merged TOML as a dict."""

    data: dict
    source: str

    @property
    def name(self) -> str:
        return str(self.data["profile"]["name"])

    @property
    def shapefile(self) -> dict:
        return self.data["shapefile"]

    @property
    def townblock_fields(self) -> dict[str, str]:
        return self.data["shapefile"]["townblock_fields"]

    @property
    def subarea_fields(self) -> dict[str, str]:
        return self.data["shapefile"]["subarea_fields"]

    @property
    def geopackage(self) -> dict:
        return self.data["geopackage"]

    @property
    def lists(self) -> dict:
        return self.data["lists"]

    @property
    def extras(self) -> dict:
        return self.data["extras"]

    @property
    def require_manifest(self) -> bool:
        """``[validation] require_manifest``: a package without manifest.json fails validation
        (MANIFEST-MISSING is an error) instead of being checked with a warning."""
        return bool(self.data.get("validation", {}).get("require_manifest", False))

    @property
    def sha256(self) -> str:
        """Digest of the merged profile (canonical JSON), recorded in the manifest."""
        blob = json.dumps(self.data, sort_keys=True, ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise UserError(f"profile {path} does not exist", where=str(path),
                        fix="pass an existing TOML file to --profile, or leave it out for the default") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"profile {path} is not valid TOML: {exc}", where=str(path),
                        fix="start from subdivide/carrier/profiles/default.toml") from None


def load_profile(path: str | Path | None = None) -> Profile:
    """The default profile, or ``path`` merged over it; checked (UserError if unusable)."""
    data = _read_toml(DEFAULT_PROFILE)
    source = "default"
    if path is not None:
        data = _merge(data, _read_toml(Path(path)))
        source = str(path)
    check_profile(data, where=source)
    return Profile(data=data, source=source)


def check_profile(data: dict, *, where: str = "profile") -> None:
    """Raise UserError when a profile cannot produce a valid package."""
    _check_columns(data, where)
    _check_encodings(data, where)
    _check_file_names(data, where)
    _check_validation(data, where)


def _check_validation(data: dict, where: str) -> None:
    section = data.get("validation", {})
    if not isinstance(section, dict):
        raise UserError("[validation] must be a table", where=where, fix="e.g. [validation] require_manifest = true")
    value = section.get("require_manifest", False)
    if not isinstance(value, bool):
        raise UserError(f"[validation] require_manifest must be true or false, got {value!r}", where=where,
                        fix="write require_manifest = true (or false)")


def _check_columns(data: dict, where: str) -> None:
    for (sec, sub), names in REQUIRED.items():
        mapping = data.get(sec, {}).get(sub, {})
        missing = [n for n in names if not mapping.get(n)]
        if missing:
            raise UserError(f"profile section [{sec}.{sub}] lacks {missing}", where=where,
                            fix="copy the section from subdivide/carrier/profiles/default.toml")
        values = [str(mapping[n]) for n in names]
        if len(set(values)) != len(values):
            raise UserError(f"profile section [{sec}.{sub}] maps two names to the same column", where=where)
        if sec == "shapefile":
            bad = [v for v in values if not v.isascii() or len(v.encode()) > MAX_DBF_FIELD_BYTES or not v]
            if bad:
                raise UserError(f"Shapefile field names must be ASCII and at most 10 bytes: {bad}",
                                where=f"{where} [{sec}.{sub}]", fix="shorten or transliterate them")


def _check_encodings(data: dict, where: str) -> None:
    for sec, key in (("shapefile", "encoding"), ("lists", "encoding")):
        enc = data.get(sec, {}).get(key)
        try:
            codecs.lookup(str(enc))
        except LookupError:
            raise UserError(f"unknown encoding {enc!r} in [{sec}] {key}", where=where,
                            fix="use CP932 (Shapefile) or utf-8-sig / cp932 (lists)") from None
    ldid = data.get("shapefile", {}).get("ldid")
    if not isinstance(ldid, int) or not 0 <= ldid <= 255:
        raise UserError(f"[shapefile] ldid must be a byte (0–255), got {ldid!r}", where=where)


def _check_file_names(data: dict, where: str) -> None:
    for sec, keys in (("shapefile", ("townblocks", "subareas")), ("geopackage", ("file",)),
                      ("lists", ("subareas_csv", "townblocks_csv", "xlsx")),
                      ("extras", ("spill_dir", "map", "manifest"))):
        for k in keys:
            v = str(data.get(sec, {}).get(k, ""))
            if not v or "/" in v or "\\" in v or v.startswith(".") or not v.isascii():
                raise UserError(f"[{sec}] {k} = {v!r} must be a plain ASCII file name", where=where)
