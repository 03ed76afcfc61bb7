"""The plan editor's API (subdivide edit), through Starlette's TestClient, on the bundled
花巻 sample and on real 鳥取市 polygons: paints update the figures exactly as a plan
computed from scratch says, the 14 limit holds, saving round-trips, the token, Origin
and Host checks refuse, and hostile names stay data."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

pytest.importorskip("starlette", reason="starlette is a dependency of subdivide edit (pip install -e .)")
pytest.importorskip("httpx", reason="the API tests need httpx (pip install -e .[test])")

import warnings

with warnings.catch_warnings():  # starlette 1.x prefers httpx2 for its TestClient; httpx works the same
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from conftest import ROOT, SAMPLE_SHP, SHARED_DATA, need

from subdivide.analysis.spill import spill_report
from subdivide.make.planning import plan_by_attribute
from subdivide.model.contiguity import contiguity_breaks
from subdivide.model.plan import Plan, read_plan
from subdivide.present.editor.server import EditorApp
from subdivide.present.editor.session import EditSession, PathPolicy

PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"
TOTTORI_SHP = SHARED_DATA / "tottori_31_estat2015" / "h27ka31.shp"
#: 鳥取市's pre-2004 towns and villages: its block names start with them (鹿野町…)
TOTTORI_OLD = ("国府町", "福部町", "河原町", "用瀬町", "佐治町", "気高町", "鹿野町", "青谷町")
HOSTILE = '<img src=x onerror="alert(1)">`${x}`地域'


def tottori_plan():
    from subdivide.io.townblocks import read_townblocks

    blocks, _ = read_townblocks(need(TOTTORI_SHP, "real 鳥取県 town-blocks"), muni_code="31201")
    blocks["OLD"] = [next((o for o in TOTTORI_OLD if str(n).startswith(o)), "鳥取") for n in blocks["name"]]
    plan, _ = plan_by_attribute(blocks, "OLD")
    return plan


@pytest.fixture(scope="module")
def sample_old_plan(sample_blocks):
    plan, _ = plan_by_attribute(sample_blocks, "OLD_MUNI")
    return plan


@pytest.fixture(scope="module")
def tottori():
    return tottori_plan()


def make_client(plan, tmp_path, **kw):
    session = EditSession(plan, source=tmp_path / "in.plan.gpkg")
    policy = kw.pop("policy", None) or PathPolicy(out_dirs=(tmp_path.resolve(),),
                                                 protected=(tmp_path.resolve() / "protected.gpkg",))
    app = EditorApp(session, policy=policy, port=PORT, **kw)
    client = TestClient(app.build(), base_url=BASE)
    client.headers["X-Editor-Token"] = app.token
    return app, client


def contiguous_border_moves(plan, src: int, dst: int, n: int) -> list[str]:
    """n blocks of sub-area src on its border with dst whose move keeps both contiguous."""
    sub = plan.blocks["subarea"].to_numpy().copy()
    keys = plan.blocks["key"].to_numpy()
    adj = plan.adjacency.tocoo()
    moved = []
    for _ in range(n):
        cands = sorted({int(i) for i, j in zip(adj.row, adj.col) if sub[i] == src and sub[j] == dst})
        for i in cands:
            trial = sub.copy()
            trial[i] = dst
            bad, _ = contiguity_breaks(plan.adjacency, trial, keys, plan.island_exceptions)
            if not bad.any() and (trial == src).any():
                sub = trial
                moved.append(str(keys[i]))
                break
        else:
            raise AssertionError("no contiguous move found")
    return moved


def assert_figures_match_fresh_plan(figs: dict, plan: Plan, L: float):
    """Editor figures == a Plan computed from scratch and `subdivide spill`'s report."""
    m = plan.metrics.set_index("subarea")
    rep = spill_report(plan, distances_km=[L])
    sa = rep.subareas[rep.subareas["population_source"] == "townblocks"].set_index("subarea")
    ex = rep.exposure[rep.exposure["population_source"] == "townblocks"]
    rows = {r["subarea"]: r for r in figs["subareas"]}
    assert sorted(rows) == sorted(m.index)
    for s, r in rows.items():
        assert r["name"] == m.loc[s, "name"]
        assert r["n_blocks"] == m.loc[s, "n_blocks"]
        assert r["population"] == m.loc[s, "population"]
        assert r["households"] == m.loc[s, "households"]
        assert r["area_km2"] == pytest.approx(m.loc[s, "area_km2"], rel=1e-9)
        assert r["core_share"] == pytest.approx(sa.loc[s, "core_share"], abs=1e-6)
        assert r["circle_share"] == pytest.approx(sa.loc[s, "circle_unreached_share"], abs=1e-9)
        assert r["core_population_share"] == pytest.approx(sa.loc[s, "core_population_share"], abs=1e-6)
        out = ex.loc[ex["from_subarea"] == s, "population"].sum()
        assert r["exposed_population"] == pytest.approx(out, rel=1e-6, abs=1e-6)
    top = ex.sort_values("population", ascending=False).head(3)
    got = {(e["from"], e["to"]): e["population"] for e in figs["exposures"]}
    for t in top.itertuples():
        assert got[(t.from_subarea, t.to_subarea)] == pytest.approx(t.population, abs=0.06)


