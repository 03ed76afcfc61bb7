"""Carrier-side validation of a received package (``subdivide validate PACKAGE``).

:func:`validate_package` stages the package with :func:`subdivide.io.safezip.stage_package`
(zip path traversal, symlinks, bombs … rejected before extraction), then checks, in order:
manifest and checksums; Shapefile parts, .cpg, LDID, DBF header, field names and text
encoding; CSV and XLSX lists; the GeoPackage; Shapefile ↔ list consistency and every
town-block exactly once; sub-area numbers, 「●●地域」 names, codes and check digits and
display order; the 14 sub-area limit; geometry (validity, overlaps, and gaps against a
municipal outline when one is given); contiguity; spill thresholds; and, given the
carrier's coverage polygons, the carrier's footprint report.

Every problem is a :class:`~subdivide.core.findings.Finding` with a stable rule id (the table
in docs/validation.md, and :data:`RULES` here) and its rule's fix line; the messages are
templates of the message catalogue, so :meth:`ValidationReport.render` gives them in English
or Japanese. The report's :attr:`ValidationReport.status` is 0 clean (no errors), 1 errors
found, 2 unreadable (the package was rejected unread).

A package without manifest.json (made in QGIS) is checked with a MANIFEST-MISSING warning
(an error when the profile sets ``[validation] require_manifest``), and its island
exceptions are inferred from the geometry (:func:`island_parts`, CONTIGUITY-ISLAND-INFERRED).
"""
from __future__ import annotations

import codecs
import csv
import errno
import os
import tempfile
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from subdivide.core.constants import DEFAULT_DISTANCES_KM, DEFAULT_TARGET_SHARE, MAX_SUBAREAS
from subdivide.core.codes import check_digit, with_check_digit
from subdivide.core.crs import PREF_NAMES, PREF_ZONE
from subdivide.io.dbf import DbfError, read_character_fields, read_dbf_header
from subdivide.core.errors import UserError
from subdivide.core.findings import Finding
from subdivide.core.rules import RULES as CORE_RULES
from subdivide.io.output import FORMULA_PREFIXES, sha256_file, unneutralise_cell
from subdivide.carrier.package import PACKAGE_FORMAT, PACKAGE_FORMAT_VERSION, SHAPEFILE_PARTS
from subdivide.carrier.profiles import Profile, load_profile
from subdivide.io.readers import read_outline
from subdivide.model.reach import spill_territory
from subdivide.core.names import NAME_RULE, name_problem, name_problems, visible
from subdivide.io.safezip import (DEFAULT_LIMITS, Limits, PackageRejected, _package_root, check_nested_zip,
                                  stage_package)

#: rule id → (default severity, one-line description): a view of the one rule vocabulary,
#: :data:`subdivide.core.rules.RULES` (docs/validation.md lists the same)
#: (the rules only planning raises — area floor, nesting, mapping notes — are not the validator's)
RULES: dict[str, tuple[str, str]] = {r.id: (r.severity, r.description) for r in CORE_RULES.values()
                                     if r.stage not in ("plan", "planning")}

#: rules that mean the package could not be read at all (status 2)
FATAL_RULES = frozenset(r for r, (sev, _) in RULES.items()
                        if sev == "error" and (r.startswith(("PKG-", "ZIP-", "DIR-")) or r == "DBF-HEADER"))

AREA_REL_TOL = 1e-3          # relative area tolerance (sub-area totals, dissolved vs union)
OVERLAP_MIN_M2 = 1.0         # overlaps smaller than this (m²) are numerical noise
OUTLINE_REL_TOL = 5e-3       # gaps / outside parts below this share of the outline are ignored
UNDER_ALERT_WARN = 0.01      # footprint leaving more than this share of a sub-area unalerted: warning


@dataclass
class ValidationReport:
    """Findings of one validation run; ``status`` 0 clean, 1 errors, 2 unreadable."""

    package: str
    findings: list[Finding] = field(default_factory=list)
    readable: bool = True
    manifest: dict | None = None
    footprint: dict | None = None
    profile: str = "default"
    summary: dict | None = None   # muni_code, n_townblocks, population, subareas (for the registry)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def status(self) -> int:
        if not self.readable:
            return 2
        return 1 if self.errors else 0

    def rules(self) -> set[str]:
        return {f.rule for f in self.findings}

    def to_dict(self) -> dict:
        counts = {s: sum(f.severity == s for f in self.findings) for s in ("error", "warning", "info")}
        d = {"package": self.package, "profile": self.profile, "readable": self.readable,
             "status": self.status, "counts": counts,
             "municipality": (self.manifest or {}).get("municipality"),
             "findings": [{**f.to_dict(), "fix": CORE_RULES[f.rule].fix if f.rule in CORE_RULES else ""}
                          for f in self.findings]}
        if self.footprint:
            d["footprint"] = {k: json.loads(v.to_json(orient="records", force_ascii=False))
                              for k, v in self.footprint.items()}
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"

    def table(self) -> str:
        """Human-readable table: one line per finding, then a verdict."""
        rows = [("SEVERITY", "RULE", "MESSAGE", "FEATURES")]
        for f in self.findings:
            feats = ", ".join(f.features[:5]) + (f" (+{len(f.features) - 5})" if len(f.features) > 5 else "")
            rows.append((f.severity.upper(), f.rule, f.message, feats))
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        lines = [f"{a:<{w0}}  {b:<{w1}}  {c}" + (f"  [{d}]" if d else "") for a, b, c, d in rows]
        verdict = {0: "CLEAN", 1: "ERRORS FOUND", 2: "UNREADABLE"}[self.status]
        n = self.to_dict()["counts"]
        lines.append(f"{verdict}: {n['error']} errors, {n['warning']} warnings, {n['info']} notes "
                     f"— {self.package}")
        return "\n".join(lines if self.findings else lines[1:])

    def render(self, lang: str = "en") -> str:
        """The findings for people, in ``lang`` (``en`` or ``ja``): per finding a line
        ``SEVERITY RULE: message [features]`` and the rule's fix line under it (``fix:`` /
        ``対処:``). The verdict line is the caller's (``subdivide validate`` names the
        municipality in it)."""
        from subdivide.core.i18n import render_finding

        return "\n".join(render_finding(visible_finding(f), lang) for f in self.findings)


def visible_finding(f: Finding) -> Finding:
    """A finding for a terminal: its message and features through :func:`~subdivide.core.names.visible`."""
    return Finding(f.rule, f.severity, visible(f.message), tuple(visible(x) for x in f.features))


class _Check:
    """Collects findings; ``add`` uses the rule's default severity."""

    def __init__(self):
        self.findings: list[Finding] = []
        self.crs_seen: list = []   # (file, CRS) of every Shapefile read, for the zone check

    def add(self, rule: str, message: str, features=(), severity: str | None = None) -> None:
        sev = severity or RULES[rule][0]
        self.findings.append(Finding(rule, sev, message, tuple(str(x) for x in features)))

    def file_missing(self, name: str, message: str) -> None:
        """``MANIFEST-FILE-MISSING`` for ``name``, unless the manifest check already said so."""
        if not any(f.rule == "MANIFEST-FILE-MISSING" and name in f.features for f in self.findings):
            self.add("MANIFEST-FILE-MISSING", message, [name])


#: OS errors that are the environment's fault, not the package's: reported as errors (exit 2)
ENVIRONMENT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENAMETOOLONG, errno.EMFILE,
                                errno.EIO, errno.ENOMEM})


def _environment_fault(exc: OSError) -> OSError | None:
    """The OSError to report when ``exc`` is the environment's fault (also inside the list of a
    ``shutil.Error`` raised while staging the package into the temporary folder)."""
    if exc.errno in ENVIRONMENT_ERRNOS:
        return exc
    for code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EMFILE, errno.ENOMEM):
        if f"[Errno {code}]" in str(exc):  # (not ENAMETOOLONG: a member's name is the package's fault)
            return OSError(code, os.strerror(code), tempfile.gettempdir())
    return None


def check_threshold_options(spill_km, target_share) -> None:
    """The validator's own options: finite, positive distances; a share in (0, 1]."""
    for d in (spill_km or ()):
        try:
            x = float(d)
        except (TypeError, ValueError):
            raise UserError(f"--spill-km {d!r} is not a number", where="--spill-km", fix="e.g. --spill-km 2,2.5,3") from None
        if not np.isfinite(x) or not 0 < x <= 50:
            raise UserError(f"--spill-km {d!r}: spill distances are 0–50 km", where="--spill-km",
                            fix="e.g. --spill-km 2,2.5,3 (the 2016–17 trial measured 1.6–3.3 km)")
    if target_share is not None and (not np.isfinite(float(target_share)) or not 0 < float(target_share) <= 1):
        raise UserError(f"--target-share {target_share!r} must be a share in (0, 1]", where="--target-share",
                        fix="e.g. --target-share 0.5")


