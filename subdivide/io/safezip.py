"""Hardened reading of a received package (a directory or a zip).

:func:`stage_package` copies the package into a fresh :class:`tempfile.TemporaryDirectory`
after checking, *before anything is extracted*:

- every zip member name: no absolute path, no ``..`` component, no drive letter or UNC
  path, no NUL, no duplicates. Names as Japanese Windows writes them (Explorer: CP932
  without the UTF-8 flag; PowerShell 5 ``Compress-Archive``: backslash separators) are
  decoded and normalised first (:func:`member_path`) and accepted with one
  ``ZIP-WINDOWS-NAMES`` note; a legacy name that is not valid CP932 is refused;
- no symlinks (zip ``external_attr`` or directory entries), no special files;
- member count, total uncompressed size, and per-member compression ratio caps
  (zip bombs), with the sizes re-checked while streaming (headers may lie);
- encrypted members and CRC errors.

Any violation raises :class:`PackageRejected` carrying :class:`~subdivide.core.findings.Finding`
objects with stable rule ids (see docs/validation.md); nothing is written outside the
temporary folder, which is removed when the ``with`` block ends.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

from subdivide.core.findings import Finding

CHUNK = 1 << 16


@dataclass(frozen=True)
class Limits:
    """Caps for a received package. Sizes in bytes."""

    max_members: int = 2_000
    max_total_bytes: int = 1 << 30          # 1 GiB uncompressed
    max_member_bytes: int = 512 << 20       # 512 MiB per file
    max_ratio: float = 200.0                # uncompressed / compressed, per member
    ratio_min_bytes: int = 1 << 20          # ratio only checked above 1 MiB uncompressed


DEFAULT_LIMITS = Limits()


class PackageRejected(Exception):
    """The package cannot be read safely; ``findings`` say why (exit status 2)."""

    def __init__(self, findings: list[Finding]):
        self.findings = list(findings)
        super().__init__("; ".join(str(f) for f in self.findings))


def _reject(rule: str, message: str, *features: str) -> PackageRejected:
    return PackageRejected([Finding(rule, "error", message, tuple(features))])


# ----------------------------------------------------------------------------- names
UTF8_FLAG = 0x800
#: the code page of Japanese Windows (Explorer's "Send to → Compressed folder", PowerShell 5)
WINDOWS_CODEPAGE = "cp932"
_DRIVE = re.compile(r"^[A-Za-z]:")


def legacy_name(info: zipfile.ZipInfo) -> str | None:
    """The member name decoded as CP932 when it is a legacy (unflagged, non-ASCII) name, or
    ``None`` when it is not valid CP932. ASCII and UTF-8-flagged names are returned as read.

    :mod:`zipfile` decodes an unflagged name as CP437, a bijection on bytes, so the original
    bytes are recovered exactly and decoded again. A CP932 name may hold the byte 0x5C as
    the second byte of a character (表 is 95 5C): only the decoded name says where the real
    backslashes are."""
    raw = info.orig_filename
    if info.flag_bits & UTF8_FLAG or raw.isascii():
        return raw
    try:
        return raw.encode("cp437").decode(WINDOWS_CODEPAGE)
    except (UnicodeEncodeError, UnicodeDecodeError):
        return None


def member_path(info: zipfile.ZipInfo) -> str:
    """The member's name as a relative POSIX path: decoded (:func:`legacy_name`, falling back
    to the name as read) and with Windows backslash separators turned into ``/``. Pure: it
    says nothing about safety (see :func:`member_name_findings`)."""
    name = legacy_name(info)
    return (info.orig_filename if name is None else name).replace("\\", "/")


def is_windows_name(info: zipfile.ZipInfo) -> bool:
    """True when the name needed decoding (CP932) or normalising (backslashes)."""
    return member_path(info) != info.orig_filename


def member_name_findings(info: zipfile.ZipInfo) -> list[Finding]:
    """Problems with one member's name / type (empty list when safe). The checks apply to
    the decoded, normalised name (:func:`member_path`), so a Windows name is safe exactly
    when its POSIX form is."""
    raw = info.orig_filename
    name = member_path(info)
    out = []
    if "\x00" in raw:
        out.append(Finding("ZIP-BAD-NAME", "error", "member name contains a NUL byte", (repr(raw),)))
    if _DRIVE.match(name) or name.startswith("//"):
        out.append(Finding("ZIP-BACKSLASH", "error",
                           "member name has a drive letter or is a UNC path (absolute Windows path)", (raw,)))
    elif name.startswith("/"):
        out.append(Finding("ZIP-ABSOLUTE-PATH", "error", "member name is an absolute path", (raw,)))
    if ".." in PurePosixPath(name).parts:
        out.append(Finding("ZIP-PATH-TRAVERSAL", "error", "member name climbs out with '..'", (raw,)))
    if out and "\\" in (legacy_name(info) or raw) and not any(f.rule == "ZIP-BACKSLASH" for f in out):
        out.append(Finding("ZIP-BACKSLASH", "error",
                           "member name is a Windows path (backslashes) that is unsafe read as a path", (raw,)))
    if legacy_name(info) is None:
        out.append(Finding("ZIP-NAME-ENCODING", "error",
                           "member name is neither ASCII, flagged UTF-8 nor valid CP932 (unknown code page)",
                           (raw,)))
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_ISLNK(mode):
        out.append(Finding("ZIP-SYMLINK", "error", "member is a symbolic link", (raw,)))
    if info.flag_bits & 0x1:
        out.append(Finding("ZIP-ENCRYPTED", "error", "member is encrypted", (raw,)))
    return out


def _strict_name_findings(info: zipfile.ZipInfo) -> list[Finding]:
    """A Windows name (safe, but GDAL would not find it under its decoded name) refused."""
    raw, out = info.orig_filename, []
    if "\\" in raw:
        out.append(Finding("ZIP-BACKSLASH", "error", "member name uses backslashes (Windows path)", (raw,)))
    if not (info.flag_bits & UTF8_FLAG) and not raw.isascii():
        out.append(Finding("ZIP-NAME-ENCODING", "error",
                           "member name is neither ASCII nor flagged UTF-8 (legacy code page)", (raw,)))
    return out


def zip_findings(zf: zipfile.ZipFile, limits: Limits = DEFAULT_LIMITS, *,
                 windows_names: bool = True) -> list[Finding]:
    """Every problem visible in the central directory (names, counts, declared sizes).
    ``windows_names=False`` refuses CP932 and backslash names even when safe (for callers
    that hand member names to GDAL as they are)."""
    infos = zf.infolist()
    out: list[Finding] = []
    if len(infos) > limits.max_members:
        return [Finding("PKG-TOO-MANY-FILES", "error",
                        f"{len(infos)} members; at most {limits.max_members} are accepted")]
    for info in infos:
        bad = member_name_findings(info)
        out.extend(bad)
        if not bad and not windows_names:
            out.extend(_strict_name_findings(info))
    names = [member_path(i).rstrip("/") for i in infos]
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        out.append(Finding("ZIP-DUPLICATE-MEMBER", "error", "member names repeat", tuple(dups)))
    total = sum(i.file_size for i in infos)
    if total > limits.max_total_bytes:
        out.append(Finding("PKG-TOO-LARGE", "error",
                           f"{total} bytes uncompressed; at most {limits.max_total_bytes} are accepted"))
    for i in infos:
        if i.file_size > limits.max_member_bytes:
            out.append(Finding("PKG-TOO-LARGE", "error",
                               f"member is {i.file_size} bytes; at most {limits.max_member_bytes}", (i.filename,)))
        elif i.file_size >= limits.ratio_min_bytes and i.file_size > limits.max_ratio * max(i.compress_size, 1):
            out.append(Finding("ZIP-COMPRESSION-RATIO", "error",
                               f"compression ratio {i.file_size / max(i.compress_size, 1):.0f}:1 exceeds "
                               f"{limits.max_ratio:.0f}:1 (zip bomb?)", (i.filename,)))
    return out


def open_zip(path: Path) -> zipfile.ZipFile:
    """Open a zip, mapping every low-level failure to :class:`PackageRejected`."""
    try:
        return zipfile.ZipFile(path)
    except UnicodeDecodeError:
        raise _reject("ZIP-NAME-ENCODING", "a member name is flagged UTF-8 but is not valid UTF-8",
                      path.name) from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise _reject("PKG-NOT-ZIP", f"not a readable zip file ({exc.__class__.__name__}: {exc})",
                      path.name) from None


def _extract(zf: zipfile.ZipFile, root: Path, limits: Limits) -> None:
    total = 0
    base = root.resolve()
    for info in zf.infolist():
        name = member_path(info)
        target = (root / name).resolve()
        if base not in target.parents and target != base:
            raise _reject("ZIP-PATH-TRAVERSAL", "member resolves outside the staging folder", info.orig_filename)
        if name.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        try:
            with zf.open(info) as src, open(target, "wb") as dst:
                while chunk := src.read(CHUNK):
                    written += len(chunk)
                    total += len(chunk)
                    if written > info.file_size or written > limits.max_member_bytes:
                        raise _reject("ZIP-COMPRESSION-RATIO",
                                      "member inflates beyond its declared size (forged header)", info.filename)
                    if total > limits.max_total_bytes:
                        raise _reject("PKG-TOO-LARGE", f"more than {limits.max_total_bytes} bytes uncompressed",
                                      info.filename)
                    dst.write(chunk)
        except PackageRejected:
            raise
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, RuntimeError) as exc:  # unsupported method: RuntimeError subclass
            raise _reject("ZIP-CORRUPT", f"member cannot be extracted ({exc.__class__.__name__}: {exc})",
                          info.filename) from None


def directory_findings(path: Path, limits: Limits = DEFAULT_LIMITS) -> list[Finding]:
    """Symlinks, special files, counts and sizes in a package directory (not followed)."""
    out: list[Finding] = []
    n = total = 0
    for dirpath, dirnames, filenames in os.walk(path, followlinks=False):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            rel = p.relative_to(path).as_posix()
            st = p.lstat()
            if stat.S_ISLNK(st.st_mode):
                out.append(Finding("DIR-SYMLINK", "error", "the package contains a symbolic link", (rel,)))
            elif stat.S_ISREG(st.st_mode):
                n += 1
                total += st.st_size
            elif not stat.S_ISDIR(st.st_mode):
                out.append(Finding("DIR-SPECIAL-FILE", "error", "the package contains a special file", (rel,)))
        if n > limits.max_members:
            return out + [Finding("PKG-TOO-MANY-FILES", "error", f"more than {limits.max_members} files")]
    if total > limits.max_total_bytes:
        out.append(Finding("PKG-TOO-LARGE", "error", f"{total} bytes; at most {limits.max_total_bytes} are accepted"))
    return out


#: top-level entries archivers add beside a zipped folder (macOS Finder, Windows Explorer);
#: ignored, with a note, when a single top-level folder holds the package
ARCHIVER_JUNK = frozenset({"__MACOSX", ".DS_Store", "Thumbs.db", "desktop.ini"})


def _package_root(staged: Path, manifest_name: str, notes: list | None = None) -> Path:
    """The package root: the staging folder, or its single top-level folder (archiver
    metadata such as ``__MACOSX/`` beside it is ignored). A ``PKG-NESTED-FOLDER`` note is
    appended to ``notes`` when the package sits in such a folder."""
    if (staged / manifest_name).is_file():
        return staged
    everything = sorted(staged.iterdir())
    entries = [p for p in everything if p.name not in ARCHIVER_JUNK]
    if len(entries) == 1 and entries[0].is_dir() and (entries[0] / manifest_name).is_file():
        if notes is not None:
            junk = [p.name + ("/" if p.is_dir() else "") for p in everything if p.name in ARCHIVER_JUNK]
            notes.append(Finding(
                "PKG-NESTED-FOLDER", "info",
                f"the package sits in the single top-level folder {entries[0].name}/ (accepted; files are "
                "checked relative to it)" + (f"; archiver metadata beside it ignored: {', '.join(junk)}"
                                            if junk else ""),
                (entries[0].name + "/", *junk)))
        return entries[0]
    return staged


@contextlib.contextmanager
def stage_package(path: str | os.PathLike, *, limits: Limits = DEFAULT_LIMITS,
                  manifest_name: str = "manifest.json", notes: list | None = None) -> Iterator[Path]:
    """Check and copy a package (directory or zip) into a temporary folder; yield its root.

    Raises :class:`PackageRejected` (before writing anything) when it is unsafe. ``notes``
    (a list) receives informational findings, e.g. ``PKG-NESTED-FOLDER``.
    """
    src = Path(path)
    if not src.exists() and not src.is_symlink():
        raise _reject("PKG-NOT-FOUND", f"{src} does not exist", str(src))
    if src.is_symlink():
        raise _reject("DIR-SYMLINK", "the package path itself is a symbolic link", str(src))
    with tempfile.TemporaryDirectory(prefix="subdivide-validate-") as tmp:
        staged = Path(tmp) / "package"
        staged.mkdir()
        if src.is_dir():
            bad = directory_findings(src, limits)
            if bad:
                raise PackageRejected(bad)
            shutil.copytree(src, staged, dirs_exist_ok=True, symlinks=True)
        elif src.is_file():
            zf = open_zip(src)
            with zf:
                bad = zip_findings(zf, limits)
                if bad:
                    raise PackageRejected(bad)
                _extract(zf, staged, limits)
                note = windows_names_note(zf.infolist())
                if note is not None and notes is not None:
                    notes.append(note)
        else:
            raise _reject("DIR-SPECIAL-FILE", "the package is neither a directory nor a file", str(src))
        yield _package_root(staged, manifest_name, notes)


def windows_names_note(infos) -> Finding | None:
    """One ``ZIP-WINDOWS-NAMES`` note for the members whose names were decoded from CP932 or
    had backslash separators (each feature: ``name as stored → name used``)."""
    legacy = [i for i in infos if not (i.flag_bits & UTF8_FLAG) and not i.orig_filename.isascii()]
    slashed = [i for i in infos if "\\" in (legacy_name(i) or "")]
    if not legacy and not slashed:
        return None
    what = []
    if legacy:
        what.append(f"{len(legacy)} member name(s) in CP932 without the UTF-8 flag (Japanese Windows Explorer)")
    if slashed:
        what.append(f"{len(slashed)} with backslash separators (PowerShell 5 Compress-Archive)")
    return Finding("ZIP-WINDOWS-NAMES", "info",
                   "; ".join(what) + ": decoded and normalised to UTF-8 names with '/' separators (accepted)",
                   tuple(member_path(i) for i in infos if is_windows_name(i)))


def check_nested_zip(path: Path, limits: Limits = DEFAULT_LIMITS) -> list[Finding]:
    """Central-directory checks for a zip-based file inside the package (e.g. .xlsx)."""
    try:
        zf = open_zip(path)
    except PackageRejected as exc:
        return exc.findings
    with zf:
        return zip_findings(zf, limits)


# ----------------------------------------------------------------------------- reading inputs
#: caps for an input archive (a prefecture-wide e-Stat zip is a few hundred MB at most)
INPUT_LIMITS = Limits(max_members=10_000, max_total_bytes=8 << 30, max_member_bytes=4 << 30,
                      max_ratio=1000.0, ratio_min_bytes=1 << 20)


def checked_zip_members(path: str | os.PathLike, limits: Limits = INPUT_LIMITS) -> list[zipfile.ZipInfo]:
    """The members of an input zip after every central-directory check (names, symlinks,
    encryption, counts, declared sizes, compression ratio); :class:`PackageRejected` otherwise.
    Nothing is extracted."""
    zf = open_zip(Path(path))
    with zf:
        bad = zip_findings(zf, limits, windows_names=False)
        if bad:
            raise PackageRejected(bad)
        return zf.infolist()


def read_zip_member(path: str | os.PathLike, name: str, *, max_bytes: int = 64 << 20) -> bytes:
    """One member's bytes, streamed with a cap (a forged header cannot inflate it past
    ``max_bytes`` or its declared size); :class:`PackageRejected` otherwise."""
    zf = open_zip(Path(path))
    with zf:
        info = zf.getinfo(name)
        limit = min(info.file_size, max_bytes)
        if info.file_size > max_bytes:
            raise _reject("PKG-TOO-LARGE", f"member is {info.file_size} bytes; at most {max_bytes} are read", name)
        out = bytearray()
        try:
            with zf.open(info) as src:
                while chunk := src.read(CHUNK):
                    out += chunk
                    if len(out) > limit:
                        raise _reject("ZIP-COMPRESSION-RATIO",
                                      "member inflates beyond its declared size (forged header)", name)
        except PackageRejected:
            raise
        except (zipfile.BadZipFile, EOFError, OSError, ValueError, RuntimeError) as exc:
            raise _reject("ZIP-CORRUPT", f"member cannot be read ({exc.__class__.__name__}: {exc})", name) from None
        return bytes(out)
