"""The summary report (subdivide.present.report): files, figures with one point per sub-area,
the exposure matrix, escaping, the no-CJK-font fallback, determinism and the CLI."""
from __future__ import annotations

import re

import numpy as np
import pytest

from subdivide.core.errors import UserError
from subdivide.io.output import OUTPUT_MARKER
from subdivide.present.map import spill_view
from subdivide.present.report import (
    REPORT_FILES,
    build_report,
    cjk_font,
    curve_points,
    exposure_figure,
    exposure_matrix,
    unreached_curve_figure,
)
from test_map import plan_from, single_plan  # noqa: F401 (fixture)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def plan14(synthetic_blocks):
    """A synthetic municipality of 14 旧市町村 (the carriers' maximum), one hostile name."""
    plan = plan_from(synthetic_blocks(700, seed=5, n_old=14))
    table = plan.subareas.copy()
    table.loc[1, "name"] = "<b>太字</b>地域"
    return plan.with_assignment(plan.blocks["subarea"].to_numpy(), table)


@pytest.fixture(scope="module")
def sample_report(tmp_path_factory, sample_plan):
    out = tmp_path_factory.mktemp("rep") / "report"
    return build_report(sample_plan, out, note="境界は推定形状です")


def scatter_offsets(fig, gid):
    for ax in fig.axes:
        for c in ax.collections:
            if c.get_gid() == gid:
                return np.asarray(c.get_offsets())
    raise AssertionError(f"no scatter {gid}")


def test_sample_report_files(sample_report, sample_plan):
    folder = sample_report.parent
    assert sorted(p.name for p in folder.iterdir()) == sorted([*REPORT_FILES, OUTPUT_MARKER])
    for name in REPORT_FILES:
        if name.endswith(".png"):
            data = (folder / name).read_bytes()
            assert data[:8] == PNG_MAGIC and len(data) > 10_000
    page = sample_report.read_text(encoding="utf-8")
    for n in sample_plan.subareas["name"]:
        assert n in page
    assert page.count("<tr>") >= len(sample_plan.subareas) + 1
    for img in ("unreached_curve.png", "exposure_matrix.png", "subareas.png"):
        assert f'src="{img}"' in page
    assert "境界は推定形状です" in page and 'lang="ja"' in page


@pytest.mark.parametrize("font", ["auto", None])
def test_curve_has_one_point_per_subarea_per_distance(plan14, font):
    font = cjk_font() if font == "auto" else None
    pts = curve_points(plan14, (1.0, 2.0, 3.0))
    names = dict(zip(plan14.subareas["subarea"].astype(int), plan14.subareas["name"]))
    fig = unreached_curve_figure(pts, names, font=font)
    m = plan14.metrics
    for L in (1, 2, 3):
        off = scatter_offsets(fig, f"subareas-L{L}")
        assert len(off) == len(plan14.subareas) == 14
        p = pts[pts["distance_km"] == L].sort_values("subarea")
        assert off[:, 0] == pytest.approx(p["area_km2"].to_numpy())
        assert off[:, 1] == pytest.approx(p["core_share"].to_numpy())
        # the exact polygon share never beats the circle of the same area
        assert (p["core_share"].to_numpy() <= p["circle_share"].to_numpy() + 1e-9).all()
    assert pts.loc[pts["distance_km"] == 1, "area_km2"].sum() == pytest.approx(m["area_km2"].sum(), rel=1e-3)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts] + [fig.axes[0].get_xlabel(), fig.axes[0].get_title()]
    if font is None:  # romanised fallback: nothing a Latin font cannot draw
        assert all(all(ord(ch) < 0x2000 or ch in "²" for ch in t) for t in texts), texts


def test_exposure_matrix_matches_spill(plan14):
    view = spill_view(plan14, None, (2.0, 3.0))
    order = plan14.subareas["subarea"].astype(int).tolist()
    mat = exposure_matrix(view.exposure, order, 2.0, "population")
    assert mat.shape == (14, 14) and np.isnan(np.diag(mat)).all()
    e = view.exposure[view.exposure["distance_km"] == 2.0]
    assert np.nansum(mat) == pytest.approx(e["population"].sum())
    # neighbours in the plan are exactly the pairs with exposure > 0 at 2 km or more
    adj = plan14.subarea_adjacency
    a_col, b_col = adj.columns[:2]
    pos = {s: i for i, s in enumerate(order)}
    for a, b in zip(adj[a_col], adj[b_col]):
        assert mat[pos[a], pos[b]] > 0 or mat[pos[b], pos[a]] > 0
    names = dict(zip(order, plan14.subareas["name"]))
    fig = exposure_figure(view.exposure, order, names, (2.0, 3.0), font=None)
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 2 and images[0].get_array().shape == (14, 14)


