"""The plan summary report: one HTML page with figures (matplotlib PNGs).

:func:`build_report` writes into a folder:

- ``report.html`` — the per-sub-area table (number, name, code, town-blocks,
  population, households, area, compactness, unreached share in the circle and exact
  polygon models at each spill distance L), the figures and the neighbour-exposure
  table, in Japanese;
- ``unreached_curve.png`` — unreached share against area: the circle-model curve
  ``(r − L)² / r²`` for L = 2, 2.5, 3 km (the L values in use), each sub-area plotted at its area and its exact
  polygon share (inward buffer) for each L — shapes below the curve lose more to spill
  than a circle of the same area;
- ``exposure_matrix.png`` — the neighbour exposure matrix as a heat map per L: row =
  sending sub-area, column = receiving sub-area, colour = share of the receiver's
  population reached, number = people (areal-weighted town-block counts);
- ``subareas.png`` — a static overview of the sub-areas (no basemap).

Japanese labels need a CJK font (IPA or Noto CJK); without one the figures fall back to
romanised labels and numbers. Never tofu: a character of a name that neither font has
is drawn from another installed font that has it (:class:`GlyphCheck`), else shown as
〓 (geta, the typesetters' mark for a missing character) with a note in the report;
names are drawn as plain text (no mathtext: ``$x$`` stays ``$x$``). PNGs are
deterministic (fixed dpi, no software/date metadata), so the folder is byte-identical
for identical input.
"""
from __future__ import annotations

import html
import unicodedata
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from subdivide.core.constants import DEFAULT_DISTANCES_KM
from subdivide.present.map import display_distances, escape_text, km_label, spill_view
from subdivide.io.output import atomic_dir, check_can_write
from subdivide.core.progress import Progress, silent

#: spill distances (km) of the unreached-share-versus-area curve: the L values in use
#: (the trial measured 1.6–3.3 km; 1 km is below anything observed)
CURVE_DISTANCES_KM = DEFAULT_DISTANCES_KM
#: figure resolution (dots per inch) — fixed for byte-identical PNGs
DPI = 110
#: CJK fonts tried, in order (matplotlib family names)
CJK_FONTS = ("IPAexGothic", "IPAPGothic", "IPAGothic", "Noto Sans CJK JP", "Noto Sans JP",
             "Source Han Sans JP", "TakaoGothic", "TakaoPGothic", "VL Gothic", "Droid Sans Fallback")
_CJK_FILE_HINTS = ("ipag", "ipaexg", "notosanscjk", "notosansjp", "sourcehansans", "takao", "vl-gothic", "droidsansfallback")
#: what a character no installed font has is drawn as (and "?" when the fonts lack 〓 too)
MISSING_GLYPH = "〓"
#: the Latin font of the figures (matplotlib's own, always present)
LATIN_FONT = "DejaVu Sans"
#: fonts that draw a placeholder box for every character (matplotlib ships "Last Resort"):
#: tofu by design, never a fallback
PLACEHOLDER_FONTS = ("Last Resort",)
#: colours of the L curves
CURVE_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02")

#: longest axis label (characters, number included) in the exposure figure
TICK_CHARS = 12
#: above this many sub-areas the exposure panels (one per L) are stacked, not side by side
STACK_EXPOSURE_ABOVE = 6

REPORT_FILES = ("report.html", "unreached_curve.png", "exposure_matrix.png", "subareas.png")
#: the automatic planner's curve (only for plans made by ``plan --auto``)
PLANNER_FILE = "planner_curve.png"
#: the print packet (A4 PDF, :mod:`subdivide.present.packet`) written with ``pdf=True``
PACKET_FILE = "report.pdf"


# ---------------------------------------------------------------------- fonts
def cjk_font() -> str | None:
    """The matplotlib family name of an installed Japanese font, or None.

    Looks at matplotlib's font list first, then registers system font files whose
    names look Japanese (the cache may predate the font's installation)."""
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    for n in CJK_FONTS:
        if n in names:
            return n
    for path in sorted(font_manager.findSystemFonts()):
        low = Path(path).name.lower().replace("-", "").replace("_", "")
        if any(h.replace("-", "") in low for h in _CJK_FILE_HINTS):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue
    names = {f.name for f in font_manager.fontManager.ttflist}
    return next((n for n in CJK_FONTS if n in names), None)


@lru_cache(maxsize=None)
def _charmap(path: str) -> frozenset:
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return frozenset()


def _font_path(family: str) -> str | None:
    from matplotlib import font_manager

    try:
        return font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    except ValueError:
        return None


