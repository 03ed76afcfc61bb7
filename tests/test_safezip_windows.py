"""Zips from Japanese Windows (issue 17): CP932 member names without the UTF-8 flag (Explorer's
"Send to → Compressed folder") and backslash separators (PowerShell 5 ``Compress-Archive``) are
accepted when safe — decoded, normalised and noted (ZIP-WINDOWS-NAMES) — while unsafe names are
refused with the same rule ids as before.

The zips are real: :class:`RawName` writes the exact bytes such archivers write (flag bit 11
clear, CP932 bytes, backslashes) in both the local and the central headers.
"""
from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subdivide.io.safezip import (
    PackageRejected,
    checked_zip_members,
    legacy_name,
    member_name_findings,
    member_path,
    stage_package,
    windows_names_note,
)


class RawName(zipfile.ZipInfo):
    """A member whose stored name is ``raw`` bytes, with the UTF-8 flag cleared (as Japanese
    Windows Explorer writes it), made on 'MS-DOS' like a Windows archiver."""

    def __init__(self, raw: bytes, utf8: bool = False):
        super().__init__(raw.decode("utf-8") if utf8 else raw.decode("cp437"), date_time=(2026, 4, 1, 9, 0, 0))
        self._raw = raw
        self._utf8 = utf8
        self.create_system = 0
        self.compress_type = zipfile.ZIP_DEFLATED

    def _encodeFilenameFlags(self):   # zipfile's hook for the stored name and its flag bits
        if self._utf8:
            return self._raw, self.flag_bits | 0x800
        return self._raw, self.flag_bits & ~0x800


def windows_zip(target: Path, members: list[tuple[bytes, bytes]], *, utf8: bool = False) -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        for raw, data in members:
            zf.writestr(RawName(raw, utf8=utf8), data)
    return target


def explorer_zip(src: Path, target: Path, folder: str, *, sep: str = "/", utf8: bool = False) -> Path:
    """``src``'s files inside the top folder ``folder``, names in CP932 (or flagged UTF-8) with ``sep``."""
    enc = "utf-8" if utf8 else "cp932"
    members = [((folder + sep + p.relative_to(src).as_posix().replace("/", sep)).encode(enc), p.read_bytes())
               for p in sorted(src.rglob("*")) if p.is_file()]
    return windows_zip(target, members, utf8=utf8)


def _read_names(path: Path) -> list[zipfile.ZipInfo]:
    with zipfile.ZipFile(path) as zf:
        return zf.infolist()


# ------------------------------------------------------------------------------ names
def test_raw_names_are_stored_as_windows_writes_them(tmp_path):
    """The test zips really hold CP932 bytes with the flag clear (not UTF-8 in disguise)."""
    z = windows_zip(tmp_path / "a.zip", [("提出表\\一覧.csv".encode("cp932"), b"x")])
    data = z.read_bytes()
    assert "提出表\\一覧.csv".encode("cp932") in data and "提出表".encode() not in data
    (info,) = _read_names(z)
    assert not info.flag_bits & 0x800 and info.orig_filename != "提出表\\一覧.csv"   # read as CP437


def test_cp932_name_with_0x5c_trail_byte_is_not_a_separator(tmp_path):
    """表 is 95 5C in CP932: its second byte is not a backslash; only real separators count."""
    z = windows_zip(tmp_path / "a.zip", [("提出表/表示順.csv".encode("cp932"), b"x"),
                                         ("提出表\\ソフト.txt".encode("cp932"), b"y")])
    a, b = _read_names(z)
    assert "\\" in a.orig_filename                       # what zipfile sees: a false backslash
    assert legacy_name(a) == "提出表/表示順.csv" and member_path(a) == "提出表/表示順.csv"
    assert member_path(b) == "提出表/ソフト.txt"
    assert member_name_findings(a) == [] and member_name_findings(b) == []