def test_report_escapes_names_and_is_deterministic(plan14, tmp_path):
    a = build_report(plan14, tmp_path / "a")
    build_report(plan14, tmp_path / "b")
    page = a.read_text(encoding="utf-8")
    assert "<b>太字</b>" not in page and "&lt;b&gt;太字&lt;/b&gt;地域" in page
    for name in REPORT_FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_report_refuses_overwrite(plan14, tmp_path):
    out = tmp_path / "r"
    build_report(plan14, out, distances_km=(2.0,))
    with pytest.raises(UserError, match="already exists"):
        build_report(plan14, out)
    build_report(plan14, out, distances_km=(2.0,), force=True)    # its own earlier output: replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r"]      # no temporary left beside it
    (out / "extra.txt").write_text("x")
    with pytest.raises(UserError, match="did not write"):           # someone else's file: never, --force or not
        build_report(plan14, out, distances_km=(2.0,), force=True)
    assert (out / "extra.txt").read_text() == "x"


def test_cli_report(tmp_path, plan14, capsys):
    from subdivide.cli.main import main

    plan_path = tmp_path / "p.plan.gpkg"
    plan14.save(plan_path)
    out = tmp_path / "rep"
    assert main(["report", str(plan_path), "-o", str(out), "--distances", "2,3"]) == 0
    assert (out / "report.html").exists() and "wrote" in capsys.readouterr().out
    assert main(["report", str(plan_path), "-o", str(out)]) == 2
    assert main(["report", str(plan_path), "-o", str(tmp_path / "x"), "--curve-distances", "0"]) == 2
    assert not (tmp_path / "x").exists()


def test_report_for_a_single_subarea(single_plan, tmp_path):  # noqa: F811
    page = build_report(single_plan, tmp_path / "r", distances_km=(2.0,)).read_text(encoding="utf-8")
    assert "全域地域" in page
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == sorted([*REPORT_FILES, OUTPUT_MARKER])


def test_exposure_panels_stack_for_many_subareas_and_labels_fit(plan14):
    """14 × 14 panels side by side shrink to unreadable on a page: they are stacked, and
    long names are shortened so no axis label is cut off at the figure's edge."""
    view = spill_view(plan14, None, (2.0, 2.5, 3.0))
    order = plan14.subareas["subarea"].astype(int).tolist()
    names = dict(zip(order, plan14.subareas["name"]))
    names[order[3]] = "とても長い名前の細分化エリア北部地区"
    font = cjk_font()
    fig = exposure_figure(view.exposure, order, names, (2.0, 2.5, 3.0), font=font)
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 3
    xs = {round(ax.get_position().x0, 3) for ax in panels}
    ys = [ax.get_position().y0 for ax in panels]
    assert len(xs) == 1 and ys == sorted(ys, reverse=True)          # one column, L top to bottom
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width = fig.bbox.width
    for ax in panels:
        labels = [t.get_text() for t in ax.get_yticklabels()]
        assert all(len(t) <= 12 for t in labels), labels
        box = ax.get_tightbbox(renderer)
        assert box.x0 >= -1 and box.x1 <= width + 1, (box, width)       # nothing cut off
    # a few sub-areas stay side by side
    e = view.exposure
    small = exposure_figure(e[e["source"].isin(order[:4]) & e["target"].isin(order[:4])], order[:4], names,
                            (2.0, 3.0), font=font)
    assert len({round(ax.get_position().y0, 3) for ax in small.axes if ax.images}) == 1


def test_report_wording(plan14, tmp_path):
    page = build_report(plan14, tmp_path / "r", distances_km=(2.0,)).read_text(encoding="utf-8")
    assert "細分化エリア数 14" in page and "サブエリア" not in page
    assert "空欄は配信が届かない組み合わせ" in page
    assert '<th class="t">名称</th>' in page and '<th class="t">配信元エリア</th>' in page
    # no line break inside a Japanese sentence (browsers render it as a stray space)
    assert not re.search(r"[぀-ヿ一-鿿、（）]\n[぀-ヿ一-鿿（]", page)


