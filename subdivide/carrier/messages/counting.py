"""Counting characters the way the carriers' guide does (MESSAGES.md §4).

- every code point other than a line break counts 1 (no half-width discount);
- a line break counts **2** (「※改行は2文字でカウント」), blank lines included;
- CRLF is **one** line break (2, not 4); a lone CR is also one line break (2).
- the count is taken on the text as typed and shown, never on its NFKC form: NFKC is used
  only to *detect* URLs, phone numbers and addresses (「０３」→「03」, 「＠」→「@」), and it
  can change the length (「㍻」→「平成」), so it must not change the count.

Additivity: ``count(a + b) == count(a) + count(b)`` for every split except one that cuts a
CRLF pair in two (``a`` ends with CR, ``b`` starts with LF): the joined pair is one line
break (2) where the halves were two (4). tests/test_message_counting.py proves both.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

LINE_BREAK_COST = 2
TITLE_LIMIT = 15
BODY_LIMIT = 200

_BREAKS = re.compile(r"\r\n|\r|\n")


def normalise_newlines(text: str) -> str:
    """CRLF and lone CR → LF (what the sending systems store)."""
    return _BREAKS.sub("\n", text)


def line_breaks(text: str) -> int:
    """Number of line breaks (CRLF counts once)."""
    return len(_BREAKS.findall(text))


def count_chars(text: str) -> int:
    """The guide's character count: code points other than line breaks + 2 per line break.

    >>> count_chars("警戒レベル4 全員避難"), count_chars("a\\nb"), count_chars("a\\r\\nb")
    (11, 4, 4)
    """
    t = normalise_newlines(text)
    n = t.count("\n")
    return len(t) - n + LINE_BREAK_COST * n


def nfkc(text: str) -> str:
    """NFKC form used for detection only (full-width ＠０-９：／ → ASCII)."""
    return unicodedata.normalize("NFKC", normalise_newlines(text))


@dataclass(frozen=True)
class Measure:
    """The count of one field against its limit."""

    field: str
    count: int
    limit: int
    line_breaks: int

    @property
    def over(self) -> int:
        return max(self.count - self.limit, 0)

    @property
    def fits(self) -> bool:
        return self.count <= self.limit


def measure(text: str, field: str, limit: int) -> Measure:
    return Measure(field, count_chars(text), limit, line_breaks(text))


def overflow_text(text: str, limit: int) -> str:
    """The part of ``text`` past ``limit`` counted characters (what to cut), as shown."""
    t = normalise_newlines(text)
    used = 0
    for i, ch in enumerate(t):
        used += LINE_BREAK_COST if ch == "\n" else 1
        if used > limit:
            return t[i:]
    return ""
