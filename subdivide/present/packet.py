"""The print packet: one A4 PDF for a council (議会・住民説明), ``subdivide report --pdf``.

:func:`build_packet` writes, with matplotlib's PDF backend:

1. a title with the municipality's name, the plan in figures and the caution (note), and
   a map of the sub-areas with a scale bar and a north arrow (true north, from the
   plan's CRS);
2. the sub-area table (exact-shape unreached share at each L, values below the policy
   in red with ▼, as the report marks them) and the unreached-share curves at the L
   values in use (2.0 / 2.5 / 3.0 km by default);
3. the neighbour exposure table at the middle L and the reach caveats (what the
   figures assume and do not say).

A table is never separated from its heading: rows flow onto the next page only with
the heading and the column titles repeated (「（続き）」). Japanese text uses the report's
CJK font (IPA / Noto); a character no font has is drawn as 〓 (:class:`GlyphCheck`), never
as tofu. Text is embedded as TrueType (Type 42), so it can be searched and copied.
The bytes are deterministic: no creation date, fixed producer, fixed font subsets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from subdivide.core.constants import DEFAULT_DISTANCES_KM, DEFAULT_TARGET_SHARE
from subdivide.core.errors import UserError
from subdivide.core.progress import Progress, silent
from subdivide.io.output import atomic_path, check_can_write
from subdivide.present.map import km_label, label_points, spill_view, subarea_colours
from subdivide.present.report import (
    LATIN_FONT, GlyphCheck, Labels, _rc, cjk_font, curve_points, draw_unreached_curve, text_width_in,
)

#: A4 portrait, inches
A4 = (8.27, 11.69)
#: page margins (inches): left/right, top, bottom
MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 0.6, 0.6, 0.7
#: table row height (inches) and the heading's
ROW_IN, HEADING_IN = 0.26, 0.42
#: table text size (pt) and a cell's inner padding (fraction of the table width)
CELL_PT, CELL_PAD = 8.5, 0.006
#: how values below the policy are printed
BELOW_COLOUR = "#c00000"
#: fixed PDF metadata (no dates: identical input → identical bytes)
PDF_METADATA = {"Creator": "subdivide", "Producer": "subdivide (matplotlib)", "CreationDate": None,
                "ModDate": None}

#: what the spill figures assume (printed on the last page)
REACH_CAVEATS = (
    "漏れ距離 L は、2016–17 年の実証試験で境界から 1.6–3.3 km 離れた地点で隣のエリア宛ての"
    "メールが受信された観測を踏まえた仮定です。実際の電波の届き方は地形・建物・基地局の位置と向き・"
    "事業者によって変わり、L より遠くで受信されることも、近くで受信されないこともあります。",
    "非到達率（実形状）は、エリアの境界を内側に L だけ縮めた範囲（内側コア）の面積の割合です。"
    "「境界から一律 L km 届く」とした幾何的な目安で、受信確率のモデル値や実測値ではありません。",
    "円モデルは同じ面積の円とみなした値で、実際の形ではこれより小さくなります（細長いエリアほど小さい）。",
    "隣接エリアへの漏れの人口は、町丁・字の人口（国勢調査）を面積で按分した概算です。"
    "人が住んでいる場所の偏りは考慮していません。",
    "目安 50 % は実証試験の方針（隣のエリアの配信が届かない範囲がエリアの半分以上）です。"
    "下回るエリアでは、隣のエリア宛てのメールを受け取る住民が多くなります。",
    "地図の境界線は表示のため簡略化しています。正式な範囲は提出パッケージの町丁・字一覧で確認してください。",
)


# ---------------------------------------------------------------------- data
@dataclass
class Table:
    """A printable table: column titles, rows of strings, per-cell colours (None = black)
    and per-column alignment ('left' / 'right'), relative column widths."""

    heading: str
    columns: list[str]
    rows: list[list[str]]
    widths: list[float]
    align: list[str]
    colours: list[list[str | None]] = field(default_factory=list)
    caption: str = ""


def subarea_table(plan, view, distances, names: dict, *, target_share: float) -> Table:
    """The sub-area table: number, name, code, town-blocks, population, area, then the
    exact-shape unreached share at each L (below the policy: ▼ and red)."""
    sh = view.shares.pivot_table(index="subarea", columns="distance_km", values="core_share")
    cols = ["番号", "名称", "コード", "町丁・字", "人口", "面積 km²"] + [f"L={km_label(L)} km" for L in distances]
    rows, colours = [], []
    for r in plan.metrics.itertuples(index=False):
        s = int(r.subarea)
        row = [str(s), names[s], str(r.code), f"{int(r.n_blocks):,}", f"{int(r.population):,}", f"{r.area_km2:,.1f}"]
        col = [None] * len(row)
        for L in distances:
            v = sh.loc[s, float(L)] if s in sh.index and float(L) in sh.columns else np.nan
            below = bool(np.isfinite(v) and v < target_share)
            row.append("–" if not np.isfinite(v) else f"{'▼' if below else ''}{100 * v:.0f} %")
            col.append(BELOW_COLOUR if below else None)
        rows.append(row)
        colours.append(col)
    n = len(distances)
    return Table(
        heading="エリア一覧", columns=cols, rows=rows, colours=colours,
        widths=[0.55, 2.2, 0.95, 0.75, 0.9, 0.85] + [0.8] * n,
        align=["right", "left", "left"] + ["right"] * (3 + n),
        caption=(f"右の {n} 列は非到達率（実形状）：隣のエリア宛ての配信が届かない範囲の割合。"
                 f"▼赤字は目安 {target_share:.0%} 未満。"))


def exposure_table(view, names: dict, distance_km: float) -> Table:
    """Who receives whose broadcasts at one L: sending and receiving sub-area, area,
    people (areal-weighted) and the share of the receiver's population."""
    e = view.exposure[np.isclose(view.exposure["distance_km"], distance_km)]
    e = e.sort_values(["population", "source", "target"], ascending=[False, True, True], kind="stable")
    rows = [[f"{int(s)} {names[int(s)]}", f"{int(t)} {names[int(t)]}", f"{a:,.2f}", f"{p:,.0f}", f"{100 * q:.1f} %"]
            for s, t, a, p, q in zip(e["source"], e["target"], e["area_km2"], e["population"],
                                     e["target_population_share"])]
    if not rows:
        rows = [["（隣のエリアに届く配信はありません）", "", "", "", ""]]
    return Table(heading=f"隣接エリアへの漏れ（L = {km_label(distance_km)} km）",
                 columns=["配信元エリア", "受信するエリア", "面積 km²", "人口（概算）", "受信エリア人口比"],
                 rows=rows, widths=[2.3, 2.3, 0.9, 1.0, 1.1], align=["left", "left", "right", "right", "right"],
                 caption="配信元エリア宛てのメールが届くと見込まれる、受信するエリア内の範囲と人口。")