# ============================================================================ entry point
def validate_package(path, *, profile: Profile | str | None = None, outline=None, coverage=None,
                     coverage_selection: str | None = None, limits: Limits = DEFAULT_LIMITS,
                     spill_km=None, target_share: float | None = None) -> ValidationReport:
    """Validate a package directory or zip. Never raises for a bad package: problems become
    findings (a rejected package gives ``readable=False``, status 2).

    ``outline``: GeoDataFrame / GeoSeries / shapely geometry / path of the municipal
    outline (gaps and overlaps are checked against it). ``coverage``: the carrier's
    coverage polygons (path or GeoDataFrame) for the footprint report.
    ``spill_km`` / ``target_share`` override the thresholds (default: the package's
    spill summary, else 2, 2.5, 3 km and 0.5).
    """
    check_threshold_options(spill_km, target_share)
    prof = profile if isinstance(profile, Profile) else load_profile(profile)
    report = ValidationReport(package=str(path), profile=prof.name)
    c = _Check()
    notes: list[Finding] = []
    try:
        with stage_package(path, limits=limits, manifest_name=prof.extras["manifest"], notes=notes) as root:
            c.findings.extend(notes)
            root = _root_without_manifest(root, prof, c)
            _validate_root(root, prof, c, report, outline=outline, coverage=coverage,
                           coverage_selection=coverage_selection, limits=limits,
                           spill_km=spill_km, target_share=target_share)
    except PackageRejected as exc:
        env = _environment_fault(OSError(" ".join(f.message for f in exc.findings)))
        if env is not None:  # "cannot be extracted: No space left": the temporary folder, not the zip
            raise env from None
        c.findings.extend(exc.findings)
    except UserError:
        raise          # a problem with the validator's own inputs (outline, coverage, profile)
    except OSError as exc:
        env = _environment_fault(exc)
        if env is not None:
            raise env from None  # the machine's fault (full disk or TMPDIR, read-only, long name): exit 2
        c.add("INTERNAL-ERROR", f"the package could not be checked completely ({exc.__class__.__name__}: "
              f"{str(exc)[:200]}); treat it as failing and report this to the subdivide maintainers")
    except Exception as exc:  # hostile input must never end in a traceback
        c.add("INTERNAL-ERROR", f"the package could not be checked completely ({exc.__class__.__name__}: "
              f"{str(exc)[:200]}); treat it as failing and report this to the subdivide maintainers")
    report.findings = _sorted(c.findings)
    report.readable = not any(f.rule in FATAL_RULES for f in report.findings)
    return report


def _root_without_manifest(root: Path, prof: Profile, c: _Check) -> Path:
    """A package without a manifest zipped as one folder (Explorer's 「送る → 圧縮フォルダー」 of a
    folder exported from QGIS): that folder, when it holds the town-block Shapefile, with the
    same PKG-NESTED-FOLDER note a package with a manifest gets (the staging's own rule, with
    the Shapefile for the manifest). Otherwise ``root``."""
    if (root / prof.extras["manifest"]).is_file():
        return root
    return _package_root(root, f"{prof.shapefile['townblocks']}.shp", c.findings)


def _sorted(findings: list[Finding]) -> list[Finding]:
    rank = {"error": 0, "warning": 1, "info": 2}
    return sorted(findings, key=lambda f: (rank.get(f.severity, 3), f.rule, f.features, f.message))


def _validate_root(root: Path, prof: Profile, c: _Check, report: ValidationReport, *, outline, coverage,
                   coverage_selection, limits, spill_km, target_share) -> None:
    manifest = check_manifest(root, prof, c)
    report.manifest = manifest
    muni = _manifest_muni(manifest)
    csv_enc = ((manifest or {}).get("options") or {}).get("csv_encoding") or prof.lists["encoding"]
    sp = prof.shapefile
    tb = read_shapefile_checked(root, sp["townblocks"], prof.townblock_fields, prof, c,
                                text_fields=("key", "name", "subarea_name", "subarea_code"),
                                int_fields=("subarea", "population"), muni=muni, code_field="key")
    sa = read_shapefile_checked(root, sp["subareas"], prof.subarea_fields, prof, c,
                                text_fields=("name", "code", "code6"),
                                int_fields=("subarea", "display_order", "n_blocks", "population"),
                                float_fields=("area_km2",), muni=muni, code_field="code")
    if any(f.rule in FATAL_RULES for f in c.findings):
        return
    lp = prof.lists
    sub_csv = read_csv_checked(root / lp["subareas_csv"], lp["subarea_columns"], csv_enc, c)
    blk_csv = read_csv_checked(root / lp["townblocks_csv"], lp["townblock_columns"], csv_enc, c)
    xlsx = read_xlsx_checked(root / lp["xlsx"], prof, c, limits)
    check_geopackage(root, prof, tb, sa, c)
    if tb is None or sa is None:
        return
    if muni is None:
        muni = _infer_muni(tb)
    report.summary = package_summary(tb, sa, muni)
    check_prj_zone(c, muni)
    check_townblocks(tb, blk_csv, xlsx, muni, c)
    check_subareas(tb, sa, sub_csv, xlsx, muni, c, headers=prof.lists["subarea_columns"])
    tiled = check_geometry(tb, sa, c, outline=outline)    # the blocks form a valid coverage
    # the manifest's island exceptions; without a manifest, those the geometry shows
    exceptions = check_contiguity(tb, None if manifest is None else set(manifest.get("island_exceptions") or []), c,
                                  tiled=tiled)
    check_spill(root, sa, prof, c, spill_km=spill_km, target_share=target_share)
    if coverage is not None:
        report.footprint = check_coverage(tb, sa, muni, exceptions, coverage, coverage_selection, c)


# ============================================================================ manifest
REQUIRED_MANIFEST_KEYS = ("format", "format_version", "tool_version", "municipality", "outputs")


def _safe_rel(p: str) -> bool:
    pp = PurePosixPath(p)
    return bool(p) and not pp.is_absolute() and ".." not in pp.parts and "\\" not in p


