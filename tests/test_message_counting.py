"""Counting as the guide does (MESSAGES.md §4): every code point 1, a line break 2 (CRLF one
line break), on the text as shown (NFKC is for detection only)."""
from __future__ import annotations

import unicodedata

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from subdivide.carrier.messages.counting import (
    BODY_LIMIT, count_chars, line_breaks, measure, nfkc, normalise_newlines, overflow_text,
)

TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
#: the characters staff actually type, with line breaks of every kind
JAPANESE = st.text(alphabet=st.sampled_from(list("避難指示警戒レベル４4 全員こちらは花巻市です：:／\n\r（）ｶ①㍻＠０")),
                   max_size=80)
FULLWIDTH_ASCII = st.text(alphabet=st.characters(min_codepoint=0xFF01, max_codepoint=0xFF5E), max_size=40)


def test_examples_from_the_guide():
    assert count_chars("避難準備・高齢者等避難開始") == 13           # the guide's own figure
    assert count_chars("【訓練】避難準備・高齢者等避難開始") == 17     # V6
    assert count_chars("【訓練】避難勧告") == 8                       # V7
    assert count_chars("避難準備の対象地域／避難所情報") == 15         # a 15-character title of the guide
    assert count_chars("a\nb") == 4 and count_chars("a\r\nb") == 4 and count_chars("a\rb") == 4
    assert count_chars("\n\n") == 4                                  # a blank line is one more break
    assert count_chars("ｱｲｳ") == 3                                   # no half-width discount


def test_v11_budget_172_plus_8_plus_20_is_200():
    """V11: 172 fixed characters (7 line breaks inside) + 4 blank lines + 20 free = 200."""
    fixed = "\n".join(["あ" * 20] * 7 + ["あ" * 18])   # 158 characters + 7 LF × 2 = 172
    assert count_chars(fixed) == 172
    body = fixed + "\n\n\n\n" + "い" * 20             # 4 more breaks (blank lines) = 8
    assert count_chars(body) == 200 and measure(body, "body", BODY_LIMIT).fits
    assert count_chars(body + "う") == 201 and overflow_text(body + "う", BODY_LIMIT) == "う"


@given(TEXT, TEXT)
def test_count_is_additive_except_across_a_split_crlf(a, b):
    assume(not (a.endswith("\r") and b.startswith("\n")))
    assert count_chars(a + b) == count_chars(a) + count_chars(b)


@given(TEXT, TEXT)
def test_splitting_a_crlf_is_the_one_exception(a, b):
    """a + '\\r' and '\\n' + b: the halves count two line breaks (4), the whole one CRLF (2)."""
    a, b = a + "\r", "\n" + b
    assert count_chars(a + b) == count_chars(a) + count_chars(b) - 2


@given(JAPANESE)
def test_a_line_break_counts_two_and_crlf_counts_two_not_four(s):
    lf = normalise_newlines(s)
    assert count_chars(s) == len(lf) + lf.count("\n")           # each LF: 1 + 1 extra
    assert count_chars(lf.replace("\n", "\r\n")) == count_chars(lf) == count_chars(s)  # CRLF: one break
    if not s.endswith("\r"):                                     # else the LF completes a CRLF
        assert count_chars(s + "\n") == count_chars(s) + 2
    assert count_chars(s + "\r\n") == count_chars(s) + 2
    assert line_breaks(s) == lf.count("\n")


@given(JAPANESE)
def test_count_is_taken_on_the_shown_text_not_its_nfkc_form(s):
    """NFKC changes lengths (㍻ → 平成, ① → 1); the count of what is shown does not move."""
    assert count_chars(s) == count_chars(normalise_newlines(s))
    n = nfkc(s)
    assert count_chars(s) == len(normalise_newlines(s)) + normalise_newlines(s).count("\n")
    if n != normalise_newlines(s) and "㍻" in s:
        assert count_chars(n) != count_chars(s)          # why counting NFKC would be wrong


@settings(max_examples=200)
@given(FULLWIDTH_ASCII)
def test_nfkc_of_full_width_ascii_keeps_the_count(s):
    """「０３－１２３４」「＠」: NFKC maps one shown character to one, so the count is the same."""
    assert count_chars(unicodedata.normalize("NFKC", s)) == count_chars(s)


@given(JAPANESE, st.integers(min_value=0, max_value=60))
def test_overflow_is_what_lies_past_the_limit(s, limit):
    cut = overflow_text(s, limit)
    kept = normalise_newlines(s)[: len(normalise_newlines(s)) - len(cut)]
    assert count_chars(kept) <= limit
    assert (cut == "") == (count_chars(s) <= limit)