# ---------------------------------------------------------------------- figures
@pytest.mark.slow
@pytest.mark.parametrize("which", ["sample", "tottori"])
def test_paint_updates_figures_like_a_fresh_plan(which, request, tmp_path):
    plan = request.getfixturevalue("sample_old_plan" if which == "sample" else "tottori")
    _app, c = make_client(plan, tmp_path)
    init = c.get("/api/init").json()
    assert len(init["blocks"]["features"]) == len(plan.blocks)
    assert_figures_match_fresh_plan(init["figures"], plan, 2.0)
    src = 3 if which == "sample" else 2     # 石鳥谷地域 / 国府地域 → sub-area 1
    keys = contiguous_border_moves(plan, src, 1, 3)
    res = c.post("/api/paint", json={"keys": keys, "subarea": 1})
    assert res.status_code == 200, res.text
    body = res.json()
    idx = {k: i for i, k in enumerate(plan.blocks["key"])}
    assert sorted(body["changed"]) == sorted([[idx[k], 1] for k in keys])
    fresh = Plan.from_assignment(plan.blocks, dict(zip(plan.blocks["key"],
                                                       np.where(plan.blocks["key"].isin(keys), 1,
                                                                plan.blocks["subarea"]))),
                                 names=plan.subareas.set_index("subarea")["name"].to_dict(),
                                 order=list(plan.subareas["subarea"]), island_exceptions=plan.island_exceptions)
    assert body["figures"]["valid"]
    assert_figures_match_fresh_plan(body["figures"], fresh, 2.0)
    # another L: all figures follow the slider
    res = c.post("/api/distance", json={"distance_km": 2.5}).json()
    assert_figures_match_fresh_plan(res["figures"], fresh, 2.5)


@pytest.mark.slow
def test_incremental_figures_equal_a_cold_engine(sample_old_plan):
    """Cached (incremental) figures after a random walk of paints and undos equal the
    figures of a new session on the same assignment."""
    rng = np.random.default_rng(7)
    s = EditSession(sample_old_plan)
    keys = list(s.keys)
    s.figures()
    for _ in range(12):
        pick = [keys[i] for i in rng.choice(len(keys), size=int(rng.integers(1, 4)), replace=False)]
        s.paint(pick, int(rng.choice(s.numbers)))
        if rng.random() < 0.3:
            s.undo()
        s.figures()
    warm = s.figures()
    cold = EditSession(sample_old_plan)
    cold.state = s.state.copy()
    fresh = cold.figures()
    for a, b in zip(warm["subareas"], fresh["subareas"]):
        for f in ("n_blocks", "population", "area_km2", "core_share", "exposed_population", "detached_keys"):
            assert a[f] == pytest.approx(b[f]) if isinstance(a[f], float) else a[f] == b[f]


