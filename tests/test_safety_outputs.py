"""--force replaces only what the tool wrote (issue 10 §2).

For every command with an output file or folder: a folder holding someone else's file is
refused, --force or not, and the file survives; an output that is one of the command's
inputs (also through a symbolic or hard link) is refused; a symbolic link, ``.`` and a
name near NAME_MAX are replaced atomically; temporaries are hidden, recognisable, never
left behind, and a later run removes those of a run that died. The registry opens only
a file that is absent, empty or already a registry.

Commands and their outputs (from each command's --help): map -o FILE; report -o DIR;
package --out DIR|ZIP; demo --out DIR; validate --json FILE; registry --db FILE;
plan --out / --export-csv / --candidates-out / --review-out FILE; spill --out DIR (files
written into it one by one); coverage --out / --sites-out FILE. ``info --json`` prints to
stdout and writes no file.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from subdivide.cli.main import main
from subdivide.core.errors import UserError
from subdivide.io.output import (
    OLD_PREFIX,
    OUTPUT_MARKER,
    TEMP_PREFIX,
    atomic_dir,
    atomic_path,
    check_can_write,
    read_marker,
)

from conftest import SAMPLE_DIR


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith((TEMP_PREFIX, OLD_PREFIX)))


@pytest.fixture(scope="module")
def plan_file(sample_blocks, tmp_path_factory):
    """A small real plan (大迫・石鳥谷・東和, 85 town-blocks) saved as a GeoPackage."""
    from subdivide.model.plan import Plan

    b = sample_blocks[sample_blocks["OLD_MUNI"] != "花巻"].copy()
    path = tmp_path_factory.mktemp("plan") / "p.plan.gpkg"
    Plan.from_assignment(b, b.set_index("key")["OLD_MUNI"]).save(path)
    return path


@pytest.fixture(scope="module")
def package_zip(plan_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("pkg") / "p.zip"
    assert main(["package", str(plan_file), "--out", str(out), "--no-map", "--no-spill"]) == 0
    return out


def _users_folder(tmp_path: Path, plan_file: Path) -> Path:
    """A folder of the user's: their notes and their plan."""
    d = tmp_path / "work"
    d.mkdir()
    (d / "notes.txt").write_text("mine", encoding="utf-8")
    shutil.copy(plan_file, d / "p.plan.gpkg")
    return d


# ---------------------------------------------------------------------- folders of others
@pytest.mark.parametrize("command", [
    ["report", "{plan}", "-o", "{out}", "--force"],
    ["package", "{plan}", "--out", "{out}", "--force", "--no-map", "--no-spill"],
    ["demo", "--out", "{out}", "--force", "--quiet"],
], ids=["report", "package", "demo"])
@pytest.mark.parametrize("plan_inside", [False, True], ids=["other-files", "input-inside"])
def test_a_folder_of_others_is_never_replaced(command, plan_inside, plan_file, tmp_path, capsys):
    d = _users_folder(tmp_path, plan_file)
    plan = d / "p.plan.gpkg" if plan_inside else plan_file
    before = _tree(d)
    args = [a.format(plan=plan, out=d) for a in command]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "never replaced" in err or "input" in err, err
    assert "Traceback" not in err and "fix:" in err
    assert _tree(d) == before
    assert _hidden(tmp_path) == []


def test_demo_never_replaces_the_sample_or_a_folder_holding_it(tmp_path, capsys):
    sample = tmp_path / "out" / "sample"
    shutil.copytree(SAMPLE_DIR, sample)
    before = _tree(tmp_path)
    assert main(["demo", "--sample", str(sample), "--out", str(tmp_path / "out"), "--force", "--quiet"]) == 2
    assert main(["demo", "--sample", str(sample), "--out", str(sample), "--force", "--quiet"]) == 2
    assert "input" in capsys.readouterr().err
    assert _tree(tmp_path) == before


@pytest.mark.slow   # runs report/spill (several seconds)
def test_a_folder_written_by_another_command_is_not_replaced(plan_file, tmp_path, capsys):
    rep = tmp_path / "rep"
    assert main(["report", str(plan_file), "-o", str(rep), "--distances", "2"]) == 0
    assert read_marker(rep)["command"] == "report"
    before = _tree(rep)
    assert main(["package", str(plan_file), "--out", str(rep), "--force", "--no-map", "--no-spill"]) == 2
    assert "subdivide report" in capsys.readouterr().err
    assert _tree(rep) == before
    # the same command replaces its own output; a file added by hand stops that
    assert main(["report", str(plan_file), "-o", str(rep), "--distances", "2.5", "--force"]) == 0
    assert _tree(rep) != before and _hidden(tmp_path) == []
    (rep / "annotated.txt").write_text("my notes", encoding="utf-8")
    assert main(["report", str(plan_file), "-o", str(rep), "--force"]) == 2
    assert "annotated.txt" in capsys.readouterr().err
    assert (rep / "annotated.txt").read_text(encoding="utf-8") == "my notes"