def _load_manifest(root: Path, mname: str, c: _Check, *, required: bool = False) -> dict | None:
    """The manifest as a dict with the required keys, or None (with a finding) when it is
    missing, not UTF-8 JSON, or lacks required keys. A missing manifest is a warning (a
    package made in QGIS has none), an error when the profile requires one or when it lies
    deeper in the package (zipped one folder too deep)."""
    mpath = root / mname
    if not mpath.is_file():
        deeper = sorted(p.relative_to(root).as_posix() for p in root.rglob(mname) if p.is_file())[:5]
        if deeper:
            c.add("MANIFEST-MISSING", f"{mname} is missing at the package root (found {', '.join(deeper)}: zip "
                  "the package folder itself, flat or as one top-level folder)", [mname, *deeper], severity="error")
        elif required:
            c.add("MANIFEST-MISSING", f"{mname} is missing and the profile requires it: checksums cannot be "
                  "verified", [mname], severity="error")
        else:
            c.add("MANIFEST-MISSING", f"{mname} is missing (a package made without subdivide, e.g. in QGIS): "
                  "checksums cannot be verified, and island exceptions are inferred from the geometry",
                  [mname], severity="warning")
        return None
    try:
        man = json.loads(mpath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        c.add("MANIFEST-INVALID", f"{mname} is not valid UTF-8 JSON ({exc.__class__.__name__})", [mname])
        return None
    if not isinstance(man, dict) or any(k not in man for k in REQUIRED_MANIFEST_KEYS) \
            or not isinstance(man.get("outputs"), list) or not isinstance(man.get("municipality"), dict):
        missing = [k for k in REQUIRED_MANIFEST_KEYS if not isinstance(man, dict) or k not in man]
        c.add("MANIFEST-INVALID", f"{mname} lacks required keys or has the wrong types: {missing}", [mname])
        return None
    return man


def _check_manifest_optional_types(man: dict, mname: str, c: _Check) -> None:
    """Optional keys of the wrong type are reported and then treated as absent (in place),
    so the other checks still run; non-string island exceptions are dropped."""
    for key, typ, label in (("options", dict, "an object"), ("profile", dict, "an object"),
                            ("island_exceptions", list, "a list of town-block keys")):
        if man.get(key) is not None and not isinstance(man[key], typ):
            c.add("MANIFEST-INVALID", f"{mname}: {key!r} must be {label}, not {type(man[key]).__name__}", [key])
            man[key] = None
    islands = man.get("island_exceptions") or []
    if not all(isinstance(k, str) for k in islands):
        c.add("MANIFEST-INVALID", f"{mname}: island_exceptions must list town-block keys as strings",
              sorted({repr(k)[:40] for k in islands if not isinstance(k, str)}))
        man["island_exceptions"] = [k for k in islands if isinstance(k, str)]


def _check_manifest_format(man: dict, mname: str, c: _Check) -> None:
    """MANIFEST-FORMAT: the package format and a version this validator reads."""
    if man.get("format") != PACKAGE_FORMAT or not isinstance(man.get("format_version"), int) \
            or man["format_version"] > PACKAGE_FORMAT_VERSION:
        c.add("MANIFEST-FORMAT", f"format {man.get('format')!r} version {man.get('format_version')!r}; "
              f"this validator reads {PACKAGE_FORMAT!r} ≤ {PACKAGE_FORMAT_VERSION}", [mname])


def _check_manifest_profile(man: dict, mname: str, prof: Profile, c: _Check) -> None:
    """MANIFEST-PROFILE: the package was written with the profile it is validated with."""
    prof_info = man.get("profile") or {}
    if prof_info.get("sha256") and prof_info.get("sha256") != prof.sha256:
        c.add("MANIFEST-PROFILE", f"package written with profile {prof_info.get('name')!r} "
              f"({str(prof_info.get('sha256'))[:12]}…), validated with {prof.name!r} ({prof.sha256[:12]}…)",
              [mname])


def _check_manifest_muni(man: dict, c: _Check) -> None:
    """MUNI-CODE: a 5-digit municipality code (prefecture 01–47) and its check-digit code6."""
    code = str((man.get("municipality") or {}).get("code", ""))
    code6 = str((man.get("municipality") or {}).get("code6", ""))
    if not re.fullmatch(r"\d{5}", code) or not 1 <= int(code[:2]) <= 47:
        c.add("MUNI-CODE", f"municipality code {code!r} is not a 5-digit code (prefecture 01–47)", [code])
    elif code6 != code + check_digit(code):
        c.add("MUNI-CODE", f"municipality code6 {code6!r}: expected {with_check_digit(code)} "
              "(check digit: weights 6,5,4,3,2, sum mod 11)", [code6])


def _check_output_entry(root: Path, entry, present: set, mname: str, c: _Check) -> str | None:
    """One manifest output: a plain relative path to a present file with the stated size and
    sha256. Returns the path when it counts as listed (a safe path), else None."""
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        c.add("MANIFEST-INVALID", f"output entry {entry!r} has no path", [mname])
        return None
    rel = entry["path"]
    if not _safe_rel(rel):
        c.add("MANIFEST-INVALID", f"output path {rel!r} is not a plain relative path", [rel])
        return None
    p = root / rel
    if not p.is_file():
        other = [q for q in present if q.lower() == rel.lower()]
        c.add("MANIFEST-FILE-MISSING", f"{rel} is listed in the manifest but absent"
              + (f" (renamed to {other[0]}?)" if other else ""), [rel, *other])
        return rel
    size = p.stat().st_size
    if entry.get("size") != size:
        c.add("MANIFEST-CHECKSUM", f"{rel}: size {size} bytes, manifest says {entry.get('size')!r}", [rel])
    elif entry.get("sha256") != sha256_file(p):
        c.add("MANIFEST-CHECKSUM", f"{rel}: sha256 differs from the manifest (file altered)", [rel])
    return rel


def _check_manifest_outputs(root: Path, man: dict, mname: str, c: _Check) -> None:
    """Every listed output present and unaltered; MANIFEST-UNLISTED for files not listed."""
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {mname}
    listed = set()
    for entry in man["outputs"]:
        rel = _check_output_entry(root, entry, present, mname, c)
        if rel is not None:
            listed.add(rel)
    unlisted = sorted(present - listed)
    if unlisted:
        c.add("MANIFEST-UNLISTED", f"{len(unlisted)} files are not in the manifest", unlisted)


def check_manifest(root: Path, prof: Profile, c: _Check) -> dict | None:
    """Manifest structure and every output's sha256 and size; unlisted files."""
    mname = prof.extras["manifest"]
    man = _load_manifest(root, mname, c, required=prof.require_manifest)
    if man is None:
        return None
    _check_manifest_optional_types(man, mname, c)
    _check_manifest_format(man, mname, c)
    _check_manifest_profile(man, mname, prof, c)
    _check_manifest_muni(man, c)
    _check_manifest_outputs(root, man, mname, c)
    return man


def package_summary(tb: gpd.GeoDataFrame, sa: gpd.GeoDataFrame, muni: str | None) -> dict:
    """What the registry records about a package: counts and the sub-area table."""
    cols = ["subarea", "code", "name", "display_order", "n_blocks", "population", "area_km2"]
    subs = sa[cols].sort_values("display_order", kind="stable")
    return {"muni_code": muni, "n_townblocks": int(len(tb)), "population": int(tb["population"].sum()),
            "subareas": [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
                         for r in subs.to_dict("records")]}


def _manifest_muni(man: dict | None) -> str | None:
    code = str(((man or {}).get("municipality") or {}).get("code", ""))
    return code if re.fullmatch(r"\d{5}", code) and 1 <= int(code[:2]) <= 47 else None


def _infer_muni(tb: gpd.GeoDataFrame) -> str | None:
    codes = tb["key"].astype(str).str[:5]
    top = codes.mode()
    return str(top.iloc[0]) if len(top) else None


# ============================================================================ Shapefiles
def _same_encoding(a: str, b: str) -> bool:
    try:
        return codecs.lookup(a.strip()).name == codecs.lookup(b.strip()).name
    except LookupError:
        return False


def _check_shapefile_parts(root: Path, base: str, c: _Check) -> bool:
    """SHP-MISSING-PART; False when a part needed to read it (.shp, .dbf, .shx) is missing."""
    missing = [base + s for s in SHAPEFILE_PARTS if not (root / (base + s)).is_file()]
    if missing:
        c.add("SHP-MISSING-PART", f"Shapefile {base} lacks {missing}", missing)
        if any(m.endswith((".shp", ".dbf", ".shx")) for m in missing):
            return False
    return True


def _check_cpg(root: Path, base: str, enc: str, c: _Check) -> None:
    """SHP-CPG: a .cpg, when present, names the profile's encoding."""
    cpg = root / f"{base}.cpg"
    if cpg.is_file():
        declared = cpg.read_bytes()[:64].decode("ascii", "replace").strip()
        if not _same_encoding(declared, enc):
            c.add("SHP-CPG", f"{base}.cpg says {declared!r}; the profile requires {enc!r}", [cpg.name])


def _checked_dbf_header(dbf: Path, prof: Profile, c: _Check):
    """The DBF header (None on DBF-HEADER), with SHP-LDID and the field-name rule checked."""
    try:
        header = read_dbf_header(dbf)
    except DbfError as exc:
        c.add("DBF-HEADER", str(exc), [dbf.name])
        return None
    if header.ldid != int(prof.shapefile["ldid"]):
        c.add("SHP-LDID", f"{dbf.name}: LDID byte is 0x{header.ldid:02X}, "
              f"the profile requires 0x{int(prof.shapefile['ldid']):02X}", [dbf.name])
    names = [fd.name for fd in header.fields]
    bad_names = [n for n in names if not n.isascii() or len(n.encode("latin-1")) > 10]
    if bad_names:
        c.add("SHP-FIELDS", f"{dbf.name}: field names must be ASCII and ≤ 10 bytes", bad_names)
    return header


def _check_profile_fields(dbf: Path, header, fields: dict, text_fields, int_fields, float_fields,
                          c: _Check) -> bool:
    """SHP-FIELDS: the profile's fields are present with their types; False when not."""
    names = [fd.name for fd in header.fields]
    absent = [fields[k] for k in (*text_fields, *int_fields, *float_fields) if fields[k] not in names]
    if absent:
        c.add("SHP-FIELDS", f"{dbf.name}: profile fields {absent} are missing", absent)
        return False
    types = {fd.name: fd.type for fd in header.fields}
    wrong = [fields[k] for k in (*int_fields, *float_fields) if types[fields[k]] not in "NFI"] + \
            [fields[k] for k in text_fields if types[fields[k]] != "C"]
    if wrong:
        c.add("SHP-FIELDS", f"{dbf.name}: fields of the wrong type (numbers must be N, text C)", wrong)
        return False
    return True


def _check_dbf_text(dbf: Path, header, enc: str, c: _Check) -> bool:
    """SHP-ENCODING: every character value decodes in the profile's encoding."""
    raw = read_character_fields(dbf, header)
    undecodable = []
    for name, values in raw.items():
        for i, v in enumerate(values):
            try:
                v.decode(enc)
            except UnicodeDecodeError:
                undecodable.append(f"{name} row {i + 1}")
    if undecodable:
        c.add("SHP-ENCODING", f"{dbf.name}: {len(undecodable)} values are not valid {enc}", undecodable)
        return False
    return True


def _read_projected_shapefile(root: Path, base: str, enc: str, c: _Check, muni: str | None = None,
                              key_field: str | None = None):
    """The Shapefile read by GDAL (SHP-UNREADABLE) in a projected CRS (SHP-PRJ), or None.
    A latitude/longitude Shapefile is named as such, with the plane-rectangular zone of the
    municipality (``muni``, else the code at the start of the ``key_field`` values)."""
    import pyogrio

    try:
        gdf = pyogrio.read_dataframe(root / f"{base}.shp", encoding=enc)
    except Exception as exc:  # GDAL raises many types for broken .shp/.shx
        c.add("SHP-UNREADABLE", f"{base}.shp cannot be read ({exc.__class__.__name__}: {str(exc)[:200]})",
              [f"{base}.shp"])
        return None
    if gdf.crs is None or not gdf.crs.is_projected:
        if muni is None and key_field in gdf.columns:
            muni = _muni_of_codes(gdf[key_field])
        c.add("SHP-PRJ", _not_projected_message(base, gdf, muni), [f"{base}.prj"])
        return None
    c.crs_seen.append((f"{base}.prj", gdf.crs))
    return gdf


def _zone_target(muni: str | None, datum: str = "JGD2011") -> str | None:
    """'鳥取県 (31201) uses plane-rectangular zone V (JGD2011, EPSG:6673)' for a municipality code."""
    from subdivide.core.crs import zone_label

    if not muni or not str(muni)[:2].isdigit() or int(str(muni)[:2]) not in PREF_ZONE:
        return None
    pref = int(str(muni)[:2])
    return f"{PREF_NAMES[pref - 1]} ({muni}) uses plane-rectangular {zone_label(datum, PREF_ZONE[pref])}"


def _looks_like_lonlat(gdf) -> bool:
    """Coordinates inside Japan's longitude / latitude box (a Shapefile without a .prj)."""
    from subdivide.core.crs import JAPAN_LAT, JAPAN_LON

    try:
        x0, y0, x1, y1 = (float(v) for v in gdf.total_bounds)
    except (TypeError, ValueError):
        return False
    return bool(len(gdf)) and JAPAN_LON[0] <= x0 <= x1 <= JAPAN_LON[1] and JAPAN_LAT[0] <= y0 <= y1 <= JAPAN_LAT[1]


def _not_projected_message(base: str, gdf, muni: str | None) -> str:
    """SHP-PRJ's message: what the CRS is (latitude/longitude, or none) and the zone to use."""
    crs = gdf.crs
    datum = "JGD2011"
    if crs is not None and crs.is_geographic:
        epsg = crs.to_epsg(min_confidence=70)
        datum = {4612: "JGD2000", 4301: "Tokyo"}.get(epsg, "JGD2011")
        what = (f"{base}.prj is latitude/longitude ({crs.name}" + (f", EPSG:{epsg}" if epsg else "")
                + "), not metres")
    elif crs is None and _looks_like_lonlat(gdf):
        what = f"{base}.prj is missing or unreadable, and the coordinates are latitude/longitude"
    elif crs is None:
        what = f"{base}.prj is missing or unreadable (no coordinate system)"
    else:
        what = f"{base}.prj is not a projected metre CRS ({crs.name})"
    target = _zone_target(muni, datum)
    if target:
        return f"{what}: {target}; reproject the Shapefile to it"
    return f"{what}: reproject the Shapefile to the plane-rectangular zone of the municipality's prefecture"


def _muni_of_codes(values) -> str | None:
    """The most common 5-digit municipality code at the start of ``values`` (keys, codes)."""
    codes = pd.Series(values).astype(str).str.strip().str[:5]
    codes = codes[codes.str.fullmatch(r"\d{5}")]
    top = codes.mode()
    return str(top.iloc[0]) if len(top) else None


def _canonical_shapefile_frame(gdf, fields: dict, text_fields, int_fields, float_fields) -> gpd.GeoDataFrame:
    """The profile's fields under canonical names: text, int64 (−1 when blank), float64."""
    out = gpd.GeoDataFrame(geometry=gdf.geometry.values, crs=gdf.crs)
    for k in text_fields:
        out[k] = gdf[fields[k]].fillna("").astype(str).to_numpy(object)
    for k in int_fields:
        out[k] = pd.to_numeric(gdf[fields[k]], errors="coerce").fillna(-1).astype("int64").to_numpy()
    for k in float_fields:
        out[k] = pd.to_numeric(gdf[fields[k]], errors="coerce").astype("float64").to_numpy()
    return out


def read_shapefile_checked(root: Path, base: str, fields: dict, prof: Profile, c: _Check, *,
                           text_fields=(), int_fields=(), float_fields=(), muni: str | None = None,
                           code_field: str = "key") -> gpd.GeoDataFrame | None:
    """Check one Shapefile's parts, .cpg, DBF header, LDID, fields and text encoding, then read
    it. Returns a frame with canonical column names, or None when it cannot be read.
    ``muni`` (else the codes of ``code_field``) names the zone a lat/lon Shapefile should use."""
    if not _check_shapefile_parts(root, base, c):
        return None
    enc = prof.shapefile["encoding"]
    _check_cpg(root, base, enc, c)
    dbf = root / f"{base}.dbf"
    header = _checked_dbf_header(dbf, prof, c)
    if header is None or not _check_profile_fields(dbf, header, fields, text_fields, int_fields, float_fields, c):
        return None
    if not _check_dbf_text(dbf, header, enc, c):
        return None
    gdf = _read_projected_shapefile(root, base, enc, c, muni, fields.get(code_field))
    if gdf is None:
        return None
    return _canonical_shapefile_frame(gdf, fields, text_fields, int_fields, float_fields)


# ============================================================================ lists
def _decode_list(data: bytes, name: str, encoding: str, c: _Check) -> str | None:
    """A list's text: UTF-8 with BOM (CSV-ENCODING without) or CP932, CRLF line ends; None
    when it does not decode."""
    enc = "cp932" if _same_encoding(encoding, "cp932") else "utf-8"
    if enc == "utf-8":
        if not data.startswith(codecs.BOM_UTF8):
            c.add("CSV-ENCODING", f"{name} has no UTF-8 byte-order mark (Excel would garble it)", [name])
        else:
            data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode(enc)
    except UnicodeDecodeError as exc:
        c.add("CSV-ENCODING", f"{name} is not valid {enc} (byte {exc.start})", [name])
        return None
    bare = text.count("\n") - text.count("\r\n")
    if bare:
        c.add("CSV-ENCODING", f"{name}: {bare} line ends are LF only; CRLF is required", [name])
    return text


def _csv_header(rows: list, columns: dict, name: str, c: _Check) -> list | None:
    """The header row (quote-prefix removed) when the list is not empty and has every column."""
    if not rows:
        c.add("CSV-COLUMNS", f"{name} is empty", [name])
        return None
    head = [unneutralise_cell(h) for h in rows[0]]
    missing = [v for v in columns.values() if v not in head]
    if missing:
        c.add("CSV-COLUMNS", f"{name} lacks columns {missing}", missing)
        return None
    return head


def _check_csv_formulas(rows: list, name: str, c: _Check) -> None:
    """CSV-FORMULA: no cell starts with = + - @ (Excel would run it)."""
    formulas = [f"row {i + 1}" for i, r in enumerate(rows) for v in r if v.startswith(FORMULA_PREFIXES)]
    if formulas:
        c.add("CSV-FORMULA", f"{name}: cells starting with = + - @ would run as formulas in Excel", formulas)


def read_csv_checked(path: Path, columns: dict, encoding: str, c: _Check) -> pd.DataFrame | None:
    """Encoding, BOM, CRLF, header and formula cells of one list; returns canonical columns
    (text, quote-prefix of neutralised cells removed) or None."""
    name = path.name
    if not path.is_file():
        c.file_missing(name, f"{name} is missing")
        return None
    text = _decode_list(path.read_bytes(), name, encoding, c)
    if text is None:
        return None
    rows = list(csv.reader(io.StringIO(text, newline="")))
    head = _csv_header(rows, columns, name, c)
    if head is None:
        return None
    _check_csv_formulas(rows, name, c)
    body = [r for r in rows[1:] if r]
    idx = {k: head.index(v) for k, v in columns.items()}
    bad = [i + 2 for i, r in enumerate(body) if len(r) != len(head)]
    if bad:
        c.add("CSV-COLUMNS", f"{name}: rows with the wrong number of cells", [f"row {i}" for i in bad])
        return None
    return pd.DataFrame({k: [unneutralise_cell(r[j]) for r in body] for k, j in idx.items()}, dtype=object)


def _open_workbook(path: Path, c: _Check, limits: Limits):
    """sheet name → rows of cells (:func:`subdivide.io.xlsx.read_workbook`), or None
    (XLSX-UNREADABLE) when its zip is unsafe or it is not a readable workbook."""
    name = path.name
    nested = check_nested_zip(path, limits)
    if nested:
        for f in nested:
            c.add("XLSX-UNREADABLE", f"{name} is not a safe zip: {f.message}", (name, *f.features))
        return None
    from subdivide.io.xlsx import XlsxError, read_workbook

    try:
        return read_workbook(path)
    except XlsxError as exc:
        c.add("XLSX-UNREADABLE", f"{name} cannot be opened ({exc})", [name])
        return None


def _sheet_header(wb, sheet: str, cols: dict, name: str, c: _Check):
    """(rows, header) of a sheet that exists, is not empty and has every column, else None."""
    if sheet not in wb:
        c.add("CSV-COLUMNS", f"{name} lacks the sheet {sheet!r}", [sheet])
        return None
    rows = wb[sheet]
    if not rows:
        c.add("CSV-COLUMNS", f"{name}:{sheet} is empty", [sheet])
        return None
    head = [unneutralise_cell(str(x.value)) if x.value is not None else "" for x in rows[0]]
    missing = [v for v in cols.values() if v not in head]
    if missing:
        c.add("CSV-COLUMNS", f"{name}:{sheet} lacks columns {missing}", missing)
        return None
    return rows, head


def _check_sheet_formulas(rows: list, where: str, c: _Check) -> None:
    """CSV-FORMULA: no formula cell and no text starting with = + - @."""
    formulas = [x.coordinate for r in rows for x in r
                if x.data_type == "f" or (isinstance(x.value, str) and x.value.startswith(FORMULA_PREFIXES))]
    if formulas:
        c.add("CSV-FORMULA", f"{where}: formula cells", formulas)


def _read_sheet(wb, sheet: str, cols: dict, codes: tuple, name: str, c: _Check) -> pd.DataFrame | None:
    """One sheet as canonical text columns; CSV-FORMULA for formula cells, XLSX-TEXT-CODES for
    code cells not stored as text."""
    found = _sheet_header(wb, sheet, cols, name, c)
    if found is None:
        return None
    rows, head = found
    _check_sheet_formulas(rows, f"{name}:{sheet}", c)
    idx = {k: head.index(v) for k, v in cols.items()}
    notext = [r[idx[k]].coordinate for r in rows[1:] for k in codes
              if r[idx[k]].data_type != "s" or r[idx[k]].number_format != "@"]
    if notext:
        c.add("XLSX-TEXT-CODES", f"{name}:{sheet}: code cells not stored as text (Excel drops "
              "leading zeros)", notext)
    return pd.DataFrame({k: ["" if r[j].value is None else unneutralise_cell(str(r[j].value))
                             for r in rows[1:]] for k, j in idx.items()}, dtype=object)


def read_xlsx_checked(path: Path, prof: Profile, c: _Check, limits: Limits) -> dict | None:
    """The workbook's two sheets as canonical text frames; code cells must be text."""
    name = path.name
    if not path.is_file():
        c.file_missing(name, f"{name} is missing")
        return None
    wb = _open_workbook(path, c, limits)
    if wb is None:
        return None
    lp = prof.lists
    spec = {"subareas": (lp["subarea_columns"], ("code", "code6")),
            "townblocks": (lp["townblock_columns"], ("key", "subarea_code"))}
    out = {}
    for sheet, (cols, codes) in spec.items():
        frame = _read_sheet(wb, sheet, cols, codes, name, c)
        if frame is not None:
            out[sheet] = frame
    return out


# ============================================================================ GeoPackage
def check_geopackage(root: Path, prof: Profile, tb, sa, c: _Check) -> None:
    import pyogrio

    gp = prof.geopackage
    path = root / gp["file"]
    if not path.is_file():
        c.add("GPKG-LAYERS", f"{gp['file']} is missing", [gp["file"]])
        return
    try:
        layers = {str(r[0]) for r in pyogrio.list_layers(path)}
    except Exception as exc:  # not a GeoPackage
        c.add("GPKG-LAYERS", f"{gp['file']} cannot be read ({exc.__class__.__name__})", [gp["file"]])
        return
    for layer, ref, key_field, key in ((gp["townblocks_layer"], tb, prof.townblock_fields["key"], "key"),
                                       (gp["subareas_layer"], sa, prof.subarea_fields["code"], "code")):
        if layer not in layers:
            c.add("GPKG-LAYERS", f"{gp['file']} lacks the layer {layer!r}", [layer])
            continue
        if ref is None:
            continue
        try:
            g = pyogrio.read_dataframe(path, layer=layer)
        except Exception as exc:  # corrupt GeoPackage tables
            c.add("GPKG-LAYERS", f"{gp['file']}:{layer} cannot be read ({exc.__class__.__name__})", [layer])
            continue
        if key_field not in g.columns:
            c.add("GPKG-MISMATCH", f"{gp['file']}:{layer} lacks the field {key_field}", [layer])
            continue
        a = set(g[key_field].astype(str))
        b = set(ref[key].astype(str))
        if a != b:
            c.add("GPKG-MISMATCH", f"{gp['file']}:{layer} and the Shapefile hold different features",
                  sorted(a ^ b))
            continue
        _compare_gpkg_attributes(g, ref, key_field, key, prof, layer, gp["file"], c)
        ga = g.set_index(g[key_field].astype(str)).geometry.area
        gb = pd.Series(ref.geometry.area.to_numpy(), index=ref[key].astype(str).to_numpy())
        gb = gb[~gb.index.duplicated()]
        diff = (ga.groupby(level=0).sum().reindex(gb.index) - gb).abs() > np.maximum(1.0, AREA_REL_TOL * gb)
        if diff.any():
            c.add("GPKG-MISMATCH", f"{gp['file']}:{layer}: geometry differs from the Shapefile",
                  list(gb.index[diff.to_numpy()]))


#: prefectures whose islands or regions use further plane-rectangular zones (国土交通省告示)
_EXTRA_ZONES = {1: {11, 12, 13}, 13: {9, 14, 18, 19}, 46: {1, 2}, 47: {15, 16, 17}}


def allowed_zones(muni: str) -> set[int]:
    """Plane-rectangular zones a municipality's data may use: its prefecture's e-Stat zone
    plus the further zones of 北海道, 東京都 (islands), 鹿児島県 and 沖縄県."""
    pref = int(str(muni)[:2])
    return {PREF_ZONE[pref]} | _EXTRA_ZONES.get(pref, set())


def _jgd_zone(crs) -> int | None:
    """Zone number of a JGD2000 / JGD2011 plane-rectangular CRS (by EPSG code or by its
    parameters), else None."""
    epsg = crs.to_epsg(min_confidence=70)
    if epsg and 6669 <= epsg <= 6687:
        return epsg - 6668
    if epsg and 2443 <= epsg <= 2461:
        return epsg - 2442
    m = re.search(r"Japan[_ ]?(?:Plane[_ ]Rectangular[_ ]CS|Zone)[_ ]?([IVX]+|\d+)", crs.name or "", re.I)
    if m:
        tok = m.group(1)
        roman = {"I": 1, "V": 5, "X": 10}
        if tok.isdigit():
            return int(tok)
        total, prev = 0, 0
        for ch in reversed(tok.upper()):
            v = roman.get(ch, 0)
            total = total - v if v < prev else total + v
            prev = max(prev, v)
        return total
    return None


def check_prj_zone(c: _Check, muni: str | None) -> None:
    """The .prj's plane-rectangular zone must be one the municipality's prefecture uses."""
    if not muni or not str(muni)[:2].isdigit() or int(str(muni)[:2]) not in PREF_ZONE:
        return
    allowed = allowed_zones(muni)
    for fname, crs in c.crs_seen:
        zone = _jgd_zone(crs)
        if zone is not None and zone not in allowed:
            c.add("SHP-PRJ-ZONE", _zone_mismatch_message(fname, crs, zone, muni, allowed), [fname])


def _zone_mismatch_message(fname: str, crs, zone: int, muni: str, allowed: set[int]) -> str:
    """SHP-PRJ-ZONE's message: the declared zone and the zone(s) of the prefecture, in roman
    numerals with their EPSG codes (in the declared datum)."""
    from subdivide.core.crs import ZONE_FAMILIES, ZONE_NUMERALS

    epsg = crs.to_epsg(min_confidence=70)
    datum = "JGD2000" if epsg and 2443 <= epsg <= 2461 else "JGD2011"
    first = ZONE_FAMILIES[datum]
    pref = int(str(muni)[:2])
    own = PREF_ZONE[pref]
    others = sorted(allowed - {own})
    want = f"zone {ZONE_NUMERALS[own - 1]} (EPSG:{first + own - 1})"
    if others:
        want += " (or zone " + ", ".join(f"{ZONE_NUMERALS[z - 1]} (EPSG:{first + z - 1})" for z in others) + ")"
    return (f"{fname} declares plane-rectangular zone {ZONE_NUMERALS[zone - 1]} (EPSG:{first + zone - 1}); "
            f"{PREF_NAMES[pref - 1]} ({muni}) uses {want}: areas and distances would be wrong; "
            "reproject the Shapefile to it")


#: canonical column → profile field group, compared between package.gpkg and the Shapefiles
_GPKG_COMPARED = {"townblocks": ("subarea", "subarea_name", "subarea_code", "name", "population"),
                  "subareas": ("subarea", "name", "code6", "display_order", "n_blocks", "population")}


def _compare_gpkg_attributes(g, ref, key_field: str, key: str, prof: Profile, layer: str, fname: str,
                             c: _Check) -> None:
    """The GeoPackage must hold the same assignment, names and codes as the Shapefile."""
    fields = prof.townblock_fields if key == "key" else prof.subarea_fields
    group = "townblocks" if key == "key" else "subareas"
    gi = pd.DataFrame(g.drop(columns=g.geometry.name)).assign(_k=g[key_field].astype(str))
    gi = gi.drop_duplicates("_k").set_index("_k")
    ri = pd.DataFrame(ref.drop(columns=ref.geometry.name)).assign(_k=ref[key].astype(str))
    ri = ri.drop_duplicates("_k").set_index("_k")
    common = sorted(set(gi.index) & set(ri.index))
    differing: dict[str, list[str]] = {}
    for canon in _GPKG_COMPARED[group]:
        fld = fields.get(canon)
        if fld is None or canon not in ri.columns:
            continue
        if fld not in gi.columns:
            c.add("GPKG-MISMATCH", f"{fname}:{layer} lacks the field {fld}", [layer])
            continue
        a = gi.loc[common, fld].map(_norm_cell)
        b = ri.loc[common, canon].map(_norm_cell)
        diff = a.to_numpy() != b.to_numpy()
        if diff.any():
            differing[fld] = [str(k) for k in np.asarray(common)[diff]]
    for fld, keys in differing.items():
        c.add("GPKG-MISMATCH", f"{fname}:{layer}: {fld} differs from the Shapefile for {len(keys)} features "
              "(the GeoPackage must hold the same sub-area assignment, names and codes)", keys[:50])


def _norm_cell(v) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v).strip()


