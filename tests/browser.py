"""Headless Chromium for the map tests, driven over the DevTools protocol (CDP).

No Python dependency: Chromium is started with ``--remote-debugging-pipe`` and speaks
NUL-terminated JSON on file descriptors 3 (commands in) and 4 (replies and events out),
the transport Puppeteer uses. One :class:`Browser` per test module; :meth:`Browser.open`
loads a page and records what happened:

- console messages and uncaught exceptions (``Runtime.consoleAPICalled``,
  ``Runtime.exceptionThrown``, ``Log.entryAdded``);
- every network request the page made (``Network.requestWillBeSent``), so a test can
  assert that an offline file touches nothing but ``file:`` and ``data:`` URLs;
- JavaScript dialogs (``alert`` …), which are dismissed and recorded.

Use :func:`require_chromium` in tests: it skips with a reason when Chromium is absent
locally, and fails when ``CI=true`` (the CI image must install ``chromium``).
"""
from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    env = os.environ.get("CHROMIUM")
    if env and Path(env).exists():
        return env
    for name in CANDIDATES:
        p = shutil.which(name)
        if p:
            return p
    return None


def require_chromium() -> str:
    """The Chromium executable; skip (locally) or fail (CI=true) when missing."""
    import pytest

    exe = find_chromium()
    if exe is None:
        msg = "headless Chromium not found (apt-get install -y chromium)"
        if IN_CI:
            pytest.fail(f"{msg}: it must be installed under CI")
        pytest.skip(msg)
    return exe


@dataclass
class PageResult:
    """What happened while a page loaded (see module docstring)."""

    console: list[dict] = field(default_factory=list)     # {level, text}
    exceptions: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)     # URLs, in order
    failed: list[dict] = field(default_factory=list)      # {url, error}
    dialogs: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        out = [f"console.{c['level']}: {c['text']}" for c in self.console if c["level"] in ("error", "assert")]
        return out + [f"exception: {e}" for e in self.exceptions]


class CDPError(RuntimeError):
    pass


