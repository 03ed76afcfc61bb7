"""Linting 緊急速報メール texts against MESSAGES.md §12 (rules in :mod:`.rules`).

>>> from subdivide.carrier.messages.lint import lint_message
>>> from subdivide.carrier.messages.message import Message
>>> r = lint_message(Message("避難指示", "詳しくは https://example.jp", "避難指示"))
>>> "L09" in r.rule_ids()
True

Lengths are counted on the raw text (:mod:`.counting`); URLs, phone numbers and e-mail
addresses are looked for in the NFKC form. Each check is a small function registered under
its rule id in :data:`CHECKS`; the rule table says which context a check needs, and a rule
whose context was not given is reported as *not checked*, never as passed.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable, Iterable

from subdivide.core.findings import Finding
from subdivide.carrier.messages import patterns as P
from subdivide.carrier.messages.categories import (
    DEFAULT_EDITION, EVACUATION, SUPPLEMENT, Category, Vocabulary, canonical, load_vocabulary,
)
from subdivide.carrier.messages.counting import BODY_LIMIT, TITLE_LIMIT, count_chars, nfkc, normalise_newlines, \
    overflow_text
from subdivide.carrier.messages.message import WHOLE_AREA, Message, NightWindow
from subdivide.carrier.messages.rules import RULES

DRILL_PREFIX = "【訓練】"


@dataclass(frozen=True)
class LintConfig:
    vocabulary: Vocabulary = field(default_factory=lambda: load_vocabulary(DEFAULT_EDITION))
    night: NightWindow = field(default_factory=NightWindow)
    repeat_window_min: float = 60.0

    @property
    def edition(self) -> str:
        return self.vocabulary.edition


@dataclass(frozen=True)
class Hit:
    detail: str
    features: tuple[str, ...] = ()
    severity: str | None = None   # overrides the rule's default (L10 emergency numbers)


class View:
    """One message as the checks see it: raw and NFKC text, the category looked up."""

    def __init__(self, msg: Message, cfg: LintConfig):
        self.msg, self.cfg, self.ctx = msg, cfg, msg.context
        self.title_raw = normalise_newlines(msg.title)
        self.body_raw = normalise_newlines(msg.body)
        self.title = nfkc(msg.title)
        self.body = nfkc(msg.body)
        self.text = self.title + "\n" + self.body
        self.cat: Category | None = cfg.vocabulary.find(msg.category) if msg.category else None
        self.other: Category | None = (cfg.vocabulary.find_any_edition(msg.category)
                                       if msg.category and self.cat is None else None)

    @property
    def evacuation(self) -> bool:
        return self.cat is not None and self.cat.kind == EVACUATION

    @property
    def item(self) -> int | None:
        return self.cat.item if self.cat else None

    def fields_with(self, fn) -> list[tuple[str, list[str]]]:
        """(field, matches) for title and body where ``fn(text)`` finds something."""
        out = []
        for name, text in (("title", self.title), ("body", self.body)):
            found = fn(text)
            if found:
                out.append((name, found))
        return out


Check = Callable[[View], list[Hit]]
CHECKS: dict[str, Check] = {}


def check(rule_id: str):
    def deco(fn: Check) -> Check:
        CHECKS[rule_id] = fn
        return fn
    return deco


def _hit(detail: str, *features, severity: str | None = None) -> list[Hit]:
    return [Hit(detail, tuple(str(f) for f in features), severity)]


# ============================================================ categories and senders (L01–L08)
@check("L01")
def _l01(v: View) -> list[Hit]:
    if v.cat is not None or v.ctx.is_correction or v.ctx.is_drill:
        return []
    if not v.msg.category.strip():
        return _hit("no category given", "category")
    ed = v.cfg.edition
    if v.other is not None and v.other.replaced_by:
        return _hit(f"「{v.msg.category}」 is the guide's 2020 name; in edition {ed} it is 「{v.other.replaced_by}」",
                    v.msg.category)
    if v.other is not None:
        return _hit(f"「{v.msg.category}」 is not a category of edition {ed}", v.msg.category)
    return _hit(f"「{v.msg.category}」 is not a 配信可能項目 (edition {ed})", v.msg.category)


@check("L02")
def _l02(v: View) -> list[Hit]:
    if v.ctx.sender_type == "prefecture" and v.item in (1, 2, 3, 4, 5) and v.ctx.proxy_basis not in ("def1", "def2"):
        return _hit(f"a prefecture sends 「{v.cat.name}」 (item {v.item}) with no 代行 basis", v.cat.name)
    return []


@check("L03")
def _l03(v: View) -> list[Hit]:
    if v.item == 17 and v.ctx.sender_type == "municipality" and v.ctx.governor_instruction is not True:
        given = "not given (counted as no)" if v.ctx.governor_instruction is None else "no"
        return _hit(f"item 17 from a municipality; governor's instruction: {given}")
    return []


@check("L04")
def _l04(v: View) -> list[Hit]:
    if v.item == 17 and v.ctx.trigger not in ("started", "changed"):
        return _hit(f"item 17 trigger is {v.ctx.trigger or 'not given'}; only a started or changed request")
    return []


@check("L05")
def _l05(v: View) -> list[Hit]:
    t = v.ctx.send_time
    if v.item == 17 and t is not None and v.cfg.night.contains(t):
        return _hit(f"item 17 at {t:%H:%M}, inside the night window {v.cfg.night}", f"{t:%Y-%m-%d %H:%M}")
    return []


@check("L06")
def _l06(v: View) -> list[Hit]:
    return _hit("lifting of 外出自粛要請") if v.item == 17 and v.ctx.is_lifting else []


@check("L07")
def _l07(v: View) -> list[Hit]:
    if v.cat is None or v.ctx.is_correction:
        return []
    national = v.cat.national or (v.item == 9 and (v.ctx.volcano_level or 0) >= 4) \
        or (v.item == 10 and v.ctx.river_info_kind == "国土交通省洪水情報")
    if national and not P.NATIONAL_ADDED_VALUE.search(v.body):
        return _hit(f"「{v.cat.name}」 is also sent by the national government; this body adds nothing local",
                    v.cat.name)
    return []


@check("L08")
def _l08(v: View) -> list[Hit]:
    return _hit("自動起動装置 relays J-ALERT 国民保護情報") if v.ctx.auto_relay_jalert else []


# ============================================================ forbidden elements (L09–L11)
@check("L09")
def _l09(v: View) -> list[Hit]:
    return [Hit(f"URL in the {name}: {', '.join(found)}", (name, *found)) for name, found in v.fields_with(P.urls)]


@check("L10")
def _l10(v: View) -> list[Hit]:
    hits = [Hit(f"phone number in the {name}: {', '.join(found)}", (name, *found))
            for name, found in v.fields_with(P.phone_numbers)]
    short = v.fields_with(lambda t: P.EMERGENCY_NUMBER.findall(t) + P.SHORT_CODE.findall(t))
    hits += [Hit(f"emergency number or short code in the {name}: {', '.join(found)} (the guide is silent on "
                 "these; check with the carriers)", (name, *found), "warning") for name, found in short]
    return hits


@check("L11")
def _l11(v: View) -> list[Hit]:
    return [Hit(f"e-mail address in the {name}: {', '.join(found)}", (name, *found))
            for name, found in v.fields_with(P.emails)]


# ============================================================ lengths and characters (L12–L15)
@check("L12")
def _l12(v: View) -> list[Hit]:
    n = count_chars(v.msg.title)
    if n > TITLE_LIMIT:
        cut = overflow_text(v.msg.title, TITLE_LIMIT)
        return _hit(f"title is {n} characters, {n - TITLE_LIMIT} over {TITLE_LIMIT}; past the limit: 「{cut}」",
                    f"title={n}")
    return []


@check("L13")
def _l13(v: View) -> list[Hit]:
    n = count_chars(v.msg.body)
    if n > BODY_LIMIT:
        cut = overflow_text(v.msg.body, BODY_LIMIT).replace("\n", "⏎")
        breaks = v.body_raw.count("\n")
        return _hit(f"body is {n} characters ({breaks} line breaks × 2 included), {n - BODY_LIMIT} over "
                    f"{BODY_LIMIT}; past the limit: 「{cut[:40]}{'…' if len(cut) > 40 else ''}」", f"body={n}")
    return []


@check("L14")
def _l14(v: View) -> list[Hit]:
    return _hit("the title has a line break (it counts 2)") if "\n" in v.title_raw else []


@check("L15")
def _l15(v: View) -> list[Hit]:
    hits = []
    for name, raw in (("title", v.title_raw), ("body", v.body_raw)):
        for label, pat in (("half-width katakana", P.HALFWIDTH_KANA), ("emoji", P.EMOJI),
                           ("機種依存文字", P.DEVICE_DEPENDENT), ("control character", P.CONTROL)):
            found = sorted(set(pat.findall(raw)))
            if found:
                shown = [f"U+{ord(c):04X}" if label == "control character" else c for c in found]
                hits.append(Hit(f"{label} in the {name}: {', '.join(shown)}", (name, *shown)))
    return hits


# ============================================================ 警戒レベル (L16–L17)
@check("L16")
def _l16(v: View) -> list[Hit]:
    if not v.evacuation or v.ctx.is_correction or v.ctx.is_continuation:
        return []
    cause = v.ctx.hazard_cause
    in_scope = cause in P.IN_SCOPE_CAUSES if cause else bool(P.IN_SCOPE_HAZARD.search(v.body))
    if in_scope and not P.LEVEL.search(v.body):
        how = f"cause {cause}" if cause else "cause inferred from the text"
        return _hit(f"no 警戒レベル line ({how}); expected 警戒レベル{v.cat.level}", v.cat.name)
    return []


@check("L17")
def _l17(v: View) -> list[Hit]:
    if not v.evacuation or v.cat.level is None:
        return []
    m = P.LEVEL.search(v.body)
    if not m:
        return []
    n = int(m.group(1))
    if n != v.cat.level:
        return _hit(f"警戒レベル{n} under 「{v.cat.name}」, which is 警戒レベル{v.cat.level}", f"警戒レベル{n}")
    line = v.body[m.start():].split("\n", 1)[0]
    if not any(a in line for a in v.cat.actions):
        return _hit(f"警戒レベル{n} without its action phrase 「{v.cat.actions[0]}」", line)
    wrong = [a for c in v.cfg.vocabulary.current() if c.kind == EVACUATION and c.level != n
             for a in c.actions if a in line and a not in v.cat.actions]
    if wrong:
        return _hit(f"警戒レベル{n} with another level's action phrase 「{wrong[0]}」", line)
    return []


# ============================================================ drills (L18–L26)
@check("L18")
def _l18(v: View) -> list[Hit]:
    if not v.ctx.is_drill:
        return []
    if P.EEW.search(v.text):
        return _hit("a drill imitating 緊急地震速報", "緊急地震速報")
    if v.cat is None:
        return _hit(f"drill of 「{v.msg.category or '(no category)'}」, which is not an allowed item "
                    f"(edition {v.cfg.edition})", v.msg.category)
    if P.QUAKE.search(v.body) and not v.evacuation and v.cat.kind != "tsunami":
        return _hit("a drill describing an earthquake without an evacuation item", v.cat.name)
    return []


@check("L19")
def _l19(v: View) -> list[Hit]:
    return _hit("drill, but the body says nothing of 訓練") if v.ctx.is_drill and not P.DRILL_MARKER.search(v.body) \
        else []


def _drill_title_fits(v: View) -> bool:
    return count_chars(DRILL_PREFIX + v.msg.title) <= TITLE_LIMIT


@check("L20")
def _l20(v: View) -> list[Hit]:
    if v.ctx.is_drill and DRILL_PREFIX not in v.title_raw and _drill_title_fits(v):
        n = count_chars(DRILL_PREFIX + v.msg.title)
        return _hit(f"「{DRILL_PREFIX}{v.msg.title}」 is {n} characters and fits", f"title+【訓練】={n}")
    return []


@check("L21")
def _l21(v: View) -> list[Hit]:
    if v.ctx.is_drill and DRILL_PREFIX not in v.title_raw and not _drill_title_fits(v):
        n = count_chars(DRILL_PREFIX + v.msg.title)
        return _hit(f"「{DRILL_PREFIX}」 + title would be {n} characters: the title may stay unmarked",
                    f"title+【訓練】={n}")
    return []


@check("L22")
def _l22(v: View) -> list[Hit]:
    if v.ctx.is_drill:
        found = [m.group() for m in P.DRILL_LOGISTICS.finditer(v.text)]
        if found:
            return _hit(f"drill logistics: {', '.join(found)}", *found)
    return []


@check("L23")
def _l23(v: View) -> list[Hit]:
    return _hit("drill without the closing note") if v.ctx.is_drill and not P.DRILL_CLOSING.search(v.body) else []


@check("L24")
def _l24(v: View) -> list[Hit]:
    scenario = (v.item in (13, 14, 15, 16)) or bool(P.NATIONAL_PROTECTION.search(v.text))
    if v.ctx.is_drill and scenario and v.ctx.drill_kind != "national-joint":
        return _hit(f"国民保護情報 drill; drill kind: {v.ctx.drill_kind or 'not given (counted as municipal)'}")
    return []


@check("L25")
def _l25(v: View) -> list[Hit]:
    if v.ctx.is_drill and v.ctx.pre_announced is not True:
        return _hit("drill; pre-announcement to residents: " + ("not recorded" if v.ctx.pre_announced is None else "no"))
    return []


@check("L26")
def _l26(v: View) -> list[Hit]:
    if v.ctx.is_drill:
        return []
    found = sorted({m.group() for m in P.TEST_SEND.finditer(v.text)})
    return _hit(f"test wording: {', '.join(found)}", *found) if found else []


# ============================================================ corrections, apologies, lifting (L27–L31)
def _wrong_values(body: str) -> list[tuple[str, str]]:
    """(field, value) of each (誤) line: 「(誤)対象地域: 大迫地域」 → ('対象地域', '大迫地域')."""
    out = []
    for line in body.split("\n"):
        s = line.strip()
        if s.startswith("(誤)") or s.startswith("【誤】"):
            rest = s.split(")", 1)[-1] if s.startswith("(") else s.split("】", 1)[-1]
            name, _, value = rest.partition(":")
            out.append((name.strip(), value.strip()))
    return out


@check("L27")
def _l27(v: View) -> list[Hit]:
    if not v.ctx.is_correction:
        return []
    if v.cat is None:
        return _hit(f"correction of 「{v.msg.category or '(no category)'}」, which is not an allowed item",
                    v.msg.category)
    if v.ctx.original_body is not None:
        original = nfkc(v.ctx.original_body)
        stray = [f for f, _ in _wrong_values(v.body) if f and f not in original]
        if stray:
            return _hit(f"corrects {', '.join(stray)}, which the original message did not contain", *stray)
    return []


@check("L28")
def _l28(v: View) -> list[Hit]:
    n = v.ctx.prior_corrections
    if v.ctx.is_correction and n is not None and n >= 1:
        return _hit(f"{n} correction(s) of this message were already sent", f"prior_corrections={n}")
    return []


@check("L29")
def _l29(v: View) -> list[Hit]:
    if not v.ctx.is_correction:
        return []
    missing = []
    if not all(p.search(v.body) for p in P.WRONG_RIGHT):
        missing.append("(誤)/(正) pair")
    if not P.EARLIER.search(v.body):
        missing.append("reference to the earlier message")
    return _hit("correction lacks " + " and ".join(missing)) if missing else []


@check("L30")
def _l30(v: View) -> list[Hit]:
    found = sorted({m.group() for m in P.APOLOGY.finditer(v.text)})
    return _hit(f"apology: {', '.join(found)}", *found) if found else []


@check("L31")
def _l31(v: View) -> list[Hit]:
    if v.ctx.is_lifting and v.item in (1, 2, 3, 4, 5) and v.cat.kind != SUPPLEMENT:
        return _hit(f"lifting of 「{v.cat.name}」", v.cat.name)
    return []


# ============================================================ topics (L32–L34)
def _names_evacuation_item(v: View) -> bool:
    return any(canonical(n) in canonical(v.text) for c in v.cfg.vocabulary.categories
               if c.kind in (EVACUATION, "warning_zone") for n in c.names())


@check("L32")
def _l32(v: View) -> list[Hit]:
    if v.cat is not None or v.ctx.is_correction:
        return []
    found = sorted({m.group() for m in P.ACCOMPANYING.finditer(v.text)})
    if found and not _names_evacuation_item(v):
        return _hit(f"{', '.join(found)} without an evacuation item", *found)
    return []


@check("L33")
def _l33(v: View) -> list[Hit]:
    found = sorted({m.group() for m in P.NG_TOPICS.finditer(v.text)})
    if "断水" in found and P.RESTORATION.search(v.body) and v.item == 1:
        found.remove("断水")   # restoration of water supply damaged by the disaster (§2.2-5) is allowed
    return _hit(f"never-allowed topic: {', '.join(found)}", *found) if found else []


@check("L34")
def _l34(v: View) -> list[Hit]:
    if not P.SUPPLIES.search(v.text):
        return []
    found = sorted({m.group() for m in P.NON_CRITICAL_GOODS.finditer(v.text)})
    return _hit(f"relief supplies that are not life-critical: {', '.join(found)}", *found) if found else []


# ============================================================ structure (L35–L39)
@check("L35")
def _l35(v: View) -> list[Hit]:
    m = P.SENDER.search(v.body)
    if not m:
        return _hit("no 「こちらは…です」 line")
    names = [nfkc(n) for n in (v.ctx.muni_name, v.ctx.pref_name) if n]
    if names and not any(n in m.group(1) for n in names):
        return _hit(f"sender line names 「{m.group(1)}」, not {' / '.join(names)}", m.group(1))
    return []


@check("L36")
def _l36(v: View) -> list[Hit]:
    if v.cat is None or v.cat.kind not in (EVACUATION, "warning_zone") or v.ctx.is_continuation \
            or v.ctx.is_correction or v.ctx.is_lifting:
        return []
    missing = [name for name, pat in P.SLOTS.items() if not pat.search(v.body)]
    if missing:
        first = " (行動要請 is the most important)" if "行動要請" in missing else ""
        return _hit(f"missing slots: {', '.join(missing)}{first}", *missing)
    return []


@check("L37")
def _l37(v: View) -> list[Hit]:
    if v.evacuation and "\n" not in v.body_raw.strip("\n"):
        return _hit(f"{count_chars(v.msg.body)} characters in one paragraph")
    return []


@check("L38")
def _l38(v: View) -> list[Hit]:
    hits = []
    if v.ctx.is_continuation and not P.CONTINUATION.search(v.body):
        hits += _hit("continuation without 「先ほどの緊急速報メールの続きです」")
    if v.ctx.continues_next and not P.CONTINUES_NEXT.search(v.body):
        hits += _hit("first part without 「次の緊急速報メールでお知らせします」")
    return hits


@check("L39")
def _l39(v: View) -> list[Hit]:
    n = count_chars(v.msg.body)
    if n <= BODY_LIMIT:
        return []
    lines = v.body_raw.split("\n")
    shelter = sum(count_chars(s) for s in lines if P.SHELTER_LINE.search(s))
    if shelter * 2 >= n:
        return _hit(f"{shelter} of {n} characters are shelter lists")
    return []


# ============================================================ timing, areas, titles (L40–L45)
@check("L40")
def _l40(v: View) -> list[Hit]:
    t = v.ctx.send_time
    if v.evacuation and t is not None and v.cfg.night.contains(t):
        return _hit(f"「{v.cat.name}」 at {t:%H:%M} (night window {v.cfg.night})", f"{t:%Y-%m-%d %H:%M}")
    return []


@check("L41")
def _l41(v: View) -> list[Hit]:
    if v.item == 9:
        lvl, typ = v.ctx.volcano_level, v.ctx.volcano_warning_type
        if (lvl is not None and lvl < 3) or (lvl is None and P.CRATER_WARNING.search(v.text)):
            return _hit(f"噴火警報 at level {lvl if lvl is not None else '(火口周辺)'}")
        if typ is not None and lvl is None and typ not in ("居住地域厳重警戒", "入山危険"):
            return _hit(f"噴火警報 type 「{typ}」", typ)
    if v.item == 10 and (v.ctx.river_info_kind in ("はん濫注意情報", "氾濫注意情報") or P.FLOOD_WATCH.search(v.text)):
        return _hit("はん濫注意情報 is not a sendable 指定河川洪水予報")
    return []


def _is_whole(area: str) -> bool:
    return area.strip() in WHOLE_AREA


@check("L42")
def _l42(v: View) -> list[Hit]:
    area, ok = v.ctx.target_area, v.ctx.operational_subareas
    if area and ok is not None and not _is_whole(area) and area not in ok:
        return _hit(f"「{area}」 is not among the operational sub-areas", area)
    return []


@check("L43")
def _l43(v: View) -> list[Hit]:
    area = v.ctx.target_area
    if area and not _is_whole(area) and not area.strip().endswith("地域"):
        return _hit(f"sub-area 「{area}」 is not named 「●●地域」", area)
    return []


@check("L44")
def _l44(v: View) -> list[Hit]:
    return []   # needs the other sends: see :func:`repeat_findings` (batch lint)


@check("L45")
def _l45(v: View) -> list[Hit]:
    if v.cat is None:
        return []
    title = canonical(v.title)
    if not any(canonical(n) in title for n in v.cat.names()):
        return _hit(f"title 「{v.msg.title}」 does not name 「{v.cat.name}」", v.msg.title)
    return []


# ============================================================ running
@dataclass
class MessageResult:
    message: Message
    findings: list[Finding]
    extras: list[dict]                 # per finding: fix, reference, edition
    title_count: int
    body_count: int
    not_checked: dict[str, str]        # rule id → what was missing
    edition: str
    category: str | None               # the matched category name

    @property
    def status(self) -> int:
        return 1 if any(f.severity == "error" for f in self.findings) else 0

    def rule_ids(self) -> set[str]:
        return {f.rule for f in self.findings}

    def to_dict(self) -> dict:
        m = self.message
        return {
            "id": m.id, "title": m.title, "body": m.body, "category": m.category,
            "category_matched": self.category, "edition": self.edition,
            "counts": {"title": self.title_count, "title_limit": TITLE_LIMIT,
                       "body": self.body_count, "body_limit": BODY_LIMIT},
            "status": self.status,
            "findings": [f.to_dict() | x for f, x in zip(self.findings, self.extras)],
            "not_checked": dict(sorted(self.not_checked.items())),
        }


def _finding(rule_id: str, hit: Hit, msg: Message, edition: str) -> tuple[Finding, dict]:
    rule = RULES[rule_id]
    feats = (msg.id, *hit.features)
    f = Finding(rule_id, hit.severity or rule.severity, f"{rule.what}: {hit.detail}", feats)
    return f, {"fix": rule.fix, "reference": rule.reference, "edition": edition}


def _missing(rule_id: str, msg: Message) -> list[str]:
    return [n for n in RULES[rule_id].needs if not msg.context.given(n)]


def lint_message(msg: Message, config: LintConfig | None = None) -> MessageResult:
    """All rules on one message (L44 needs other sends: see :func:`lint_messages`)."""
    cfg = config or LintConfig()
    view = View(msg, cfg)
    pairs, not_checked = [], {}
    for rule_id in RULES:
        missing = _missing(rule_id, msg)
        if missing:
            not_checked[rule_id] = "needs " + ", ".join(missing)
            continue
        for hit in CHECKS[rule_id](view):
            pairs.append(_finding(rule_id, hit, msg, cfg.edition))
    return MessageResult(msg, [p[0] for p in pairs], [p[1] for p in pairs], count_chars(msg.title),
                         count_chars(msg.body), not_checked, cfg.edition, view.cat.name if view.cat else None)


def repeat_findings(results: list[MessageResult], cfg: LintConfig) -> None:
    """L44: the same category to the same area again within ``cfg.repeat_window_min``
    (among sends with a time; added to the later message's result)."""
    window = timedelta(minutes=cfg.repeat_window_min)
    timed = sorted((r for r in results if r.message.context.send_time is not None),
                   key=lambda r: r.message.context.send_time)
    for i, later in enumerate(timed):
        c = later.message.context
        key = (later.category or later.message.category, c.target_area or "whole")
        for earlier in timed[:i]:
            e = earlier.message.context
            gap = c.send_time - e.send_time
            if (earlier.category or earlier.message.category, e.target_area or "whole") == key and gap <= window:
                hit = Hit(f"「{key[0]}」 to {key[1]} {gap.total_seconds() / 60:.0f} min after {earlier.message.id}",
                          (earlier.message.id,))
                f, x = _finding("L44", hit, later.message, cfg.edition)
                later.findings.append(f)
                later.extras.append(x)
                later.not_checked.pop("L44", None)
                break


@dataclass
class LintReport:
    """Findings for one or more messages; ``status`` 0 clean, 1 errors (2 = unreadable is
    raised as UserError before a report exists)."""

    source: str
    results: list[MessageResult]
    config: LintConfig

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.results for f in r.findings]

    @property
    def status(self) -> int:
        return max((r.status for r in self.results), default=0)

    def to_dict(self) -> dict:
        counts = {s: sum(f.severity == s for f in self.findings) for s in ("error", "warning", "info")}
        return {"source": self.source, "edition": self.config.edition,
                "vocabulary": self.config.vocabulary.source, "night_window": str(self.config.night),
                "status": self.status, "counts": counts, "n_messages": len(self.results),
                "messages": [r.to_dict() for r in self.results]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"

    def table(self) -> str:
        """One line per message with its counts, one per finding, then the verdict (as
        ``subdivide validate`` prints)."""
        rows = [("SEVERITY", "RULE", "MESSAGE", "FEATURES")]
        for r in self.results:
            rows.append(("COUNT", "-", f"title {r.title_count}/{TITLE_LIMIT}, body {r.body_count}/{BODY_LIMIT} "
                         f"(edition {r.edition})", r.message.id))
            for f in r.findings:
                rows.append((f.severity.upper(), f.rule, f.message, ", ".join(f.features[:5])))
        w0 = max(len(x[0]) for x in rows)
        w1 = max(len(x[1]) for x in rows)
        lines = [f"{a:<{w0}}  {b:<{w1}}  {c}" + (f"  [{d}]" if d else "") for a, b, c, d in rows]
        verdict = {0: "CLEAN", 1: "ERRORS FOUND"}[self.status]
        n = self.to_dict()["counts"]
        lines.append(f"{verdict}: {n['error']} errors, {n['warning']} warnings, {n['info']} notes "
                     f"— {len(self.results)} message(s), {self.source}")
        return "\n".join(lines)


def lint_messages(messages: Iterable[Message], config: LintConfig | None = None, *,
                  source: str = "messages") -> LintReport:
    cfg = config or LintConfig()
    results = [lint_message(m, cfg) for m in messages]
    repeat_findings(results, cfg)
    return LintReport(source, results, cfg)