def test_noncontiguous_move_warns_and_undo_restores(sample_old_plan, tmp_path):
    plan = sample_old_plan
    _app, c = make_client(plan, tmp_path)
    # a 花巻 block far from 大迫 (sub-area 2) painted into 大迫: cut off
    far = plan.blocks.loc[plan.blocks["subarea"] == 1, "key"].iloc[0]
    body = c.post("/api/paint", json={"keys": [far], "subarea": 2}).json()
    rules = {f["rule"]: f for f in body["figures"]["findings"]}
    assert "CONTIGUITY" in rules and far in rules["CONTIGUITY"]["features"]
    assert not body["figures"]["valid"]
    undo = c.post("/api/undo", json={}).json()
    assert "CONTIGUITY" not in {f["rule"] for f in undo["figures"]["findings"]}
    assert undo["changed"] == [[int(np.flatnonzero(plan.blocks["key"] == far)[0]), 1]]
    assert undo["figures"]["can_redo"]
    redo = c.post("/api/redo", json={}).json()
    assert "CONTIGUITY" in {f["rule"] for f in redo["figures"]["findings"]}
    # an island exception with its reason makes the same state valid
    res = c.post("/api/island", json={"key": far, "on": True, "reason": "飛び地（テスト）"}).json()
    assert res["figures"]["valid"]
    assert c.post("/api/island", json={"key": far, "on": True, "reason": ""}).status_code == 400


def test_subarea_limit_is_fourteen(sample_old_plan, tmp_path):
    _app, c = make_client(sample_old_plan, tmp_path)
    added = []
    for i in range(10):
        r = c.post("/api/add", json={"name": f"新{i}"})
        assert r.status_code == 200, r.text
        added.append(r.json()["added"])
    assert sorted(added) == list(range(5, 15))
    assert len(c.get("/api/init").json()["table"]) == 14
    r = c.post("/api/add", json={"name": "十五"})
    assert r.status_code == 400 and r.json()["error"] == "LIMIT-SUBAREAS"
    # an empty sub-area is an error until painted or deleted
    figs = c.post("/api/undo", json={}).json()["figures"]
    assert "SUBAREA-EMPTY" in {f["rule"] for f in figs["findings"]}
    assert c.post("/api/delete", json={"subarea": 5}).status_code == 200


def test_rename_rule_merge_keeps_codes_and_renumber(sample_old_plan, tmp_path):
    _app, c = make_client(sample_old_plan, tmp_path)
    assert c.post("/api/rename", json={"subarea": 2, "name": "大迫町"}).json()["name"] == "大迫地域"
    assert c.post("/api/rename", json={"subarea": 2, "name": "山の"}).json()["name"] == "山の地域"
    r = c.post("/api/rename", json={"subarea": 2, "name": "花巻"})
    assert r.status_code == 400 and r.json()["error"] == "NAME-DUPLICATE"
    assert c.post("/api/rename", json={"subarea": 2, "name": "a\u202eb"}).status_code == 400
    body = c.post("/api/merge", json={"subareas": [2], "into": 3}).json()
    assert [t["subarea"] for t in body["table"]] == [1, 3, 4]
    codes = {r["subarea"]: r["code"] for r in body["figures"]["subareas"]}
    assert codes == {1: "0320501", 3: "0320503", 4: "0320504"}
    body = c.post("/api/order", json={"order": [4, 1, 3]}).json()
    assert [t["subarea"] for t in body["table"]] == [4, 1, 3]
    assert c.post("/api/order", json={"order": [4, 1]}).status_code == 400
    body = c.post("/api/renumber", json={}).json()
    assert [t["subarea"] for t in body["table"]] == [1, 2, 3]
    assert [t["name"] for t in body["table"]] == ["東和地域", "花巻地域", "石鳥谷地域"]


