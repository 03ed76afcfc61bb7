"""A finding: one rule broken (or worth a look), with the features it concerns.

Used by plan checks and by package validation so that both report alike:
machine-readable (``to_dict``) and human-readable (``str``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from subdivide.core.names import visible

SEVERITIES = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    rule: str                 # stable id, e.g. "PLAN-CONTIGUITY"
    severity: str             # error | warning | info
    message: str              # what is wrong and how to fix it
    features: tuple[str, ...] = field(default_factory=tuple)  # offending keys / sub-areas / files

    def to_dict(self) -> dict:
        d = asdict(self)
        d["features"] = list(self.features)
        return d

    def __str__(self) -> str:
        feats = ""
        if self.features:
            shown = ", ".join(visible(f) for f in self.features[:10])   # a hostile name stays on its line
            more = f" (+{len(self.features) - 10} more)" if len(self.features) > 10 else ""
            feats = f" [{shown}{more}]"
        return f"{self.severity.upper():7} {self.rule}: {self.message}{feats}"
