"""Progress for long operations, on stderr, only when stderr is a terminal or asked for.

Functions take a ``progress`` callable (default :func:`silent`) so the API stays pure and
the CLI decides what to show.
"""
from __future__ import annotations

import sys
import time
from typing import Callable

Progress = Callable[[str, int, int], None]


def silent(stage: str, done: int, total: int) -> None:  # noqa: ARG001
    return None


class StderrProgress:
    """Prints 'stage: done/total (pct)' lines, at most every ``interval`` seconds per stage.

    ``translate`` (optional) turns a stage name into the user's language, e.g.
    :func:`subdivide.core.i18n.progress_translator` for Japanese."""

    def __init__(self, interval: float = 0.5, stream=None, translate: Callable[[str], str] | None = None):
        self.interval = interval
        self.stream = stream or sys.stderr
        self.translate = translate
        self._last: dict[str, float] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        final = total and done >= total
        if not final and now - self._last.get(stage, 0.0) < self.interval:
            return
        self._last[stage] = now
        pct = f" ({100 * done / total:.0f}%)" if total else ""
        label = self.translate(stage) if self.translate else stage
        self.stream.write(f"  {label}: {done}/{total}{pct}\n" if total else f"  {label}…\n")
        self.stream.flush()