# ---------------------------------------------------------------------- saving
@pytest.mark.slow
def test_save_round_trips_and_refuses_unsafe_paths(sample_old_plan, tmp_path):
    plan = sample_old_plan
    (tmp_path / "protected.gpkg").write_bytes(b"x")
    app, c = make_client(plan, tmp_path)
    keys = contiguous_border_moves(plan, 3, 1, 2)
    c.post("/api/paint", json={"keys": keys, "subarea": 1})
    c.post("/api/rename", json={"subarea": 4, "name": "東和町"})
    r = c.post("/api/save", json={"path": "edited.plan.gpkg"})
    assert r.status_code == 200, r.text
    assert r.json()["saved"]["kind"] == "plan"
    back = read_plan(tmp_path / "edited.plan.gpkg")
    want = app.session.to_plan()
    assert back.blocks["key"].tolist() == want.blocks["key"].tolist()
    assert back.blocks["subarea"].tolist() == want.blocks["subarea"].tolist()
    assert back.subareas.drop(columns=[]).equals(want.subareas)
    assert back.metadata["edited_with"] == "subdivide edit"
    csv = (tmp_path / "edited.plan.csv").read_text(encoding="utf-8-sig")
    assert csv.splitlines()[0].startswith("key,subarea")
    # existing: refused without confirmation, replaced with it
    r = c.post("/api/save", json={"path": "edited.plan.gpkg"})
    assert r.status_code == 409 and r.json()["error"] == "EXISTS"
    assert c.post("/api/save", json={"path": "edited.plan.gpkg", "overwrite": True}).status_code == 200
    # outside the allowed folder, traversal, wrong type, an input: refused, nothing written
    outside = tmp_path.parent / f"{tmp_path.name}_outside.gpkg"
    for path, status in ((str(outside), 403), ("../x.gpkg", 403), ("x.shp", 400),
                         ("protected.gpkg", 403), ("/etc/x.gpkg", 403)):
        r = c.post("/api/save", json={"path": path, "overwrite": True})
        assert r.status_code == status, (path, r.text)
    assert not outside.exists()
    link = tmp_path / "link.gpkg"
    link.symlink_to(outside)
    assert c.post("/api/save", json={"path": "link.gpkg", "overwrite": True}).status_code == 403


@pytest.mark.slow
def test_invalid_plan_saves_only_as_a_draft(sample_old_plan, tmp_path):
    plan = sample_old_plan
    _app, c = make_client(plan, tmp_path)
    far = plan.blocks.loc[plan.blocks["subarea"] == 1, "key"].iloc[0]
    c.post("/api/paint", json={"keys": [far], "subarea": 2})
    r = c.post("/api/save", json={"path": "broken.gpkg"}).json()["saved"]
    assert r["kind"] == "draft" and r["written"][0].endswith("broken.draft.gpkg")
    assert not (tmp_path / "broken.gpkg").exists() and not (tmp_path / "broken.csv").exists()
    with pytest.raises(Exception, match="not a subdivide plan"):
        read_plan(tmp_path / "broken.draft.gpkg")


