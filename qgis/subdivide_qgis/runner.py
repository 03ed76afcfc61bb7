"""Running the installed ``subdivide`` command: no QGIS import here.

Everything the plugin does outside QGIS lives in this module (and :mod:`.commands`,
:mod:`.sources`, :mod:`.reports`), so it is tested with the project's own Python:

- :func:`find_executable`: where ``subdivide`` is (the provider setting, the
  ``SUBDIVIDE_EXECUTABLE`` variable, the ``PATH``, the usual pipx / uv tool folders);
- :func:`child_env`: the environment for the child, without QGIS's own Python, PROJ and
  GDAL variables (on Windows, OSGeo4W's PYTHONHOME would break any other Python);
- :func:`parse_progress` / :class:`StderrParser`: the tool's progress lines (``--progress``,
  format of :class:`subdivide.core.progress.StderrProgress`), warnings and error blocks
  (``what`` / ``where`` / ``fix``);
- :func:`run_tool`: the subprocess, cancellable: the whole process tree is ended;
- :class:`Staging`: the command writes into a private folder; outputs move to their
  destinations only when it succeeded, so a cancelled or failed run leaves nothing.
"""
from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

#: environment variable naming the executable (used when the provider setting is empty)
ENV_EXECUTABLE = "SUBDIVIDE_EXECUTABLE"

#: variables of QGIS's own runtime that must not reach another Python / PROJ / GDAL
STRIPPED_ENV = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE", "PROJ_LIB", "PROJ_DATA",
                "GDAL_DATA", "GDAL_DRIVER_PATH", "GDAL_FILENAME_IS_UTF8", "QGIS_PREFIX_PATH", "VIRTUAL_ENV")

#: seconds a cancelled command gets to end before it is killed
TERMINATE_GRACE_S = 5.0


class ToolNotFound(Exception):
    """The ``subdivide`` executable could not be found (message says how to fix it)."""


class Cancelled(Exception):
    """The user cancelled; the command was ended and its outputs removed."""


@dataclass(frozen=True)
class ToolError:
    """An error the tool reported (``subdivide CMD: error: what`` / ``where:`` / ``fix:``)."""

    command: str
    what: str
    where: str | None = None
    fix: str | None = None

    def text(self) -> str:
        parts = [self.what]
        if self.where:
            parts.append(f"where: {self.where}")
        if self.fix:
            parts.append(f"fix: {self.fix}")
        return "\n".join(parts)


