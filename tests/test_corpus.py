"""The hostile-input corpus (issue 10): every case in ``tests/corpus/<case>/case.toml`` runs
through the CLI and must end as its ``case.toml`` says.

A case directory holds ``case.toml`` and, optionally, small input files (copied into the
case's temporary folder). ``case.toml``::

    class = "fs-fault"            # one of CLASSES
    what = "plan --out into a read-only folder"
    setup = [["copy_plan", "plan.gpkg"], ["mount", "ro", "readonly"]]   # recipes, in order
    argv = ["map", "{tmp}/plan.gpkg", "-o", "{tmp}/ro/map.html"]
    exit = 2                      # expected exit status
    stderr = ["read-only", "where:", "fix:"]   # substrings stderr must contain
    absent = ["{tmp}/ro/map.html"]             # files that must not exist afterwards
    contains = { "{tmp}/m.html" = ["…"] }      # output text that must be there
    not_contains = { "{tmp}/m.html" = ["49町"] }
    mode = "inprocess"            # or "subprocess" (python -m subdivide); "nodac" = subprocess
                                  # without the root DAC override (permissions then apply to root)
    slow = true                   # a case that takes seconds (marked @pytest.mark.slow)
    env = { TMPDIR = "{tmp}/full" }

Checked for every case: the exit status; the stderr substrings; no ``Traceback`` in
stderr; no hidden temporary (``.name.….tmp…``) left anywhere in the case folder; and, for a
failing case (exit ≠ 0), no partial output: the case folder holds exactly the files it
held before the command, with the same bytes (so nothing was overwritten or deleted).

Placeholders: ``{tmp}`` (the case's temporary folder), ``{case}`` (the case directory),
``{sample_shp}`` / ``{sample_dir}`` (the bundled 花巻 sample), ``{small_shp}`` (85 real
花巻 town-blocks: 大迫・石鳥谷・東和, written once per session), ``{tottori_shp}`` (the
shared real 鳥取県 file), ``{long}`` (a 300-byte file name).

Expensive inputs are built once per session (the small plan, its package, the small
Shapefile); recipes copy them into the case folder.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from conftest import IN_CI, ROOT, SAMPLE_DIR, SAMPLE_SHP, SHARED_DATA

CORPUS = Path(__file__).resolve().parent / "corpus"
CASES = sorted(d for d in CORPUS.iterdir() if (d / "case.toml").is_file()) if CORPUS.is_dir() else []

#: the case classes of issue 10 (every class must have cases)
CLASSES = {
    "template": "names are data, never templates (map / report / package)",
    "force": "--force replaces only what the tool wrote; an output is never an input",
    "fs-fault": "file-system faults: read-only, full disk / TMPDIR, unreadable, FIFO, long names, corrupt SQLite",
    "atomic": "outputs of one command are all-or-nothing",
    "odd-input": "truncated or odd town-block / table inputs",
    "bad-number": "bad numbers: ranges, seeds, NaN / inf, meaningless physical options",
    "plan-edit": "plan GeoPackages edited outside the tool",
    "name-rule": "names the validator refuses are refused at plan time (same rule id)",
    "geo-input": "overlays, points and rasters that do not fit the municipality",
    "validator": "validator cross-checks (GeoPackage vs Shapefile vs lists, .prj zone)",
}

LONG = "a" * 300


# ============================================================================ session inputs
@pytest.fixture(scope="session")
def corpus_inputs(tmp_path_factory):
    """Inputs shared by all cases, built once: the small Shapefile, its plan and package."""
    import pyogrio

    if not SAMPLE_SHP.exists():
        if IN_CI:
            pytest.fail(f"bundled sample missing under CI: {SAMPLE_SHP}")
        pytest.skip(f"bundled sample missing: {SAMPLE_SHP}")
    base = tmp_path_factory.mktemp("corpus-inputs")
    df = pyogrio.read_dataframe(SAMPLE_SHP, encoding="cp932")
    small = base / "small" / "h27ka03205.shp"
    small.parent.mkdir()
    pyogrio.write_dataframe(df[df["OLD_MUNI"] != "花巻"], small, encoding="CP932")
    (small.with_suffix(".cpg")).unlink()  # like e-Stat: no .cpg (CP932 is the reader's default)
    from subdivide.carrier.package import build_package
    from subdivide.io.townblocks import read_townblocks
    from subdivide.model.plan import Plan

    blocks, _ = read_townblocks(small)
    plan = Plan.from_assignment(blocks, blocks.set_index("key")["OLD_MUNI"], metadata={"method": "corpus"})
    plan_path = plan.save(base / "small.plan.gpkg")
    pkg = build_package(plan, base / "pkg", spill=None, review_map=False)
    tottori = next(iter(sorted((SHARED_DATA / "tottori_31_estat2015").glob("*.shp"))), None) \
        if (SHARED_DATA / "tottori_31_estat2015").is_dir() else None
    return {"small_shp": small, "plan": plan_path, "pkg": Path(pkg), "tottori_shp": tottori, "base": base}


# ============================================================================ recipes
class Ctx:
    def __init__(self, tmp: Path, case: Path, inputs: dict):
        self.tmp, self.case, self.inputs = tmp, case, inputs
        self.mounts: list[Path] = []
        self.patches: list = []

    def sub(self, text: str) -> str:
        vals = {"tmp": str(self.tmp), "case": str(self.case), "sample_shp": str(SAMPLE_SHP),
                "sample_dir": str(SAMPLE_DIR), "small_shp": str(self.inputs["small_shp"]),
                "tottori_shp": str(self.inputs["tottori_shp"] or "/nonexistent/tottori.shp"), "long": LONG}
        out = str(text)
        for k, v in vals.items():
            out = out.replace("{" + k + "}", v)
        return out

    def path(self, rel: str) -> Path:
        p = Path(self.sub(rel))
        return p if p.is_absolute() else self.tmp / p


def r_copy_plan(ctx: Ctx, dst: str = "plan.gpkg"):
    ctx.path(dst).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ctx.inputs["plan"], ctx.path(dst))


def r_copy_pkg(ctx: Ctx, dst: str = "pkg"):
    shutil.copytree(ctx.inputs["pkg"], ctx.path(dst))


def r_zip_pkg(ctx: Ctx, src: str = "pkg", dst: str = "pkg.zip"):
    src_p, dst_p = ctx.path(src), ctx.path(dst)
    with zipfile.ZipFile(dst_p, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(src_p.rglob("*")):
            if f.is_file():
                z.write(f, f.relative_to(src_p).as_posix())
    shutil.rmtree(src_p)


def r_copy_shp(ctx: Ctx, dst: str = "blocks.shp", src: str = "{small_shp}"):
    s = Path(ctx.sub(src))
    d = ctx.path(dst)
    d.parent.mkdir(parents=True, exist_ok=True)
    for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
        if s.with_suffix(ext).exists():
            shutil.copyfile(s.with_suffix(ext), d.with_suffix(ext))


def r_copy(ctx: Ctx, src: str, dst: str):
    s, d = ctx.path(src), ctx.path(dst)
    d.parent.mkdir(parents=True, exist_ok=True)
    (shutil.copytree if s.is_dir() else shutil.copyfile)(s, d)


def r_write(ctx: Ctx, dst: str, text: str, encoding: str = "utf-8"):
    d = ctx.path(dst)
    d.parent.mkdir(parents=True, exist_ok=True)
    d.write_bytes(ctx.sub(text).encode(encoding))


def r_write_hex(ctx: Ctx, dst: str, hexdata: str):
    ctx.path(dst).write_bytes(bytes.fromhex(hexdata))


def r_remove(ctx: Ctx, dst: str):
    p = ctx.path(dst)
    shutil.rmtree(p) if p.is_dir() else p.unlink()


def r_mkdir(ctx: Ctx, dst: str):
    ctx.path(dst).mkdir(parents=True, exist_ok=True)


def r_mkfifo(ctx: Ctx, dst: str):
    os.mkfifo(ctx.path(dst))


def r_symlink(ctx: Ctx, target: str, dst: str):
    os.symlink(ctx.path(target), ctx.path(dst))


def r_chmod(ctx: Ctx, dst: str, mode: str):
    os.chmod(ctx.path(dst), int(mode, 8))


def r_truncate(ctx: Ctx, dst: str, keep: str):
    """Keep the first ``keep`` bytes ("100"), or a share of the file ("50%")."""
    p = ctx.path(dst)
    data = p.read_bytes()
    n = int(len(data) * float(keep[:-1]) / 100) if str(keep).endswith("%") else int(keep)
    p.write_bytes(data[:n])


def r_poke(ctx: Ctx, dst: str, offset: int, hexdata: str):
    p = ctx.path(dst)
    data = bytearray(p.read_bytes())
    off = offset if offset >= 0 else len(data) + offset
    data[off:off + len(bytes.fromhex(hexdata))] = bytes.fromhex(hexdata)
    p.write_bytes(bytes(data))


def r_sql(ctx: Ctx, dst: str, *statements: str):
    con = sqlite3.connect(ctx.path(dst))
    # GeoPackage rtree triggers call SpatiaLite-style functions plain sqlite3 lacks; the edits
    # below leave geometries alone (or NULL them), so stand-ins keep the triggers quiet
    con.create_function("ST_IsEmpty", 1, lambda g: 1 if g is None else 0)
    for fn in ("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY"):
        con.create_function(fn, 1, lambda g: 0.0)
    try:
        for st in statements:
            con.execute(ctx.sub(st))
        con.commit()
    finally:
        con.close()


def r_retype_key_integer(ctx: Ctx, dst: str = "plan.gpkg"):
    """What QGIS 'refactor fields' does: the key column becomes INTEGER (zeros lost)."""
    r_sql(ctx, dst, "ALTER TABLE townblocks ADD COLUMN key_int INTEGER",
          "UPDATE townblocks SET key_int = CAST(key AS INTEGER)",
          "ALTER TABLE townblocks DROP COLUMN key", "ALTER TABLE townblocks RENAME COLUMN key_int TO key")


def r_edit_dbf(ctx: Ctx, dst: str, column: str, values: str, rows: str = "all"):
    """Rewrite a copied Shapefile with ``column`` set (as text) to ``values`` (JSON list, cycled)."""
    import pyogrio

    p = ctx.path(dst)
    enc = "UTF-8" if p.with_suffix(".cpg").exists() and "utf" in p.with_suffix(".cpg").read_text().lower() else "cp932"
    df = pyogrio.read_dataframe(p, encoding=enc)
    vals = json.loads(values)
    idx = range(len(df)) if rows == "all" else [int(r) for r in rows.split(",")]
    col = df[column].astype(object) if column in df.columns else [None] * len(df)
    col = list(col)
    for j, i in enumerate(idx):
        col[i] = vals[j % len(vals)]
    df[column] = col
    for ext in (".shp", ".shx", ".dbf", ".cpg"):
        if p.with_suffix(ext).exists():
            p.with_suffix(ext).unlink()
    prj = p.with_suffix(".prj").read_bytes() if p.with_suffix(".prj").exists() else None
    pyogrio.write_dataframe(df, p, encoding="CP932", layer=p.stem)
    p.with_suffix(".cpg").unlink(missing_ok=True)
    if prj is not None:
        p.with_suffix(".prj").write_bytes(prj)


def r_write_geojson(ctx: Ctx, dst: str, kind: str):
    """Small GeoJSON inputs relative to the 花巻 sample (lon/lat, JGD2011)."""
    hanamaki = (141.11, 39.39)
    far = (130.4, 33.6)  # 福岡: in Japan, far from 花巻

    def square(cx, cy, d=0.05):
        return {"type": "Polygon", "coordinates": [[[cx - d, cy - d], [cx + d, cy - d], [cx + d, cy + d],
                                                    [cx - d, cy + d], [cx - d, cy - d]]]}

    feats = {
        "overlay_far": [({"old": "福岡"}, square(*far, 0.2))],
        "overlay_points": [({"old": "花巻"}, {"type": "Point", "coordinates": list(hanamaki)})],
        "overlay_swapped": [({"old": "花巻"}, square(hanamaki[1], hanamaki[0], 0.3))],
        "overlay_tiny": [({"old": "点"}, square(141.30, 39.40, 0.002))],
        "points_polygons": [({"name": "役場"}, square(*hanamaki, 0.01))],
        "points_lines": [({"name": "道"}, {"type": "LineString", "coordinates": [list(hanamaki), [141.2, 39.5]]})],
        "points_swapped": [({"name": "役場"}, {"type": "Point", "coordinates": [hanamaki[1], hanamaki[0]]})],
        "points_outside_japan": [({"name": "Paris"}, {"type": "Point", "coordinates": [2.35, 48.85]})],
        "points_payload": [({"name": "{{ 7*7 }}役場<script>alert(1)</script>"},
                            {"type": "Point", "coordinates": [141.25, 39.45]})],
        "empty": [],
    }[kind]
    fc = {"type": "FeatureCollection",
          "features": [{"type": "Feature", "properties": p, "geometry": g} for p, g in feats]}
    ctx.path(dst).write_text(json.dumps(fc, ensure_ascii=False), encoding="utf-8")


def r_write_raster(ctx: Ctx, dst: str, kind: str):
    """A small GeoTIFF: 'far' (福岡, nothing over 花巻), 'corner' (covers a corner only),
    'nodata' (covers 花巻 but all nodata), 'nocrs'."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    crs = "EPSG:6678"  # 花巻's zone X; the sample's blocks lie around x 20–50 km, y −80…−40 km
    spec = {"far": (-900000.0, 900000.0, 0.0), "corner": (38000.0, -50000.0, 1.0),
            "nodata": (10000.0, -30000.0, -9999.0), "nocrs": (10000.0, -30000.0, 1.0)}[kind]
    x0, y0, value = spec
    size, res = (60, 1000.0) if kind in ("nodata", "nocrs") else (5, 1000.0)
    data = np.full((size, size), value, dtype="float32")
    with rasterio.open(ctx.path(dst), "w", driver="GTiff", width=size, height=size, count=1, dtype="float32",
                       crs=None if kind == "nocrs" else crs, transform=from_origin(x0, y0, res, res),
                       nodata=-9999.0) as dst_:
        dst_.write(data, 1)


