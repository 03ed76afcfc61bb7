"""The plan editor's local web server: a Starlette app over one :class:`EditSession`.

Security (the editor runs on a shared machine, next to other web pages):

- it listens on 127.0.0.1 only; requests whose ``Host`` is not ``127.0.0.1:PORT`` or
  ``localhost:PORT`` are refused (DNS rebinding);
- every ``/api`` request carries the per-session random token (``X-Editor-Token``;
  the page reads it from its URL); requests with a foreign ``Origin`` are refused, and
  POSTs must be ``application/json`` (no HTML form can send one);
- the JSON bodies are validated field by field; names are data, the page sets them
  with ``textContent``; a Content-Security-Policy allows no inline script, and
  ``Referrer-Policy: no-referrer`` keeps the token out of tile requests;
- files: the server reads only the files named on the command line and writes only
  ``.gpkg`` (and its ``.csv``) inside the allowed folders (:class:`PathPolicy`).
"""
from __future__ import annotations

import json
import secrets
import threading
from pathlib import Path

import numpy as np
import shapely
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from subdivide.core.errors import UserError
from subdivide.present.editor.session import (
    L_BAND_KM,
    EditError,
    EditSession,
    PathPolicy,
)
from subdivide.present.map import PALETTE, display_coverage, to_display

STATIC_DIR = Path(__file__).resolve().parent / "static"
ASSET_DIR = Path(__file__).resolve().parents[2] / "assets" / "web"
#: the only files the server serves: URL name → file
STATIC_FILES = {
    "editor.js": STATIC_DIR / "editor.js",
    "editor.css": STATIC_DIR / "editor.css",
    "leaflet.js": ASSET_DIR / "leaflet.js",
    "leaflet.css": ASSET_DIR / "leaflet.css",
    "images/layers.png": ASSET_DIR / "leaflet-layers.png",
    "images/layers-2x.png": ASSET_DIR / "leaflet-layers-2x.png",
    "images/marker-icon.png": ASSET_DIR / "leaflet-marker-icon.png",
}
MEDIA = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".png": "image/png",
         ".html": "text/html; charset=utf-8"}
GSI_TILES = "https://cyberjapandata.gsi.go.jp"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       f"img-src 'self' data: {GSI_TILES}; connect-src 'self'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = {"content-security-policy": CSP, "x-content-type-options": "nosniff",
                    "referrer-policy": "no-referrer", "x-frame-options": "DENY", "cache-control": "no-store"}
MAX_BODY = 2 << 20
#: display simplification of town-block borders (m) and of the core/reach bands
BLOCK_TOLERANCE_M = 5.0
BAND_TOLERANCE_M = 20.0


def new_token() -> str:
    return secrets.token_urlsafe(24)


class Guard:
    """ASGI middleware: Host, Origin and token checks, and the security headers."""

    def __init__(self, app, *, token: str, hosts: set[str]):
        self.app, self.token, self.hosts = app, token, hosts
        self.origins = {f"http://{h}" for h in hosts}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        problem = self.problem(scope, headers)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                hs = [(k, v) for k, v in message.get("headers", []) if k.decode().lower() not in SECURITY_HEADERS]
                hs += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = dict(message, headers=hs)
            await send(message)

        if problem:
            code, msg, ja = problem
            resp = JSONResponse({"error": code, "message": msg, "message_ja": ja}, status_code=403)
            return await resp(scope, receive, send_with_headers)
        return await self.app(scope, receive, send_with_headers)

    def problem(self, scope, headers):
        if headers.get("host", "") not in self.hosts:
            return "BAD-HOST", "requests must be addressed to this editor's 127.0.0.1 address", "不正なホストです"
        origin = headers.get("origin")
        if origin is not None and origin not in self.origins:
            return "BAD-ORIGIN", "requests from another web page are refused", "他のページからの操作は拒否されます"
        if scope["path"].startswith("/api/"):
            if not secrets.compare_digest(headers.get("x-editor-token", "").encode("latin-1"), self.token.encode()):
                return "BAD-TOKEN", "missing or wrong session token", "セッションの合言葉（トークン）が違います"
            if scope["method"] == "POST" and not headers.get("content-type", "").startswith("application/json"):
                return "BAD-CONTENT-TYPE", "POST bodies must be application/json", "JSON で送ってください"
        return None


def _json(data, status: int = 200) -> Response:
    body = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Response(body, status_code=status, media_type="application/json")


def _error(exc: Exception) -> Response:
    if isinstance(exc, EditError):
        return _json({"error": exc.code, "message": exc.message, "message_ja": exc.ja}, exc.status)
    if isinstance(exc, UserError):
        return _json({"error": "REFUSED", "message": exc.message, "message_ja": exc.message}, 400)
    raise exc


