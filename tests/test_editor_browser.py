"""The plan editor in real headless Chromium (tests/browser.py), scripted through the page:
load the 花巻 sample plan, paint 3 blocks by clicking them, check the figures against
`subdivide spill` on the saved plan, make a non-contiguous move and see the warning,
undo it, save and validate the saved plan as a carrier package, compare with the plan
as loaded, show a hostile name as text; the screenshot is not blank and its Japanese
is rendered with real glyphs."""
from __future__ import annotations

import json
import socket
import threading
import time

import numpy as np
import pytest

pytest.importorskip("uvicorn", reason="uvicorn is a dependency of subdivide edit (pip install -e .)")

from browser import Browser, require_chromium
from test_editor import HOSTILE, contiguous_border_moves
from test_map_browser import screenshot_stats

from subdivide.analysis.spill import spill_report
from subdivide.make.planning import plan_by_attribute
from subdivide.model.plan import read_plan
from subdivide.present.editor.server import EditorApp
from subdivide.present.editor.session import EditSession, PathPolicy

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def plan(sample_blocks):
    p, _ = plan_by_attribute(sample_blocks, "OLD_MUNI")
    return p


@pytest.fixture(scope="module")
def server(plan, tmp_path_factory):
    import uvicorn

    out = tmp_path_factory.mktemp("editor")
    session = EditSession(plan, source=out / "hanamaki.plan.gpkg")
    editor = EditorApp(session, policy=PathPolicy(out_dirs=(out.resolve(),)), default_output="edited.plan.gpkg")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    editor.port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(editor.build(), log_level="warning", lifespan="off"))
    th = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    th.start()
    for _ in range(100):
        if srv.started:
            break
        time.sleep(0.1)
    yield editor, out
    srv.should_exit = True
    th.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def page(server):
    exe = require_chromium()
    editor, out = server
    b = Browser(exe, width=1400, height=900)
    result = b.open(editor.url(), settle=0.5)
    wait(b, "document.body.dataset.ready === '1'")
    yield b, editor, out, result
    b.close()