def r_mount(ctx: Ctx, dst: str, kind: str):
    """A real tmpfs when we may mount one (root): ``readonly`` or ``full`` (a few KB, filled).
    Elsewhere: ``readonly`` is a folder without write permission (a non-root user cannot
    write there); ``full`` is emulated by making every write below the folder fail ENOSPC."""
    d = ctx.path(dst)
    d.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0 and shutil.which("mount"):
        opts = {"readonly": "ro,size=64k", "full": "size=16k", "almostfull": "size=64k"}[kind]
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(d)], capture_output=True)
        if r.returncode == 0:
            ctx.mounts.append(d)
            if kind in ("full", "almostfull"):  # almost full: room for a probe file, not for data
                with open(d / "filler", "wb") as f:
                    with contextlib.suppress(OSError):
                        f.write(b"\0" * ((64 << 10) if kind == "full" else (48 << 10)))
            return
    if kind == "readonly":
        os.chmod(d, 0o555)
    else:
        ctx.patches.append(("enospc-under", d, kind))
        if kind in ("full", "almostfull"):
            (d / "filler").write_bytes(b"")


def r_cli(ctx: Ctx, *argv: str):
    """Run subdivide itself to make an input (e.g. a registry database); must succeed."""
    status, _, err = _run_inprocess([ctx.sub(a) for a in argv], {})
    assert status == 0, f"setup command {argv} failed: {err[-800:]}"