# ============================================================================ consistency
#: how many offending town-blocks or sub-areas a message names in its text (all are in the features)
NAMED_IN_MESSAGE = 3


def _subarea_label(num, name) -> str:
    """'2 大迫地域' (number and name of a sub-area as a package row states them)."""
    return f"{num} {name}".strip()


def _duplicates(keys: pd.Series, subarea: pd.Series, subarea_name: pd.Series, where: str, c: _Check) -> None:
    """BLOCK-DUPLICATE for keys on several rows of one source, naming the sub-area of every
    row (a town-block doubled across two sub-areas names both)."""
    k = keys.astype(str).reset_index(drop=True)
    dup = k.duplicated(keep=False)
    if not dup.any():
        return
    labels = [_subarea_label(n, nm) for n, nm in zip(subarea.reset_index(drop=True)[dup],
                                                       subarea_name.reset_index(drop=True)[dup])]
    rows = pd.DataFrame({"key": k[dup].to_numpy(), "label": labels})
    per_key = rows.groupby("key", sort=True)["label"].agg(" / ".join)
    first = per_key.index[0]
    c.add("BLOCK-DUPLICATE", f"{len(per_key)} keys appear more than once in the {where}: {first} is in "
          f"{per_key.iloc[0]}", [f"{key}: {lab}" for key, lab in per_key.items()])


