"""The ``subdivide`` command lines the algorithms run (no QGIS import here).

One function per algorithm, taking plain values (paths, numbers, strings) and returning
the argument list after the executable. Every command gets ``--progress`` where the tool
has it, so the Processing dialog can show the stages. Outputs are always paths inside the
run's staging folder (see :class:`.runner.Staging`), never the user's destinations.
"""
from __future__ import annotations

from dataclasses import dataclass

from .sources import FileSource

#: the spill report's files (subdivide.analysis.spill.OUTPUT_FILES)
SPILL_FILES = ("spill_subareas.csv", "spill_exposure.csv", "spill_totals.csv", "spill.json")

#: package contents that are loaded as layers (inside the zip)
PACKAGE_GPKG = "package.gpkg"

BASEMAPS = ("pale", "std", "photo", "none")
CSV_ENCODINGS = ("utf-8", "cp932")


def _opt(flag: str, value) -> list[str]:
    """``--flag VALUE`` when value is given (not None / empty)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return []
    if isinstance(value, float):
        value = f"{value:g}"
    return [flag, str(value).strip()]


def _flag(flag: str, on: bool) -> list[str]:
    return [flag] if on else []


@dataclass(frozen=True)
class Reading:
    """The town-block reading options shared by info and plan."""

    muni: str | None = None
    crs: str | None = None
    encoding: str | None = None

    def args(self) -> list[str]:
        return _opt("--muni", self.muni) + _opt("--crs", self.crs) + _opt("--encoding", self.encoding)


def info_args(source: FileSource, reading: Reading = Reading()) -> list[str]:
    return ["info", *source.args(), *reading.args(), "--json", "--progress"]


def plan_by_attribute_args(source: FileSource, column: str, out_gpkg: str, *, reading: Reading = Reading(),
                           export_csv: str | None = None, max_subareas: int | None = None) -> list[str]:
    if not column:
        raise ValueError("a column is needed")
    return ["plan", *source.args(), "--by", column, "--out", out_gpkg, *_opt("--export-csv", export_csv),
            *_opt("--max-subareas", max_subareas), *reading.args(), "--progress"]


@dataclass(frozen=True)
class AutoOptions:
    """``subdivide plan --auto``: the k range and the objective / constraint options."""

    k_min: int = 2
    k_max: int = 14
    min_core: float = 0.0
    min_area_km2: float = 0.0
    spill_km: float = 2.0
    attributes: tuple[str, ...] = ()
    rasters: tuple[tuple[str, str], ...] = ()       # (name, GeoTIFF path)
    follow_old: str | None = None
    nest: bool = False
    old_penalty: float = 2.0
    compactness: float | None = None
    seed: int = 0
    restarts: int | None = None
    pick: int | None = None
    max_subareas: int | None = None

    def k_text(self) -> str:
        if self.k_min > self.k_max:
            raise ValueError(f"the smallest k ({self.k_min}) is above the largest ({self.k_max})")
        return str(self.k_min) if self.k_min == self.k_max else f"{self.k_min}-{self.k_max}"

    def args(self) -> list[str]:
        out = ["--k", self.k_text(), "--spill-km", f"{self.spill_km:g}", "--seed", str(int(self.seed)),
               "--old-penalty", f"{self.old_penalty:g}"]
        if self.min_core:
            out += ["--min-core", f"{self.min_core:g}"]
        if self.min_area_km2:
            out += ["--min-area-km2", f"{self.min_area_km2:g}"]
        if self.attributes:
            out += ["--attributes", ",".join(self.attributes)]
        for name, path in self.rasters:
            out += ["--raster", f"{name}={path}"]
        out += _opt("--follow-old", self.follow_old) + _flag("--nest", self.nest and bool(self.follow_old))
        out += _opt("--compactness", self.compactness) + _opt("--restarts", self.restarts)
        out += _opt("--pick", self.pick) + _opt("--max-subareas", self.max_subareas)
        return out


def plan_auto_args(source: FileSource, out_gpkg: str, options: AutoOptions, *, reading: Reading = Reading(),
                   candidates_csv: str | None = None, export_csv: str | None = None) -> list[str]:
    return ["plan", *source.args(), "--auto", *options.args(), "--out", out_gpkg,
            *_opt("--candidates-out", candidates_csv), *_opt("--export-csv", export_csv), *reading.args(),
            "--progress"]


def spill_args(plan_gpkg: str, out_dir: str, *, distances: str = "2,2.5,3", target: float = 0.5,
               points: str | None = None, point_name: str | None = None, neighbours: str | None = None,
               encoding: str = "utf-8-sig") -> list[str]:
    return ["spill", plan_gpkg, "--out", out_dir, "--distances", distances.replace(" ", ""),
            "--target", f"{target:g}", *_opt("--points", points), *_opt("--point-name", point_name),
            *_opt("--neighbours", neighbours), "--encoding", encoding, "--progress"]


def package_args(plan_gpkg: str, out_zip: str, *, profile: str | None = None, csv_encoding: str | None = None,
                 spill: bool = True, review_map: bool = True, offline_map: bool = True) -> list[str]:
    if csv_encoding is not None and csv_encoding not in CSV_ENCODINGS:
        raise ValueError(f"csv encoding {csv_encoding!r}")
    return ["package", plan_gpkg, "--out", out_zip, *_opt("--profile", profile),
            *_opt("--csv-encoding", csv_encoding), *_flag("--no-spill", not spill),
            *_flag("--no-map", not review_map), *_flag("--online-map", review_map and not offline_map), "--progress"]


def validate_args(package: str, json_out: str, *, profile: str | None = None, outline: str | None = None,
                  spill_km: str | None = None, target_share: float | None = None) -> list[str]:
    return ["validate", package, "--json", json_out, *_opt("--profile", profile), *_opt("--outline", outline),
            *_opt("--spill-km", spill_km.replace(" ", "") if spill_km else None),
            *_opt("--target-share", target_share)]


def map_args(plan_gpkg: str, out_html: str, *, basemap: str = "pale", offline: bool = False,
             distances: str = "2,2.5,3", points: str | None = None, point_name: str | None = None,
             title: str | None = None, note: str | None = None) -> list[str]:
    if basemap not in BASEMAPS:
        raise ValueError(f"basemap {basemap!r}")
    return ["map", plan_gpkg, "--output", out_html, "--basemap", basemap, *_flag("--offline", offline),
            "--distances", distances.replace(" ", ""), *_opt("--points", points),
            *_opt("--point-name", point_name), *_opt("--title", title), *_opt("--note", note), "--progress"]


def vsizip(zip_path: str, member: str, layer: str) -> str:
    """QGIS's URI of a layer of a GeoPackage inside a zip (forward slashes also on Windows)."""
    return f"/vsizip/{str(zip_path).replace(chr(92), '/')}/{member}|layername={layer}"