class EditorApp:
    """Builds the Starlette app; holds the session, its lock and the display geometry."""

    def __init__(self, session: EditSession, *, policy: PathPolicy, compare: dict | None = None,
                 token: str | None = None, port: int = 0, default_output: str = ""):
        self.session = session
        self.policy = policy
        self.compare_paths = dict(compare or {})
        self._compare_plans: dict = {}
        self.token = token or new_token()
        self.port = port
        self.default_output = default_output
        self.lock = threading.Lock()
        self._geojson = None

    # ------------------------------------------------------------------ display data
    def block_geojson(self) -> dict:
        if self._geojson is None:
            s = self.session
            geoms, _ = display_coverage(s.blocks.geometry.values, BLOCK_TOLERANCE_M)
            disp = to_display(geoms, s.blocks.crs)
            # the inner point of the drawn shape (what a click there hits), for rectangle/lasso selection
            pts = shapely.point_on_surface(disp)
            feats = []
            for i, (g, p) in enumerate(zip(disp, pts)):
                feats.append({"type": "Feature", "id": i,
                              "geometry": None if g is None else shapely.geometry.mapping(g),
                              "properties": {"i": i, "key": str(s.keys[i]), "name": str(s.blocks["name"].iat[i]),
                                             "oaza": str(s.oaza[i]), "population": int(s.blocks["population"].iat[i]),
                                             "households": int(s.blocks["households"].iat[i]),
                                             "pt": [p.y, p.x] if p is not None else None}})
            self._geojson = {"type": "FeatureCollection", "features": feats}
        return self._geojson

    def state_json(self) -> dict:
        s = self.session
        return {"sub": s.state.sub.tolist(),
                "table": [{"subarea": n, **s.state.table[n]} for n in s.numbers]}

    def update(self, before: np.ndarray) -> dict:
        s = self.session
        after = s.state.sub
        changed = np.flatnonzero(before != after) if len(before) == len(after) else np.arange(len(after))
        return {"changed": [[int(i), int(after[i])] for i in changed],
                "table": self.state_json()["table"], "figures": s.figures()}

    # ------------------------------------------------------------------ handlers
    async def index(self, request: Request):
        return FileResponse(STATIC_DIR / "editor.html", media_type=MEDIA[".html"])

    async def static(self, request: Request):
        name = request.path_params["name"]
        path = STATIC_FILES.get(name)
        if path is None:
            return _json({"error": "NOT-FOUND", "message": "no such file", "message_ja": "ありません"}, 404)
        return FileResponse(path, media_type=MEDIA.get(path.suffix, "application/octet-stream"))

    async def init(self, request: Request):
        def work():
            with self.lock:
                s = self.session
                return {"blocks": self.block_geojson(), **self.state_json(), "figures": s.figures(),
                        "muni_code": s.base.muni_code, "palette": list(PALETTE), "l_band": list(L_BAND_KM),
                        "max_subareas": s.base.max_subareas, "source": s.source.name if s.source else "",
                        "default_output": self.default_output,
                        "compare": [{"id": "initial", "label": "読み込んだ計画 / plan as loaded"}]
                        + [{"id": k, "label": Path(v).name} for k, v in self.compare_paths.items()]}
        return _json(await run_in_threadpool(work))

    async def action(self, request: Request):
        name = request.path_params["name"]
        handler = ACTIONS.get(name)
        if handler is None:
            return _json({"error": "NOT-FOUND", "message": f"no action {name}", "message_ja": "その操作はありません"},
                         404)
        body = await request.body()
        if len(body) > MAX_BODY:
            return _json({"error": "TOO-LARGE", "message": "request too large", "message_ja": "要求が大きすぎます"}, 413)
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return _json({"error": "BAD-JSON", "message": "the body is not JSON", "message_ja": "JSON ではありません"},
                         400)
        if not isinstance(data, dict):
            return _json({"error": "BAD-JSON", "message": "the body must be a JSON object",
                          "message_ja": "JSON オブジェクトで送ってください"}, 400)

        def work():
            with self.lock:
                before = self.session.state.sub
                try:
                    extra = handler(self, data)
                except (EditError, UserError) as exc:
                    return _error(exc)
                out = self.update(before) if extra is None or "figures" not in extra else {}
                out.update(extra or {})
                return _json(out)
        return await run_in_threadpool(work)

    async def bands(self, request: Request):
        def work():
            with self.lock:
                s = self.session
                try:
                    num = s._subarea(request.query_params.get("subarea"))
                except EditError as exc:
                    return _error(exc)
                members = np.flatnonzero(s.state.sub == num)
                if not len(members):
                    return _json({"core": None, "reach": None})
                nums = s.numbers
                _, terr = s.engine.territories(s.state.sub, nums)
                core, reach = s.engine.bands(terr[nums.index(num)], s.distance_km)
                disp = to_display(np.array([core, reach], dtype=object), s.blocks.crs, tolerance_m=BAND_TOLERANCE_M)
                geo = [None if g is None else shapely.geometry.mapping(g) for g in disp]
                return _json({"subarea": num, "distance_km": s.distance_km, "core": geo[0], "reach": geo[1]})
        return await run_in_threadpool(work)

    def build(self) -> Starlette:
        routes = [Route("/", self.index), Route("/favicon.ico", lambda r: Response(status_code=204)),
                  Route("/static/{name:path}", self.static),
                  Route("/api/init", self.init), Route("/api/bands", self.bands),
                  Route("/api/{name}", self.action, methods=["POST"])]
        app = Starlette(routes=routes)
        hosts = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        return Guard(app, token=self.token, hosts=hosts)

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?t={self.token}"

    # ------------------------------------------------------------------ compare
    def compare_plan(self, ref: str):
        from subdivide.model.plan import read_plan

        if ref == "initial":
            st = self.session.initial
            return self.session.base.with_assignment(
                st.sub, self.session.subarea_table(st), island_exceptions=frozenset(st.islands))
        if ref not in self.compare_paths:
            raise EditError("COMPARE-UNKNOWN", "compare only plans named on the command line (--compare)",
                            "比較できるのはコマンドラインで指定した計画だけです", 403)
        if ref not in self._compare_plans:
            self._compare_plans[ref] = read_plan(self.compare_paths[ref])
        return self._compare_plans[ref]