# ---------------------------------------------------------------------- drawing
class Pages:
    """A4 pages flowing top to bottom: :meth:`space` gives the next block's place (a new
    page when it does not fit); :meth:`save` writes the PDF."""

    def __init__(self, font, lab: Labels):
        self.font, self.lab = font, lab
        self.figures: list = []
        self.y = 0.0   # inches from the top of the current page

    def new_page(self):
        from matplotlib.backends.backend_pdf import FigureCanvasPdf
        from matplotlib.figure import Figure

        fig = Figure(figsize=A4)
        FigureCanvasPdf(fig)
        n = len(self.figures) + 1
        fig.text(0.5, MARGIN_BOTTOM / 2 / A4[1], f"– {n} –", ha="center", va="center", fontsize=8, color="#555")
        self.figures.append(fig)
        self.y = MARGIN_TOP
        return fig

    @property
    def fig(self):
        return self.figures[-1] if self.figures else self.new_page()

    def room(self) -> float:
        return A4[1] - MARGIN_BOTTOM - self.y if self.figures else 0.0

    def space(self, height_in: float):
        """(figure, top y in inches) for a block of ``height_in``; starts a page if needed."""
        if height_in > self.room():
            self.new_page()
        top = self.y
        self.y += height_in
        return self.fig, top

    def rect(self, top_in: float, height_in: float, *, left_in: float = MARGIN_X, width_in: float | None = None):
        """Figure-fraction rectangle [left, bottom, width, height] of a block."""
        w = (A4[0] - 2 * MARGIN_X) if width_in is None else width_in
        return [left_in / A4[0], 1 - (top_in + height_in) / A4[1], w / A4[0], height_in / A4[1]]

    def text(self, text: str, *, size: float = 10, colour: str = "#222",
             width_chars: int = 52, gap: float = 0.08) -> None:
        """A paragraph wrapped to the page width (Japanese counted as two columns)."""
        lines = wrap(text, width_chars)
        h = len(lines) * size * 1.5 / 72 + gap
        fig, top = self.space(h)
        fig.text(MARGIN_X / A4[0], 1 - top / A4[1], "\n".join(lines), ha="left", va="top", fontsize=size,
                 color=colour, linespacing=1.5, parse_math=False)

    def save(self, path: Path) -> None:
        from matplotlib.backends.backend_pdf import PdfPages

        with PdfPages(path, metadata=PDF_METADATA) as pdf:
            for fig in self.figures:
                pdf.savefig(fig)