def wait(b, cond: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if b.eval(f"!!({cond})"):
            return
        b._pump(0.2)
    raise AssertionError(f"timed out waiting for {cond}")


def figures(b) -> dict:
    return b.eval("JSON.parse(JSON.stringify(window.editorState.figures))")


def click_block(b, key: str) -> None:
    """Zoom to the block and click its inner point with real mouse events."""
    xy = b.eval(f"""(function () {{
        const f = window.editorState.blocks.features.find(f => f.properties.key === {json.dumps(key)});
        const m = window.editorMap;
        m.setView(f.properties.pt, 15, {{animate: false}});
        const p = m.latLngToContainerPoint(f.properties.pt);
        const r = m.getContainer().getBoundingClientRect();
        return [r.left + p.x, r.top + p.y];
    }})()""")
    b._pump(0.3)
    for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
        b.call("Input.dispatchMouseEvent", type=kind, x=xy[0], y=xy[1], button="left", clickCount=1)


def rules(b) -> set:
    return set(b.eval("Array.from(document.querySelectorAll('#findings li[data-rule]')).map(l => l.dataset.rule)"))


def select_subarea(b, num: int) -> None:
    b.eval(f"document.querySelector('#subareas tr[data-subarea=\"{num}\"]').click()")
    wait(b, f"window.editorState.active === {num}")


def test_page_loads_in_japanese_and_offline(page, tmp_path):
    b, editor, _out, result = page
    assert result.errors == []
    # the page and its libraries come from the editor itself: nothing from the internet
    assert [u for u in result.requests if not u.startswith(f"http://127.0.0.1:{editor.port}/")] == []
    assert b.eval("document.querySelector('h1').textContent") == "細分化エリア 編集"
    assert b.eval("document.querySelectorAll('#subareas tbody tr').length") == 4
    # Japanese glyphs are really drawn (a missing CJK font draws the same box for every character)
    distinct = b.eval("""(function () {
        const c = document.createElement('canvas'); c.width = 40; c.height = 40;
        const g = c.getContext('2d');
        const draw = (ch) => { g.clearRect(0, 0, 40, 40); g.font = '32px sans-serif'; g.fillText(ch, 2, 32);
                               return Array.from(g.getImageData(0, 0, 40, 40).data).join(','); };
        return new Set(['細', '分', '地', '域'].map(draw)).size;
    })()""")
    assert distinct == 4
    shot = b.screenshot(tmp_path / "editor.png")
    n_colours, drawn, _ = screenshot_stats(shot)
    assert n_colours > 50 and drawn > 0.2


def test_paint_check_undo_save_validate_compare(page, plan, tmp_path):
    from subdivide.carrier.package import build_package
    from subdivide.carrier.validation import validate_package

    b, _editor, out, _ = page
    keys = contiguous_border_moves(plan, 3, 1, 3)          # 石鳥谷 → 花巻, staying contiguous
    select_subarea(b, 1)
    before = figures(b)
    for n, k in enumerate(keys):
        click_block(b, k)
        wait(b, f"window.editorState.sub[{int(np.flatnonzero(plan.blocks['key'] == k)[0])}] === 1")
    wait(b, "window.editorState.figures.subareas.find(r => r.subarea === 1).n_blocks === "
            f"{before['subareas'][0]['n_blocks'] + 3}")
    after = figures(b)
    moved_pop = int(plan.blocks.loc[plan.blocks["key"].isin(keys), "population"].sum())
    row1 = {r["subarea"]: r for r in after["subareas"]}[1]
    assert row1["population"] == before["subareas"][0]["population"] + moved_pop
    shown = b.eval("document.querySelector('#subareas tr[data-subarea=\"1\"]').children[4].textContent")
    assert shown.replace(",", "") == str(row1["population"])

    # a non-contiguous move: a 花巻 block far from 大迫, painted into 大迫; the warning shows; undo
    far = plan.blocks.loc[(plan.blocks["subarea"] == 1) & ~plan.blocks["key"].isin(keys), "key"].iloc[0]
    select_subarea(b, 2)
    click_block(b, far)
    wait(b, "document.querySelector('#findings li[data-rule=\"CONTIGUITY\"]') !== null")
    assert "つながっていません" in b.eval("document.querySelector('#findings li[data-rule=\"CONTIGUITY\"]').textContent")
    b.eval("document.getElementById('undo').click()")
    wait(b, "document.querySelector('#findings li[data-rule=\"CONTIGUITY\"]') === null")

    # save through the page, then check the figures against `subdivide spill` on the saved plan
    b.eval("document.getElementById('out').value = 'edited.plan.gpkg'; document.getElementById('save').click()")
    wait(b, "document.getElementById('message').textContent.includes('保存しました')")
    saved = read_plan(out / "edited.plan.gpkg")
    assert (out / "edited.plan.csv").exists()
    rep = spill_report(saved, distances_km=[2.0])
    sa = rep.subareas[rep.subareas["population_source"] == "townblocks"].set_index("subarea")
    for r in figures(b)["subareas"]:
        assert r["core_share"] == pytest.approx(sa.loc[r["subarea"], "core_share"], abs=1e-6)
        assert r["population"] == sa.loc[r["subarea"], "population"]
    # validate-level checks: the saved plan builds a carrier package that validates cleanly
    pkg = build_package(saved, tmp_path / "pkg", spill=False, review_map=False)
    report = validate_package(pkg)
    assert report.errors == [], [str(f) for f in report.errors]

    # compare with the plan as loaded: the 3 painted blocks moved
    b.eval("document.getElementById('compare-with').value = 'initial'; document.getElementById('compare').click()")
    wait(b, "document.getElementById('compare-summary').textContent !== ''")
    assert b.eval("document.getElementById('compare-summary').textContent") == "移動した町丁・字: 3"
    b.screenshot(out / "editor_after.png")


def test_hostile_name_is_shown_as_text(page):
    b, _editor, _out, _ = page
    b.eval(f"window.editorAct('rename', {{subarea: 4, name: {json.dumps(HOSTILE)}}})")
    wait(b, f"Array.from(document.querySelectorAll('#subareas td.name')).some(td => td.textContent === {json.dumps(HOSTILE)})")
    b._pump(0.5)
    assert b.eval("document.querySelectorAll('#panel img').length") == 0
    assert b._result.dialogs == []
    # English is available and keeps the name as text
    b.eval("document.getElementById('lang').click()")
    assert b.eval("document.querySelector('h1').textContent") == "Sub-area plan editor"
    assert b.eval(f"Array.from(document.querySelectorAll('#subareas td.name')).some(td => td.textContent === {json.dumps(HOSTILE)})")
    b.eval("document.getElementById('lang').click()")


def drag(b, a, z, steps: int = 6) -> None:
    """A real mouse drag from page point a to z (pressed, moved, released)."""
    b.call("Input.dispatchMouseEvent", type="mouseMoved", x=a[0], y=a[1])
    b.call("Input.dispatchMouseEvent", type="mousePressed", x=a[0], y=a[1], button="left", clickCount=1)
    for k in range(1, steps + 1):
        x, y = a[0] + (z[0] - a[0]) * k / steps, a[1] + (z[1] - a[1]) * k / steps
        b.call("Input.dispatchMouseEvent", type="mouseMoved", x=x, y=y, button="left", buttons=1)
    b.call("Input.dispatchMouseEvent", type="mouseReleased", x=z[0], y=z[1], button="left", clickCount=1)


def test_rectangle_and_oaza_tools_paint_what_they_cover(page, plan):
    b, _editor, _out, _ = page
    b.eval("window.editorMap.fitBounds(L.geoJSON(window.editorState.blocks).getBounds(), {animate: false}); 0")
    select_subarea(b, 4)
    box = b.eval("(function () { const r = window.editorMap.getContainer().getBoundingClientRect();"
                 " return [r.left, r.top, r.width, r.height]; })()")
    a = (box[0] + box[2] * 0.30, box[1] + box[3] * 0.45)
    z = (box[0] + box[2] * 0.40, box[1] + box[3] * 0.60)
    expect = b.eval(f"""(function () {{
        const m = window.editorMap, r = m.getContainer().getBoundingClientRect();
        const p = (x, y) => m.containerPointToLatLng([x - r.left, y - r.top]);
        const sw = p({a[0]}, {z[1]}), ne = p({z[0]}, {a[1]});
        return window.editorSelect.keysInRect(sw.lat, sw.lng, ne.lat, ne.lng);
    }})()""")
    assert len(expect) >= 3
    b.eval("document.querySelector('input[name=tool][value=rect]').click()")
    drag(b, a, z)
    idx = {k: i for i, k in enumerate(plan.blocks["key"])}
    wait(b, " && ".join(f"window.editorState.sub[{idx[k]}] === 4" for k in expect[:20]))
    b.eval("document.getElementById('undo').click()")
    wait(b, f"window.editorState.sub[{idx[expect[0]]}] !== 4")
    # one canvas draws everything (a second one on top would swallow the clicks)
    assert b.eval("document.querySelectorAll('#map canvas').length") == 1
    # lasso: a triangle drawn with the mouse paints the blocks whose inner point it encloses
    tri = [(box[0] + box[2] * fx, box[1] + box[3] * fy) for fx, fy in ((0.3, 0.4), (0.5, 0.45), (0.35, 0.65))]
    expect = b.eval(f"""(function () {{
        const m = window.editorMap, r = m.getContainer().getBoundingClientRect();
        const pts = {json.dumps(tri)}.map(([x, y]) => m.containerPointToLatLng([x - r.left, y - r.top]))
                                     .map(ll => [ll.lat, ll.lng]);
        return window.editorSelect.keysInLasso(pts);
    }})()""")
    assert len(expect) >= 3
    b.eval("document.querySelector('input[name=tool][value=lasso]').click()")
    b.call("Input.dispatchMouseEvent", type="mouseMoved", x=tri[0][0], y=tri[0][1])
    b.call("Input.dispatchMouseEvent", type="mousePressed", x=tri[0][0], y=tri[0][1], button="left", clickCount=1)
    for (x0, y0), (x1, y1) in zip(tri, tri[1:] + tri[:1]):
        for k in range(1, 6):  # small steps, a frame apart: Chromium coalesces moves within a frame
            b.call("Input.dispatchMouseEvent", type="mouseMoved", x=x0 + (x1 - x0) * k / 5, y=y0 + (y1 - y0) * k / 5,
                   button="left", buttons=1)
            b._pump(0.1)
    b.call("Input.dispatchMouseEvent", type="mouseReleased", x=tri[0][0], y=tri[0][1], button="left", clickCount=1)
    assert b.eval("window.editorState.lastSelection.points") >= 6
    # the mouse path is in whole pixels: the painted set may differ from the exact triangle by a block or two
    wait(b, f"{json.dumps([idx[k] for k in expect])}.filter(i => window.editorState.sub[i] === 4).length >= "
            f"{len(expect) - 2}", timeout=120)
    b.eval("document.getElementById('undo').click()")
    wait(b, f"window.editorState.sub[{idx[expect[0]]}] !== 4")
    # 大字ごと: one click paints every block sharing the clicked block's 大字 (KIHON1)
    oaza = plan.blocks["key"].str[:9]
    big = oaza[(plan.blocks["subarea"] != 4)].value_counts()
    target = big.index[big > 1][0]
    members = plan.blocks.loc[oaza == target, "key"].tolist()
    b.eval("document.querySelector('input[name=tool][value=oaza]').click()")
    biggest = plan.blocks.loc[oaza == target].sort_values("area_official_m2")["key"].iloc[-1]
    click_block(b, biggest)
    wait(b, " && ".join(f"window.editorState.sub[{idx[k]}] === 4" for k in members))
    b.eval("document.getElementById('undo').click()")
    wait(b, f"window.editorState.sub[{idx[members[0]]}] !== 4")
    b.eval("document.querySelector('input[name=tool][value=click]').click()")
