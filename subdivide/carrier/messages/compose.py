"""Compose one ready-to-edit 緊急速報メール per sub-area × category from a plan.

Each message follows the guide's 基本構造 (title; 警戒レベル line; 「こちらは{市町村名}です」;
発令内容 and 対象地域 naming the sub-area 「●●地域」 and, where it fits, its 大字; 理由; 行動要請;
closing line). If the body would pass 200 characters, parts are dropped in a fixed order
(大字 list → その他 → the shelter list becomes 「市HPをご確認ください」 → the shelter line →
the English drill note → the category name in the drill closing line) until it fits; the sheet says what was dropped. Every message is
linted; the sheet carries the counts and the lint verdict.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from subdivide.core.errors import UserError
from subdivide.carrier.messages.categories import EVACUATION, Category
from subdivide.carrier.messages.counting import BODY_LIMIT, TITLE_LIMIT, count_chars
from subdivide.carrier.messages.limits import limits_records, reach_sentence, spill_reach
from subdivide.carrier.messages.lint import LintConfig, LintReport, lint_messages
from subdivide.carrier.messages.message import Context, Message
from subdivide.carrier.messages import templates as T

_OAZA_SUFFIX = re.compile(r"(?:第?[0-9０-９一二三四五六七八九十]+(?:地割|丁目))$")

#: what is dropped, in order, when a body would not fit
REDUCTIONS = ("oaza", "other", "shelters_to_web", "shelters", "drill_english", "drill_closing_short")


@dataclass(frozen=True)
class ComposeOptions:
    categories: tuple[str, ...] = ("避難指示",)
    drill: bool = False
    muni_name: str | None = None           # default: from the plan's town-blocks (CITY_NAME …)
    issued: datetime | None = None         # default: ●●月●●日●●時●●分 for staff to fill
    reason: str = T.PLACEHOLDER_REASON
    hazard_cause: str | None = None
    shelters: dict = field(default_factory=dict)  # sub-area name → 「○○小学校、○○公民館」
    other: str = T.OTHER_DEFAULT
    include_oaza: bool = True
    title_area: bool = True                # 「避難指示(大迫地域)」 when it fits


def municipality_name(plan, given: str | None = None) -> str:
    """``given``, else the name the plan's town-blocks give (CITY_NAME, GST_NAME + CSS_NAME …)."""
    from subdivide.io.townblocks import municipality_name as named

    name = given or named(plan.blocks, plan.muni_code)
    if not name:
        raise UserError("the plan's town-blocks do not name the municipality", where="plan",
                        fix="pass --muni-name, e.g. --muni-name 花巻市")
    return name


def oaza_lists(plan) -> dict[int, list[str]]:
    """Per sub-area number, its 大字 (town-block names without 丁目 / 第N地割), in key order."""
    out: dict[int, list[str]] = {}
    for sub, name in zip(plan.blocks["subarea"], plan.blocks["name"]):
        base = _OAZA_SUFFIX.sub("", str(name).strip())
        if base:
            lst = out.setdefault(int(sub), [])
            if base not in lst:
                lst.append(base)
    return out


def issued_text(t: datetime | None) -> str:
    return T.PLACEHOLDER_TIME if t is None else f"{t.month:02d}月{t.day:02d}日{t.hour:02d}時{t.minute:02d}分"


def web_referral(muni: str) -> str:
    kind = muni[-1] if muni[-1:] in "市町村区" else "自治体"
    return kind + "HPをご確認ください"


def compose_title(cat: Category, area: str, opts: ComposeOptions) -> str:
    base = [cat.name + "(" + area + ")", cat.name] if opts.title_area else [cat.name]
    if opts.drill:
        base = [T.DRILL_TITLE + b for b in base] + base
    for t in base:
        if count_chars(t) <= TITLE_LIMIT:
            return t
    return base[-1]   # over the limit: lint says so (L12)


def _body(cat: Category, muni: str, areas: str, shelters: str | None, opts: ComposeOptions,
          dropped: set[str]) -> str:
    lines = T.lines_for(cat)
    verb = "発令" if cat.kind in (EVACUATION, "warning_zone") else "発表"
    values = {"muni": muni, "when": issued_text(opts.issued), "category": cat.name, "areas": areas,
              "reason": opts.reason, "request": T.request_for(cat), "other": opts.other, "verb": verb,
              "level": str(cat.level or ""), "level_action": cat.actions[0] if cat.actions else "",
              "shelters": web_referral(muni) if shelters is None or "shelters_to_web" in dropped else shelters,
              "drill_english": "" if "drill_english" in dropped else "(This mail is for drill.)",
              "closing_what": "" if "drill_closing_short" in dropped else cat.name + "が"}
    keys = [k for k in lines if not (k == "other" and ("other" in dropped or not opts.other))
            and not (k == "shelters" and "shelters" in dropped) and not (k == "reason" and not opts.reason)]
    if opts.drill:
        keys = keys[:-1] + list(T.DRILL_LINES) + keys[-1:]   # drill notes before the signature
    text = [T.fill({**lines, **T.DRILL_LINES}[k], values) for k in keys]
    if opts.drill:
        text[0] = T.DRILL_BODY_PREFIX + text[0]
    return "\n".join(text)