def _named_blocks(keys, ref: pd.DataFrame | None) -> str:
    """'032050130 東和町… (4 東和地域), …': the first keys, with name and sub-area when known."""
    out = []
    for key in list(keys)[:NAMED_IN_MESSAGE]:
        if ref is not None and key in ref.index:
            r = ref.loc[key]
            out.append(f"{key} {r['name']} ({_subarea_label(r['subarea'], r['subarea_name'])})")
        else:
            out.append(str(key))
    return ", ".join(out) + (", …" if len(keys) > NAMED_IN_MESSAGE else "")


def check_townblocks(tb: gpd.GeoDataFrame, blk_csv, xlsx, muni: str | None, c: _Check) -> None:
    """Every town-block exactly once, keys well-formed, Shapefile ↔ lists agree."""
    keys = tb["key"].astype(str)
    _duplicates(keys, tb["subarea"], tb["subarea_name"], "town-block Shapefile", c)
    pattern = r"\d{9}|\d{11}"
    bad = [k for k in keys if not re.fullmatch(pattern, k) or (muni and not k.startswith(muni))]
    if bad:
        c.add("BLOCK-KEY-FORMAT", f"{len(bad)} keys are not 9/11-digit KEY_CODEs of municipality {muni}",
              sorted(set(bad)))
    ref = tb.drop_duplicates("key").set_index("key")
    for label, df in (("town-block CSV list", blk_csv), ("XLSX townblocks sheet", (xlsx or {}).get("townblocks"))):
        if df is None:
            continue
        lk = df["key"].astype(str)
        _duplicates(lk, df["subarea"], df["subarea_name"], label, c)
        only_shp = sorted(set(keys) - set(lk))
        only_list = sorted(set(lk) - set(keys))
        if only_shp:
            c.add("BLOCK-NOT-IN-LIST", f"{len(only_shp)} town-blocks of the Shapefile are missing from the {label}: "
                  + _named_blocks(only_shp, ref), only_shp)
        if only_list:
            d = df.assign(key=lk).drop_duplicates("key").set_index("key")
            c.add("BLOCK-NOT-IN-SHP", f"{len(only_list)} town-blocks of the {label} are not in the Shapefile: "
                  + _named_blocks(only_list, d) + _lost_zeros_hint(only_list, only_shp, (9, 11)), only_list)
        d = df.drop_duplicates("key").set_index("key")
        common = sorted(set(d.index) & set(ref.index))
        if not common:
            continue
        r, l_ = ref.loc[common], d.loc[common]
        diff = (r["subarea"].astype(str) != l_["subarea"].astype(str)) | \
               (r["subarea_code"].astype(str) != l_["subarea_code"].astype(str)) | \
               (r["subarea_name"].astype(str) != l_["subarea_name"].astype(str)) | \
               (r["name"].astype(str) != l_["name"].astype(str))
        if diff.any():
            c.add("LIST-MISMATCH", f"{int(diff.sum())} town-blocks differ (name or sub-area) between the "
                  f"Shapefile and the {label}", list(r.index[diff.to_numpy()]))