# ---------------------------------------------------------------------- compare
def test_compare_lists_moved_blocks_and_changes(sample_old_plan, tmp_path):
    plan = sample_old_plan
    _app, c = make_client(plan, tmp_path)
    keys = contiguous_border_moves(plan, 3, 1, 2)
    c.post("/api/paint", json={"keys": keys, "subarea": 1})
    cmp = c.post("/api/compare", json={"id": "initial"}).json()["compare"]
    assert sorted(m["key"] for m in cmp["moved"]) == sorted(keys)
    rows = {r["other"]: r for r in cmp["subareas"]}
    moved_pop = int(plan.blocks.loc[plan.blocks["key"].isin(keys), "population"].sum())
    assert rows[1]["population"]["change"] == moved_pop
    assert rows[3]["population"]["change"] == -moved_pop
    # only plans named on the command line
    assert c.post("/api/compare", json={"id": "/etc/passwd"}).status_code == 403
    # a second plan named on the command line (here: the same plan with 東和 merged into 石鳥谷)
    from subdivide.make.planning import merge_subareas

    other = tmp_path / "other.plan.gpkg"
    merge_subareas(plan, [3, 4]).save(other)
    _app2, c2 = make_client(plan, tmp_path, compare={"1": other})
    cmp = c2.post("/api/compare", json={"id": "1"}).json()["compare"]
    n4 = int((plan.blocks["subarea"] == 4).sum())
    assert cmp["moved_count"] == n4 and cmp["unmatched_current"] == [4]