def compose_message(cat: Category, area: str, oaza: list[str], muni: str, opts: ComposeOptions,
                    msg_id: str = "message") -> tuple[Message, list[str]]:
    """One message for one sub-area, and the parts dropped to fit 200 characters."""
    if cat.kind not in T.COMPOSABLE_KINDS:
        raise UserError(f"「{cat.name}」 cannot be composed from a plan (it needs inputs such as districts, "
                        "volcano levels or the national text)",
                        fix="compose 高齢者等避難 / 避難指示 / 緊急安全確保 / 土砂災害警戒情報 …, or write it and run "
                            "`subdivide message lint`")
    shelters = opts.shelters.get(area)
    full_area = area + "(" + "、".join(oaza) + ")" if opts.include_oaza and oaza else area
    dropped: set[str] = set()
    body = _body(cat, muni, full_area, shelters, opts, dropped)
    for step in REDUCTIONS:
        if count_chars(body) <= BODY_LIMIT:
            break
        dropped.add(step)
        body = _body(cat, muni, area if "oaza" in dropped else full_area, shelters, opts, dropped)
    ctx = Context(muni_name=muni, is_drill=opts.drill, target_area=area, send_time=opts.issued,
                  hazard_cause=opts.hazard_cause, pre_announced=True if opts.drill else None)
    msg = Message(compose_title(cat, area, opts), body, cat.name, msg_id, ctx)
    return msg, [s for s in REDUCTIONS if s in dropped]


@dataclass
class MessageSheet:
    """The composed messages, their lint report and the limits of reach."""

    rows: list[dict]
    report: LintReport
    limits: list[dict]
    reach: object = None   # DataFrame from :func:`spill_reach`, or None

    @property
    def status(self) -> int:
        return self.report.status

    def frame(self):
        import pandas as pd

        return pd.DataFrame(self.rows)

    def to_dict(self) -> dict:
        d = {"messages": self.rows, "lint": self.report.to_dict(), "limits_of_reach": self.limits}
        if self.reach is not None:
            d["spill_reach"] = json.loads(self.reach.to_json(orient="records", force_ascii=False))
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"

    def write(self, path, *, force: bool = False) -> Path:
        """``.xlsx`` (sheets messages / limits / spill) or ``.csv`` (messages only; UTF-8 BOM,
        CRLF, formula-like cells neutralised) through :mod:`subdivide.io.output`."""
        import pandas as pd
        from subdivide.io.output import write_csv, write_xlsx

        p = Path(path)
        text_cols = ("id", "code", "title", "body", "subarea_name", "category", "muni_name")
        if p.suffix.lower() == ".xlsx":
            sheets = {"messages": self.frame(), "limits": pd.DataFrame(self.limits)}
            if self.reach is not None:
                sheets["spill"] = self.reach
            return write_xlsx(sheets, p, text_columns=text_cols, force=force)
        if p.suffix.lower() == ".csv":
            return write_csv(self.frame(), p, force=force)
        raise UserError(f"message sheet {p.name}: unknown format", where=str(p),
                        fix="name it .xlsx or .csv (and use --json for JSON)")


def _spill(plan, distances_km, neighbours):
    from subdivide.analysis.spill import spill_report

    return spill_reach(spill_report(plan, distances_km=distances_km, neighbours=neighbours))


def compose_plan(plan, options: ComposeOptions | None = None, config: LintConfig | None = None, *,
                 spill_km=None, neighbours=None) -> MessageSheet:
    """One message per sub-area (display order) × category; linted; with spill figures when
    ``spill_km`` (distances in km) is given."""
    opts = options or ComposeOptions()
    cfg = config or LintConfig()
    cats = []
    for name in opts.categories:
        cat = cfg.vocabulary.find(name)
        if cat is None:
            other = cfg.vocabulary.find_any_edition(name)
            hint = f" (edition {cfg.edition} calls it 「{other.replaced_by}」)" if other and other.replaced_by else ""
            raise UserError(f"「{name}」 is not a category of edition {cfg.edition}{hint}", where="--category",
                            fix="use e.g. 高齢者等避難, 避難指示, 緊急安全確保 (2021) or pass --edition 2020")
        cats.append(cat)
    muni = municipality_name(plan, opts.muni_name)
    oaza = oaza_lists(plan)
    reach = _spill(plan, spill_km, neighbours) if spill_km else None
    msgs, meta = [], []
    for sa in plan.subareas.itertuples(index=False):
        for cat in cats:
            mid = f"{sa.code}-{cat.item:02d}"
            msg, dropped = compose_message(cat, sa.name, oaza.get(int(sa.subarea), []), muni, opts, mid)
            msgs.append(msg)
            meta.append((sa, cat, dropped))
    report = lint_messages(msgs, cfg, source="compose")
    rows = [_row(sa, cat, dropped, res, reach) for (sa, cat, dropped), res in zip(meta, report.results)]
    return MessageSheet(rows, report, limits_records(), reach)


def _row(sa, cat, dropped, res, reach) -> dict:
    m = res.message
    row = {"id": m.id, "subarea": int(sa.subarea), "subarea_name": sa.name, "code": sa.code,
           "display_order": int(sa.display_order), "category": cat.name, "item": cat.item,
           "edition": res.edition, "drill": m.context.is_drill, "muni_name": m.context.muni_name,
           "title": m.title, "title_chars": res.title_count, "title_limit": TITLE_LIMIT,
           "body": m.body, "body_chars": res.body_count, "body_limit": BODY_LIMIT,
           "room": BODY_LIMIT - res.body_count,
           "placeholders": m.body.count("●") + m.title.count("●"),
           "dropped_to_fit": ",".join(dropped),
           "lint": "clean" if not res.findings else ("errors" if res.status else "warnings"),
           "lint_rules": ",".join(sorted(res.rule_ids()))}
    if reach is not None:
        r = reach[reach["subarea"] == int(sa.subarea)]
        for x in r.itertuples(index=False):
            key = f"{x.distance_km:g}km"
            row[f"also_receive_{key}"] = x.also_receive_other_subareas + (x.also_receive_neighbour_municipalities or 0)
            row[f"reach_note_{key}"] = reach_sentence(sa.name, x.distance_km, x.also_receive_other_subareas,
                                                      x.also_receive_neighbour_municipalities)
    return row