# ---------------------------------------------------------------------- actions (validated)
def _field(data: dict, name: str, kind, *, optional: bool = False, default=None):
    if name not in data or data[name] is None:
        if optional:
            return default
        raise EditError("MISSING-FIELD", f"field {name!r} is required", f"項目 {name} がありません")
    v = data[name]
    ok = isinstance(v, kind) and not (kind is int and isinstance(v, bool))
    if kind in (int, float) and isinstance(v, bool):
        ok = False
    if not ok:
        raise EditError("BAD-FIELD", f"field {name!r} has the wrong type", f"項目 {name} の型が違います")
    return v


def _keys(data) -> list:
    keys = _field(data, "keys", list)
    if len(keys) > 100_000 or not all(isinstance(k, str) and len(k) <= 32 for k in keys):
        raise EditError("BAD-FIELD", "keys must be a list of town-block keys (text)", "町丁・字のキーが不正です")
    return keys


def _num(data, name="subarea"):
    return _field(data, name, int)


def _paint(app: EditorApp, data):
    app.session.paint(_keys(data), _num(data))


def _add(app, data):
    num = app.session.add_subarea(_field(data, "name", str, optional=True))
    return {"added": num}


def _merge(app, data):
    subs = _field(data, "subareas", list)
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in subs):
        raise EditError("BAD-FIELD", "subareas must be numbers", "地域番号が不正です")
    app.session.merge(subs, _num(data, "into"))


def _delete(app, data):
    into = data.get("into")
    if into is not None:
        into = _num(data, "into")
    app.session.delete(_num(data), into)


def _rename(app, data):
    return {"name": app.session.rename(_num(data), _field(data, "name", str))}


def _order(app, data):
    order = _field(data, "order", list)
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in order):
        raise EditError("BAD-FIELD", "order must list sub-area numbers", "表示順が不正です")
    app.session.set_order(order)


def _renumber(app, data):
    app.session.renumber()


def _island(app, data):
    app.session.set_island(_field(data, "key", str), bool(_field(data, "on", bool)),
                           _field(data, "reason", str, optional=True, default=""))


def _undo(app, data):
    app.session.undo()


def _redo(app, data):
    app.session.redo()


def _distance(app, data):
    v = data.get("distance_km")
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        raise EditError("BAD-FIELD", "distance_km must be a number", "L は数値で指定してください")
    app.session.set_distance(v)


def _save(app, data):
    overwrite = bool(_field(data, "overwrite", bool, optional=True, default=False))
    path = app.policy.output(_field(data, "path", str), overwrite=overwrite)
    csv_path = path.with_suffix(".csv")
    if csv_path in app.policy.protected:
        raise EditError("PATH-INPUT", "the CSV would replace an input of this session", "入力ファイルには上書きできません",
                        403)
    res = app.session.save(path, overwrite=overwrite, csv=bool(data.get("csv", True)))
    return {"saved": res}


def _compare(app, data):
    other = app.compare_plan(_field(data, "id", str))
    return {"compare": app.session.compare(other), "figures": None}


ACTIONS = {"paint": _paint, "add": _add, "merge": _merge, "delete": _delete, "rename": _rename, "order": _order,
           "renumber": _renumber, "island": _island, "undo": _undo, "redo": _redo, "distance": _distance,
           "save": _save, "compare": _compare}


def serve(editor: EditorApp, *, port: int = 0, open_browser: bool = True, log=print) -> None:
    """Bind 127.0.0.1 (a free port unless ``port``), print the URL, open the browser and
    serve until Ctrl-C."""
    import socket
    import webbrowser

    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", int(port)))
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror})",
                        fix="choose another --port, or leave it out for a free one") from None
    editor.port = sock.getsockname()[1]
    app = editor.build()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    url = editor.url()
    log(f"subdivide edit: the editor is at {url}")
    log("  (press Ctrl-C to stop; the address works only on this computer)")
    if open_browser:
        threading.Timer(0.5, lambda: webbrowser.open(url)).start()
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled: the server has stopped cleanly
        pass
    finally:
        sock.close()
    log("subdivide edit: stopped")