def test_utf8_and_ascii_names_unchanged():
    for name in ("manifest.json", "花巻/manifest.json"):
        info = zipfile.ZipInfo(name)
        info.flag_bits |= 0x800 if not name.isascii() else 0
        assert member_path(info) == name and legacy_name(info) == name


def test_note_lists_the_names_used(tmp_path):
    z = windows_zip(tmp_path / "a.zip", [("花巻市\\manifest.json".encode("cp932"), b"{}"),
                                         (b"plain/ascii.txt", b"x")])
    note = windows_names_note(_read_names(z))
    assert note.rule == "ZIP-WINDOWS-NAMES" and note.severity == "info"
    assert note.features == ("花巻市/manifest.json",)
    assert "CP932" in note.message and "backslash" in note.message
    assert windows_names_note(_read_names(windows_zip(tmp_path / "b.zip", [(b"a/b.txt", b"x")]))) is None


# ------------------------------------------------------------------------------ whole packages
@pytest.fixture(scope="module")
def package(sample_plan, tmp_path_factory) -> Path:
    """A real package of the 花巻 sample (trial's 4 sub-areas)."""
    from subdivide.analysis.spill import spill_report
    from subdivide.carrier.package import build_package

    return build_package(sample_plan, tmp_path_factory.mktemp("pkg") / "pkg",
                         spill=spill_report(sample_plan, distances_km=(2.0,)), review_map=False)


@pytest.mark.slow
@pytest.mark.parametrize("style", ["explorer", "powershell5", "powershell5-utf8"])
def test_windows_zipped_package_validates_clean_with_a_note(package, tmp_path, style):
    """The package zipped as Japanese Windows zips a folder named 花巻市提出表: same verdict as
    the package itself, plus one ZIP-WINDOWS-NAMES note naming the decoded paths."""
    from subdivide.carrier.validation import validate_package

    sep = "/" if style == "explorer" else "\\"
    z = explorer_zip(package, tmp_path / "提出.zip", "花巻市提出表", sep=sep, utf8=style.endswith("utf8"))
    plain = validate_package(package)
    report = validate_package(z)
    assert report.status == plain.status == 0, [str(f) for f in report.findings if f.severity == "error"]
    notes = [f for f in report.findings if f.rule == "ZIP-WINDOWS-NAMES"]
    assert len(notes) == 1 and notes[0].severity == "info"
    assert "花巻市提出表/manifest.json" in notes[0].features
    assert "PKG-NESTED-FOLDER" in report.rules()
    assert {f.rule for f in plain.findings} | {"ZIP-WINDOWS-NAMES", "PKG-NESTED-FOLDER"} == report.rules()


def test_staged_files_land_under_their_decoded_names(tmp_path):
    z = windows_zip(tmp_path / "a.zip", [("提出表\\表示順\\一覧.csv".encode("cp932"), b"one"),
                                         ("提出表\\manifest.json".encode("cp932"), b"{}")])
    notes: list = []
    with stage_package(z, notes=notes) as root:
        assert root.name == "提出表"
        assert (root / "表示順" / "一覧.csv").read_bytes() == b"one"
        assert sorted(p.name for p in root.parent.rglob("*")) == ["manifest.json", "一覧.csv", "提出表", "表示順"]
    assert sorted(n.rule for n in notes) == ["PKG-NESTED-FOLDER", "ZIP-WINDOWS-NAMES"]


# ------------------------------------------------------------------------------ still refused
def _symlink(raw: bytes) -> RawName:
    info = RawName(raw)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