def _lost_zeros_hint(found, expected, widths) -> str:
    """A hint when codes in ``found`` are codes of ``expected`` with their leading zeros dropped
    (a list re-saved by Excel with the code column as numbers)."""
    exp = set(expected)
    n = sum(1 for k in found if k.isdigit() and any(k.zfill(w) in exp and k.zfill(w) != k for w in widths))
    return (f"; {n} listed codes are codes with their leading zeros dropped (re-saved by Excel with the code "
            "column as numbers? keep the codes as text)") if n else ""


def _check_subarea_numbers(tb, sa, c: _Check) -> None:
    """LIMIT-SUBAREAS, SUBAREA-NUMBER (unique 1–14), SUBAREA-UNKNOWN and SUBAREA-EMPTY."""
    k = len(sa)
    nums = sa["subarea"]
    if k > MAX_SUBAREAS:
        c.add("LIMIT-SUBAREAS", f"{k} sub-areas; the carriers' systems accept at most {MAX_SUBAREAS}",
              list(map(str, nums)))
    if nums.duplicated().any() or not nums.between(1, MAX_SUBAREAS).all():
        c.add("SUBAREA-NUMBER", "sub-area numbers must be unique integers 1–14",
              sorted(map(str, nums[nums.duplicated() | ~nums.between(1, MAX_SUBAREAS)])))
    used = set(tb["subarea"])
    unknown = sorted(used - set(nums))
    if unknown:
        keys = tb.loc[tb["subarea"].isin(unknown), "key"]
        c.add("SUBAREA-UNKNOWN", f"town-blocks assigned to sub-areas {unknown} missing from the sub-area table",
              list(keys))
    empty = sorted(set(nums) - used)
    if empty:
        c.add("SUBAREA-EMPTY", f"sub-areas {empty} contain no town-block", list(map(str, empty)))


def _check_subarea_names(sa, c: _Check) -> None:
    """The name rule (「●●地域」) and NAME-DUPLICATE."""
    names = sa["name"].astype(str)
    badname = name_problems(names)
    if badname:
        c.add(NAME_RULE, "sub-area names must be 「●●地域」 (a place name followed by 地域, on one line, no "
              "control characters): " + "; ".join(badname[:14]), [n for n in names if name_problem(n)])
    if names.duplicated().any():
        c.add("NAME-DUPLICATE", "sub-area names repeat", sorted(set(names[names.duplicated()])))


def _check_subarea_codes(sa, muni: str | None, c: _Check) -> None:
    """CODE-FORMAT (municipality code + 2-digit number) and CODE-CHECK-DIGIT (6-digit codes)."""
    if not muni:
        return
    nums = sa["subarea"]
    exp = [f"{muni}{int(s):02d}" for s in nums]
    badcode = [f"{code} → {e}" for code, e in zip(sa["code"], exp) if code != e]
    if badcode:
        c.add("CODE-FORMAT", "sub-area codes must be the municipality code + 2-digit sub-area number "
              "(stated → expected)",
              badcode)
    exp6 = [f"{with_check_digit(muni)}{int(s):02d}" for s in nums]
    bad6 = [f"{code} → {e}" for code, e in zip(sa["code6"], exp6) if code != e]
    if bad6:
        c.add("CODE-CHECK-DIGIT", "6-digit sub-area codes must carry the municipality check digit "
              f"({with_check_digit(muni)}; stated → expected)", bad6)


def _check_display_order(sa, c: _Check) -> None:
    """DISPLAY-ORDER: 1..k without repeats."""
    k = len(sa)
    order = sorted(sa["display_order"])
    if order != list(range(1, k + 1)):
        c.add("DISPLAY-ORDER", f"display order must be 1..{k} without repeats; got {order}",
              list(map(str, sa["display_order"])))


def _check_subarea_totals(tb, sa, c: _Check) -> None:
    """SUBAREA-TOTALS: stated block count, population and area agree with the town-blocks."""
    g = tb.groupby("subarea")
    n_blocks = g.size()
    pop = g["population"].sum()
    area = tb.geometry.area.groupby(tb["subarea"].to_numpy()).sum() / 1e6
    bad = []
    for _, row in sa.iterrows():
        s = row["subarea"]
        if s not in n_blocks.index:
            continue
        if row["n_blocks"] != n_blocks[s] or row["population"] != pop[s] or \
                abs(row["area_km2"] - area[s]) > max(1e-3, AREA_REL_TOL * area[s]):
            bad.append(f"{s}: {row['n_blocks']} / {row['population']} / {row['area_km2']:.3f} → "
                       f"{n_blocks[s]} / {pop[s]} / {area[s]:.3f}")
    if bad:
        c.add("SUBAREA-TOTALS", "sub-area totals disagree with their town-blocks (blocks / people / km², "
              "stated → counted)", bad)


def _check_block_subarea_labels(tb, sa, c: _Check) -> None:
    """LIST-MISMATCH: town-blocks' sub-area name and code match the sub-area table."""
    t = sa.drop_duplicates("subarea").set_index("subarea")
    known = tb["subarea"].isin(t.index)
    tbk = tb[known]
    mism = (tbk["subarea_name"].to_numpy() != t.loc[tbk["subarea"], "name"].to_numpy()) | \
           (tbk["subarea_code"].to_numpy() != t.loc[tbk["subarea"], "code"].to_numpy())
    if mism.any():
        c.add("LIST-MISMATCH", "town-blocks carry a sub-area name or code that differs from the sub-area table",
              list(tbk.loc[mism, "key"]))


#: the sub-area list's columns compared with the sub-area Shapefile (area within tolerance)
_SUBAREA_LIST_COMPARED = ("code6", "name", "display_order", "subarea", "n_blocks", "population")