@dataclass
class Completed:
    """What a finished command returned."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    error: ToolError | None = None
    warnings: list[str] = field(default_factory=list)


# ------------------------------------------------------------------ executable
def _candidate_dirs() -> list[Path]:
    home = Path.home()
    dirs = [home / ".local" / "bin"]                       # pipx and uv tool (all systems)
    if os.name == "nt":
        for var in ("APPDATA", "LOCALAPPDATA"):
            base = os.environ.get(var)
            if base:
                dirs += sorted(Path(base).glob("Python/Python3*/Scripts"))
                dirs += sorted(Path(base).glob("Programs/Python/Python3*/Scripts"))
        dirs.append(home / "pipx" / "venvs" / "subdivide" / "Scripts")
    return dirs


def find_executable(setting: str | None = None, *, environ=None) -> str:
    """The path of the ``subdivide`` command: the provider setting if given (a file, or a
    folder holding it), else ``$SUBDIVIDE_EXECUTABLE``, else the ``PATH``, else the pipx /
    uv tool folders. Raises :class:`ToolNotFound` with how to fix it."""
    environ = os.environ if environ is None else environ
    names = ("subdivide.exe", "subdivide") if os.name == "nt" else ("subdivide",)
    for source, value in (("setting", setting), (ENV_EXECUTABLE, environ.get(ENV_EXECUTABLE))):
        value = (value or "").strip().strip('"')
        if not value:
            continue
        p = Path(os.path.expandvars(os.path.expanduser(value)))
        if p.is_dir():
            hits = [p / n for n in names if (p / n).is_file()]
            if hits:
                return str(hits[0])
        elif p.is_file():
            return str(p)
        raise ToolNotFound(f"the subdivide executable given in the {'provider settings' if source == 'setting' else source}"
                           f" does not exist: {p}\nfix: correct the path in Settings → Options → Processing → "
                           "Providers → subdivide, or leave it empty to use the PATH")
    found = shutil.which("subdivide", path=environ.get("PATH"))
    if found:
        return found
    for d in _candidate_dirs():
        for n in names:
            if (d / n).is_file():
                return str(d / n)
    raise ToolNotFound("the subdivide command was not found on the PATH\n"
                       "fix: install it (e.g. `uv tool install subdivide` or `pipx install subdivide`) and give "
                       "its full path in Settings → Options → Processing → Providers → subdivide "
                       "(on Windows e.g. C:\\Users\\NAME\\.local\\bin\\subdivide.exe)")


def child_env(environ=None) -> dict[str, str]:
    """The child's environment: ours minus QGIS's Python/PROJ/GDAL settings, with UTF-8
    output (Japanese names must not come back in the Windows code page) and no buffering."""
    env = {k: v for k, v in (os.environ if environ is None else environ).items() if k.upper() not in STRIPPED_ENV}
    env.update(PYTHONUTF8="1", PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
    return env


# ------------------------------------------------------------------ stderr parsing
_PROGRESS = re.compile(r"^ {2}(?P<stage>\S.*?): (?P<done>\d+)/(?P<total>\d+)(?: \((?P<pct>\d+)%\))?\s*$")
_STAGE = re.compile(r"^ {2}(?P<stage>\S.*?)…\s*$")
_ERROR = re.compile(r"^subdivide (?P<cmd>[\w-]+): error: (?P<what>.*)$")
_WARNING = re.compile(r"^subdivide (?P<cmd>[\w-]+): warning: (?P<what>.*)$")
_DETAIL = re.compile(r"^ {2}(?P<key>where|fix):\s*(?P<text>.*)$")


@dataclass(frozen=True)
class ProgressLine:
    stage: str
    done: int | None = None
    total: int | None = None

    @property
    def percent(self) -> float | None:
        if self.total:
            return max(0.0, min(100.0, 100.0 * self.done / self.total))
        return None


def parse_progress(line: str) -> ProgressLine | None:
    """``'  spill: cores: 3/4 (75%)'`` → ProgressLine('spill: cores', 3, 4); ``'  reading…'``
    → ProgressLine('reading'); anything else → None."""
    line = line.rstrip("\r\n")
    m = _PROGRESS.match(line)
    if m:
        return ProgressLine(m["stage"], int(m["done"]), int(m["total"]))
    m = _STAGE.match(line)
    if m:
        return ProgressLine(m["stage"])
    return None


class StderrParser:
    """Feeds stderr lines; sorts them into progress, warnings, an error block, and other text."""

    def __init__(self):
        self.error: ToolError | None = None
        self.warnings: list[str] = []
        self._in_error = False

    def feed(self, line: str) -> tuple[str, object]:
        """Returns (kind, value): ('progress', ProgressLine), ('warning', text),
        ('error', text), or ('text', line)."""
        line = line.rstrip("\r\n")
        m = _ERROR.match(line)
        if m:
            self.error = ToolError(m["cmd"], m["what"])
            self._in_error = True
            return "error", line
        if self._in_error:
            d = _DETAIL.match(line)
            if d:
                self.error = replace(self.error, **{d["key"]: d["text"].strip()})
                return "error", line
            details = self.error.where is not None or self.error.fix is not None
            if not details and not parse_progress(line) and not _WARNING.match(line):
                self.error = replace(self.error, what=self.error.what + "\n" + line.strip())   # a multi-line what
                return "error", line
            self._in_error = False
        m = _WARNING.match(line)
        if m:
            self.warnings.append(m["what"])
            return "warning", m["what"]
        p = parse_progress(line)
        if p:
            return "progress", p
        return "text", line


# ------------------------------------------------------------------ subprocess
def _popen_kwargs() -> dict:
    if os.name == "nt":
        flags = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0) | getattr(subprocess, "CREATE_NO_WINDOW", 0)
        return {"creationflags": flags}
    return {"start_new_session": True}


def end_process_tree(proc: subprocess.Popen, grace_s: float = TERMINATE_GRACE_S) -> None:
    """End the command and everything it started (a console-script launcher starts Python
    as a child on Windows). SIGTERM to the process group, then SIGKILL after ``grace_s``."""
    if proc.poll() is not None:
        return
    if os.name == "nt":
        subprocess.run(["taskkill", "/PID", str(proc.pid), "/T", "/F"], capture_output=True, check=False,
                       creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
    else:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        if os.name != "nt":
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.kill()
        proc.wait()


def _pump(stream, kind: str, q: queue.Queue) -> None:
    for raw in iter(stream.readline, b""):
        q.put((kind, raw.decode("utf-8", errors="replace")))
    q.put((kind, None))


def run_tool(executable: str, args: Iterable[str], *,
             on_progress: Callable[[ProgressLine], None] = lambda p: None,
             on_text: Callable[[str, str], None] = lambda kind, text: None,
             is_cancelled: Callable[[], bool] = lambda: False,
             on_start: Callable[[int], None] = lambda pid: None,
             cwd: str | None = None, environ=None, poll_s: float = 0.1) -> Completed:
    """Run ``executable ARGS…``; calls ``on_progress`` for progress lines and
    ``on_text(kind, text)`` for other lines (kind: 'stdout', 'stderr', 'warning', 'error'),
    all from the calling thread; ``on_start(pid)`` once the process runs (on POSIX the pid is
    also its process group). Raises :class:`Cancelled` (after ending the process tree)
    when ``is_cancelled()`` turns true."""
    argv = [str(executable), *map(str, args)]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=cwd, env=child_env(environ), **_popen_kwargs())
    on_start(proc.pid)
    q: queue.Queue = queue.Queue()
    threads = [threading.Thread(target=_pump, args=(s, k, q), daemon=True)
               for s, k in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))]
    for t in threads:
        t.start()
    parser = StderrParser()
    out: list[str] = []
    err: list[str] = []
    open_streams = 2
    try:
        while open_streams:
            if is_cancelled():
                raise Cancelled()
            try:
                kind, text = q.get(timeout=poll_s)
            except queue.Empty:
                continue
            if text is None:
                open_streams -= 1
                continue
            if kind == "stdout":
                out.append(text)
                on_text("stdout", text.rstrip("\r\n"))
                continue
            err.append(text)
            what, value = parser.feed(text)
            if what == "progress":
                on_progress(value)
            else:
                on_text("stderr" if what == "text" else what, value if what == "warning" else text.rstrip("\r\n"))
        while proc.poll() is None:
            if is_cancelled():
                raise Cancelled()
            time.sleep(poll_s)
    except BaseException:
        end_process_tree(proc)
        raise
    finally:
        for s in (proc.stdout, proc.stderr):
            s.close()
    return Completed(argv, proc.returncode, "".join(out), "".join(err), parser.error, parser.warnings)


# ------------------------------------------------------------------ staging
class OutputExists(Exception):
    """A destination exists and replacing was not asked for."""


class Staging:
    """A private folder the command writes into; :meth:`commit` moves the staged outputs to
    their destinations (each via a same-folder temporary name and ``os.replace``), and
    :meth:`discard` (or leaving the ``with`` block with an exception) removes everything.

    ``plan(staged_name, destination)`` registers an output before the run: the destination
    is checked for existence then (unless ``replace``), so nothing runs that cannot be
    written."""

    def __init__(self, *, replace: bool = False, base: str | None = None):
        self.replace = replace
        self.dir = Path(tempfile.mkdtemp(prefix="subdivide-qgis-", dir=base))
        self._outputs: list[tuple[Path, Path]] = []

    def plan(self, staged_name: str, destination) -> Path:
        dest = Path(destination)
        if dest.exists() and not self.replace:
            raise OutputExists(f"{dest} exists\nfix: choose another file, or tick "
                               "“Replace existing outputs / 既存の出力を置き換える”")
        staged = self.dir / staged_name
        self._outputs.append((staged, dest))
        return staged

    def plan_folder(self, staged_name: str, destination, names: Iterable[str]) -> Path:
        """A folder output (e.g. the spill CSVs): only ``names`` inside it are checked and
        moved; other files already in the destination folder are left alone."""
        dest = Path(destination)
        staged = self.dir / staged_name
        for n in names:
            if (dest / n).exists() and not self.replace:
                raise OutputExists(f"{dest / n} exists\nfix: choose another folder, or tick "
                                   "“Replace existing outputs / 既存の出力を置き換える”")
            self._outputs.append((staged / n, dest / n))
        return staged

    def rewrite(self, text: str) -> str:
        """``text`` (a command line, the tool's output) with staged paths shown as their
        destinations, so reports name the user's files, not the private folder."""
        pairs = sorted(((str(s), str(d)) for s, d in self._outputs), key=lambda p: -len(p[0]))
        folders = {str(s.parent): str(d.parent) for s, d in self._outputs if s.parent != self.dir}
        for old, new in [*pairs, *sorted(folders.items(), key=lambda p: -len(p[0]))]:
            text = text.replace(old, new)
        return text.replace(str(self.dir) + os.sep, "")

    def commit(self) -> list[Path]:
        """Move every staged output that the command wrote; returns the destinations."""
        moved = []
        for staged, dest in self._outputs:
            if not staged.exists():
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.partial-{os.getpid()}")
            if tmp.exists():
                _remove(tmp)
            shutil.move(str(staged), str(tmp))
            if dest.exists() and dest.is_dir() and not tmp.is_dir():
                raise OutputExists(f"{dest} is a folder; a file cannot replace it")
            if dest.is_dir():
                shutil.rmtree(dest)
            os.replace(tmp, dest)
            moved.append(dest)
        self.discard()
        return moved

    def discard(self) -> None:
        _remove(self.dir)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.discard()
        return False


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        try:
            path.unlink()
        except OSError:
            pass