def test_curve_area_axis_reads_in_plain_numbers(plan14):
    pts = curve_points(plan14, (1.0, 2.0, 3.0))
    names = dict(zip(plan14.subareas["subarea"].astype(int), plan14.subareas["name"]))
    fig = unreached_curve_figure(pts, names, font=None)
    fig.canvas.draw()
    ticks = [t.get_text() for t in fig.axes[0].get_xticklabels() if t.get_text()]
    assert {"1", "10", "100", "1,000"} <= set(ticks), ticks


# ---------------------------------------------------------------------- no tofu
#: characters outside IPA Gothic and DejaVu Sans: CJK Extension G and a Unicode 14 emoji
RARE = "\U00030000\U0001FAE0"


def _installed_charmaps():
    from matplotlib import font_manager

    from subdivide.present.report import _charmap

    from subdivide.present.report import PLACEHOLDER_FONTS

    return {f.name: _charmap(f.fname) for f in font_manager.fontManager.ttflist
            if not f.name.startswith(PLACEHOLDER_FONTS)}   # "Last Resort" draws boxes: tofu


@pytest.mark.slow   # builds a report
def test_a_character_no_font_has_is_a_visible_note_not_tofu(synthetic_blocks, tmp_path, caplog):
    """A name with characters no installed font has: no missing-glyph warning (tofu), the
    figures show 〓 and the report says which characters of which name."""
    import logging
    import warnings

    from conftest import IN_CI

    from subdivide.present.report import MISSING_GLYPH

    if cjk_font() is None:
        if IN_CI:
            pytest.fail("CI installs fonts-ipafont-gothic; no CJK font found")
        pytest.skip("no CJK font installed: names are not drawn (romanised labels)")
    have = set().union(*_installed_charmaps().values())
    assert not {ord(c) for c in RARE} & have, "a font has the test characters: pick rarer ones"
    plan = plan_from(synthetic_blocks(200, seed=2, n_old=3))
    table = plan.subareas.copy()
    name = f"{RARE[0]}山{RARE[1]}地域"
    table.loc[0, "name"] = name
    plan = plan.with_assignment(plan.blocks["subarea"].to_numpy(), table)
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        page = build_report(plan, tmp_path / "r", distances_km=(2.0,)).read_text(encoding="utf-8")
    glyph_msgs = [str(w.message) for w in caught if "Glyph" in str(w.message)]
    glyph_msgs += [r.getMessage() for r in caplog.records if "Glyph" in r.getMessage()]
    assert glyph_msgs == []
    assert f"で示しています：「{name}」の {RARE[0]} (U+30000) {RARE[1]} (U+1FAE0)" in page
    assert MISSING_GLYPH in page and f"{name}</td>" in page        # the table keeps the real name


def test_a_character_the_cjk_font_lacks_falls_back_to_another_installed_font():
    """GlyphCheck adds an installed font that has a character neither DejaVu Sans nor the
    CJK font has, instead of replacing it."""
    from subdivide.present.report import LATIN_FONT, GlyphCheck, _charmap, _font_path

    font = cjk_font()
    if font is None:
        pytest.skip("no CJK font installed")
    base = _charmap(_font_path(LATIN_FONT)) | _charmap(_font_path(font))
    extra = {n: cm - base for n, cm in _installed_charmaps().items() if n not in (LATIN_FONT, font)}
    candidates = sorted((n, min(cs)) for n, cs in extra.items()
                        if any(0x20 < c < 0xF0000 and chr(c).isprintable() for c in cs))
    if not candidates:
        pytest.skip("no installed font has a character outside DejaVu Sans and the CJK font")
    _, code = next((n, min(c for c in extra[n] if 0x20 < c < 0xF0000 and chr(c).isprintable()))
                       for n, _ in candidates)
    check = GlyphCheck([LATIN_FONT, font])
    families = check.prepare([f"山{chr(code)}"])
    assert families[:2] == [LATIN_FONT, font] and len(families) == 3
    assert code in _charmap(_font_path(families[2]))
    assert check.drawable(f"山{chr(code)}") == f"山{chr(code)}" and check.replaced == {}
    assert check.drawable(f"山{RARE}") == "山〓〓" and check.replaced == {f"山{RARE}": RARE}


