"""File-system and database faults become what/where/fix errors (subdivide.core.faults), and
a failing command leaves none of its outputs behind (subdivide.cli.outputs). The corpus
(tests/corpus, fs-fault and atomic classes) runs the same through every command; these
are the unit-level checks of the two mechanisms."""
from __future__ import annotations

import argparse
import errno
import os
import sqlite3

import pytest

from subdivide.cli.main import main
from subdivide.cli.outputs import OutputTransaction
from subdivide.core.errors import UserError
from subdivide.core.faults import fault_to_user_error, special_files


@pytest.mark.parametrize("code, words", [
    (errno.ENOSPC, ["no space left", "TMPDIR"]), (errno.EROFS, ["read-only", "writable"]),
    (errno.EACCES, ["permission denied"]), (errno.ENAMETOOLONG, ["too long", "255 bytes"]),
])
def test_os_errors_name_what_where_and_fix(code, words):
    err = fault_to_user_error(OSError(code, os.strerror(code), "/data/out/plan.gpkg"))
    assert isinstance(err, UserError)
    msg = err.message
    assert all(w in msg for w in words), msg
    assert err.where == "/data/out/plan.gpkg" and err.fix


def test_gdal_and_sqlite_messages_are_classified():
    class DataSourceError(RuntimeError):
        __module__ = "pyogrio.errors"

    full = fault_to_user_error(DataSourceError("sqlite3_exec(CREATE TABLE x " + "y" * 5000 + ") failed: "
                                               "database or disk is full"), paths=["out/p.gpkg"])
    assert "no space left" in full.message and len(full.message) < 1200 and full.where == "out/p.gpkg"
    bad = fault_to_user_error(DataSourceError("database disk image is malformed"), paths=["p.gpkg"])
    assert "damaged" in bad.message and "rebuild" in bad.fix
    db = fault_to_user_error(sqlite3.DatabaseError("file is not a database"), paths=["reg.db"])
    assert "SQLite" in db.message and db.where == "reg.db"
    assert fault_to_user_error(KeyError("x")) is None


def test_fifo_arguments_are_found(tmp_path):
    fifo = tmp_path / "blocks.dbf"
    os.mkfifo(fifo)
    ns = argparse.Namespace(command="info", file=str(tmp_path / "blocks.shp"), json=False)
    assert special_files(ns) == [(str(fifo), "a named pipe (FIFO)")]


def test_nan_options_are_refused_before_work(tmp_path, capsys):
    assert main(["plan", str(tmp_path / "none.shp"), "--auto", "--spill-km", "nan", "--out", str(tmp_path / "p.gpkg")]) == 2
    err = capsys.readouterr().err
    assert "--spill-km nan: not a finite number" in err and "fix:" in err


def test_failed_command_removes_what_it_created_and_restores_what_it_replaced(tmp_path):
    old = tmp_path / "old.csv"
    old.write_text("old\n")
    new = tmp_path / "new.csv"
    folder = tmp_path / "made"
    with pytest.raises(RuntimeError):
        with OutputTransaction([old, new, folder]):
            tmp = tmp_path / ".old.tmp"
            tmp.write_text("replaced\n")
            os.replace(tmp, old)              # an atomic writer replacing an existing output
            new.write_text("partial\n")
            folder.mkdir()
            (folder / "a.csv").write_text("x")
            raise RuntimeError("disk full")
    assert old.read_text() == "old\n" and not new.exists() and not folder.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.csv"]   # no twin left


def test_successful_command_keeps_its_outputs_and_leaves_no_twin(tmp_path):
    out = tmp_path / "p.csv"
    out.write_text("v1\n")
    with OutputTransaction([out]):
        out.write_text("v2\n")
    assert out.read_text() == "v2\n" and sorted(p.name for p in tmp_path.iterdir()) == ["p.csv"]