def r_reseal(ctx: Ctx, root: str = "pkg"):
    """Recompute a package manifest's sha256 and sizes, so only the intended rule fires."""
    from subdivide.io.output import sha256_file

    r = ctx.path(root)
    mpath = r / "manifest.json"
    man = json.loads(mpath.read_text(encoding="utf-8"))
    files = sorted(f for f in r.rglob("*") if f.is_file() and f.name != "manifest.json")
    man["outputs"] = [{"path": f.relative_to(r).as_posix(), "sha256": sha256_file(f), "size": f.stat().st_size}
                      for f in files]
    mpath.write_text(json.dumps(man, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8")


def r_write_prj(ctx: Ctx, dst: str, epsg: str):
    """An ESRI .prj for EPSG:``epsg`` (as GDAL writes it)."""
    from pyproj import CRS

    ctx.path(dst).write_text(CRS.from_epsg(int(epsg)).to_wkt("WKT1_ESRI"), encoding="ascii")


def r_utf8_copy(ctx: Ctx, src: str, dst: str):
    """Re-encode a Shapefile's DBF as UTF-8 and write no .cpg (a QGIS export)."""
    import pyogrio

    s, d = ctx.path(src), ctx.path(dst)
    df = pyogrio.read_dataframe(s, encoding="cp932")
    pyogrio.write_dataframe(df, d, encoding="UTF-8", layer=d.stem)
    d.with_suffix(".cpg").unlink(missing_ok=True)
    shutil.copyfile(s.with_suffix(".prj"), d.with_suffix(".prj"))


def r_reproject(ctx: Ctx, dst: str, epsg: str):
    """Rewrite a copied Shapefile in EPSG:``epsg`` (e.g. the plane-rectangular zone), keeping
    its attributes (CP932, no .cpg, as e-Stat ships them)."""
    import pyogrio

    p = ctx.path(dst)
    df = pyogrio.read_dataframe(p, encoding="cp932").to_crs(int(epsg))
    for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
        p.with_suffix(ext).unlink(missing_ok=True)
    pyogrio.write_dataframe(df, p, encoding="CP932", layer=p.stem)
    p.with_suffix(".cpg").unlink(missing_ok=True)


def r_write_zip(ctx: Ctx, dst: str, *members: str):
    with zipfile.ZipFile(ctx.path(dst), "w") as z:
        for m in members:
            z.writestr(m, "x")


def r_append_first_row(ctx: Ctx, dst: str):
    """Repeat the first data row of a CSV at its end (a key listed twice)."""
    p = ctx.path(dst)
    lines = p.read_bytes().split(b"\r\n")
    body = [ln for ln in lines[1:] if ln]
    p.write_bytes(b"\r\n".join([lines[0], *body, body[0]]) + b"\r\n")


def r_csv_swap_subarea(ctx: Ctx, dst: str):
    """In a package's town-block CSV list, give the first block the sub-area of the last."""
    import csv as _csv

    p = ctx.path(dst)
    text = p.read_bytes().decode("utf-8-sig")
    rows = list(_csv.reader(io.StringIO(text)))
    head, body = rows[0], rows[1:]
    cols = [i for i, h in enumerate(head) if "エリア" in h or "AREA" in h.upper() or "subarea" in h.lower()]
    for i in cols:
        body[0][i] = body[-1][i]
    buf = io.StringIO()
    _csv.writer(buf, lineterminator="\r\n").writerows([head, *body])
    p.write_bytes(buf.getvalue().encode("utf-8-sig"))


RECIPES = {name[2:]: fn for name, fn in globals().items() if name.startswith("r_") and callable(fn)}


# ============================================================================ running
def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            try:
                if p.is_symlink():
                    out[rel] = "link:" + os.readlink(p)
                elif p.is_file():
                    out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
                else:
                    out[rel] = "special"
            except OSError:
                out[rel] = "unreadable"
        for d in dirnames:
            p = Path(dirpath) / d
            if not os.listdir(p) if os.access(p, os.R_OK | os.X_OK) else False:
                out[str(p.relative_to(root)) + "/"] = "dir"
    return out


def _temporaries(root: Path) -> list[str]:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + dirnames:
            if name.startswith(".") and (".tmp" in name or name.endswith(".old")):
                found.append(str((Path(dirpath) / name).relative_to(root)))
    return found


@contextlib.contextmanager
def _enospc_under(folders: list[Path]):
    """Emulate a full disk below ``folders`` (only when no tmpfs could be mounted)."""
    import builtins

    real_open, real_replace, real_mkstemp = builtins.open, os.replace, None
    import tempfile

    real_mkstemp, real_mkdtemp = tempfile.mkstemp, tempfile.mkdtemp

    def under(p) -> bool:
        try:
            rp = Path(os.fspath(p)).resolve()
        except (TypeError, ValueError, OSError):
            return False
        return any(rp == f.resolve() or f.resolve() in rp.parents for f in folders)

    def full():
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def fake_open(file, mode="r", *a, **k):
        if any(c in mode for c in "wax+") and not isinstance(file, int) and under(file):
            raise full()
        return real_open(file, mode, *a, **k)

    def fake_replace(src, dst, *a, **k):
        if under(dst):
            raise full()
        return real_replace(src, dst, *a, **k)

    def fake_mkstemp(*a, dir=None, **k):
        if under(dir or tempfile.gettempdir()):
            raise full()
        return real_mkstemp(*a, dir=dir, **k)

    def fake_mkdtemp(*a, dir=None, **k):
        if under(dir or tempfile.gettempdir()):
            raise full()
        return real_mkdtemp(*a, dir=dir, **k)

    builtins.open, os.replace, tempfile.mkstemp, tempfile.mkdtemp = fake_open, fake_replace, fake_mkstemp, fake_mkdtemp
    try:
        yield
    finally:
        builtins.open, os.replace, tempfile.mkstemp, tempfile.mkdtemp = real_open, real_replace, real_mkstemp, real_mkdtemp


def _run_inprocess(argv: list[str], env: dict, *, pin_tmpdir: bool = False) -> tuple[int, str, str]:
    import tempfile

    from subdivide.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    old_env = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    old_tempdir = tempfile.tempdir
    tempfile.tempdir = None  # so a TMPDIR of the case takes effect
    if pin_tmpdir and env.get("TMPDIR"):  # emulated full disk: skip tempfile's probe (it would fall back)
        tempfile.tempdir = env["TMPDIR"]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = main(argv)
            except SystemExit as exc:  # argparse
                status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
            except BaseException:  # an escaped exception is what a user would see as a traceback
                import traceback

                traceback.print_exc(file=err)
                status = 1
    finally:
        tempfile.tempdir = old_tempdir
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return status, out.getvalue(), err.getvalue()


def _run_subprocess(argv: list[str], env: dict, *, nodac: bool, cwd: Path) -> tuple[int, str, str]:
    cmd = [sys.executable, "-m", "subdivide", *argv]
    if nodac and os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.fail("running as root without setpriv: cannot test permission faults")
        caps = "-dac_override,-dac_read_search,-fowner"
        cmd = ["setpriv", f"--bounding-set={caps}", f"--inh-caps={caps}", "--", *cmd]
    full_env = dict(os.environ, **env, PYTHONPATH=str(ROOT))
    r = subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=300)
    return r.returncode, r.stdout, r.stderr


def load_case(case_dir: Path) -> dict:
    spec = tomllib.loads((case_dir / "case.toml").read_text(encoding="utf-8"))
    for key in ("class", "what", "argv", "exit"):
        assert key in spec, f"{case_dir.name}: case.toml lacks {key!r}"
    assert spec["class"] in CLASSES, f"{case_dir.name}: unknown class {spec['class']!r}"
    return spec


def run_case(case_dir: Path, tmp: Path, inputs: dict) -> None:
    spec = load_case(case_dir)
    ctx = Ctx(tmp, case_dir, inputs)
    for f in sorted(case_dir.iterdir()):
        if f.name != "case.toml":
            (shutil.copytree if f.is_dir() else shutil.copyfile)(f, tmp / f.name)
    try:
        for step in spec.get("setup", []):
            name, *args = step
            assert name in RECIPES, f"{case_dir.name}: unknown recipe {name!r}"
            RECIPES[name](ctx, *args)
        before = _snapshot(tmp)
        argv = [ctx.sub(a) for a in spec["argv"]]
        env = {k: ctx.sub(v) for k, v in spec.get("env", {}).items()}
        mode = spec.get("mode", "inprocess")
        folders = [d for what, d, _ in ctx.patches if what == "enospc-under"]
        pin = any(kind == "almostfull" for _, _, kind in ctx.patches)
        if mode == "inprocess":
            with (_enospc_under(folders) if folders else contextlib.nullcontext()):
                status, out, err = _run_inprocess(argv, env, pin_tmpdir=pin)
        else:
            status, out, err = _run_subprocess(argv, env, nodac=(mode == "nodac"), cwd=tmp)
        after = _snapshot(tmp)
        temporaries = _temporaries(tmp)
    finally:
        for d in reversed(ctx.mounts):
            subprocess.run(["umount", "-l", str(d)], capture_output=True)
        for dirpath, dirnames, _ in os.walk(tmp):  # let pytest clean up
            for d in dirnames:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(dirpath, d), 0o755)
    problems = []
    if "Traceback" in err or "Traceback" in out:
        problems.append("a traceback was printed")
    if status != spec["exit"]:
        problems.append(f"exit status {status}, expected {spec['exit']}")
    for s in spec.get("stderr", []):
        if ctx.sub(s) not in err:
            problems.append(f"stderr lacks {s!r}")
    for s in spec.get("stdout", []):
        if ctx.sub(s) not in out:
            problems.append(f"stdout lacks {s!r}")
    if temporaries:
        problems.append(f"temporaries left behind: {temporaries[:5]}")
    if spec["exit"] != 0 or status != 0:
        new = sorted(set(after) - set(before))
        gone = sorted(set(before) - set(after))
        changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
        if new:
            problems.append(f"partial output: new files {new[:5]}")
        if gone:
            problems.append(f"files deleted: {gone[:5]}")
        if changed:
            problems.append(f"files changed: {changed[:5]}")
    for p in spec.get("absent", []):
        if os.path.lexists(ctx.sub(p)):
            problems.append(f"{p} exists")
    for p in spec.get("exists", []):
        if not os.path.exists(ctx.sub(p)):
            problems.append(f"{p} was not written")
    for p, needles in spec.get("contains", {}).items():
        text = _read_text(Path(ctx.sub(p)))
        problems += [f"{p} lacks {n!r}" for n in needles if n not in text]
    for p, needles in spec.get("not_contains", {}).items():
        text = _read_text(Path(ctx.sub(p)))
        problems += [f"{p} contains {n!r}" for n in needles if n in text]
    if problems:
        pytest.fail(f"{case_dir.name} ({spec['what']}):\n  " + "\n  ".join(problems)
                    + f"\n--- argv: {argv}\n--- stderr (last 1500 chars):\n{err[-1500:]}")