def test_report_draws_the_planners_curve_for_an_automatic_plan(sample_blocks, tmp_path):
    """A plan made by `plan --auto` carries the planner's curve; the report draws it with the
    recommended k marked, and the HTML says what it shows (issue 12)."""
    from subdivide.cli.commands.plan import planner_record
    from subdivide.make.regionalize import regionalize
    from subdivide.present.report import PLANNER_FILE, build_report

    res = regionalize(sample_blocks, k=range(2, 5), seed=0, restarts=2)
    plan = res.recommended
    plan.metadata["planner"] = planner_record(res, "alerts")
    assert [r["k"] for r in plan.metadata["planner"]["curve"]] == sorted(res.curve["k"].tolist())
    html_path = build_report(plan, tmp_path / "r", distances_km=(2.0,))
    page = html_path.read_text(encoding="utf-8")
    assert PLANNER_FILE in page and "地域数と効果" in page
    png = (tmp_path / "r" / PLANNER_FILE).read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    # a plan made another way has no such section
    by_hand = plan.with_assignment(plan.blocks["subarea"].to_numpy())
    by_hand.metadata.pop("planner")
    other = build_report(by_hand, tmp_path / "s", distances_km=(2.0,))
    assert PLANNER_FILE not in other.read_text(encoding="utf-8")


# ---------------------------------------------------------------------- fixed layout, one spill report
def _outside(fig) -> list:
    """What a figure draws beyond its edges (every axes' tight box and the figure title)."""
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    box = fig.bbox
    out = [(ax.get_label() or "axes", b) for ax in fig.axes if (b := ax.get_tightbbox(r)) is not None
           and (b.x0 < box.x0 - 1 or b.y0 < box.y0 - 1 or b.x1 > box.x1 + 1 or b.y1 > box.y1 + 1)]
    for t in fig.texts:
        b = t.get_window_extent(r)
        if b.x0 < -1 or b.y0 < -1 or b.x1 > box.x1 + 1 or b.y1 > box.y1 + 1:
            out.append((t.get_text(), b))
    return out


@pytest.mark.parametrize("font", ["auto", None])
def test_every_figure_keeps_its_text_inside_without_a_layout_engine(plan14, font):
    """The figures place their axes themselves (no constrained layout, issue 19): nothing
    is cut off at any edge, for few and many sub-areas, long names, Japanese or romanised."""
    from subdivide.present.report import planner_curve_figure, subarea_map_figure

    font = cjk_font() if font == "auto" else None
    order = plan14.subareas["subarea"].astype(int).tolist()
    names = dict(zip(order, plan14.subareas["name"]))
    names[order[2]] = "とても長い名前の細分化エリア北部地区"
    view = spill_view(plan14, None, (2.0, 2.5, 3.0))
    e = view.exposure
    figs = {
        "curve": unreached_curve_figure(curve_points(plan14, (2.0, 2.5, 3.0), spill=None), names, font=font),
        "exposure 14": exposure_figure(e, order, names, (2.0, 2.5, 3.0), font=font),
        "exposure 3": exposure_figure(e[e["source"].isin(order[:3]) & e["target"].isin(order[:3])], order[:3],
                                      names, (2.0, 3.0), font=font),
        "exposure 1": exposure_figure(e.iloc[:0], order[:1], names, (2.0,), font=font),
        "map": subarea_map_figure(plan14, names, font=font),
        "planner": planner_curve_figure({"curve": [{"k": k, "spared_share_mean": 0.1 * k, "spared_share_worst":
                                                    0.08 * k} for k in range(2, 15)], "recommended_k": 6}, font=font),
    }
    for name, fig in figs.items():
        assert fig.get_layout_engine() is None, name
        assert _outside(fig) == [], name


def test_report_computes_the_spill_report_once(plan14, tmp_path, spill_report_calls):
    """The table, the exposure figure and the curve read one spill report (they computed
    two before issue 19); a report passed in is used as it is."""
    calls, real = spill_report_calls
    build_report(plan14, tmp_path / "a")
    assert len(calls) == 1
    rep = real(plan14)
    calls.clear()
    build_report(plan14, tmp_path / "b", spill=rep)
    assert calls == []
    for name in REPORT_FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