def _check_subarea_list(sa, label: str, df, c: _Check, headers: dict | None = None) -> None:
    """LIST-MISMATCH: one sub-area list (CSV or XLSX sheet) repeats the sub-area table: rows
    missing from the list and rows it has in excess are named by code, differing rows by code
    and column."""
    left = sa.assign(code=sa["code"].astype(str)).drop_duplicates("code").set_index("code")
    right = df.assign(code=df["code"].astype(str)).drop_duplicates("code").set_index("code")
    codes = df["code"].astype(str)
    repeated = sorted(set(codes[codes.duplicated()]))
    if repeated:
        c.add("LIST-MISMATCH", f"the {label} repeats the rows of sub-areas {', '.join(repeated)}", repeated)
    extra = [k for k in right.index if k not in left.index]
    restored = {k.zfill(7) for k in extra if k.isdigit()}        # codes Excel stripped of leading zeros
    missing = [k for k in left.index if k not in right.index and k not in restored]
    if missing:
        c.add("LIST-MISMATCH", f"the {label} lacks the rows of sub-areas "
              + ", ".join(f"{k} {left.loc[k, 'name']}" for k in missing), missing)
    if extra:
        c.add("LIST-MISMATCH", f"the {label} has rows of sub-areas that are not in the Shapefile: "
              + ", ".join(f"{k} {right.loc[k, 'name']}" for k in extra)
              + _lost_zeros_hint(extra, left.index, (7,)), extra)
    common = [k for k in left.index if k in right.index]
    differing: dict[str, list[str]] = {}
    for k in common:
        a, b = left.loc[k], right.loc[k]
        cols = [col for col in _SUBAREA_LIST_COMPARED if str(a[col]) != str(b[col])]
        try:
            area = float(b["area_km2"])
        except (TypeError, ValueError):
            area = np.nan
        if not abs(area - float(a["area_km2"])) <= max(2e-3, AREA_REL_TOL * float(a["area_km2"])):
            cols.append("area_km2")
        if cols:
            differing[k] = cols
    if differing:
        cols = sorted({col for v in differing.values() for col in v}, key=list(_SUBAREA_LIST_COMPARED + ("area_km2",)).index)
        cols = [(headers or {}).get(col, col) for col in cols]      # as the list's header says
        c.add("LIST-MISMATCH", f"the {label} differs from the sub-area Shapefile in {', '.join(cols)} for "
              "sub-areas " + ", ".join(differing), list(differing))


def check_subareas(tb, sa, sub_csv, xlsx, muni: str | None, c: _Check, headers: dict | None = None) -> None:
    """Numbers, names, codes and check digits, display order, limit, totals, list agreement."""
    _check_subarea_numbers(tb, sa, c)
    _check_subarea_names(sa, c)
    _check_subarea_codes(sa, muni, c)
    _check_display_order(sa, c)
    _check_subarea_totals(tb, sa, c)
    _check_block_subarea_labels(tb, sa, c)
    for label, df in (("sub-area CSV list", sub_csv), ("XLSX subareas sheet", (xlsx or {}).get("subareas"))):
        if df is not None:
            _check_subarea_list(sa, label, df, c, headers)


# ============================================================================ geometry
def check_geometry(tb: gpd.GeoDataFrame, sa: gpd.GeoDataFrame, c: _Check, *, outline=None) -> bool:
    """Validity, overlaps between town-blocks, dissolved sub-areas vs their blocks, and gaps /
    outside parts against the municipal outline. Returns whether the town-blocks (all valid)
    form a valid polygon coverage."""
    geoms = tb.geometry.values
    keys = tb["key"].to_numpy()
    isna = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    types = shapely.get_type_id(geoms)
    bad = isna | ~np.isin(types, [3, 6]) | ~shapely.is_valid(geoms)
    if bad.any():
        reasons = shapely.is_valid_reason(geoms[bad])
        c.add("GEOM-INVALID", f"{int(bad.sum())} town-blocks have empty, non-polygon or invalid geometry",
              [f"{k}: {r}" for k, r in zip(keys[bad], reasons)])
    good = ~bad
    g = geoms[good]
    gk = keys[good]
    # a valid coverage (no overlaps, shared borders with the same vertices: every e-Stat file
    # and every package subdivide writes) needs no pairwise intersection, and unions as a
    # coverage (linear); anything else is checked pair by pair
    coverage = bool(len(g)) and not bad.any() and bool(shapely.coverage_is_valid(g))
    union_of = shapely.coverage_union_all if coverage else shapely.union_all
    tree = shapely.STRtree(g) if len(g) else None
    if len(g) and not coverage:
        i, j = tree.query(g, predicate="intersects")
        m = i < j
        i, j = i[m], j[m]
        area = shapely.area(shapely.intersection(g[i], g[j]))
        ov = area > OVERLAP_MIN_M2
        if ov.any():
            c.add("GEOM-OVERLAP", f"{int(ov.sum())} pairs of town-blocks overlap "
                  f"({area[ov].sum():.0f} m² in all)", [f"{a}×{b}" for a, b in zip(gk[i[ov]], gk[j[ov]])])
    # dissolved sub-areas vs their blocks
    if len(g) and not bad.any():
        sub = tb["subarea"].to_numpy()
        mism = []
        for s, geom in zip(sa["subarea"], sa.geometry.values):
            mine = geoms[sub == s]
            if not len(mine) or geom is None:
                continue
            u = union_of(mine)
            d = shapely.area(shapely.symmetric_difference(u, shapely.make_valid(geom)))
            if d > max(1.0, AREA_REL_TOL * shapely.area(u)):
                mism.append(f"{s}: {d / 1e6:.3f} km²")
        if mism:
            c.add("SUBAREA-GEOMETRY", "dissolved sub-areas differ from the union of their town-blocks", mism)
    ol = read_outline(outline, tb.crs)
    if ol is not None and len(g):
        union = union_of(g)
        total = shapely.area(ol)
        gap = shapely.difference(ol, union)
        out = shapely.difference(union, ol)
        tol = OUTLINE_REL_TOL * total
        if shapely.area(gap) > tol:
            parts = shapely.get_parts(gap)
            parts = parts[shapely.area(parts) > tol / 10] if len(parts) > 1 else parts
            near = sorted(set(gk[np.unique(tree.query(parts, predicate="touches")[1])])) if len(parts) else []
            c.add("GEOM-GAP", f"{shapely.area(gap) / 1e6:.3f} km² of the municipal outline "
                  f"({100 * shapely.area(gap) / total:.2f} %) is covered by no town-block; "
                  f"blocks next to the gaps listed", near[:50])
        if shapely.area(out) > tol:
            share = shapely.area(shapely.difference(g, ol)) / np.maximum(shapely.area(g), 1e-9)
            c.add("GEOM-OUTSIDE", f"{shapely.area(out) / 1e6:.3f} km² of town-blocks lie outside the "
                  "municipal outline", list(gk[share > 0.01]))
    return coverage


#: a detached piece of a sub-area with no other town-block nearer than this (m) has no land
#: neighbour (touching at a corner, or a sliver gap of e-Stat polygons, counts as land)
ISLAND_GAP_M = 1.0