def _read_text(p: Path) -> str:
    if p.is_dir():
        return "\n".join(_read_text(f) for f in sorted(p.rglob("*")) if f.is_file()
                         and f.suffix in (".html", ".csv", ".json", ".txt", ".svg"))
    if not p.exists():
        return ""
    return p.read_bytes().decode("utf-8", "replace")


# ============================================================================ tests
def _param(d: Path):
    """Cases that render a map / report / package, read a whole prefecture or start a
    subprocess take a few seconds: ``slow = true`` marks them (CI runs them all)."""
    slow = tomllib.loads((d / "case.toml").read_text(encoding="utf-8")).get("slow", False)
    return pytest.param(d, id=d.name, marks=[pytest.mark.slow] if slow else [])


@pytest.mark.parametrize("case_dir", [_param(d) for d in CASES])
def test_corpus_case(case_dir, corpus_inputs, tmp_path):
    run_case(case_dir, tmp_path, corpus_inputs)


def test_corpus_is_large_and_covers_every_class():
    classes = [load_case(d)["class"] for d in CASES]
    assert len(CASES) >= 150, f"only {len(CASES)} cases"
    missing = sorted(set(CLASSES) - set(classes))
    assert not missing, f"classes without cases: {missing}"


def test_every_case_checks_the_message_of_a_failure():
    """A failing case must name what, where and how to fix (validate: its findings table)."""
    weak = []
    for d in CASES:
        spec = load_case(d)
        if spec["exit"] == 2 and not {"where:", "fix:"} <= set(spec.get("stderr", [])) \
                and spec["argv"][0] != "validate":
            weak.append(d.name)
    assert not weak, f"failing cases that do not check where:/fix: {weak}"