class GlyphCheck:
    """Which characters the figure fonts can draw; fallback fonts for the others.

    ``families``: the figure's font families in order (Latin first, then the CJK font).
    :meth:`prepare` adds, for each character none of them has, the first other installed
    font that has it (by family name, sorted: deterministic); :meth:`drawable` replaces a
    character that no installed font has by :data:`MISSING_GLYPH` and records it.
    """

    def __init__(self, families):
        self.families = [f for f in families if f]
        self.replaced: dict[str, str] = {}   # original text → characters replaced

    def _covered(self, families) -> frozenset:
        from matplotlib import font_manager

        # keyed on the font list's length too: a font registered later is seen
        return _covered_chars(tuple(families), len(font_manager.fontManager.ttflist))

    def prepare(self, texts) -> list[str]:
        """Add fallback families for characters of ``texts`` the fonts lack; returns the
        families (the figure's ``font.family``)."""
        from matplotlib import font_manager

        want = {ord(c) for t in texts for c in str(t) if _drawn(c)}
        missing = want - self._covered(self.families)
        if missing:
            others = sorted({(f.name, f.fname) for f in font_manager.fontManager.ttflist
                             if f.name not in self.families and not f.name.startswith(PLACEHOLDER_FONTS)})
            for name, path in others:
                have = missing & _charmap(path)
                if have and name not in self.families:
                    self.families.append(name)
                    missing -= have
                if not missing:
                    break
        return list(self.families)

    def drawable(self, text: str) -> str:
        """``text`` with control characters as spaces (newlines kept) and characters no
        figure font has replaced by :data:`MISSING_GLYPH`."""
        covered = self._covered(self.families)
        mark = MISSING_GLYPH if ord(MISSING_GLYPH) in covered else "?"
        out, lost = [], []
        for c in str(text):
            if c == "\n":
                out.append(c)
            elif not _drawn(c):
                out.append(" ")
            elif ord(c) in covered:
                out.append(c)
            else:
                out.append(mark)
                lost.append(c)
        if lost:
            self.replaced[str(text)] = "".join(dict.fromkeys(lost))
        return "".join(out)


@lru_cache(maxsize=None)
def _covered_chars(families: tuple, n_fonts: int) -> frozenset:
    """The characters the fonts ``families`` have together (looked up once per family list
    and number of installed fonts ``n_fonts``)."""
    out: set[int] = set()
    for fam in families:
        path = _font_path(fam)
        if path:
            out |= _charmap(path)
    return frozenset(out)


def _drawn(c: str) -> bool:
    """A character that needs a glyph (not a control or format character)."""
    return unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Zl", "Zp")


class Labels:
    """Japanese text when a CJK font exists, else romanised text (no tofu)."""

    def __init__(self, font: str | None):
        self.font = font
        self.ja = font is not None

    def __call__(self, ja: str, en: str) -> str:
        return ja if self.ja else en

    def subarea(self, number: int, name: str) -> str:
        return f"{number} {name}" if self.ja else f"Area {number}"