def wrap(text: str, width: int) -> list[str]:
    """Wrap text at ``width`` columns, Japanese characters counting as two (no spaces to
    break at in Japanese, so lines are cut by width)."""
    import unicodedata

    out = []
    for para in str(text).split("\n"):
        line, cols = "", 0
        for c in para:
            w = 2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
            if cols + w > width:
                out.append(line)
                line, cols = "", 0
            line += c
            cols += w
        out.append(line)
    return out


def draw_table(pages: Pages, table: Table) -> None:
    """Heading, column titles and rows; rows that do not fit flow onto the next page with
    the heading (「（続き）」) and column titles repeated — never a heading alone."""
    rows = list(range(len(table.rows)))
    whole = HEADING_IN + ROW_IN * (len(rows) + 1) + 0.5
    if whole > pages.room() and whole <= A4[1] - MARGIN_TOP - MARGIN_BOTTOM:
        pages.new_page()   # fits on a page of its own: keep it whole
    first = True
    while rows:
        need_min = HEADING_IN + ROW_IN * (2 + min(len(rows), 2))
        if pages.room() < need_min:
            pages.new_page()
        fit = int((pages.room() - HEADING_IN - ROW_IN - 0.35) // ROW_IN)
        part, rows = rows[:max(fit, 1)], rows[max(fit, 1):]
        heading = table.heading if first else f"{table.heading}（続き）"
        fig, top = pages.space(HEADING_IN)
        fig.text(MARGIN_X / A4[0], 1 - (top + 0.12) / A4[1], heading, fontsize=13, va="top",
                 parse_math=False)
        _table_rows(pages, table, part)
        if table.caption and not rows:
            pages.text(table.caption, size=8.5, colour="#444", width_chars=100)
        first = False


def _table_rows(pages: Pages, table: Table, idx: list[int]) -> None:
    height = ROW_IN * (len(idx) + 1)
    fig, top = pages.space(height + 0.1)
    ax = fig.add_axes(pages.rect(top, height))
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(len(idx) + 1, 0)
    total = float(sum(table.widths))
    edges = np.concatenate([[0.0], np.cumsum(table.widths) / total])
    ax.axhspan(0, 1, color="#eeeeee", lw=0)
    ax.axhline(1, color="#666", lw=0.8)
    for r in range(len(idx) + 2):
        ax.axhline(r, color="#bbb", lw=0.4)
    room = (np.diff(edges) - 2 * CELL_PAD) * (A4[0] - 2 * MARGIN_X)     # inches inside each cell
    for j, title in enumerate(table.columns):
        _cell(ax, edges, j, 0.5, title, table.align[j])
    for k, i in enumerate(idx):
        colours = table.colours[i] if table.colours else [None] * len(table.columns)
        for j, value in enumerate(table.rows[i]):
            c = colours[j]
            # names (the left-aligned text columns) are cut to their cell; figures never are
            shown = fit_cell(value, room[j]) if table.align[j] == "left" else value
            _cell(ax, edges, j, k + 1.5, shown, table.align[j], colour=c or "#111")


def fit_cell(text: str, width_in: float, size_pt: float = CELL_PT) -> str:
    """``text`` cut (…) to what fits in a cell ``width_in`` inches wide at ``size_pt``, so a
    long name never runs into the next column (the full name is in the package's lists).
    Widths are :func:`~subdivide.present.report.text_width_in`'s upper bound."""
    text = str(text)
    if text_width_in(text, size_pt) <= width_in:
        return text
    ends = np.cumsum([text_width_in(c, size_pt) for c in text])
    keep = int(np.searchsorted(ends, width_in - text_width_in("…", size_pt), side="right"))
    return text[:keep] + "…"


def _cell(ax, edges, j, y, text, align, *, colour="#111") -> None:
    x = edges[j] + CELL_PAD if align == "left" else edges[j + 1] - CELL_PAD
    ax.text(x, y, text, ha=align, va="center", fontsize=CELL_PT, color=colour, parse_math=False,
            clip_on=True)


def _nice_length(metres: float) -> float:
    """A round scale-bar length (1, 2, 5 × 10ⁿ m) at most ``metres``."""
    exp = 10 ** np.floor(np.log10(metres))
    return float(max(m * exp for m in (1, 2, 5) if m * exp <= metres))


def true_north_angle(plan) -> float:
    """Angle (degrees, anticlockwise from the map's up) of true north at the plan's
    centre: the grid convergence of its projected CRS."""
    from pyproj import Transformer

    x0, y0, x1, y1 = plan.dissolved.total_bounds
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    to_ll = Transformer.from_crs(plan.crs, 4326, always_xy=True)
    to_xy = Transformer.from_crs(4326, plan.crs, always_xy=True)
    lon, lat = to_ll.transform(cx, cy)
    nx, ny = to_xy.transform(lon, lat + 0.01)
    return float(np.degrees(np.arctan2(-(nx - cx), ny - cy)))


def draw_map(pages: Pages, plan, names: dict, height_in: float) -> None:
    """The sub-areas with labels, a scale bar (bottom left) and a north arrow (top right)."""
    from matplotlib.patches import FancyArrow

    fig, top = pages.space(height_in)
    ax = fig.add_axes(pages.rect(top, height_in - 0.1))
    d = plan.dissolved
    colours = subarea_colours(plan.subareas["subarea"].astype(int).tolist())
    plan.blocks.boundary.plot(ax=ax, color="#999", linewidth=0.2)
    d.plot(ax=ax, color=[colours[int(s)] for s in d["subarea"]], alpha=0.55, edgecolor="#222", linewidth=1.0)
    for s, p in zip(d["subarea"].astype(int), label_points(d.geometry.values)):
        ax.annotate(pages.lab.subarea(s, names[s]), (shapely.get_x(p), shapely.get_y(p)), ha="center", va="center",
                    fontsize=9, parse_math=False,
                    bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": colours[s], "alpha": 0.9})
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    for sp in ax.spines.values():
        sp.set_color("#888")
    x0, y0, x1, y1 = d.total_bounds
    w, h = x1 - x0, y1 - y0
    ax.set_xlim(x0 - 0.04 * w, x1 + 0.04 * w)
    ax.set_ylim(y0 - 0.1 * h, y1 + 0.06 * h)
    # scale bar: a round length about a fifth of the width
    bar = _nice_length(w / 5)
    bx, by = x0, y0 - 0.06 * h
    for k in range(4):
        ax.add_patch(_rect(bx + k * bar / 4, by, bar / 4, 0.012 * h, "#222" if k % 2 == 0 else "white"))
    ax.text(bx, by + 0.02 * h, "0", fontsize=7, ha="center", va="bottom")
    ax.text(bx + bar, by + 0.02 * h, f"{bar / 1000:g} km", fontsize=7, ha="center", va="bottom")
    # north arrow, rotated by the grid convergence
    ang = np.radians(true_north_angle(plan))
    ax_x, ax_y, L = 0.05, 0.88, 0.08   # top left: outside most municipalities' shapes
    dx, dy = -np.sin(ang) * L, np.cos(ang) * L
    ax.add_patch(FancyArrow(ax_x - dx / 2, ax_y - dy / 2, dx, dy, width=0.012, head_width=0.04, head_length=0.035,
                            length_includes_head=True, transform=ax.transAxes, color="#111"))
    ax.text(ax_x + dx * 0.75, ax_y + dy * 0.75 + 0.01, "N", transform=ax.transAxes, ha="center", va="bottom",
            fontsize=11)


def _rect(x, y, w, h, colour):
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, facecolor=colour, edgecolor="#222", linewidth=0.6)


def draw_curves(pages: Pages, points: pd.DataFrame, *, target_share: float) -> None:
    distances = sorted(points["distance_km"].unique())
    ls = " / ".join(f"{L:.1f}" for L in distances)
    h = 4.3
    if pages.room() < HEADING_IN + h:
        pages.new_page()
    fig, top = pages.space(HEADING_IN)
    fig.text(MARGIN_X / A4[0], 1 - (top + 0.12) / A4[1], f"非到達率と面積（L = {ls} km）", fontsize=13,
             va="top", parse_math=False)
    fig, top = pages.space(h)
    ax = fig.add_axes(pages.rect(top + 0.05, h - 0.65, left_in=MARGIN_X + 0.55, width_in=A4[0] - 2 * MARGIN_X - 0.6))
    draw_unreached_curve(ax, points, pages.lab, target_share=target_share, title=False)
    pages.text("曲線は円モデル (r − L)² / r²、点は各エリアの実形状での値（数字はエリア番号）。"
               "曲線より下の点は、形のために同じ面積の円より漏れの影響を受けやすいエリアです。",
               size=8.5, colour="#444", width_chars=100)


# ---------------------------------------------------------------------- the packet
def render_packet(plan, *, spill=None, distances_km=DEFAULT_DISTANCES_KM, curve_distances_km=None,
                  title: str | None = None, note: str | None = None,
                  target_share: float = DEFAULT_TARGET_SHARE, progress: Progress = silent) -> Pages:
    """Lay out every page (see the module docstring); :meth:`Pages.save` writes them."""
    from matplotlib import rc_context

    progress("packet: spill figures", 0, 0)
    view = spill_view(plan, spill, distances_km)
    distances = tuple(sorted(view.shares["distance_km"].unique()))
    curve_d = tuple(sorted({float(x) for x in (curve_distances_km or distances)}))
    if not curve_d or min(curve_d) <= 0:
        raise UserError("curve distances must be positive kilometres", fix="e.g. 2,2.5,3")
    names = dict(zip(plan.subareas["subarea"].astype(int), plan.subareas["name"]))
    muni = plan.muni_name
    heading = title or f"{muni or '団体コード ' + str(plan.muni_code)} 緊急速報メール 細分化エリア案"
    cjk = cjk_font()
    if cjk is None:   # the packet is Japanese prose: without a Japanese font it would be tofu
        raise UserError("no Japanese font is installed: the print packet is written in Japanese",
                        fix="install one (Debian/Ubuntu: apt-get install fonts-ipafont-gothic), then run again")
    lab = Labels(cjk)
    glyphs = GlyphCheck([LATIN_FONT, cjk])
    texts = [heading, note or "", *map(str, names.values()), *REACH_CAVEATS]
    font = tuple(glyphs.prepare(texts)) if lab.ja else cjk
    shown = {s: glyphs.drawable(str(n)) if lab.ja else f"Area {s}" for s, n in names.items()}
    rc = {**_rc(font), "pdf.fonttype": 42, "pdf.compression": 6}
    with rc_context(rc):
        pages = Pages(font, lab)
        pages.new_page()
        pages.text(glyphs.drawable(heading), size=17, width_chars=44, gap=0.12)
        pop = int(plan.blocks["population"].sum())
        pages.text(f"団体コード {plan.muni_code}、細分化エリア {len(plan.subareas)}、町丁・字 {len(plan.blocks):,}、"
                   f"人口 {pop:,} 人、漏れ距離 L = {' / '.join(km_label(L) for L in distances)} km", size=9.5,
                   width_chars=100)
        if note:
            pages.text(glyphs.drawable(note), size=9, colour="#8a1c00", width_chars=100)
        progress("packet: map", 1, 4)
        x0, y0, x1, y1 = plan.dissolved.total_bounds
        fit = (A4[0] - 2 * MARGIN_X) * (y1 - y0) * 1.16 / max(x1 - x0, 1.0) + 0.2
        draw_map(pages, plan, shown, min(pages.room() - 0.1, fit, 7.5))
        progress("packet: tables", 2, 4)
        pages.y += 0.1
        draw_table(pages, subarea_table(plan, view, distances, shown, target_share=target_share))
        pages.new_page()
        draw_curves(pages, curve_points(plan, curve_d, spill=spill), target_share=target_share)
        progress("packet: exposure and caveats", 3, 4)
        pages.y += 0.15
        draw_table(pages, exposure_table(view, shown, distances[len(distances) // 2]))
        pages.y += 0.2
        if pages.room() < HEADING_IN + 2.5:
            pages.new_page()
        fig, top = pages.space(HEADING_IN)
        fig.text(MARGIN_X / A4[0], 1 - (top + 0.12) / A4[1], "漏れの見込みについての注意", fontsize=13,
                 va="top", parse_math=False)
        for c in REACH_CAVEATS:
            pages.text("・" + c, size=9.5, width_chars=92, gap=0.1)
        if glyphs.replaced:
            pages.text("〓 はインストールされたフォントにない文字です。", size=8.5, colour="#8a1c00", width_chars=100)
        progress("packet: pages", 4, 4)
    return pages


def build_packet(plan, path, *, spill=None, distances_km=DEFAULT_DISTANCES_KM, curve_distances_km=None,
                 title: str | None = None, note: str | None = None, force: bool = False, inputs=(),
                 progress: Progress = silent) -> Path:
    """Write the A4 print packet of ``plan`` to ``path`` (PDF); see the module docstring.

    Refuses to overwrite ``path`` unless ``force`` and always when it is one of
    ``inputs``; writes atomically. Returns the path.
    """
    out = check_can_write(path, force, inputs=inputs)
    if out.suffix.lower() != ".pdf":
        raise UserError(f"the print packet {out} must end in .pdf", fix="e.g. --pdf hanamaki_packet.pdf")
    pages = render_packet(plan, spill=spill, distances_km=distances_km, curve_distances_km=curve_distances_km,
                          title=title, note=note, progress=progress)
    with atomic_path(out, force=force, inputs=inputs) as tmp:
        pages.save(tmp)
    return out