def test_package_folder_replaced_only_while_it_holds_what_its_manifest_lists(plan_file, tmp_path, capsys):
    out = tmp_path / "pkg"
    assert main(["package", str(plan_file), "--out", str(out), "--no-map", "--no-spill"]) == 0
    assert not (out / OUTPUT_MARKER).exists()       # the validator refuses unlisted files
    assert main(["validate", str(out), "--quiet"]) == 0
    assert main(["package", str(plan_file), "--out", str(out), "--no-map", "--no-spill", "--force",
                 "--csv-encoding", "cp932"]) == 0
    (out / "extra.csv").write_text("x", encoding="utf-8")
    capsys.readouterr()
    assert main(["package", str(plan_file), "--out", str(out), "--no-map", "--no-spill", "--force"]) == 2
    assert "extra.csv" in capsys.readouterr().err and (out / "extra.csv").exists()


def test_an_empty_folder_is_written_into(plan_file, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    assert main(["package", str(plan_file), "--out", str(out), "--no-map", "--no-spill"]) == 0
    assert (out / "manifest.json").is_file() and _hidden(tmp_path) == []


@pytest.mark.slow   # runs report/spill (several seconds)
def test_spill_writes_its_files_beside_others_and_keeps_them(plan_file, tmp_path):
    d = _users_folder(tmp_path, plan_file)
    assert main(["spill", str(plan_file), "--out", str(d), "--distances", "2"]) == 0
    assert main(["spill", str(plan_file), "--out", str(d), "--distances", "2", "--force"]) == 0
    assert (d / "notes.txt").read_text(encoding="utf-8") == "mine" and (d / "p.plan.gpkg").is_file()
    assert (d / "spill.json").is_file() and _hidden(d) == []


# ---------------------------------------------------------------------- output == input
def test_map_never_overwrites_its_input(plan_file, tmp_path, capsys):
    plan = tmp_path / "p.plan.gpkg"
    shutil.copy(plan_file, plan)
    before = plan.read_bytes()
    link = tmp_path / "link.html"
    link.symlink_to(plan)
    hard = tmp_path / "hard.html"
    os.link(plan, hard)
    for out in (plan, link, hard, tmp_path / "." / "p.plan.gpkg"):
        assert main(["map", str(plan), "-o", str(out), "--force"]) == 2, out
        assert "also an input" in capsys.readouterr().err
    assert plan.read_bytes() == before and link.is_symlink()


def test_validate_json_never_replaces_the_package(package_zip, tmp_path, capsys):
    pkg = tmp_path / "p.zip"
    shutil.copy(package_zip, pkg)
    before = pkg.read_bytes()
    assert main(["validate", str(pkg), "--json", str(pkg), "--force", "--quiet"]) == 2
    assert "also an input" in capsys.readouterr().err
    assert pkg.read_bytes() == before
    assert main(["validate", str(pkg), "--json", str(tmp_path / "r.json"), "--quiet"]) == 0


def test_package_never_replaces_its_inputs(plan_file, tmp_path, capsys):
    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(plan_file, d / "p.plan.gpkg")
    prof = d / "prof.zip"
    prof.write_bytes(b"x")
    assert main(["package", str(d / "p.plan.gpkg"), "--out", str(d), "--force", "--no-map"]) == 2
    assert main(["package", str(d / "p.plan.gpkg"), "--out", str(prof), "--profile", str(prof),
                 "--force", "--no-map"]) == 2
    assert prof.read_bytes() == b"x" and (d / "p.plan.gpkg").read_bytes() == plan_file.read_bytes()


def test_plan_and_coverage_never_overwrite_an_input(plan_file, tmp_path, capsys):
    plan = tmp_path / "p.plan.gpkg"
    shutil.copy(plan_file, plan)
    before = plan.read_bytes()
    assert main(["plan", str(plan), "--rename", "1=新地域", "--out", str(plan), "--force"]) == 2
    mapping = tmp_path / "m.csv"
    mapping.write_text("key,subarea\n", encoding="utf-8")
    assert main(["plan", str(SAMPLE_DIR / "h27ka03205.shp"), "--mapping", str(mapping),
                 "--export-csv", str(mapping), "--force"]) == 2
    assert main(["coverage", "--synthetic", "--outline", str(plan), "--out", str(plan), "--force"]) == 2
    assert plan.read_bytes() == before and mapping.read_text(encoding="utf-8") == "key,subarea\n"
    assert "also an input" in capsys.readouterr().err


def test_an_own_folder_holding_an_input_is_refused(plan_file, tmp_path):
    d = tmp_path / "rep"
    with atomic_dir(d, command="report") as tmp:
        shutil.copy(plan_file, tmp / "p.plan.gpkg")     # listed in the marker: "ours", yet an input
    with pytest.raises(UserError, match="holds an input"):
        check_can_write(d, True, folder=True, inputs=[d / "p.plan.gpkg"], command="report")
    check_can_write(d, True, folder=True, inputs=[plan_file], command="report")   # otherwise replaceable


# ---------------------------------------------------------------------- links, '.', long names
@pytest.mark.slow   # runs report/spill (several seconds)
def test_symlinked_output_folder_is_replaced_through_the_link(plan_file, tmp_path):
    real = tmp_path / "real"
    link = tmp_path / "link"
    assert main(["report", str(plan_file), "-o", str(real), "--distances", "2"]) == 0
    link.symlink_to(real, target_is_directory=True)
    assert main(["report", str(plan_file), "-o", str(link), "--distances", "3", "--force"]) == 0
    assert link.is_symlink() and (link / "report.html").is_file()
    assert "L=3 km" in (real / "report.html").read_text(encoding="utf-8")
    assert _hidden(tmp_path) == []
    # a link to someone else's folder is refused like the folder itself
    other = _users_folder(tmp_path, plan_file)
    link2 = tmp_path / "link2"
    link2.symlink_to(other, target_is_directory=True)
    assert main(["report", str(plan_file), "-o", str(link2), "--force"]) == 2
    assert (other / "notes.txt").exists()
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    assert main(["report", str(plan_file), "-o", str(dangling)]) == 2
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.slow   # runs report/spill (several seconds)
def test_dot_is_replaced_only_when_it_is_an_earlier_output(plan_file, tmp_path, monkeypatch):
    from subdivide.model.plan import read_plan
    from subdivide.present.report import build_report

    rep = tmp_path / "rep"
    assert main(["report", str(plan_file), "-o", str(rep), "--distances", "2"]) == 0
    monkeypatch.chdir(rep)
    plan = read_plan(plan_file)
    build_report(plan, Path("."), distances_km=(3.0,), force=True, inputs=[plan_file])
    assert Path.cwd() == rep.resolve() and "L=3 km" in (rep / "report.html").read_text(encoding="utf-8")
    assert _hidden(tmp_path) == []
    mine = _users_folder(tmp_path, plan_file)
    monkeypatch.chdir(mine)
    with pytest.raises(UserError, match="never replaced"):
        build_report(plan, Path("."), distances_km=(3.0,), force=True)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt", "p.plan.gpkg"]


def test_cli_dot_output_is_refused_cleanly(plan_file, tmp_path, monkeypatch, capsys):
    mine = _users_folder(tmp_path, plan_file)
    monkeypatch.chdir(mine)
    assert main(["report", str(plan_file), "-o", ".", "--force"]) == 2
    assert "never replaced" in capsys.readouterr().err
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt", "p.plan.gpkg"]


def test_a_name_near_name_max_is_written_and_replaced(tmp_path):
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    long_dir = tmp_path / ("d" * (name_max - 1))
    long_file = tmp_path / ("f" * (name_max - 5) + ".csv")
    for force in (False, True):
        with atomic_dir(long_dir, force=force, command="test") as tmp:
            (tmp / "a.txt").write_text(str(force), encoding="utf-8")
        with atomic_path(long_file, force=force) as tmp:
            tmp.write_text(str(force), encoding="utf-8")
    assert (long_dir / "a.txt").read_text(encoding="utf-8") == "True"
    assert long_file.read_text(encoding="utf-8") == "True"
    assert _hidden(tmp_path) == []


# ---------------------------------------------------------------------- temporaries
def test_temporaries_are_hidden_and_removed_on_error(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with atomic_dir(target, command="test") as tmp:
            assert tmp.name.startswith(TEMP_PREFIX) and tmp.parent == tmp_path
            (tmp / "half.txt").write_text("x", encoding="utf-8")
            raise RuntimeError("disk full")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(tmp_path / "f.csv") as tmp:
            tmp.write_text("x", encoding="utf-8")
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    # an earlier output stays as it was when the replacement fails
    with atomic_dir(target, command="test") as tmp:
        (tmp / "v1.txt").write_text("1", encoding="utf-8")
    with pytest.raises(RuntimeError):
        with atomic_dir(target, force=True, command="test") as tmp:
            (tmp / "v2.txt").write_text("2", encoding="utf-8")
            raise RuntimeError("failed")
    assert sorted(p.name for p in target.iterdir()) == sorted([OUTPUT_MARKER, "v1.txt"])
    assert _hidden(tmp_path) == []


def test_stale_temporaries_of_a_dead_run_are_removed(tmp_path):
    from subdivide.io.output import _name_hash

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    pid = int(dead.stdout)
    target = tmp_path / "out"
    h = _name_hash(target.name)
    stale_dir = tmp_path / f"{TEMP_PREFIX}{h}-{pid}-deadbeef"
    stale_old = tmp_path / f"{OLD_PREFIX}{h}-{pid}-deadbeef"
    live = tmp_path / f"{TEMP_PREFIX}{h}-{os.getpid()}-cafecafe"   # a run still going: kept
    other = tmp_path / f"{TEMP_PREFIX}{_name_hash('another')}-{pid}-deadbeef"   # another output's: kept
    for d in (stale_dir, stale_old, live, other):
        d.mkdir()
        (d / "x").write_text("x", encoding="utf-8")
    with atomic_dir(target, command="test") as tmp:
        (tmp / "a.txt").write_text("a", encoding="utf-8")
    assert not stale_dir.exists() and not stale_old.exists()
    assert live.exists() and other.exists()


def test_marker_records_the_command_and_entries_deterministically(tmp_path):
    for name in ("a", "b"):
        with atomic_dir(tmp_path / name, command="report") as tmp:
            (tmp / "sub").mkdir()
            (tmp / "sub" / "x.png").write_bytes(b"x")
            (tmp / "report.html").write_text("r", encoding="utf-8")
    m = read_marker(tmp_path / "a")
    assert m["command"] == "report" and m["entries"] == ["report.html", "sub", "sub/x.png"]
    assert (tmp_path / "a" / OUTPUT_MARKER).read_bytes() == (tmp_path / "b" / OUTPUT_MARKER).read_bytes()
    # a marker that lists too little (a file added later) does not make the folder ours
    (tmp_path / "a" / "sub" / "y.png").write_bytes(b"y")
    with pytest.raises(UserError, match="did not write"):
        check_can_write(tmp_path / "a", True, folder=True, command="report")


# ---------------------------------------------------------------------- registry
def _foreign_gpkg(path: Path) -> bytes:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE gpkg_contents (table_name TEXT PRIMARY KEY)")
    con.execute("CREATE TABLE parcels (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO parcels VALUES (1, 'mine')")
    con.commit()
    con.close()
    return path.read_bytes()


def test_registry_never_touches_a_foreign_database(tmp_path, capsys):
    db = tmp_path / "user.gpkg"
    before = _foreign_gpkg(db)
    for args in (["list"], ["history"], ["show", "03205"], ["withdraw", "03205"]):
        assert main(["registry", "--db", str(db), *args]) == 2, args
        assert "not a subdivide registry" in capsys.readouterr().err
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["user.gpkg"]     # no -wal / -shm / journal
    con = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] != "wal"
    con.close()
    text = tmp_path / "notes.txt"
    text.write_text("not a database", encoding="utf-8")
    assert main(["registry", "--db", str(text), "list"]) == 2
    assert text.read_text(encoding="utf-8") == "not a database"


def test_registry_opens_absent_empty_and_registry_files(tmp_path):
    from subdivide.carrier.registry import Registry

    absent = tmp_path / "new.sqlite"
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    blank = tmp_path / "blank.sqlite"
    sqlite3.connect(blank).close()       # an SQLite file with no tables
    for db in (absent, empty, blank):
        assert main(["registry", "--db", str(db), "list"]) == 0
        assert Registry(db).schema_version >= 1
    assert main(["registry", "--db", str(absent), "list"]) == 0       # and again: it is a registry now


def test_validate_json_is_never_written_into_the_package_folder(plan_file, tmp_path, capsys):
    pkg = tmp_path / "pkg"
    assert main(["package", str(plan_file), "--out", str(pkg), "--no-map", "--no-spill"]) == 0
    before = _tree(pkg)
    assert main(["validate", str(pkg), "--json", str(pkg / "report.json"), "--quiet"]) == 2
    assert "input folder" in capsys.readouterr().err
    assert _tree(pkg) == before
