"""`subdivide run`: the whole pipeline in one process gives the bytes the separate commands give.

On the bundled 花巻 sample, `run --by OLD_MUNI` is compared file by file with `plan`, `spill`,
`package`, `map` and `report` run one after the other (the same plan, spill report, package,
council map and report); on real 鳥取市 polygons it plans, packages and validates clean; and
it writes its folder whole or not at all.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from subdivide.cli.main import main


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != ".subdivide-output"}


def test_run_equals_the_separate_commands(sample_shp, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(sample_shp), "--by", "OLD_MUNI", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "CLEAN" in said and "03205 花巻市" in said
    got = _files(out)
    assert {"info.txt", "info.json", "plan.gpkg", "validation.txt", "validation.json", "map.html",
            "report/report.html", "spill/spill.json", "package/manifest.json", "summary.json"} <= set(got)

    sep = tmp_path / "separate"
    sep.mkdir()
    plan = sep / "plan.gpkg"
    assert main(["plan", str(sample_shp), "--by", "OLD_MUNI", "--out", str(plan)]) == 0
    assert main(["spill", str(plan), "--out", str(sep / "spill")]) == 0
    assert main(["package", str(plan), "--out", str(sep / "package")]) == 0
    assert main(["validate", str(sep / "package"), "--quiet", "--json", str(sep / "validation.json")]) == 0
    assert main(["map", str(plan), "-o", str(sep / "map.html")]) == 0
    assert main(["report", str(plan), "-o", str(sep / "report")]) == 0
    capsys.readouterr()
    assert main(["info", str(sample_shp), "--json"]) == 0
    info_json = capsys.readouterr().out
    want = _files(sep)
    assert got["plan.gpkg"] == want["plan.gpkg"]
    for part in ("spill/", "package/", "report/"):
        mine = {k: v for k, v in got.items() if k.startswith(part)}
        theirs = {k: v for k, v in want.items() if k.startswith(part)}
        assert mine.keys() == theirs.keys(), part
        for k in mine:
            if k == "spill/spill.json":      # it names its plan: plan.gpkg beside it, or the path given
                a, b = json.loads(mine[k]), json.loads(theirs[k])
                assert (a["parameters"].pop("plan"), b["parameters"].pop("plan")) == ("plan.gpkg", str(plan))
                assert a == b
                continue
            assert mine[k] == theirs[k], f"{k} differs from the separate command's"
    assert got["map.html"] == want["map.html"]
    assert json.loads(got["info.json"]) == json.loads(info_json)
    # the validation report names where the package is, not the run's temporary folder
    mine_v, theirs_v = json.loads(got["validation.json"]), json.loads(want["validation.json"])
    assert mine_v["package"] == str(out / "package")
    mine_v.pop("package"), theirs_v.pop("package")
    assert mine_v == theirs_v
    summary = json.loads(got["summary.json"])
    assert summary["plan"] == {"muni_code": "03205", "population": 97702, "subareas": 4, "townblocks": 463}
    assert summary["validation"]["status"] == 0


def test_run_on_real_tottori_polygons_is_deterministic(shared_data, tmp_path):
    """鳥取市 (666 real e-Stat blocks) by its 旧市町村 mapping, as a zip; twice, same bytes."""
    from subdivide.io.townblocks import read_townblocks

    shp = shared_data / "tottori_31_estat2015" / "h27ka31.shp"
    blocks, _ = read_townblocks(shp, muni_code="31201")
    old = blocks["name"].str.extract(r"^(国府町|福部町|河原町|用瀬町|佐治町|気高町|鹿野町|青谷町)")[0].fillna("鳥取")
    mapping = tmp_path / "mapping.csv"
    mapping.write_text("key,subarea\n" + "".join(f"{k},{v}\n" for k, v in zip(blocks["key"], old)),
                       encoding="utf-8")
    runs = []
    for i in (1, 2):
        out = tmp_path / f"run{i}"
        assert main(["run", str(shp), "--muni", "31201", "--mapping", str(mapping), "--zip",
                     "--distances", "2,3", "--out", str(out)]) == 0
        runs.append(_files(out))
    assert runs[0].keys() == runs[1].keys()
    assert [k for k in runs[0] if runs[0][k] != runs[1][k]] == ["validation.json", "validation.txt"]  # the path
    summary = json.loads(runs[0]["summary.json"])
    assert summary["plan"]["subareas"] == 9 and summary["plan"]["townblocks"] == 666
    assert summary["validation"] == {"status": 0, "error": 0, "warning": summary["validation"]["warning"],
                                     "info": summary["validation"]["info"]}
    assert "package.zip" in runs[0]
    assert "鳥取市" in runs[0]["validation.txt"].decode("utf-8")


def test_run_from_a_plan_skips_reading(sample_plan, tmp_path):
    plan = tmp_path / "p.plan.gpkg"
    sample_plan.save(plan)
    out = tmp_path / "run"
    assert main(["run", str(plan), "--out", str(out), "--rename", "1=花巻中央地域"]) == 0
    got = _files(out)
    assert "info.txt" not in got and "plan.gpkg" in got
    assert "花巻中央地域" in got["report/report.html"].decode("utf-8")


def test_run_writes_whole_or_nothing(sample_shp, tmp_path, capsys):
    out = tmp_path / "run"
    # a refused plan: nothing written
    assert main(["run", str(sample_shp), "--by", "NO_SUCH_COLUMN", "--out", str(out)]) == 2
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert "NO_SUCH_COLUMN" in capsys.readouterr().err
    # a folder holding someone's file is never replaced, even with --force
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    for extra in ([], ["--force"]):
        assert main(["run", str(sample_shp), "--by", "OLD_MUNI", "--out", str(out), *extra]) == 2
        assert [p.name for p in out.iterdir()] == ["notes.txt"]
    # an earlier run is replaced only with --force
    again = tmp_path / "again"
    assert main(["run", str(sample_shp), "--by", "OLD_MUNI", "--out", str(again), "--distances", "2"]) == 0
    assert main(["run", str(sample_shp), "--by", "OLD_MUNI", "--out", str(again)]) == 2
    assert main(["run", str(sample_shp), "--by", "OLD_MUNI", "--out", str(again), "--force"]) == 0
    assert json.loads((again / "spill" / "spill.json").read_text(encoding="utf-8"))["parameters"]["distances_km"] \
        == [2.0, 2.5, 3.0]


@pytest.mark.parametrize("argv", [["--distances", "0"], ["--by", "OLD_MUNI", "--auto"]])
def test_run_refuses_bad_options_before_work(sample_shp, tmp_path, argv, capsys):
    out = tmp_path / "run"
    args = ["run", str(sample_shp), "--out", str(out), *argv]
    if "--by" not in argv:
        args += ["--by", "OLD_MUNI"]
    assert main(args) == 2
    assert not out.exists()
