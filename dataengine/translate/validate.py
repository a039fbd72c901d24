"""Checks on one translated segment; the first failed check names the reject reason."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from dataengine.core.text import script_counts
from dataengine.translate.prompt import MARKER

NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# the model talking about its answer: English chatter, or a Chinese label before the translation ("以下是翻译：",
# "好的，这是译文"). A plain sentence that opens the same way ("这是一本关于翻译的书", "好的，我们走吧") is no preamble
PREAMBLE = re.compile(
    r"^\s*(?:here(?:'s| is)|sure\b|certainly|the translation|translation\s*[:：]|translated text|"
    r"以下是.{0,12}[:：]|这是.{0,8}(?:翻译|译文)\s*[:：]|"
    r"翻译(?:如下|结果)?\s*[:：]|译文\s*[:：]|好的[，,]\s*(?:这是|以下是|翻译|译文))",
    re.I,
)
# a source that itself opens like chatter ("Here is the menu:", "Sure, why not") may be translated that way
SOURCE_OPENER = re.compile(r"^\W*(?:here\b|below\b|the following|sure\b|certainly|ok(?:ay)?\b|translat)", re.I)
ECHO = re.compile(r"text for translation|translate the user", re.I)


@dataclass(frozen=True)
class ValidationConfig:
    min_cjk_share: float = 0.3
    min_length_ratio: float = 0.1
    max_length_ratio: float = 1.6


def check(
    source: str, output: str, finish_reason: str | None, cfg: ValidationConfig | None = None
) -> tuple[str, str] | None:
    """None when the translation passes, else (reason, detail). `source` and `output` carry ⟦n⟧ markers: each
    stands for one protected span (tag, box list, math, URL...), which restoring puts back byte for byte, so a
    span the model wrote out itself (boxes with full-width brackets) instead of copying its marker fails here."""
    cfg = cfg or ValidationConfig()
    out = output.strip()
    if not out:
        return "empty_output", "the model returned nothing"
    if finish_reason == "length":
        return "truncated", "generation stopped at the token limit"
    if (PREAMBLE.search(out) and not SOURCE_OPENER.search(MARKER.sub("", source))) or ECHO.search(out):
        return "preamble_or_echo", out[:80]
    want, got = Counter(MARKER.findall(source)), Counter(MARKER.findall(out))
    if want != got:
        return "markers_changed", f"expected {dict(want)}, got {dict(got)}"
    plain_src, plain_out = MARKER.sub(" ", source), MARKER.sub(" ", out)
    missing = Counter(NUMBER.findall(plain_src)) - Counter(NUMBER.findall(plain_out))
    if missing:
        return "numbers_changed", f"missing {sorted(missing.elements())[:10]}"
    counts = script_counts(plain_out)
    letters = sum(counts.values())
    share = counts["han"] / letters if letters else 0.0
    if share < cfg.min_cjk_share:
        return "not_chinese", f"Han share {share:.2f} < {cfg.min_cjk_share}"
    if counts["kana"] or counts["hangul"]:
        return "not_chinese", "contains Japanese kana or Korean Hangul"
    ratio = len(plain_out) / max(1, len(plain_src))
    if not cfg.min_length_ratio <= ratio <= cfg.max_length_ratio:
        return "length_ratio", f"{ratio:.2f} outside [{cfg.min_length_ratio}, {cfg.max_length_ratio}]"
    return None