# ---------------------------------------------------------------------- security
def test_token_origin_host_and_content_type_are_checked(sample_old_plan, tmp_path):
    app, c = make_client(sample_old_plan, tmp_path)
    key = str(sample_old_plan.blocks["key"].iloc[0])
    good = {"keys": [key], "subarea": 1}
    assert c.post("/api/paint", json=good).status_code == 200
    assert c.post("/api/paint", json=good, headers={"X-Editor-Token": ""}).status_code == 403
    assert c.post("/api/paint", json=good, headers={"X-Editor-Token": "x" + app.token}).status_code == 403
    assert c.get("/api/init", headers={"X-Editor-Token": "wrong"}).status_code == 403
    assert c.get("/api/init", headers={"X-Editor-Token": ("é" + app.token).encode("latin-1")}).status_code == 403
    r = c.post("/api/paint", json=good, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and r.json()["error"] == "BAD-ORIGIN"
    assert c.post("/api/paint", json=good, headers={"Origin": BASE}).status_code == 200
    # DNS rebinding: the right port under another name
    r = c.post("/api/paint", json=good, headers={"Host": f"evil.example:{PORT}"})
    assert r.status_code == 403 and r.json()["error"] == "BAD-HOST"
    assert c.get("/", headers={"Host": f"evil.example:{PORT}"}).status_code == 403
    r = c.post("/api/paint", content=json.dumps(good), headers={"Content-Type": "text/plain"})
    assert r.status_code == 403
    # validation: wrong types and unknown fields are refused with a clear code
    for bad in ({"keys": key, "subarea": 1}, {"keys": [key], "subarea": "1"}, {"keys": [key], "subarea": True},
                {"keys": [1], "subarea": 1}, {"subarea": 1}, {"keys": [key], "subarea": 99}):
        r = c.post("/api/paint", json=bad)
        assert r.status_code == 400, bad
    assert c.post("/api/paint", content=b"[1,2]", headers={"Content-Type": "application/json"}).status_code == 400
    assert c.post("/api/nope", json={}).status_code == 404
    assert c.get("/static/../../server.py").status_code == 404
    page = c.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"


def test_hostile_names_stay_data(sample_old_plan, tmp_path):
    _app, c = make_client(sample_old_plan, tmp_path)
    r = c.post("/api/rename", json={"subarea": 1, "name": HOSTILE})
    assert r.status_code == 200
    assert r.json()["name"] == HOSTILE
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["table"][0]["name"] == HOSTILE
    js = (ROOT / "subdivide" / "present" / "editor" / "static" / "editor.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in js, sink
    # the saved plan keeps the name verbatim (data, not markup)
    assert c.post("/api/save", json={"path": "h.plan.gpkg"}).status_code == 200
    assert read_plan(tmp_path / "h.plan.gpkg").subareas["name"].iloc[0] == HOSTILE


# ---------------------------------------------------------------------- CLI
def test_edit_help_loads_no_heavy_library():
    code = ("import sys, io, contextlib\nfrom subdivide.cli.main import main\nbuf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf):\n    try:\n        main(['edit', '--help'])\n"
            "    except SystemExit:\n        pass\n"
            "print('HEAVY=' + ','.join(sorted(m for m in ('geopandas', 'shapely', 'pandas', 'starlette', 'uvicorn', 'scipy') "
            "if m in sys.modules)))\nprint('EXAMPLE' if 'subdivide edit' in buf.getvalue() else 'none')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    heavy, example = res.stdout.strip().splitlines()[-2:]
    assert heavy == "HEAVY=" and example == "EXAMPLE"


def test_edit_refuses_townblocks_without_by(tmp_path):
    res = subprocess.run([sys.executable, "-m", "subdivide", "edit", str(need(SAMPLE_SHP, "sample")), "--no-browser"],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 2
    assert "--by" in res.stderr and "Traceback" not in res.stderr


@pytest.mark.slow
def test_edit_serves_on_localhost_and_stops_on_ctrl_c(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "subdivide", "edit", str(need(SAMPLE_SHP, "sample")),
                             "--by", "OLD_MUNI", "--no-browser", "--out-dir", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        deadline = time.monotonic() + 120
        while "http://" not in line and time.monotonic() < deadline:
            line = proc.stdout.readline()
        url = line[line.index("http://"):].split()[0]
        assert url.startswith("http://127.0.0.1:")
        token = url.split("t=")[1]
        base = url.split("/?")[0]
        time.sleep(0.5)
        with urllib.request.urlopen(base + "/") as r:
            assert "細分化エリア" in r.read().decode()
        req = urllib.request.Request(base + "/api/init", headers={"X-Editor-Token": token})
        with urllib.request.urlopen(req) as r:
            assert len(json.load(r)["table"]) == 4
        req = urllib.request.Request(base + "/api/init")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req)
        assert err.value.code == 403
    finally:
        proc.send_signal(signal.SIGINT)
        out, errs = proc.communicate(timeout=60)
    assert proc.returncode == 0, errs
    assert "stopped" in out


# ---------------------------------------------------------------------- invariants
def test_any_edit_sequence_keeps_the_state_consistent_and_undo_returns(sample_old_plan):
    """Hypothesis: random edit sequences (paint, add, merge, delete, rename, order,
    renumber, undo, redo) never leave a block in an unknown sub-area, never exceed 14,
    keep the display order 1..k, and undoing everything restores the loaded plan."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from subdivide.present.editor.session import EditError

    keys = list(sample_old_plan.blocks["key"])
    ops = st.lists(st.tuples(st.sampled_from(["paint", "add", "merge", "delete", "rename", "order", "renumber",
                                              "undo", "redo"]),
                             st.integers(0, len(keys) - 1), st.integers(0, 20), st.integers(1, 15)),
                   max_size=25)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(ops)
    def check(seq):
        s = EditSession(sample_old_plan)
        for op, i, j, n in seq:
            nums = s.numbers
            try:
                if op == "paint":
                    s.paint(keys[i:i + n], nums[j % len(nums)])
                elif op == "add":
                    s.add_subarea(f"試{j}")
                elif op == "merge":
                    s.merge([nums[j % len(nums)]], nums[n % len(nums)])
                elif op == "delete":
                    s.delete(nums[j % len(nums)], None if n % 2 else nums[n % len(nums)])
                elif op == "rename":
                    s.rename(nums[j % len(nums)], f"名{n}")
                elif op == "order":
                    s.set_order(list(reversed(nums)))
                elif op == "renumber":
                    s.renumber()
                else:
                    getattr(s, op)()
            except EditError:
                pass
            t = s.state.table
            assert 1 <= len(t) <= 14
            assert set(np.unique(s.state.sub)) <= set(t)
            assert sorted(v["display_order"] for v in t.values()) == list(range(1, len(t) + 1))
            assert len({v["name"] for v in t.values()}) == len(t)
        while s.undo():
            pass
        assert np.array_equal(s.state.sub, s.initial.sub) and s.state.table == s.initial.table

    check()