def _figure(width_in: float, height_in: float, font: str | None = None):
    """A figure on its own Agg canvas (no pyplot), with no layout engine: each figure
    places its axes itself (:func:`_axes_at`), with margins computed from the text it
    holds (:func:`text_width_in`), which costs nothing where constrained layout measured
    every label twice per figure (issue 19)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=DPI, layout="none")
    FigureCanvasAgg(fig)
    return fig


#: points per inch
_PT = 1 / 72
#: estimated widths (em) of a character: East Asian wide, fullwidth and ambiguous ones
#: take a full em; others at most 0.7 em in DejaVu Sans (digits 0.64, capitals ≤ 0.7,
#: "W" and "M" aside): the estimate errs on the wide side, so labels are never cut off
_WIDE_EM, _NARROW_EM = 1.0, 0.7
#: tick length + tick label pad (matplotlib's defaults, 3.5 pt each), inches
_TICK_IN = 7 * _PT
#: outer margin of every figure, inches
_EDGE_IN = 0.08


def text_width_in(text: str, size_pt: float) -> float:
    """Estimated width (inches) of a one-line ``text`` at ``size_pt`` — an upper bound for
    the figure fonts, computed without drawing."""
    em = size_pt * _PT
    return sum(_WIDE_EM if unicodedata.east_asian_width(c) in "WFA" else _NARROW_EM for c in str(text)) * em


def _line_in(size_pt: float) -> float:
    """Height (inches) of one line of text at ``size_pt`` (with matplotlib's 1.2 spacing)."""
    return 1.2 * size_pt * _PT


def _axes_at(fig, left: float, bottom: float, width: float, height: float):
    """An axes at a fixed place, given in inches from the figure's lower left corner."""
    w, h = fig.get_size_inches()
    return fig.add_axes((left / w, bottom / h, width / w, height / h))


def _axes_inside(fig, left: float, bottom: float, right: float, top: float):
    """An axes filling the figure less the given margins (inches)."""
    w, h = fig.get_size_inches()
    return _axes_at(fig, left, bottom, w - left - right, h - bottom - top)


def _rc(font) -> dict:
    """``font``: the CJK family, None, or the full family list (:meth:`GlyphCheck.prepare`)."""
    if isinstance(font, (list, tuple)):
        fam = list(font)
    else:
        fam = [LATIN_FONT, font] if font else [LATIN_FONT]  # Latin from DejaVu, the rest from the CJK font
    return {"font.family": fam, "axes.unicode_minus": False, "svg.hashsalt": "subdivide",
            "path.simplify": True}


def save_png(fig, path) -> Path:
    """Deterministic PNG: fixed dpi, no Software/date metadata."""
    fig.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
    return Path(path)


# ---------------------------------------------------------------------- data
def curve_points(plan, distances_km=CURVE_DISTANCES_KM, *, spill=None) -> pd.DataFrame:
    """One row per sub-area and L: subarea, distance_km, area_km2, core_share (exact
    polygon model) and circle_share (circle model) — what the curve figure plots.

    The figures are the analysis layer's (:func:`subdivide.analysis.spill.spill_report`,
    town-block rows): read from ``spill`` when it holds every L, else from a report
    computed at ``distances_km``; nothing is recomputed here."""
    from subdivide.analysis.spill import spill_report

    want = sorted({float(L) for L in distances_km})
    table = getattr(spill, "subareas", None)
    if not isinstance(table, pd.DataFrame) or not set(want) <= set(table["distance_km"].astype(float)):
        table = spill_report(plan, distances_km=tuple(want)).subareas
    t = table[(table["population_source"] == "townblocks") & table["distance_km"].astype(float).isin(want)]
    out = pd.DataFrame({
        "subarea": t["subarea"].astype("int64").to_numpy(), "distance_km": t["distance_km"].astype(float).to_numpy(),
        "area_km2": t["area_km2"].astype(float).to_numpy(), "core_share": t["core_share"].astype(float).to_numpy(),
        "circle_share": t["circle_unreached_share"].astype(float).to_numpy(),
    })
    return out.sort_values(["distance_km", "subarea"], kind="stable").reset_index(drop=True)


def exposure_matrix(exposure: pd.DataFrame, subareas, distance_km: float, value: str) -> np.ndarray:
    """k × k matrix (rows = sending, columns = receiving sub-area, in ``subareas``
    order) of ``value`` at one L; NaN on the diagonal, 0 where nothing is reached."""
    subs = list(subareas)
    pos = {s: i for i, s in enumerate(subs)}
    mat = np.zeros((len(subs), len(subs)))
    e = exposure[np.isclose(exposure["distance_km"], float(distance_km))]
    for s, t, v in zip(e["source"], e["target"], e[value]):
        if s in pos and t in pos:
            mat[pos[s], pos[t]] = v
    np.fill_diagonal(mat, np.nan)
    return mat


# ---------------------------------------------------------------------- figures
def unreached_curve_figure(points: pd.DataFrame, names: dict, *, font: str | None = None,
                           target_share: float = 0.5):
    """The unreached-share-versus-area figure: circle-model curves per L and one marker
    per sub-area per L (exact polygon share). Each sub-area scatter has gid
    ``subareas-L{L}`` (one point per sub-area)."""
    from matplotlib import rc_context

    with rc_context(_rc(font)):
        fig = _figure(8.0, 5.2, font)
        # left: y label + "100%" ticks (10 pt); bottom: "1,000" ticks + x label; top: the title
        left = _EDGE_IN + _line_in(10) + 4 * _PT + _TICK_IN + text_width_in("100%", 10)
        bottom = _EDGE_IN + 2 * _line_in(10) + 4 * _PT + _TICK_IN
        top = _EDGE_IN + _line_in(11) + 6 * _PT
        ax = _axes_inside(fig, left, bottom, _EDGE_IN + text_width_in("10,000", 10) / 2, top)
        draw_unreached_curve(ax, points, Labels(font), target_share=target_share)
    return fig


def planner_curve_figure(planner: dict, *, font: str | None = None):
    """The automatic planner's curve: residents spared an alert per event (mean and worst L)
    against the number of sub-areas, the recommended k marked. Draws the planner's own
    figures (``plan.metadata["planner"]``, written by ``subdivide plan --auto``)."""
    from matplotlib import rc_context

    curve = pd.DataFrame(planner["curve"])
    lab = Labels(font)
    with rc_context(_rc(font)):
        fig = _figure(8.0, 4.2, font)
        left = _EDGE_IN + _line_in(10) + 4 * _PT + _TICK_IN + text_width_in("100", 10)
        bottom = _EDGE_IN + 2 * _line_in(10) + 4 * _PT + _TICK_IN
        ax = _axes_inside(fig, left, bottom, _EDGE_IN + text_width_in("14", 10) / 2, _EDGE_IN + 4 * _PT)
        ax.plot(curve["k"], 100 * curve["spared_share_mean"], "o-", color=CURVE_COLORS_PLANNER[0],
                label=lab("平均（L の範囲）", "mean over L"))
        ax.plot(curve["k"], 100 * curve["spared_share_worst"], "s--", color=CURVE_COLORS_PLANNER[1],
                label=lab("最悪の L", "worst L"))
        rec = planner.get("recommended_k")
        if rec is not None and (curve["k"] == rec).any():
            y = 100 * float(curve.loc[curve["k"] == rec, "spared_share_mean"].iloc[0])
            ax.scatter([rec], [y], s=160, facecolor="none", edgecolor="#c0392b", linewidth=2, zorder=4,
                       label=lab(f"推奨 k = {rec}", f"recommended k = {rec}"))
        ax.set_xlabel(lab("地域数 k", "number of sub-areas k"))
        ax.set_ylabel(lab("1回の配信で受信しない住民 (%)", "residents spared per event (%)"))
        ax.set_xticks(curve["k"].astype(int).tolist())
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    return fig


#: colours of the planner curve (mean, worst L)
CURVE_COLORS_PLANNER = ("#1f5fa8", "#7f8c8d")


def draw_unreached_curve(ax, points: pd.DataFrame, lab: "Labels", *, target_share: float = 0.5,
                         title: bool = True) -> None:
    """Draw the curves and the sub-area markers of :func:`unreached_curve_figure` on ``ax``
    (also used by the print packet)."""
    from subdivide.analysis.spill import circle_unreached_share

    dists = sorted(points["distance_km"].unique())
    amax = max(1000.0, float(points["area_km2"].max()) * 1.3)
    amin = min(1.0, float(points["area_km2"].min()) * 0.7)
    x = np.geomspace(amin, amax, 400)
    for i, L in enumerate(dists):
        c = CURVE_COLOURS[i % len(CURVE_COLOURS)]
        ax.plot(x, circle_unreached_share(x * 1e6, L * 1000.0), color=c, lw=1.8,
                label=lab(f"円モデル L = {km_label(L)} km", f"circle model L = {km_label(L)} km"))
        p = points[points["distance_km"] == L].sort_values("subarea", kind="stable")
        ax.scatter(p["area_km2"], p["core_share"], s=46, color=c, edgecolor="#111", linewidth=0.7,
                   zorder=3, gid=f"subareas-L{km_label(L)}",
                   label=lab(f"各エリアの実形状 L = {km_label(L)} km", f"sub-areas (exact shape) L = {km_label(L)} km"))
        for s, a, v in zip(p["subarea"], p["area_km2"], p["core_share"]):
            ax.annotate(str(int(s)), (a, v), xytext=(4, 3), textcoords="offset points", fontsize=8, color="#111")
    ax.axhline(target_share, color="#888", ls="--", lw=1)
    ax.text(amax * 0.95, target_share + 0.015, lab(f"目安 {target_share:.0%}", f"target {target_share:.0%}"),
            color="#555", fontsize=8, ha="right")
    ax.set_xscale("log")
    ax.set_xlim(amin, amax)
    ax.xaxis.set_major_formatter(_plain_formatter())  # 1, 10, 100 — not 10⁰, 10¹, 10²
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(_pct_formatter())
    ax.set_xlabel(lab("エリアの面積 (km²、対数目盛)", "sub-area area (km², log scale)"))
    ax.set_ylabel(lab("非到達率（隣接エリアの配信が届かない割合）", "unreached share (not reached by neighbours)"))
    if title:
        ax.set_title(lab("非到達率と面積：円モデルの曲線と各エリア（番号）",
                         "Unreached share vs area: circle model and sub-areas (numbers)"), fontsize=11)
    ax.grid(True, which="both", color="#ddd", lw=0.6)
    ax.legend(fontsize=8, loc="upper left", ncols=1, framealpha=0.9)


def _short(text: str, limit: int = TICK_CHARS) -> str:
    """A tick label cut to ``limit`` characters (…), so long names do not push the
    panels out of the figure; the full names are in the table."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _plain_formatter():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}")


def _pct_formatter():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _: f"{100 * v:.0f}%")


def exposure_figure(exposure: pd.DataFrame, subareas, names: dict, distances_km, *, font: str | None = None):
    """Heat maps (one panel per L): colour = share of the receiving sub-area's
    population reached by the sending sub-area's broadcasts; text = people."""
    from matplotlib import rc_context

    lab = Labels(font)
    subs = list(subareas)
    k = len(subs)
    n = len(distances_km)
    cell = 0.42 if k > 8 else 0.6
    # side by side while the panels stay readable on a page; stacked for many sub-areas
    stacked = k > STACK_EXPOSURE_ABOVE
    with rc_context(_rc(font)):
        ticks = [_short(lab.subarea(s, names[s])) for s in subs]
        xticks = ticks if k <= 8 else [str(s) for s in subs]
        rotate = k > 4
        side = k * cell                                                  # a panel (square), inches
        tick_fs, label_fs = 7.5, 8.5
        # room left of a panel (y label + names), below it (names or numbers + x label), above (title)
        left = _line_in(label_fs) + 4 * _PT + _TICK_IN + max(text_width_in(t, tick_fs) for t in ticks)
        below = (_TICK_IN + (max(text_width_in(t, tick_fs) for t in xticks) if rotate else _line_in(tick_fs))
                 + _line_in(label_fs) + 4 * _PT)
        above = _line_in(10) + 6 * _PT
        xlabel, ylabel = lab("受信するエリア", "receiving sub-area"), lab("配信元エリア", "sending sub-area")
        bar_label = lab("受信エリア人口に占める割合", "share of receiving population")
        # an x label wider than a small panel overhangs it: the gaps make room
        overhang = max(0.0, text_width_in(xlabel, label_fs) - side) / 2
        gap = max(0.25, overhang + 0.05)                                 # between panels
        # the colour bar: bar, "100%" ticks (10 pt), rotated label
        bar_w = 0.15
        bar_gap = max(0.2, overhang + 0.05)
        bar_block = bar_gap + bar_w + _TICK_IN + text_width_in("100%", 10) + 4 * _PT + _line_in(label_fs)
        head = _line_in(11) + 0.12                                       # the figure's title
        # vertical labels longer than a small panel and its margins: room above and below
        spare = max(0.0, max(text_width_in(ylabel, label_fs), text_width_in(bar_label, label_fs))
                    - side - 2 * min(above, below)) / 2
        cols, rows = (1, n) if stacked else (n, 1)
        content_w = cols * (left + side) + (cols - 1) * gap + bar_block
        title = lab("隣接エリアへの漏れ（数字は人数、町丁・字人口の面積按分）",
                    "Neighbour exposure (numbers: people, areal-weighted)")
        width = 2 * _EDGE_IN + max(content_w, text_width_in(title, 11), 4.0)
        height = 2 * _EDGE_IN + head + 2 * spare + rows * (above + side + below) + (rows - 1) * 0.1
        fig = _figure(width, height, font)
        x0 = (width - content_w) / 2                                     # content centred
        axes = []
        for i in range(n):
            c, r = (0, i) if stacked else (i, 0)
            x = x0 + c * (left + side + gap) + left
            y = height - _EDGE_IN - head - spare - r * (above + side + below + 0.1) - above - side
            axes.append(_axes_at(fig, x, y, side, side))
        im = None
        for ax, L in zip(axes, distances_km):
            share = exposure_matrix(exposure, subs, L, "target_population_share")
            pop = exposure_matrix(exposure, subs, L, "population")
            im = ax.imshow(np.ma.masked_invalid(share), cmap="Reds", vmin=0, vmax=max(0.3, np.nanmax(share) if k > 1 else 0.3),
                           interpolation="nearest")
            ax.set_facecolor("#eeeeee")
            for i in range(k):
                for j in range(k):
                    if i == j:
                        ax.text(j, i, "—", ha="center", va="center", fontsize=7, color="#777")
                    elif pop[i, j] > 0:
                        ax.text(j, i, f"{pop[i, j]:,.0f}", ha="center", va="center", fontsize=6.5 if k > 8 else 8,
                                color="#fff" if share[i, j] > 0.6 * (np.nanmax(share) or 1) else "#111")
            ax.set_xticks(range(k), xticks, rotation=90 if rotate else 0,
                          fontsize=tick_fs, parse_math=False)   # names are text, never mathtext
            ax.set_yticks(range(k), ticks, fontsize=tick_fs, parse_math=False)
            ax.set_title(f"L = {km_label(L)} km", fontsize=10)
            ax.set_xlabel(xlabel, fontsize=label_fs)
            ax.set_ylabel(ylabel, fontsize=label_fs)
        # the colour bar beside the panels, as tall as 60 % (stacked) or 80 % of their span
        top_y = axes[0].get_position().y1 * height
        low_y = axes[-1].get_position().y0 * height
        bar_h = (top_y - low_y) * (0.6 if stacked else 0.8)
        cax = _axes_at(fig, x0 + content_w - bar_block + bar_gap, (top_y + low_y - bar_h) / 2, bar_w, bar_h)
        cb = fig.colorbar(im, cax=cax)
        cb.ax.yaxis.set_major_formatter(_pct_formatter())
        cb.set_label(bar_label, fontsize=label_fs)
        fig.suptitle(title, fontsize=11, y=1 - _EDGE_IN / height, va="top")
    return fig


def subarea_map_figure(plan, names: dict, *, font: str | None = None):
    """A static overview of the sub-areas with numbers and names (projected CRS)."""
    from matplotlib import rc_context

    from subdivide.present.map import label_points, subarea_colours

    lab = Labels(font)
    d = plan.dissolved
    colours = subarea_colours(plan.subareas["subarea"].astype(int).tolist())
    with rc_context(_rc(font)):
        fig = _figure(7.0, 7.0, font)
        ax = _axes_inside(fig, _EDGE_IN, _EDGE_IN, _EDGE_IN, _EDGE_IN + _line_in(12) + 6 * _PT)
        ax.add_collection(_ring_lines(plan.blocks.geometry.values, color="#999", linewidth=0.25))
        ax.add_collection(_polygon_paths(d.geometry.values, facecolor=[colours[int(s)] for s in d["subarea"]],
                                         alpha=0.55, edgecolor="#222", linewidth=1.2))
        pts = label_points(d.geometry.values)
        for s, p in zip(d["subarea"].astype(int), pts):
            ax.annotate(lab.subarea(s, names[s]), (shapely.get_x(p), shapely.get_y(p)), ha="center", va="center",
                        fontsize=10, parse_math=False,
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": colours[s], "alpha": 0.85})
        ax.set_aspect("equal")
        ax.autoscale_view()
        ax.set_axis_off()
        ax.set_title(lab("細分化エリア", "Sub-areas"), fontsize=12)
    return fig


def _ring_lines(geoms, **style):
    """The outlines (every ring) of polygons as one LineCollection, built from the
    coordinate arrays in one pass (no per-geometry artist)."""
    from matplotlib.collections import LineCollection

    rings = shapely.get_rings(shapely.get_parts(np.asarray(geoms)))
    xy, idx = shapely.get_coordinates(rings, return_index=True)
    cuts = np.flatnonzero(np.diff(idx)) + 1
    return LineCollection(np.split(xy, cuts) if len(xy) else [], **style)


def _polygon_paths(geoms, **style):
    """One compound path (outer rings and holes) per geometry, as a PathCollection; the
    vertices and path codes of all rings come from one coordinate array."""
    from matplotlib.collections import PathCollection
    from matplotlib.path import Path as MplPath

    geoms = np.asarray(geoms)
    parts, part_geom = shapely.get_parts(geoms, return_index=True)
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    xy, coord_ring = shapely.get_coordinates(rings, return_index=True)
    codes = np.full(len(xy), MplPath.LINETO, dtype=MplPath.code_type)
    first = np.r_[True, coord_ring[1:] != coord_ring[:-1]] if len(xy) else np.zeros(0, bool)
    codes[first] = MplPath.MOVETO
    codes[np.r_[first[1:], True] if len(xy) else first] = MplPath.CLOSEPOLY   # a ring's last vertex
    owner = part_geom[ring_part[coord_ring]]
    cuts = np.searchsorted(owner, np.arange(1, len(geoms)))
    return PathCollection([MplPath(v, c) for v, c in zip(np.split(xy, cuts), np.split(codes, cuts))], **style)


# ---------------------------------------------------------------------- HTML
_CSS = """
body { font-family: "Helvetica Neue", Arial, "Liberation Sans", "Hiragino Sans", "Yu Gothic", Meiryo,
       "Noto Sans CJK JP", "IPAPGothic", sans-serif;
       margin: 24px; color: #222; max-width: 1100px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #bbb; padding: 3px 7px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; } td.t, th.t { text-align: left; }
.below { color: #a00; font-weight: bold; }
figure { margin: 16px 0; } figcaption { font-size: 13px; color: #444; max-width: 900px; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
.note { color: #8a1c00; }
"""


def _table_html(plan, view, distances, target_share: float) -> str:
    m = plan.metrics
    sh = view.shares
    head = ["番号", "名称", "コード", "町丁・字数", "人口", "世帯数", "面積 (km²)", "円形度"]
    head += [f"円モデル L={km_label(L)} km" for L in distances]
    head += [f"実形状 L={km_label(L)} km" for L in distances]
    rows = []
    for r in m.itertuples(index=False):
        cells = [f"{int(r.subarea)}", f'<td class="t">{escape_text(r.name)}</td>', escape_text(r.code),
                 f"{int(r.n_blocks):,}", f"{int(r.population):,}", f"{int(r.households):,}",
                 f"{r.area_km2:,.1f}", f"{r.polsby_popper:.2f}"]
        for col in ("circle_share", "core_share"):
            for L in distances:
                v = sh.loc[(sh["subarea"] == r.subarea) & np.isclose(sh["distance_km"], L), col]
                if len(v):
                    cls = ' class="below"' if float(v.iloc[0]) < target_share else ""
                    cells.append(f"<td{cls}>{100 * float(v.iloc[0]):.0f} %</td>")
                else:
                    cells.append("–")
        rows.append("<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in cells) + "</tr>")
    return ("<table><thead><tr>" + "".join(f'<th class="t">{h}</th>' if h == "名称" else f"<th>{h}</th>"
                                          for h in head) + "</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _exposure_table_html(view, names, distance_km: float) -> str:
    e = view.exposure[np.isclose(view.exposure["distance_km"], distance_km)]
    e = e.sort_values(["population", "source", "target"], ascending=[False, True, True], kind="stable")
    rows = "".join(
        f'<tr><td class="t">{int(s)} {escape_text(names[int(s)])}</td><td class="t">{int(t)} {escape_text(names[int(t)])}</td>'
        f"<td>{a:,.2f}</td><td>{p:,.0f}</td><td>{100 * q:.1f} %</td></tr>"
        for s, t, a, p, q in zip(e["source"], e["target"], e["area_km2"], e["population"], e["target_population_share"]))
    return ('<table><thead><tr><th class="t">配信元エリア</th><th class="t">受信するエリア</th>'
            "<th>面積 (km²)</th><th>人口（概算）</th>"
            f"<th>受信エリア人口比</th></tr></thead><tbody>{rows}</tbody></table>")


def _glyph_note(replaced: dict[str, str]) -> str:
    """The note under the heading when a figure shows 〓 for characters no font has."""
    if not replaced:
        return ""
    which = "、".join(f"「{escape_text(t)}」の {escape_text(' '.join(f'{c} (U+{ord(c):04X})' for c in cs))}"
                     for t, cs in sorted(replaced.items()))
    return (f'<p class="note glyph-note">図では、インストールされたフォントにない文字を {MISSING_GLYPH} で'
            f"示しています：{which}。表の名称は元の文字のままです。</p>")


def render_report_html(plan, view, distances, curve_distances, *, title: str | None, note: str | None,
                       target_share: float = 0.5, replaced: dict[str, str] | None = None,
                       packet: str | None = None) -> str:
    names = dict(zip(plan.subareas["subarea"].astype(int), plan.subareas["name"]))
    mid = distances[len(distances) // 2]
    heading = escape_text(title or f"細分化エリア案 要約（団体コード {plan.muni_code}）")
    note_html = (f'<p class="note">{escape_text(note)}</p>' if note else "") + _glyph_note(replaced or {})
    if packet:
        note_html += f'<p class="packet">印刷用（A4 PDF）：<a href="{escape_text(packet)}">{escape_text(packet)}</a></p>'
    ls = "、".join(km_label(L) for L in distances)
    key = "、".join(f"{s} {escape_text(n)}" for s, n in names.items())
    return f"""<!DOCTYPE html>
<html lang="ja">
<head>
<meta charset="utf-8">
<title>{heading}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>{heading}</h1>
{note_html}
<p>細分化エリア数 {len(plan.subareas)}、町丁・字 {len(plan.blocks):,}、人口 {int(plan.blocks['population'].sum()):,} 人。
漏れ距離 L は実証試験で観測された 1.6–3.3 km を踏まえ {html.escape(ls)} km としています。</p>

<h2>エリア一覧</h2>
<p>非到達率 = 隣接エリア宛ての配信が届かない（境界から L 以上内側の）面積の割合。円モデルは同じ面積の円と\
みなした値（上限）、実形状は実際の境界を内側に L だけ縮めた値です。目安 {target_share:.0%} 未満を赤字で示します。\
円形度 = 4π·面積 ÷ 周長²（円で 1）。</p>
{_table_html(plan, view, distances, target_share)}

<h2>非到達率と面積</h2>
<figure><img src="unreached_curve.png" alt="非到達率と面積の関係（L = {'・'.join(km_label(L) for L in curve_distances)} km）">
<figcaption>曲線は円モデル (r − L)² / r²、点は各エリアの実形状での値（番号はエリア番号：{key}）。曲線より下の点は、\
細長いなど形のために同じ面積の円より漏れの影響を受けやすいエリアです。</figcaption></figure>

<h2>隣接エリアへの漏れ</h2>
<figure><img src="exposure_matrix.png" alt="隣接エリアへの漏れの行列">
<figcaption>行 = 配信元、列 = 受信するエリア。色は受信エリアの人口のうち配信元の配信が届く割合、数字はその人数\
（町丁・字人口の面積按分による概算）。空欄は配信が届かない組み合わせ、「—」は同じエリアです。</figcaption></figure>
<p>L = {km_label(mid)} km での内訳：</p>
{_exposure_table_html(view, names, mid)}

<h2>エリア図</h2>
<figure><img src="subareas.png" alt="細分化エリアの概観図"><figcaption>背景地図なしの概観。詳細は対話型の地図\
（subdivide map）をご覧ください。</figcaption></figure>
{_planner_html(plan)}
</body>
</html>
"""


def _planner(plan) -> dict | None:
    """The automatic planner's record (``plan.metadata["planner"]``) when it holds a curve
    (plans made by ``plan --auto``), else None."""
    planner = plan.metadata.get("planner") if isinstance(plan.metadata, dict) else None
    return planner if planner and planner.get("curve") else None


def _planner_html(plan) -> str:
    """The automatic planner's curve section, when the plan was made by ``plan --auto``."""
    planner = _planner(plan)
    if planner is None:
        return ""
    summary = html.escape(str(planner.get("summary") or ""))
    return (f'<h2>地域数と効果（自動作成）</h2>\n<figure><img src="{PLANNER_FILE}" alt="地域数ごとの、'
            f'1回の配信で受信しない住民の割合"><figcaption>自動作成（subdivide plan --auto）の評価: 災害の想定ごとに、'
            f'危険のある地域へ確実に届けつつ受信しないで済む住民の割合。{summary}</figcaption></figure>\n')


# ---------------------------------------------------------------------- entry point
def earlier_report(folder) -> set[str] | None:
    """A report folder written before folders were marked (``.subdivide-output``): it
    holds every file of :data:`REPORT_FILES` and nothing else. None otherwise."""
    folder = Path(folder)
    names = {p.name for p in folder.iterdir()}
    base = set(REPORT_FILES)
    ok = names - {PACKET_FILE, PLANNER_FILE} == base
    return names if ok and all((folder / n).is_file() for n in names) else None


def build_report(plan, out_dir, *, spill=None, distances_km=DEFAULT_DISTANCES_KM,
                 curve_distances_km=CURVE_DISTANCES_KM, title: str | None = None, note: str | None = None,
                 force: bool = False, inputs=(), pdf: bool = False, progress: Progress = silent) -> Path:
    """Write the summary report of ``plan`` into the folder ``out_dir`` (see the module
    docstring for the files); returns the path of ``report.html``.

    spill: a ``SpillReport`` (computed when None) for the table and the exposure matrix.
    distances_km: spill distances L (km) of the table and the matrix;
    curve_distances_km: those of the curve figure (2, 2.5, 3 km).
    pdf: also write the A4 print packet ``report.pdf`` (:func:`subdivide.present.packet.render_packet`).
    The folder is replaced atomically, only with ``force`` when it exists, and only if it
    holds nothing but an earlier report (never one of ``inputs``, e.g. the plan file).
    """
    from subdivide.analysis.spill import parse_distances, spill_report

    out = check_can_write(out_dir, force, folder=True, inputs=inputs, command="report", owned=earlier_report)
    curve_d = parse_distances(curve_distances_km, where="--curve-distances")
    progress("report: spill figures", 0, 0)
    if spill is None:   # computed once: the table, the figures and the packet all read it
        spill = spill_report(plan, distances_km=display_distances(distances_km))
    view = spill_view(plan, spill, distances_km)
    distances = tuple(sorted(view.shares["distance_km"].unique()))
    names = dict(zip(plan.subareas["subarea"].astype(int), plan.subareas["name"]))
    cjk = cjk_font()
    lab = Labels(cjk)
    glyphs = GlyphCheck([LATIN_FONT, cjk])
    shown = {s: (str(n) if lab.ja else f"Area {s}") for s, n in names.items()}
    font = tuple(glyphs.prepare(shown.values())) if lab.ja else cjk
    shown = {s: glyphs.drawable(n) for s, n in shown.items()}
    page = render_report_html(plan, view, distances, curve_d, title=title, note=note, replaced=glyphs.replaced,
                              packet=PACKET_FILE if pdf else None)
    packet = None
    if pdf:
        from subdivide.present.packet import render_packet

        packet = render_packet(plan, spill=spill, distances_km=distances, curve_distances_km=curve_d, title=title,
                               note=note, progress=progress)
    order = plan.subareas["subarea"].astype(int).tolist()
    with atomic_dir(out, force=force, command="report", inputs=inputs, owned=earlier_report) as tmp:
        progress("report: figures", 0, 3)
        save_png(unreached_curve_figure(curve_points(plan, curve_d, spill=spill), shown, font=font),
                 tmp / "unreached_curve.png")
        progress("report: figures", 1, 3)
        save_png(exposure_figure(view.exposure, order, shown, distances, font=font), tmp / "exposure_matrix.png")
        progress("report: figures", 2, 3)
        save_png(subarea_map_figure(plan, shown, font=font), tmp / "subareas.png")
        planner = _planner(plan)
        if planner is not None:
            save_png(planner_curve_figure(planner, font=font), tmp / PLANNER_FILE)
        progress("report: figures", 3, 3)
        (tmp / "report.html").write_bytes(page.encode("utf-8"))
        if packet is not None:
            packet.save(tmp / PACKET_FILE)
    return out / "report.html"