UNSAFE = {
    "traversal": ([("..\\..\\提出表.txt".encode("cp932"), b"x")], {"ZIP-PATH-TRAVERSAL", "ZIP-BACKSLASH"}),
    "traversal-inside": ([("提出表\\..\\..\\x.txt".encode("cp932"), b"x")], {"ZIP-PATH-TRAVERSAL"}),
    "absolute": ([("\\提出表\\x.txt".encode("cp932"), b"x")], {"ZIP-ABSOLUTE-PATH"}),
    "drive": ([("C:\\提出表\\x.txt".encode("cp932"), b"x")], {"ZIP-BACKSLASH"}),
    "drive-slash": ([("c:/x.txt".encode("cp932"), b"x")], {"ZIP-BACKSLASH"}),
    "unc": ([("\\\\server\\share\\提出.txt".encode("cp932"), b"x")], {"ZIP-BACKSLASH"}),
    "not-cp932": ([(b"\x82.txt", b"x"), (b"ok.txt", b"x")], {"ZIP-NAME-ENCODING"}),
    "nul": ([("提出\x00.txt".encode("cp932"), b"x")], {"ZIP-BAD-NAME"}),
    "duplicate-after-normalising": ([("提出\\a.txt".encode("cp932"), b"x"), ("提出/a.txt".encode("cp932"), b"y")],
                                    {"ZIP-DUPLICATE-MEMBER"}),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_windows_names_refused(tmp_path, case):
    members, rules = UNSAFE[case]
    z = windows_zip(tmp_path / "bad.zip", members)
    before = set(tmp_path.parent.iterdir())
    with pytest.raises(PackageRejected) as exc, stage_package(z):
        pass
    assert {f.rule for f in exc.value.findings} >= rules
    assert all(f.severity == "error" for f in exc.value.findings)
    assert set(tmp_path.parent.iterdir()) == before and not (tmp_path / "x.txt").exists()


def test_symlink_with_cp932_name_refused(tmp_path):
    z = tmp_path / "s.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(_symlink("提出表\\リンク".encode("cp932")), b"/etc/passwd")
    with pytest.raises(PackageRejected) as exc, stage_package(z):
        pass
    assert "ZIP-SYMLINK" in {f.rule for f in exc.value.findings}


def test_bomb_with_cp932_name_refused(tmp_path):
    z = windows_zip(tmp_path / "bomb.zip", [("提出表\\詰め物.csv".encode("cp932"), bytes(20 << 20))])
    with pytest.raises(PackageRejected) as exc, stage_package(z):
        pass
    assert "ZIP-COMPRESSION-RATIO" in {f.rule for f in exc.value.findings}


def test_input_archives_still_strict(tmp_path):
    """Town-block input zips are read by GDAL under their stored names, so Windows names
    there are refused (with a fix: unpack it) rather than decoded."""
    z = windows_zip(tmp_path / "h27ka03205.zip", [("花巻\\h27ka03205.shp".encode("cp932"), b"x")])
    with pytest.raises(PackageRejected) as exc:
        checked_zip_members(z)
    assert {"ZIP-BACKSLASH", "ZIP-NAME-ENCODING"} <= {f.rule for f in exc.value.findings}


# ------------------------------------------------------------------------------ invariant
PARTS = st.sampled_from(["a", "..", ".", "提出表", "ソ", "C:", "", "b.csv", "\\", "/", "\\\\"])


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(PARTS, min_size=1, max_size=6), sep=st.sampled_from(["/", "\\"]))
def test_cp932_names_accepted_only_inside_the_root(parts, sep):
    """Any CP932 / backslash name: accepted exactly when its decoded POSIX form is a relative
    path that stays inside the staging folder (and names no drive)."""
    name = sep.join(parts) or "a"
    read = zipfile.ZipInfo(name.encode("cp932").decode("cp437"))   # as zipfile reads an unflagged name
    path = member_path(read)
    assert path == name.replace("\\", "/")
    root = "/stage"
    inside = os.path.normpath(os.path.join(root, path)).startswith(root + "/") or \
        os.path.normpath(os.path.join(root, path)) == root
    escapes = (not inside or ".." in path.split("/") or path.startswith("/")
               or (len(path) >= 2 and path[1] == ":"))
    assert bool(member_name_findings(read)) == escapes
