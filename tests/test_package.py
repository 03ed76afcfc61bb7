"""The carrier submission package: contents, encodings, determinism, safety.

Real data: the bundled 花巻 sample (the whole plan for the end-to-end test, the three
smaller 旧町 sub-areas for the fast tests).
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
from openpyxl import load_workbook

from subdivide.cli.main import main
from subdivide.io.dbf import LDID_CP932, read_dbf_header
from subdivide.core.errors import UserError
from subdivide.carrier.package import build_package, zip_directory
from subdivide.model.plan import Plan
from subdivide.carrier.profiles import load_profile
from subdivide.carrier.validation import validate_package

SAMPLE_OUTLINE = Path(__file__).resolve().parents[1] / "data" / "hanamaki_03205" / "outline.geojson"
TSUBAKI = "大字椿東中津江の１"
FORMULA = '=HYPERLINK("http://x","y")'


@pytest.fixture(scope="module")
def small_plan(sample_blocks):
    """大迫・石鳥谷・東和 (85 real town-blocks); one block renamed to the Japanese test name,
    one to a formula."""
    b = sample_blocks[sample_blocks["OLD_MUNI"] != "花巻"].copy()
    b.loc[b.index[0], "name"] = TSUBAKI
    b.loc[b.index[1], "name"] = FORMULA
    return Plan.from_assignment(b, b.set_index("key")["OLD_MUNI"])


@pytest.fixture(scope="module")
def small_package(small_plan, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pkg") / "small"
    return build_package(small_plan, out, spill=False, review_map=False)


# ------------------------------------------------------------------ contents
def test_package_lists_every_file_with_checksums(small_package):
    man = json.loads((small_package / "manifest.json").read_text(encoding="utf-8"))
    files = sorted(p.relative_to(small_package).as_posix() for p in small_package.rglob("*")
                   if p.is_file() and p.name != "manifest.json")
    assert [o["path"] for o in man["outputs"]] == files
    for base in ("townblocks", "subareas"):
        for ext in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
            assert f"{base}{ext}" in files
    assert {"package.gpkg", "subarea_list.csv", "townblock_list.csv", "area_codes.xlsx"} <= set(files)
    assert man["municipality"] == {"code": "03205", "code6": "032051", "name": "花巻市"}
    assert man["limits"]["max_subareas"] == 14 and man["limits"]["max_municipalities"] == 25
    assert {c["rule"] for c in man["limits"]["checked"]} >= {"LIMIT-SUBAREAS", "CONTIGUITY"}
    assert man["counts"]["townblocks"] == 85 and man["counts"]["subareas"] == 3


def test_cpg_and_ldid_bytes_read_back(small_package):
    for base in ("townblocks", "subareas"):
        assert (small_package / f"{base}.cpg").read_bytes() == b"CP932"
        raw = (small_package / f"{base}.dbf").read_bytes()
        assert raw[29] == 0x13 == LDID_CP932
        assert tuple(raw[1:4]) == (100, 1, 1)          # fixed last-update date 2000-01-01
        header = read_dbf_header(small_package / f"{base}.dbf")
        assert all(f.name.isascii() and len(f.name) <= 10 for f in header.fields)
    assert (small_package / "townblocks.prj").read_text().startswith("PROJCS[")


def test_shapefile_fields_and_values(small_package, small_plan):
    prof = load_profile()
    f = prof.townblock_fields
    tb = pyogrio.read_dataframe(small_package / "townblocks.shp", encoding="cp932")
    assert list(tb.columns[:-1]) == [f[k] for k in ("key", "name", "subarea", "subarea_name",
                                                    "subarea_code", "population")]
    assert tb[f["key"]].tolist() == small_plan.blocks["key"].tolist()       # text, leading zeros kept
    assert tb[f["population"]].sum() == small_plan.blocks["population"].sum()
    sa = pyogrio.read_dataframe(small_package / "subareas.shp", encoding="cp932")
    assert sa[prof.subarea_fields["name"]].tolist() == small_plan.dissolved["name"].tolist()
    assert sorted(sa[prof.subarea_fields["name"]]) == ["大迫地域", "東和地域", "石鳥谷地域"]
    assert sa[prof.subarea_fields["code"]].str.fullmatch(r"03205\d\d").all()
    np.testing.assert_allclose(sa.geometry.area.sum(), small_plan.blocks.geometry.area.sum(), rtol=1e-6)
    gp = pyogrio.read_dataframe(small_package / "package.gpkg", layer="townblocks")
    assert gp[f["key"]].tolist() == tb[f["key"]].tolist()


def test_japanese_name_round_trips_through_shapefile_csv_xlsx(small_package):
    # Shapefile, decoded by GDAL through the .cpg and by hand from the raw CP932 bytes
    tb = pyogrio.read_dataframe(small_package / "townblocks.shp")
    assert TSUBAKI in set(tb["NAME"])
    assert TSUBAKI.encode("cp932") in (small_package / "townblocks.dbf").read_bytes()
    # GeoPackage (UTF-8)
    assert TSUBAKI in set(pyogrio.read_dataframe(small_package / "package.gpkg", layer="townblocks")["NAME"])
    # CSV: UTF-8 with BOM and CRLF
    raw = (small_package / "townblock_list.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw and raw.count(b"\n") == raw.count(b"\r\n")
    assert TSUBAKI in raw.decode("utf-8-sig")
    # XLSX
    ws = load_workbook(small_package / "area_codes.xlsx")["townblocks"]
    assert TSUBAKI in {c.value for c in ws["B"]}


def test_formulas_neutralised_in_csv_and_xlsx(small_package):
    text = (small_package / "townblock_list.csv").read_bytes().decode("utf-8-sig")
    assert "'" + FORMULA.replace('"', '""') in text
    ws = load_workbook(small_package / "area_codes.xlsx")["townblocks"]
    names = [c.value for c in ws["B"]]
    assert "'" + FORMULA in names and FORMULA not in names
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)
    # the Shapefile keeps the name verbatim (it is data, not a spreadsheet)
    assert FORMULA in set(pyogrio.read_dataframe(small_package / "townblocks.shp")["NAME"])


def test_xlsx_code_columns_are_text(small_package):
    wb = load_workbook(small_package / "area_codes.xlsx")
    ws = wb["subareas"]
    head = [c.value for c in ws[1]]
    col = head.index("エリアコード") + 1
    cells = [ws.cell(row=r, column=col) for r in range(2, ws.max_row + 1)]
    assert [c.value for c in cells] == ["0320501", "0320502", "0320503"]
    assert all(c.data_type == "s" and c.number_format == "@" for c in cells)
    keys = [c for c in wb["townblocks"]["A"][1:]]
    assert all(isinstance(c.value, str) and c.value.startswith("03205") for c in keys)


def test_sub_area_list_totals(small_package, small_plan):
    df = pd.read_csv(small_package / "subarea_list.csv", dtype=str, encoding="utf-8-sig")
    assert df["エリアコード"].tolist() == small_plan.metrics["code"].tolist()
    assert df["町丁目数"].astype(int).sum() == len(small_plan.blocks)
    assert df["人口"].astype(int).sum() == small_plan.blocks["population"].sum()
    np.testing.assert_allclose(df["面積(km2)"].astype(float).sum(),
                               small_plan.blocks.geometry.area.sum() / 1e6, rtol=1e-3)


# ------------------------------------------------------------------ determinism and safety
def test_byte_identical_directory_and_zip(small_plan, tmp_path):
    from subdivide.analysis.spill import spill_report

    report = spill_report(small_plan, distances_km=(2.0,))
    a = build_package(small_plan, tmp_path / "a", spill=report, review_map=False)
    b = build_package(small_plan, tmp_path / "b", spill=report, review_map=False)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert any(str(f).startswith("spill/") for f in files)
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    z1 = build_package(small_plan, tmp_path / "a.zip", spill=False, review_map=False)
    z2 = build_package(small_plan, tmp_path / "b.zip", spill=False, review_map=False)
    assert z1.read_bytes() == z2.read_bytes()
    with zipfile.ZipFile(z1) as z:
        names = z.namelist()
        assert names == sorted(names)
        assert {i.date_time for i in z.infolist()} == {(2000, 1, 1, 0, 0, 0)}


def test_never_overwrites_without_force(small_plan, tmp_path):
    out = build_package(small_plan, tmp_path / "p.zip", spill=False, review_map=False)
    before = out.read_bytes()
    with pytest.raises(UserError, match="already exists"):
        build_package(small_plan, out, spill=False, review_map=False)
    assert out.read_bytes() == before
    build_package(small_plan, out, spill=False, review_map=False, force=True, csv_encoding="cp932")
    assert out.read_bytes() != before


def test_cp932_lists_and_loud_failure(small_plan, tmp_path):
    out = build_package(small_plan, tmp_path / "cp", spill=False, review_map=False, csv_encoding="cp932")
    raw = (out / "townblock_list.csv").read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and TSUBAKI in raw.decode("cp932")
    assert validate_package(out).status == 0
    # 𠮷 (U+20BB7) has no CP932 form: the package is refused and nothing is left behind
    b = small_plan.blocks.copy()
    b.loc[b.index[2], "name"] = "𠮷野"
    bad = small_plan.with_assignment(b["subarea"].to_numpy(), blocks=b)
    with pytest.raises(UserError, match="U\\+20BB7") as exc:
        build_package(bad, tmp_path / "bad", spill=False, review_map=False)
    assert "row 3" in exc.value.where
    assert not (tmp_path / "bad").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_custom_profile(small_plan, tmp_path):
    prof = tmp_path / "carrier.toml"
    prof.write_text('[profile]\nname = "carrier-a"\n[shapefile]\ntownblocks = "chocho"\n'
                    '[shapefile.townblock_fields]\nkey = "CHO_CODE"\nsubarea = "SAIBUN_NO"\n'
                    '[lists]\nxlsx = "codes.xlsx"\n', encoding="utf-8")
    out = build_package(small_plan, tmp_path / "pa", profile=prof, spill=False, review_map=False)
    assert (out / "chocho.shp").exists() and (out / "codes.xlsx").exists()
    fields = [f.name for f in read_dbf_header(out / "chocho.dbf").fields]
    assert "CHO_CODE" in fields and "SAIBUN_NO" in fields and "KEY_CODE" not in fields
    assert validate_package(out, profile=prof).status == 0
    wrong = validate_package(out)     # the default profile expects other files
    assert wrong.status == 1 and {"MANIFEST-PROFILE", "SHP-MISSING-PART"} <= wrong.rules()


def test_profile_rejects_long_or_non_ascii_field_names(tmp_path):
    for bad in ('key = "KEY_CODE_LONG"', 'key = "キー"'):
        p = tmp_path / "bad.toml"
        p.write_text(f"[shapefile.townblock_fields]\n{bad}\n", encoding="utf-8")
        with pytest.raises(UserError, match="10 bytes"):
            load_profile(p)


def test_zip_directory_is_flat_and_sorted(small_package):
    data = zip_directory(small_package)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert "manifest.json" in z.namelist()
        assert all(i.external_attr >> 16 == 0o644 for i in z.infolist())


# ------------------------------------------------------------------ end to end
@pytest.mark.slow
def test_sample_package_validates_clean_and_registers(sample_plan, tmp_path, capsys):
    """The bundled sample: plan → package (with spill and map) → validate → registry."""
    plan_path = sample_plan.save(tmp_path / "hanamaki.plan.gpkg")
    out = tmp_path / "hanamaki.zip"
    assert main(["package", str(plan_path), "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
    assert {"map.html", "spill/spill.json", "spill/spill_subareas.csv"} <= names
    man = json.loads(zipfile.ZipFile(out).read("manifest.json"))
    assert man["contents"] == {"map": True, "spill": True}
    assert [i["name"] for i in man["inputs"]] == ["plan"]
    assert man["municipality"] == {"code": "03205", "code6": "032051", "name": "花巻市"}
    report_path = tmp_path / "report.json"
    status = main(["validate", str(out), "--outline", str(SAMPLE_OUTLINE), "--json", str(report_path)])
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert status == 0 and report["status"] == 0 and report["counts"]["error"] == 0, report["findings"]
    # the trial split is known to be tight for the smaller areas: warned, not refused
    assert any(f["rule"] == "SPILL-CORE" for f in report["findings"])
    db = tmp_path / "registry.sqlite"
    capsys.readouterr()
    assert main(["registry", "--db", str(db), "register", str(out)]) == 0    # named by the manifest
    assert "registered 03205 花巻市 as #1" in capsys.readouterr().out
    assert main(["package", str(plan_path), "--out", str(out)]) == 2      # exists, no --force
    capsys.readouterr()
    assert main(["registry", "--db", str(db), "--json", "list"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["muni_code"], r["muni_name"], r["n_subareas"]) for r in rows] == [("03205", "花巻市", 4)]


def test_the_municipality_name_validate_and_the_registry_show(small_plan, small_package, tmp_path, capsys):
    """validate: the carrier's --names list, else the manifest's name (control characters
    dropped). registry: --name, else the earlier registration's, else the manifest's."""
    import shutil

    from subdivide.carrier.registry import Registry

    assert main(["validate", str(small_package)]) == 0
    assert "— 03205 花巻市 —" in capsys.readouterr().out
    names = tmp_path / "codes.csv"
    names.write_text("code,name\n03205,花巻市（公式）\n", encoding="utf-8")
    assert main(["validate", str(small_package), "--names", str(names)]) == 0
    assert "— 03205 花巻市（公式） —" in capsys.readouterr().out
    hostile = tmp_path / "hostile"
    shutil.copytree(small_package, hostile)
    man = json.loads((hostile / "manifest.json").read_text(encoding="utf-8"))
    man["municipality"]["name"] = "\x1b[2J花巻市\u202e"
    (hostile / "manifest.json").write_text(json.dumps(man, ensure_ascii=False), encoding="utf-8")
    assert main(["validate", str(hostile)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "[2J花巻市 —" in out
    reg = Registry(tmp_path / "r.sqlite")
    assert reg.register(hostile)["active"]["muni_name"] == "[2J花巻市"            # the manifest's, cleaned
    other = build_package(small_plan, tmp_path / "cp932", spill=False, review_map=False, csv_encoding="cp932")
    assert reg.register(other, name="花巻市役所")["active"]["muni_name"] == "花巻市役所"
    assert reg.register(small_package)["active"]["muni_name"] == "花巻市役所"        # kept


def test_directory_package_replaced_with_force(small_plan, tmp_path):
    """Regression: --force on an existing *directory* package was refused as 'a folder'."""
    out = build_package(small_plan, tmp_path / "pkg", spill=False, review_map=False)
    with pytest.raises(UserError, match="already exists"):
        build_package(small_plan, out, spill=False, review_map=False)
    build_package(small_plan, out, spill=False, review_map=False, force=True, csv_encoding="cp932")
    assert (out / "manifest.json").is_file()
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["options"]["csv_encoding"] == "cp932"
