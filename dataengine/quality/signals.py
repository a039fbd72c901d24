"""Every rule-based signal on one text, as a list (the `text` stage stops at the first): what `dataengine assess`
writes per record and what `dataengine eval quality` scores as "rules"."""

from __future__ import annotations

import re
from functools import cache

from dataengine.quality.rules import caption_rules, repetition


@cache
def _text_stage() -> tuple[re.Pattern[str], list[re.Pattern[str]]]:
    from dataengine.ops.text import DEFAULT_BOILERPLATE, FILENAME

    return FILENAME, [re.compile(p, re.I) for p in DEFAULT_BOILERPLATE]


def rule_reasons(text: str, kind: str = "caption", lang: str | None = None, min_chars: int = 4) -> list[str]:
    """The reject reasons of the `text` stage's checks (defaults) that `text` breaks, in the stage's order: for
    a caption `caption_too_short`, `filename_caption`, `boilerplate`, the caption rules and `repetitive_text`;
    for an answer turn `empty_turn` and `repetitive_text`. Empty when none."""
    reasons = []
    visible = sum(1 for c in text.replace("<image>", "") if not c.isspace())
    if kind == "caption":
        filename, boilerplate = _text_stage()
        if visible < min_chars:
            reasons.append("caption_too_short")
        if filename.match(text.strip()):
            reasons.append("filename_caption")
        if any(p.search(text) for p in boilerplate):
            reasons.append("boilerplate")
        reasons += [reason for reason, _ in caption_rules(text, raw=text)]
    elif visible < min_chars:
        reasons.append("empty_turn")
    if repetition(text, lang=lang) is not None:
        reasons.append("repetitive_text")
    return reasons


def repetition_score(text: str, lang: str | None = None) -> float:
    """The share (0..1) of the text that repeats earlier parts when it loops, else 0."""
    found = repetition(text, lang=lang)
    return found.score if found is not None else 0.0