def island_parts(tb: gpd.GeoDataFrame, adj) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The geometry's view of each sub-area's pieces (rook adjacency ``adj``).

    A piece (connected part of a sub-area) is *isolated* when it has no land neighbour: no
    town-block of another piece shares a border with it or lies within :data:`ISLAND_GAP_M`
    (an island, or a part beyond water or another municipality). Each sub-area's main part
    is its largest piece with a land neighbour (its largest piece when all are isolated).

    Returns three boolean masks over the town-blocks: ``detached`` (outside their
    sub-area's main part), ``isolated`` (in an isolated piece) and ``islands`` (detached and
    isolated: what the geometry says is an island).
    """
    from subdivide.model.contiguity import parts_per_group

    sub = tb["subarea"].to_numpy()
    part = parts_per_group(adj, sub)["part"].to_numpy()
    n_parts = int(part.max()) + 1 if len(part) else 0
    coo = adj.tocoo()
    leaves = np.zeros(n_parts, bool)                    # a border with another piece
    cross = part[coo.row] != part[coo.col]
    leaves[part[coo.row[cross]]] = True
    size = np.bincount(part, minlength=n_parts)
    group = np.zeros(n_parts, sub.dtype)
    group[part] = sub                                   # the sub-area of each piece
    codes = pd.factorize(group)[0]
    several = np.bincount(codes, minlength=1)[codes] > 1
    check = np.flatnonzero(~leaves & several)           # candidate isolated pieces of split sub-areas
    if len(check):
        geoms = tb.geometry.values
        mine = np.flatnonzero(np.isin(part, check))
        i, j = shapely.STRtree(geoms).query(geoms[mine], predicate="dwithin", distance=ISLAND_GAP_M)
        near = part[j] != part[mine[i]]
        leaves[part[mine[i[near]]]] = True
    isolated_part = ~leaves
    order = pd.DataFrame({"part": np.arange(n_parts), "group": group, "isolated": isolated_part, "size": size})
    main = (order.sort_values(["group", "isolated", "size", "part"], ascending=[True, True, False, True])
                 .drop_duplicates("group")["part"].to_numpy())
    detached = ~np.isin(part, main)
    isolated = isolated_part[part]
    return detached, isolated, detached & isolated


def check_contiguity(tb: gpd.GeoDataFrame, exceptions: set | None, c: _Check, *, tiled: bool = False) -> set:
    """Each sub-area one piece (rook adjacency), apart from island exceptions: those the
    manifest lists, or, for a package without a manifest (``exceptions`` None), those the
    geometry shows (detached pieces with no land neighbour: CONTIGUITY-ISLAND-INFERRED).
    Returns the island exceptions used. ``tiled``: the blocks are known to form a valid
    coverage (:func:`check_geometry`), so shared segments are matched without checking again."""
    from subdivide.model.contiguity import block_adjacency, contiguity_breaks

    geoms = tb.geometry.values
    if (shapely.is_missing(geoms) | ~shapely.is_valid(geoms)).any() or tb["key"].duplicated().any():
        return set(exceptions or ())  # already reported; adjacency on broken geometry would mislead
    keys = tb["key"].to_numpy()
    sub = tb["subarea"].to_numpy()
    adj = block_adjacency(tb, method="edges", check_coverage=not tiled)
    detached, isolated, islands = island_parts(tb, adj)
    inferred = exceptions is None
    if inferred:
        bad, excused = detached & ~islands, np.zeros(len(tb), bool)
        exceptions = set(keys[islands])
    else:
        bad, excused = contiguity_breaks(adj, sub, keys, exceptions)
    names = tb["subarea_name"].astype(str).to_numpy()
    for s in sorted(set(sub[bad])):
        mask = bad & (sub == s)
        ks = keys[mask]
        lone = int((mask & isolated).sum())
        hint = (f"; {lone} of them touch no other town-block (islands? list them as island exceptions)"
                if lone else "")
        c.add("CONTIGUITY", f"sub-area {s} ({names[mask][0]}) is not contiguous: {len(ks)} "
              "town-blocks are cut off from its main part" + hint, ks)
    if excused.any():
        c.add("CONTIGUITY-ISLAND", f"{int(excused.sum())} detached town-blocks are listed as "
              "island exceptions in the manifest", keys[excused])
    if inferred and islands.any():
        per = pd.Series(names[islands]).groupby(sub[islands], sort=True).agg(["first", "size"])
        c.add("CONTIGUITY-ISLAND-INFERRED", f"{int(islands.sum())} town-blocks cut off from their sub-area "
              "touch no other town-block (islands, or parts beyond water or another municipality): "
              "accepted as island exceptions inferred from the geometry, as the package has no manifest ("
              + ", ".join(f"{_subarea_label(n, r['first'])}: {r['size']}" for n, r in per.iterrows()) + ")",
              keys[islands])
    return set(exceptions)


# ============================================================================ spill
def _spill_thresholds(root: Path, prof: Profile, spill_km, target_share):
    """(distances km, target share, summary dict or None) from the package's spill.json."""
    summary = None
    p = root / prof.extras["spill_dir"] / "spill.json"
    if p.is_file():
        try:
            summary = json.loads(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            summary = {"_invalid": True}
    params = (summary or {}).get("parameters", summary or {})
    dist = spill_km or params.get("distances_km") or DEFAULT_DISTANCES_KM
    share = target_share if target_share is not None else params.get("target_share", DEFAULT_TARGET_SHARE)
    try:
        dist = tuple(sorted(float(x) for x in dist))
        share = float(share)
    except (TypeError, ValueError):
        dist, share = DEFAULT_DISTANCES_KM, DEFAULT_TARGET_SHARE
    return dist, share, summary


class _Shares:
    """Circle and core shares per spill distance, computed once per distance (vectorised
    over the sub-areas)."""

    def __init__(self, geoms):
        self.geoms = geoms
        self.area = shapely.area(geoms)
        self._cache: dict[float, tuple[np.ndarray, np.ndarray]] = {}

    def at(self, km: float) -> tuple[np.ndarray, np.ndarray]:
        from subdivide.analysis.spill import circle_unreached_share, core_share

        key = round(float(km), 6)
        if key not in self._cache:
            L = key * 1000.0
            self._cache[key] = (np.asarray(circle_unreached_share(self.area, L), float),
                                np.asarray(core_share(self.geoms, L, fill_holes=False), float))
        return self._cache[key]


def check_spill(root: Path, sa: gpd.GeoDataFrame, prof: Profile, c: _Check, *, spill_km=None,
                target_share=None) -> None:
    """Recompute the circle and exact-polygon unreached shares at the design (smallest) spill
    distance; warn below the target; cross-check the package's spill summary if present."""
    dist, share, summary = _spill_thresholds(root, prof, spill_km, target_share)
    shares = _Shares(spill_territory(sa.geometry.values))
    circ, core = shares.at(dist[0])
    area = shares.area
    names = sa["name"].astype(str).to_numpy()
    low_c = circ < share
    if low_c.any():
        c.add("SPILL-CIRCLE", f"circle model at L = {dist[0]:g} km: unreached share below {share:.0%} "
              "(sub-area too small for its neighbours' spill)",
              [f"{n}: {v:.0%} ({a / 1e6:.0f} km²)" for n, v, a in zip(names[low_c], circ[low_c], area[low_c])])
    low_p = core < share
    if low_p.any():
        c.add("SPILL-CORE", f"exact polygon model at L = {dist[0]:g} km: unreached core below {share:.0%} "
              "(elongated or small sub-area)",
              [f"{n}: {v:.0%}" for n, v in zip(names[low_p], core[low_p])])
    if summary is not None:
        _check_spill_summary(summary, sa, shares, c)


def _check_spill_summary(summary: dict, sa: gpd.GeoDataFrame, shares: _Shares, c: _Check) -> None:
    """Compare the circle and core shares stated in spill.json (one row per sub-area and
    distance) with the geometry (± 0.01)."""
    if summary.get("_invalid"):
        c.add("SPILL-SUMMARY", "spill/spill.json is not valid JSON", ["spill.json"])
        return
    rows = summary.get("subareas")
    if not isinstance(rows, list) or not rows:
        c.add("SPILL-SUMMARY", "spill/spill.json has no per-sub-area table", ["spill.json"])
        return
    pos = {int(s): i for i, s in enumerate(sa["subarea"])}
    bad, seen = [], set()
    for r in rows:
        try:
            i = pos[int(r["subarea"])]
            km = float(r["distance_km"])
            if not 0 < km < 100:
                raise ValueError(km)
        except (KeyError, TypeError, ValueError):
            bad.append(f"row {str(r)[:60]}: unknown sub-area or bad distance")
            continue
        seen.add(i)
        circ, core = shares.at(km)
        for key, v in (("circle_unreached_share", circ[i]), ("core_share", core[i])):
            if r.get(key) is None:
                continue
            try:
                stated = float(r[key])
            except (TypeError, ValueError):
                stated = np.nan
            if not abs(stated - v) <= 0.01:
                bad.append(f"sub-area {sa['subarea'].iloc[i]} at {km:g} km {key}: stated {stated:.3f}, "
                           f"geometry gives {v:.3f}")
    missing = sorted(set(range(len(sa))) - seen)
    bad.extend(f"sub-area {sa['subarea'].iloc[i]}: absent from the summary" for i in missing)
    if bad:
        c.add("SPILL-SUMMARY", "the spill summary disagrees with the sub-area geometry", bad)


# ============================================================================ coverage
def package_plan(tb: gpd.GeoDataFrame, sa: gpd.GeoDataFrame, muni: str, exceptions=()):
    """A :class:`~subdivide.model.plan.Plan` rebuilt from a package's town-blocks (for the
    footprint report and the review map). Raises PlanCheckError if the package breaks rules."""
    from subdivide.model.plan import Plan, _finish_table

    b = gpd.GeoDataFrame({
        "key": tb["key"].astype(str).to_numpy(object), "name": tb["name"].to_numpy(object),
        "muni_code": muni, "population": tb["population"].to_numpy("int64"),
        "households": np.zeros(len(tb), "int64"), "area_official_m2": np.nan,
        "island": False, "enclave": False, "multipart": False, "repaired": False,
        "subarea": tb["subarea"].to_numpy("int64"),
    }, geometry=tb.geometry.values, crs=tb.crs)
    b = b.sort_values("key", kind="stable").reset_index(drop=True)
    table = _finish_table(sa[["subarea", "name", "display_order"]].copy(), muni)
    return Plan(blocks=b, subareas=table, muni_code=muni, island_exceptions=frozenset(exceptions))


def check_coverage(tb, sa, muni, exceptions, coverage, selection, c: _Check) -> dict | None:
    """The carrier's footprint report (subdivide.analysis.coverage) on the package's plan."""
    from subdivide.analysis import coverage as cov

    if muni is None or any(f.severity == "error" for f in c.findings):
        c.add("COVERAGE-SKIPPED", "the footprint report needs a package without errors")
        return None
    plan = package_plan(tb, sa, muni, exceptions)
    if isinstance(coverage, (str, Path)):
        coverage = cov.read_coverage(coverage, plan.crs)
    kw = {"selection": selection} if selection else {}
    rep = cov.footprint_report(plan, coverage, **kw)
    if not isinstance(rep, dict):
        return None
    fp = rep.get("footprints")
    if isinstance(fp, pd.DataFrame):
        for r in fp.to_dict("records"):
            msg = (f"carrier {r.get('carrier')}: {r.get('n_cells')} cells, over-alert "
                   f"{_num(r.get('over_alert_km2'), '.1f')} km² / {_num(r.get('over_alert_pop'), ',.0f')} people, "
                   f"under-alert {_num(r.get('under_alert_km2'), '.1f')} km², overshoot max "
                   f"{_num(r.get('overshoot_max_km'), '.1f')} km, P95 {_num(r.get('overshoot_p95_km'), '.1f')} km")
            under = r.get("under_alert_share")
            sev = "warning" if isinstance(under, (int, float)) and under > UNDER_ALERT_WARN else "info"
            if sev == "warning":
                msg += f" — {under:.1%} of the sub-area would not be alerted"
            c.add("COVERAGE-FOOTPRINT", msg, [f"{r.get('subarea')} {r.get('name')}"], severity=sev)
    return {k: v for k, v in rep.items() if isinstance(v, pd.DataFrame)}


def _num(v, fmt: str) -> str:
    try:
        return "n/a" if v is None or not np.isfinite(float(v)) else format(float(v), fmt)
    except (TypeError, ValueError):
        return "n/a"
