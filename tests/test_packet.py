"""The print packet (subdivide.present.packet, ``subdivide report --pdf``): an A4 PDF with
the municipality's name, a map with scale bar and north arrow, the sub-area table with
values below the policy marked, the curves at the L values in use, the exposure table
and the reach caveats; Japanese text present; rendered to PNG (pdftoppm) and not blank;
byte-identical on re-run; tables never separated from their headings."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from subdivide.cli.main import main
from subdivide.present.map import spill_view
from subdivide.present.packet import (
    A4,
    REACH_CAVEATS,
    Pages,
    Table,
    build_packet,
    draw_table,
    fit_cell,
    true_north_angle,
    wrap,
)
from subdivide.io.townblocks import municipality_name
from subdivide.present.report import Labels, cjk_font
from test_report import plan14  # noqa: F401 (fixture)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def poppler(tool: str) -> str:
    """pdftoppm / pdftotext (poppler-utils): skip locally when absent, fail under CI."""
    exe = shutil.which(tool)
    if exe is None:
        msg = f"{tool} not found (apt-get install -y poppler-utils)"
        if IN_CI:
            pytest.fail(f"{msg}: it must be installed under CI")
        pytest.skip(msg)
    return exe


@pytest.fixture(scope="module")
def sample_packet(tmp_path_factory, sample_plan):
    out = tmp_path_factory.mktemp("packet") / "hanamaki.pdf"
    return build_packet(sample_plan, out, note="境界は推定形状です")


def pdf_text(path) -> str:
    return subprocess.run([poppler("pdftotext"), "-layout", str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def pages_of(path) -> list[str]:
    return pdf_text(path).split("\f")


@pytest.mark.slow
def test_sample_packet_is_a4_with_everything_a_council_needs(sample_packet, sample_plan):
    data = sample_packet.read_bytes()
    assert data[:5] == b"%PDF-"
    assert b"/MediaBox [0 0 595.44 841.68]" in data or b"/MediaBox [ 0 0 595.44 841.68 ]" in data  # A4
    assert b"CreationDate" not in data                                   # fixed metadata
    text = pdf_text(sample_packet)
    assert municipality_name(sample_plan.blocks) == "花巻市" and "花巻市 緊急速報メール 細分化エリア案" in text
    for name in sample_plan.subareas["name"]:
        assert name in text
    for code in sample_plan.subareas["code"]:
        assert str(code) in text
    assert "境界は推定形状です" in text
    assert "L = 2.0 / 2.5 / 3.0 km" in text           # the curves at the L values in use, not 1 km
    assert "L = 1 km" not in text and "L = 1.0" not in text
    assert "km" in text and "N" in text                 # scale bar and north arrow labels
    assert "漏れの見込みについての注意" in text
    for caveat in REACH_CAVEATS:
        assert re.sub(r"\s", "", caveat[:20]) in re.sub(r"\s", "", text)
    # values below the policy (50 %) are marked as the report marks them
    view = spill_view(sample_plan)
    below = view.shares[view.shares["core_share"] < 0.5]
    assert len(below) and len(re.findall(r"▼\d+ %", text)) == len(below)
    assert "▼赤字は目安 50% 未満" in text


@pytest.mark.slow
def test_packet_renders_to_png_not_blank_with_japanese(sample_packet, tmp_path):
    import matplotlib.image as mpimg

    subprocess.run([poppler("pdftoppm"), "-r", "50", "-png", str(sample_packet), str(tmp_path / "p")], check=True)
    pngs = sorted(tmp_path.glob("p-*.png"))
    assert len(pngs) == 3
    for png in pngs:
        img = mpimg.imread(png)[..., :3]
        ink = np.mean(img.sum(axis=2) < 2.4)             # share of pixels that are not (near) white
        assert 0.01 < ink < 0.6, (png.name, ink)
    first = mpimg.imread(pngs[0])[..., :3]
    h, w = first.shape[:2]
    assert abs(h / w - A4[1] / A4[0]) < 0.01
    colourful = np.mean(np.ptp(first, axis=2) > 0.15)     # the coloured map on page 1
    assert colourful > 0.05
    if cjk_font():
        assert "細分化エリア" in pdf_text(sample_packet)   # Japanese text, drawn in a CJK font, extractable


def test_table_heading_is_never_alone_at_the_bottom_of_a_page():
    """A long table flows onto the next page with its heading and column titles repeated."""
    from matplotlib import rc_context

    rows = [[f"{i}", f"name {i}"] for i in range(80)]
    table = Table(heading="T", columns=["a", "b"], rows=rows, widths=[1, 2], align=["right", "left"])
    with rc_context({"font.family": ["DejaVu Sans"]}):
        pages = Pages(None, Labels(None))
        pages.new_page()
        pages.y = A4[1] - 1.2    # almost at the bottom: too little room for heading + rows
        draw_table(pages, table)
    texts = [[t.get_text() for t in fig.texts] for fig in pages.figures]
    assert "T" not in texts[0]                           # not left alone on page 1
    assert "T" in texts[1] and any("T（続き）" in t for t in texts[2:])
    cells = [[t.get_text() for ax in fig.axes for t in ax.texts] for fig in pages.figures]
    shown = [c for page in cells for c in page if c.startswith("name ")]
    assert shown == [f"name {i}" for i in range(80)]     # every row once, in order
    for page in cells[1:]:
        assert page[:2] == ["a", "b"]                    # column titles on every page


def test_a_long_name_is_cut_inside_its_cell_not_drawn_over_the_code():
    """A 60-character sub-area name in the sub-area table's layout: drawn cut with …, its
    rendered extent inside the name column, and the code beside it intact."""
    from matplotlib import rc_context

    font = cjk_font()
    long = ("とても長い名前の地域" * 6) if font else ("A very long sub-area name " * 3)
    rows = [["1", long, "3120101", "12", "1,234,567", "1,234.5"], ["2", "短い地域", "3120102", "3", "45", "0.9"]]
    table = Table(heading="エリア一覧", columns=["番号", "名称", "コード", "町丁・字", "人口", "面積 km²"], rows=rows,
                  widths=[0.55, 2.2, 0.95, 0.75, 0.9, 0.85], align=["right", "left", "left", "right", "right", "right"])
    with rc_context({"font.family": [font or "DejaVu Sans"]}):
        pages = Pages(font, Labels(font))
        pages.new_page()
        draw_table(pages, table)
        fig = pages.figures[0]
        ax = fig.axes[0]
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        renderer = FigureCanvasAgg(fig).get_renderer()
        texts = {t.get_text(): t for t in ax.texts}
        cut = next(t for t in texts if t.endswith("…"))
        assert long.startswith(cut[:-1]) and len(cut) < len(long) and "短い地域" in texts and "3120101" in texts
        assert {"1,234,567", "1,234.5", "面積 km²", "町丁・字"} <= set(texts)      # figures and headings whole
        edges = np.concatenate([[0.0], np.cumsum(table.widths) / sum(table.widths)])
        code_left = ax.transData.transform((edges[2], 0))[0]
        assert texts[cut].get_window_extent(renderer).x1 < code_left
    assert fit_cell("短い", 1.0) == "短い" and fit_cell("x" * 200, 0.5).endswith("…")
    assert len(fit_cell("名" * 20000, 2.0)) < 40          # linear, and a page-wide name is cut short


def test_packet_is_deterministic_and_marks_hostile_names_as_text(plan14, tmp_path):  # noqa: F811
    a = build_packet(plan14, tmp_path / "a.pdf")
    b = build_packet(plan14, tmp_path / "b.pdf")
    assert a.read_bytes() == b.read_bytes()
    if shutil.which("pdftotext") or IN_CI:
        assert "<b>太字</b>地域" in pdf_text(a)       # a name is drawn as text, never as markup
    with pytest.raises(Exception, match="--force"):
        build_packet(plan14, a)


def test_true_north_and_wrapping(sample_plan):
    ang = true_north_angle(sample_plan)
    assert 0.0 < abs(ang) < 2.0                         # 平面直角座標系 X: grid convergence under 2°
    assert wrap("あいうえお", 4) == ["あい", "うえ", "お"]
    assert wrap("abc", 10) == ["abc"]


@pytest.mark.slow
def test_cli_report_pdf(tmp_path, plan14, capsys):  # noqa: F811
    plan_path = tmp_path / "p.plan.gpkg"
    plan14.save(plan_path)
    out = tmp_path / "rep"
    assert main(["report", str(plan_path), "-o", str(out), "--pdf"]) == 0
    assert (out / "report.pdf").read_bytes()[:5] == b"%PDF-"
    assert 'href="report.pdf"' in (out / "report.html").read_text(encoding="utf-8")
    # --force replaces an earlier report that holds the packet
    assert main(["report", str(plan_path), "-o", str(out), "--force"]) == 0
    assert not (out / "report.pdf").exists()


def test_without_a_japanese_font_the_packet_is_refused_not_tofu(plan14, tmp_path, monkeypatch):  # noqa: F811
    import subdivide.present.packet as packet
    from subdivide.core.errors import UserError

    monkeypatch.setattr(packet, "cjk_font", lambda: None)
    with pytest.raises(UserError, match="Japanese font") as e:
        build_packet(plan14, tmp_path / "x.pdf")
    assert "fonts-ipafont-gothic" in e.value.fix
    assert not (tmp_path / "x.pdf").exists()


def test_council_walkthrough_commands_are_real():
    """Every `subdivide …` line of docs/ja/council.md parses with the real CLI."""
    from pathlib import Path

    from subdivide.cli.main import build_parser

    doc = (Path(__file__).resolve().parents[1] / "docs" / "ja" / "council.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```\n(.*?)```", doc, re.S)
    commands = [c.replace("\\\n", " ") for b in blocks for c in re.split(r"\n(?=subdivide )", b.strip())]
    commands = [c for c in commands if c.startswith("subdivide ")]
    assert len(commands) >= 3 and any("--pdf" in c for c in commands)
    import shlex

    for c in commands:
        build_parser().parse_args(shlex.split(c)[1:])
