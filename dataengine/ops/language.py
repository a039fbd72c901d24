"""Detect each sample's language and route it: English goes on to translation, Chinese is kept as is, and
other languages are rejected unless listed in `keep`.

Scripts decide first (Han/kana/Hangul shares), langdetect (seeded, deterministic) decides long Latin text.
Short plain-ASCII text is English only on evidence (statistical detectors are unreliable on a few words): its
words, summed on wordfreq's Zipf scale, must be more frequent in English than in each rival Latin-script language
(`Golden retriever puppy` is English; `Un perro en el parque`, `Kucing tidur di sofa` are undetermined and never
sent to translation).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from langdetect import DetectorFactory, detect_langs
from langdetect.lang_detect_exception import LangDetectException
from pydantic import Field

from dataengine.core.rows import Reject
from dataengine.core.text import script_counts
from dataengine.ops.base import RowStage, StageConfig

DetectorFactory.seed = 0
TAGS = re.compile(r"</?\w+>")
WORD = re.compile(r"[A-Za-z']+")
# Closed-class English words: frequent in any English caption, rare as whole words in other Latin languages.
ENGLISH_FUNCTION_WORDS = frozenset(
    "a an the of in on at with and or is are was were be been this that these those there it its his her their "
    "to for from by into onto over under near next behind above below between while has have two three some "
    "several many very who which what where how".split()
)
# Latin-script languages a short caption is weighed against: English wins only with the larger word-frequency
# evidence (wordfreq's Zipf scale, summed over the words).
RIVALS = ("es", "fr", "de", "it", "pt", "nl", "id")


class LanguageConfig(StageConfig):
    needs = frozenset({"text"})

    op: Literal["language"] = "language"
    keep: list[str] = Field(default_factory=lambda: ["en", "zh"], description="languages accepted downstream")
    cjk_share: float = Field(0.3, ge=0, le=1, description="Han share of letters at which text counts as Chinese")
    short_text_letters: int = Field(25, ge=0, description="below this many letters decide by script, not langdetect")


def detect(text: str, cjk_share: float = 0.3, short_text_letters: int = 25) -> tuple[str, float]:
    """(language code, score) for a text; 'und' when it has no letters."""
    text = TAGS.sub(" ", text)
    counts = script_counts(text)
    letters = sum(counts.values())
    if letters == 0:
        return "und", 0.0
    if counts["kana"] / letters >= 0.1:
        return "ja", counts["kana"] / letters
    if counts["hangul"] / letters >= 0.3:
        return "ko", counts["hangul"] / letters
    if counts["han"] / letters >= cjk_share:
        return "zh", counts["han"] / letters
    if letters < short_text_letters and counts["ascii"] == letters:
        return short_ascii(text)
    try:
        best = detect_langs(text)[0]
    except LangDetectException:
        return "und", 0.0
    code = "zh" if best.lang.startswith("zh") else best.lang
    if code != "en" and counts["ascii"] == letters:
        share = english_share(text)
        if share >= 0.15:  # langdetect misreads some short plain English (e.g. as Romanian): trust the words
            return "en", round(share, 4)
    return code, float(best.prob)


def short_ascii(text: str) -> tuple[str, float]:
    """('en', share of the evidence) for a short plain-ASCII text whose words are more frequent in English than in
    any rival Latin-script language (`Golden retriever puppy`), else ('und', 0.0) (`Un perro en el parque`)."""
    from wordfreq import zipf_frequency

    words = [w.lower() for w in WORD.findall(text)]
    english = sum(zipf_frequency(w, "en") for w in words)
    rival = max(sum(zipf_frequency(w, lang) for w in words) for lang in RIVALS)
    if english <= 0 or english < rival:
        return "und", 0.0
    return "en", round(english / (english + rival), 4)


def english_share(text: str) -> float:
    """Share of word tokens that are English function words."""
    words = [w.lower() for w in WORD.findall(text)]
    return sum(w in ENGLISH_FUNCTION_WORDS for w in words) / len(words) if words else 0.0


class LanguageRoute(RowStage):
    name = "language"
    Config = LanguageConfig

    def process(self, row: dict[str, Any]) -> dict[str, Any]:
        if row["caption"] is not None:
            text = row["caption"]
        else:
            text = "\n".join(t["value"] for t in row["conversations"] or [])
        lang, score = detect(text, self.config.cjk_share, self.config.short_text_letters)
        row["language"], row["language_score"] = lang, round(score, 4)
        if lang == "und":
            why = "short text, no evidence of English" if any(c.isalpha() for c in text) else "no letters"
            raise Reject("undetermined_language", why)
        if lang not in self.config.keep:
            raise Reject("language_not_allowed", f"{lang} ({score:.2f}) not in {self.config.keep}")
        return row