class Browser:
    """A headless Chromium process and one page target (flattened session)."""

    def __init__(self, exe: str | None = None, *, width: int = 1280, height: int = 860, timeout: float = 60.0):
        self.exe = exe or find_chromium()
        if self.exe is None:
            raise FileNotFoundError("chromium not found")
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="sd-chromium-")
        cmd_r, cmd_w = os.pipe()    # we write commands → chromium reads fd 3
        res_r, res_w = os.pipe()    # chromium writes fd 4 → we read
        # move the child's ends above 4 so dup2 onto 3/4 cannot clobber them
        c_in, c_out = _dup_high(cmd_r), _dup_high(res_w)
        os.close(cmd_r)
        os.close(res_w)

        def child_fds():
            os.dup2(c_in, 3)
            os.dup2(c_out, 4)

        args = [self.exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--remote-debugging-pipe", "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-extensions", "--disable-default-apps", "--disable-quic", "--mute-audio",
                "--hide-scrollbars", "--metrics-recording-only", "--password-store=basic",
                "--allow-file-access-from-files", f"--user-data-dir={self._profile}",
                f"--window-size={width},{height}", "about:blank"]
        self.proc = subprocess.Popen(args, pass_fds=(3, 4), preexec_fn=child_fds, close_fds=True,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(c_in)
        os.close(c_out)
        self._w = cmd_w
        self._r = res_r
        self._buf = b""
        self._next_id = 0
        self._events: list[dict] = []
        self.session = None
        page = None
        for _ in range(50):  # the first tab may take a moment to exist
            page = next((t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page"), None)
            if page:
                break
            time.sleep(0.1)
        if page is None:
            self.close()
            raise CDPError("chromium opened no page")
        self.session = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True,
                                 _session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                  mobile=False)

    # ------------------------------------------------------------------ transport
    def _send(self, msg: dict) -> None:
        data = json.dumps(msg).encode() + b"\0"
        while data:
            n = os.write(self._w, data)
            data = data[n:]

    def _recv(self, deadline: float) -> dict | None:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._r], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(self._r, 1 << 20)
                if not chunk:
                    raise CDPError("chromium closed the DevTools pipe")
                self._buf += chunk
            elif self.proc.poll() is not None:
                raise CDPError(f"chromium exited with status {self.proc.returncode}")
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, _session: bool = True, **params) -> dict:
        self._next_id += 1
        mid = self._next_id
        msg = {"id": mid, "method": method, "params": params}
        if _session and self.session:
            msg["sessionId"] = self.session
        self._send(msg)
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._recv(deadline)
            if reply is None:
                raise CDPError(f"{method}: no reply within {self.timeout} s")
            if reply.get("id") == mid:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self._events.append(reply)
                self._on_event(reply)

    def _pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            ev = self._recv(deadline)
            if ev is None:
                return
            if "method" in ev:
                self._events.append(ev)
                self._on_event(ev)

    # ------------------------------------------------------------------ events
    def _on_event(self, ev: dict) -> None:
        res = getattr(self, "_result", None)
        if res is None:
            return
        m, p = ev["method"], ev.get("params", {})
        if m == "Runtime.consoleAPICalled":
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
            res.console.append({"level": p.get("type", "log"), "text": text})
        elif m == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            res.exceptions.append(d.get("exception", {}).get("description") or d.get("text", ""))
        elif m == "Log.entryAdded":
            e = p.get("entry", {})
            res.console.append({"level": e.get("level", "info"), "text": f"[{e.get('source')}] {e.get('text')}"
                                + (f" {e['url']}" if e.get("url") else "")})
        elif m == "Network.requestWillBeSent":
            res.requests.append(p["request"]["url"])
        elif m == "Network.loadingFailed":
            res.failed.append({"id": p.get("requestId"), "error": p.get("errorText")})
        elif m == "Page.javascriptDialogOpening":
            res.dialogs.append(p.get("message", ""))
            self._send({"id": 10**9 + len(res.dialogs), "method": "Page.handleJavaScriptDialog",
                        "params": {"accept": True}, "sessionId": self.session})

    # ------------------------------------------------------------------ API
    def open(self, path_or_url, *, settle: float = 1.5) -> PageResult:
        """Load a file or URL, wait for the load event plus ``settle`` seconds."""
        url = path_or_url if "://" in str(path_or_url) else Path(path_or_url).resolve().as_uri()
        self._result = PageResult()
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + self.timeout
        while not any(e["method"] == "Page.loadEventFired" for e in self._events):
            ev = self._recv(deadline)
            if ev is None:
                raise CDPError(f"{url}: no load event within {self.timeout} s")
            if "method" in ev:
                self._events.append(ev)
                self._on_event(ev)
        self._events.clear()
        self._pump(settle)
        return self._result

    def eval(self, expression: str):
        """Evaluate JavaScript in the page; returns the value (JSON-able)."""
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise CDPError(f"{expression[:80]}: {r['exceptionDetails'].get('text')}")
        return r.get("result", {}).get("value")

    def press(self, key: str, code: int, *, up_only: bool = False) -> None:
        """Press and release a key in the focused element (e.g. 'Enter', 13)."""
        if not up_only:
            self.call("Input.dispatchKeyEvent", type="rawKeyDown", key=key, code=key, windowsVirtualKeyCode=code)
        self.call("Input.dispatchKeyEvent", type="keyUp", key=key, code=key, windowsVirtualKeyCode=code)

    def screenshot(self, path) -> Path:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        p = Path(path)
        p.write_bytes(base64.b64decode(data))
        return p

    def close(self) -> None:
        try:
            self._send({"id": 0, "method": "Browser.close", "params": {}})
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait(timeout=10)
        finally:
            for fd in (self._w, self._r):
                try:
                    os.close(fd)
                except OSError:
                    pass
            shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _dup_high(fd: int) -> int:
    import fcntl

    return fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
