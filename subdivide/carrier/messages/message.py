"""One message and the context the rules need (MESSAGES.md §12 "Inputs assumed").

Everything here is data: titles, bodies and names are never interpreted as templates or
markup anywhere in the package.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import datetime, time

from subdivide.core.errors import UserError

SENDER_TYPES = ("municipality", "prefecture")
PROXY_BASES = ("def1", "def2")
DRILL_KINDS = ("municipal", "national-joint")
TRIGGERS = ("started", "changed")
WHOLE_AREA = ("whole", "全域", "市内全域", "町内全域", "村内全域", "区内全域")


@dataclass(frozen=True)
class NightWindow:
    """深夜/早朝 hours (the guide does not define them; configurable). Default 22:00–06:00."""

    start: time = time(22, 0)
    end: time = time(6, 0)

    def contains(self, t: datetime) -> bool:
        x = t.time()
        if self.start <= self.end:
            return self.start <= x < self.end
        return x >= self.start or x < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


@dataclass(frozen=True)
class Context:
    """What the text alone does not say. ``None`` = not given (rules needing it are listed as
    not checked; a few safety rules treat "not given" as "no", and say so)."""

    sender_type: str | None = "municipality"
    muni_name: str | None = None          # 「花巻市」: the sender line must name it
    pref_name: str | None = None
    is_drill: bool = False
    drill_kind: str | None = None         # municipal | national-joint (内閣官房・消防庁 co-hosted)
    pre_announced: bool | None = None     # drill announced to residents beforehand
    is_correction: bool = False
    prior_corrections: int | None = None  # corrections already sent for the same message
    original_body: str | None = None      # the message being corrected (L27)
    is_lifting: bool = False
    is_continuation: bool = False         # message 2 of a split
    continues_next: bool = False          # message 1 of a split
    send_time: datetime | None = None
    hazard_cause: str | None = None       # 洪水 / 土砂災害 / 高潮 / 内水氾濫 / 地震 …
    governor_instruction: bool | None = None
    proxy_basis: str | None = None        # def1 | def2 (prior agreement and request)
    trigger: str | None = None            # item 17: started | changed
    volcano_level: int | None = None
    volcano_warning_type: str | None = None
    river_info_kind: str | None = None    # e.g. はん濫注意情報
    target_area: str | None = None        # whole, or a sub-area name 「●●地域」
    operational_subareas: tuple[str, ...] | None = None
    auto_relay_jalert: bool | None = None

    def __post_init__(self):
        for name, allowed in (("sender_type", SENDER_TYPES), ("proxy_basis", PROXY_BASES),
                              ("drill_kind", DRILL_KINDS), ("trigger", TRIGGERS)):
            v = getattr(self, name)
            if v is not None and v not in allowed:
                raise UserError(f"{name} {v!r} is not one of {', '.join(allowed)}",
                                fix=f"use one of {', '.join(allowed)}")

    def given(self, name: str) -> bool:
        return getattr(self, name) is not None


CONTEXT_FIELDS = tuple(f.name for f in fields(Context))


@dataclass(frozen=True)
class Message:
    title: str
    body: str
    category: str = ""
    id: str = "message"
    context: Context = field(default_factory=Context)

    def with_context(self, **changes) -> "Message":
        return replace(self, context=replace(self.context, **changes))
