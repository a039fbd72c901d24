"""Rule-based text quality, no model: looping repetition in captions and answers, and caption rules (URL-only,
camera defaults, numbers only, keyword lists, symbol floods, shouting). Pure functions on one text, usable without
Ray or a stage: the `text` stage rejects on them, a report can list them per record. They only judge; a text is
never rewritten.

Each caption rule is meant to reject what no image caption should be and to keep any real sentence, however
plain: Chinese text (no spaces between words, full-width punctuation `，。！？「」……`) is never judged by the
English word or ASCII punctuation tests, and every threshold sits well past what ordinary text reaches.
"""

from __future__ import annotations

import re
import unicodedata
from itertools import islice
from typing import NamedTuple

import numpy as np
from pydantic import Field

from dataengine.core.config import Strict
from dataengine.core.text import IMAGE_TAG

# ---------------------------------------------------------------- repetition

CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f"  # kana and Han ideographs
# a token is one CJK character (Chinese has no spaces: character n-grams) or a run of other letters and digits
# (English: word n-grams); punctuation and spacing are not tokens, so `A cat. A cat.` loops like `A cat A cat`
TOKEN = re.compile(rf"[{CJK}]|[^\W_{CJK}]+")
HAN = re.compile(rf"[{CJK}]")


class RepetitionSettings(Strict):
    """When a caption or answer loops (InternVL 2.5 drops such samples: they teach a model to repeat itself).

    Two tests on the text's tokens: a *loop* is one unit (a word, a phrase, a sentence) written `min_copies` or
    more times in a row over at least `min_loop_tokens` tokens; failing that, a text of `min_tokens` or more whose
    n-grams (`ngram_words` words, or `ngram_chars` characters for Chinese) repeat earlier ones over more than
    `max_repeated_share` of it loops with variations between the copies (a text written out twice is not yet a
    loop). Units and n-grams without a letter never count: a table of numbers repeats digits, not text."""

    enabled: bool = True
    min_copies: int = Field(4, ge=2, description="copies in a row of one unit that make a loop")
    min_loop_tokens: int = Field(15, ge=1, description="tokens (words, CJK characters) the copies must span")
    max_unit_tokens: int = Field(64, ge=1, description="longest unit checked for copies in a row")
    min_tokens: int = Field(40, ge=1, description="shortest text given the n-gram share test")
    ngram_words: int = Field(6, ge=2, description="n of the word n-grams (English and other spaced text)")
    ngram_chars: int = Field(10, ge=2, description="n of the character n-grams (Chinese, Japanese)")
    max_repeated_share: float = Field(
        0.5, gt=0, le=1, description="share of tokens in repeated n-grams above which it rejects"
    )


class Repetition(NamedTuple):
    """A repetition found: the repeated span as written (its first copy, at most 80 characters), how many times it
    occurs, the share of the text's tokens that repeat earlier ones (0..1), and which test found it."""

    span: str
    count: int
    score: float
    kind: str  # "loop" (copies in a row) or "ngrams" (repeated n-grams over the text)

    def detail(self) -> str:
        return f"{self.span!r} {self.count} times ({self.kind}; {self.score:.0%} of the text repeats)"


def repetition(text: str, settings: RepetitionSettings | None = None, *, lang: str | None = None) -> Repetition | None:
    """The text's looping repetition, or None. Words are the tokens of English (and other spaced) text, characters
    those of Chinese; `lang` ("zh" or another code) picks the n-gram size, else the majority of tokens does.
    Linear in the text but for the loop test's `max_unit_tokens` vector passes (a 32,000-character answer: tens of
    milliseconds)."""
    s = settings or RepetitionSettings()
    src = text.replace(IMAGE_TAG, " ")
    tokens = TOKEN.findall(src)
    total = len(tokens)
    if total < min(s.min_loop_tokens, s.min_tokens):
        return None
    vocab: dict[str, int] = {}
    ids = np.fromiter((vocab.setdefault(t.lower(), len(vocab)) for t in tokens), dtype=np.int64, count=total)
    letters = np.fromiter((not t.isnumeric() for t in tokens), dtype=bool, count=total)  # tokens are alphanumeric
    zh = lang == "zh" if lang is not None else len(HAN.findall(src)) * 2 > total

    def quote(first: int, last: int) -> str:
        matches = list(islice(TOKEN.finditer(src), first, last + 1))
        span = src[matches[0].start() : matches[-1].end()]
        return span if len(span) <= 80 else span[:79] + "…"

    if (loop := _loop(ids, letters, s)) is not None:
        start, n, copies = loop
        return Repetition(quote(start, start + n - 1), copies, round((copies - 1) * n / total, 4), "loop")
    if (found := _ngrams(ids, letters, s.ngram_chars if zh else s.ngram_words, s)) is not None:
        start, length, count, share = found
        return Repetition(quote(start, start + length - 1), count, round(share, 4), "ngrams")
    return None


def _loop(ids: np.ndarray, letters: np.ndarray, s: RepetitionSettings) -> tuple[int, int, int] | None:
    """(start, unit length, copies) of the run of copies in a row covering the most tokens (the shortest unit on a
    tie), or None. A run of positions where ids[i] == ids[i + n] is a text of period n."""
    best: tuple[int, int, int] | None = None
    for n in range(1, min(s.max_unit_tokens, len(ids) // s.min_copies) + 1):
        same = ids[n:] == ids[:-n]
        if np.count_nonzero(same) < max((s.min_copies - 1) * n, s.min_loop_tokens - n):
            continue  # too few equal pairs for any run of copies long enough
        same = np.concatenate(([False], same, [False]))
        edges = np.flatnonzero(np.diff(same.astype(np.int8)))
        starts, ends = edges[::2], edges[1::2]
        copies = (ends - starts + n) // n
        for k in np.flatnonzero((copies >= s.min_copies) & (copies * n >= s.min_loop_tokens)):
            start, c = int(starts[k]), int(copies[k])
            if letters[start : start + n].any() and (best is None or c * n > best[1] * best[2]):
                best = (start, n, c)
    return best


def _ngrams(ids: np.ndarray, letters: np.ndarray, n: int, s: RepetitionSettings) -> tuple[int, int, int, float] | None:
    """(start, length, occurrences, share) when the tokens inside n-grams that repeat an earlier one are more than
    `max_repeated_share` of the text; the span is the most repeated n-gram grown to what all its copies share."""
    total = len(ids)
    if total < max(s.min_tokens, 2 * n):
        return None
    windows = np.lib.stride_tricks.sliding_window_view(ids, n)
    _, first, gram = np.unique(windows, axis=0, return_index=True, return_inverse=True)
    gram = gram.reshape(-1)
    with_letter = np.concatenate(([0], np.cumsum(letters)))
    repeated = (first[gram] < np.arange(len(gram))) & (with_letter[n:] > with_letter[:-n])
    at = np.flatnonzero(repeated)
    depth = np.cumsum(np.bincount(at, minlength=total + 1) - np.bincount(at + n, minlength=total + 1))
    share = float((depth[:total] > 0).sum()) / total
    if not at.size or share <= s.max_repeated_share:
        return None
    counts = np.bincount(gram[at])
    tops = np.flatnonzero(counts == counts.max())
    top = tops[np.argmin(first[tops])]  # the most repeated n-gram, the earliest on a tie
    starts: list[int] = []
    for i in np.flatnonzero(gram == top).tolist():  # its copies, not overlapping
        if not starts or i >= starts[-1] + n:
            starts.append(i)
    copies, length = np.array(starts), n
    while length < 200:  # grow to the right while every copy goes on alike and copies stay apart
        ends = copies + length
        if ends[-1] >= total or (ends[:-1] >= copies[1:]).any() or (ids[ends] != ids[ends[0]]).any():
            break
        length += 1
    return starts[0], length, len(starts), share


# ---------------------------------------------------------------- caption rules


class CaptionRules(Strict):
    """Which caption rules run, and their thresholds (each rule is one reject reason; docs/stages.md)."""

    url_only: bool = Field(True, description="url_only_caption: the caption as written is only URLs")
    camera_default: bool = Field(True, description="camera_default: a camera's or JPEG tool's default text")
    numeric: bool = Field(True, description="numeric_caption: digits and punctuation, no letter")
    keyword_list: bool = Field(True, description="keyword_list: hashtags, or a long list of short keywords")
    min_keywords: int = Field(10, ge=2, description="separated items that make a keyword list")
    min_spaced_keywords: int = Field(
        3, ge=2, description="Chinese items split by spaces alone (Chinese writes no spaces) that make a keyword list"
    )
    min_hashtags: int = Field(2, ge=1, description="hashtags that make a hashtag list")
    hashtag_share: float = Field(0.7, gt=0, le=1, description="share of the letters inside hashtags that rejects")
    symbol_flood: bool = Field(True, description="symbol_flood: a run or a large share of emoji, symbols, !?*~")
    symbol_run: int = Field(6, ge=2, description="emoji/symbols/!?*~ in a row (spaces between allowed) that reject")
    symbol_share: float = Field(0.3, gt=0, le=1, description="emoji/symbols' share of visible characters (4 or more)")
    shouting: bool = Field(True, description="shouting: long English text in capitals")
    shouting_letters: int = Field(24, ge=1, description="Latin letters a caption needs before it can be shouting")


URL_TOKEN = re.compile(r"[<(\[\"']*(?:(?:https?|ftp)://\S+|www\.[^\s/]+\.\S+)", re.I)
URL_SEPARATORS = re.compile(r"[\s,;|]+")
CAMERA_DEFAULTS = [
    re.compile(r"(?:[A-Z]+ )?DIGITAL CAMERA(?: PICTURES?)?"),  # OLYMPUS DIGITAL CAMERA: upper case, as EXIF writes
    re.compile(r"SAMSUNG CAMERA PICTURES?"),
    re.compile(r"(?:kodak )?digital still camera", re.I),
    re.compile(r"(?:sony|minolta|konica minolta|olympus|nikon) dsc", re.I),
    re.compile(r"exif[ _]jpeg(?:[ _](?:picture|pic|422))?", re.I),
    re.compile(r"creator: gd-jpeg v[\d.]+ \(using ijg jpeg v\d+\),? ?(?:quality = \d+|default quality)?", re.I),
    re.compile(r"lead technologies inc\.? v[\d.]+", re.I),
    re.compile(r"created with (?:the )?gimp", re.I),
    re.compile(r"(?:processed|optimi[sz]ed) (?:by|with) (?:ebay with imagemagick|jpegmini)\b.*", re.I),
]
HASHTAG = re.compile(r"#[^\s#]*[^\W\d_][^\s#]*#?")  # #sunset, Weibo's #话题#
LIST_SEPARATORS = re.compile(r"\s*[,;|、，；]\s*")
LIST_SEPARATORS_CJK = re.compile(r"[\s,;|、，；]+")  # Chinese has no spaces between words: a space separates items
SENTENCE_WORDS = re.compile(
    r"\b(?:a|an|the|this|that|these|those|is|are|was|were|be|been|being|has|have|had|of|in|on|at|with|by|from|into"
    r"|onto|over|under|near|behind|above|below|between|while|who|which|where|there|it|its|his|her|their|they|he|she"
    r"|we|you|i)\b",
    re.I,
)
ZH_SENTENCE_CHARS = frozenset("的了着是在把被这那很都也就还正")
ASCII_FLOOD = frozenset("!?*~")
UPPER_WORD = re.compile(r"[A-Za-z]{2,}")


def url_only(raw: str) -> bool:
    """The caption as written is one or more URLs and nothing else (the text stage removes URLs, so it checks the
    caption before cleaning)."""
    parts = [p for p in URL_SEPARATORS.split(raw.strip()) if p]
    return bool(parts) and all(URL_TOKEN.fullmatch(p) for p in parts)


def camera_default(caption: str) -> bool:
    """The whole caption is a camera's or JPEG tool's default description or comment (`OLYMPUS DIGITAL CAMERA`,
    `SONY DSC`, `Exif_JPEG_PICTURE`, `CREATOR: gd-jpeg v1.0 ...`), not the photographer's words."""
    text = caption.strip().rstrip(".")
    return any(p.fullmatch(text) for p in CAMERA_DEFAULTS)


def numeric(caption: str) -> bool:
    """Digits, punctuation and symbols only: a date, a count, an ID, no word."""
    return not any(c.isalpha() for c in caption) and any(c.isdigit() for c in caption)


def keyword_list(caption: str, rules: CaptionRules | None = None) -> str | None:
    """Why the caption is a list of tags rather than a description, or None: hashtags holding most of its letters
    (`#sunset #beach #summer`), or `min_keywords` or more short separated items (at most three words or six CJK
    characters each) with no word that a sentence needs (articles, prepositions, pronouns; 的了着是在…). Chinese
    items split by spaces alone (`城市 夜景 灯光`) need only `min_spaced_keywords`, of at most four characters
    each: Chinese writes no spaces between words, but it may between lines of verse."""
    r = rules or CaptionRules()
    letters = sum(c.isalpha() for c in caption)
    tags = HASHTAG.findall(caption)
    in_tags = sum(c.isalpha() for t in tags for c in t)
    if len(tags) >= r.min_hashtags and letters and in_tags >= r.hashtag_share * letters:
        return f"{len(tags)} hashtags hold {in_tags / letters:.0%} of the letters"
    cjk_only = not any(c.isascii() and c.isalpha() for c in caption)
    items = [i for i in (LIST_SEPARATORS_CJK if cjk_only else LIST_SEPARATORS).split(caption) if i.strip()]
    spaced = cjk_only and HAN.search(caption) is not None and not LIST_SEPARATORS.search(caption.strip())
    if len(items) < (r.min_spaced_keywords if spaced else r.min_keywords):
        return None
    if SENTENCE_WORDS.search(caption) or ZH_SENTENCE_CHARS.intersection(caption):
        return None
    if spaced and len(items) < r.min_keywords and any(len(HAN.findall(i)) > 4 for i in items):
        return None  # a line of verse (five or seven characters) is not a tag
    if all(len(i.split()) <= 3 and len(HAN.findall(i)) <= 6 for i in items):
        return f"{len(items)} short separated items and no sentence"
    return None


def _symbol(c: str) -> bool:
    """Emoji, pictographs and other symbols; not Latin-1's ©®°, CJK symbols or full-width forms."""
    o = ord(c)
    if o < 0x2000 or 0x3000 <= o <= 0x303F or 0xFF00 <= o <= 0xFFEF:
        return False
    return unicodedata.category(c) in ("So", "Sk")


def symbol_flood(caption: str, rules: CaptionRules | None = None) -> str | None:
    """Why the caption is a flood, or None: `symbol_run` emoji, symbols or `!?*~` in a row (spaces and emoji
    variation selectors between them allowed), or four or more emoji and symbols making `symbol_share` of its
    visible characters. Other punctuation (`.,-:;` and all of Chinese `，。！？「」……`) never counts."""
    r = rules or CaptionRules()
    run, longest, where, symbols, visible = 0, 0, 0, 0, 0
    for i, c in enumerate(caption):
        if c.isspace() or unicodedata.category(c) in ("Mn", "Me", "Cf"):
            continue
        visible += 1
        symbol = _symbol(c)
        symbols += symbol
        if symbol or c in ASCII_FLOOD:
            run += 1
            if run > longest:
                longest, where = run, i
        else:
            run = 0
    if longest >= r.symbol_run:
        tail = caption[: where + 1].rstrip()
        return f"{longest} symbols in a row: {tail[-40:]!r}"
    if symbols >= 4 and visible and symbols >= r.symbol_share * visible:
        return f"{symbols} of {visible} characters are symbols"
    return None


def shouting(caption: str, rules: CaptionRules | None = None) -> str | None:
    """Why the caption is shouting, or None: `shouting_letters` or more Latin letters, in four or more words, at
    least 80% of all its letters, at least 90% of them capitals (`A sign saying NO PARKING` is kept)."""
    r = rules or CaptionRules()
    letters = [c for c in caption if c.isalpha()]
    latin = [c for c in letters if c.isascii() or unicodedata.name(c, "").startswith("LATIN")]
    if len(latin) < r.shouting_letters or len(latin) < 0.8 * len(letters) or len(UPPER_WORD.findall(caption)) < 4:
        return None
    upper = sum(c.isupper() for c in latin)
    cased = sum(c.isupper() or c.islower() for c in latin)
    if cased and upper >= 0.9 * cased:
        return f"{upper} of {cased} letters in capitals"
    return None


def caption_rules(caption: str, raw: str | None = None, rules: CaptionRules | None = None) -> list[tuple[str, str]]:
    """Every caption rule the caption breaks, as (reason, detail), in the order the text stage checks them.
    `caption`: the cleaned caption; `raw`: the caption as written, for the URL-only rule (None skips it)."""
    r = rules or CaptionRules()
    out: list[tuple[str, str]] = []
    if r.url_only and raw is not None and url_only(raw):
        out.append(("url_only_caption", f"only URLs: {raw.strip()[:80]!r}"))
    if r.camera_default and camera_default(caption):
        out.append(("camera_default", f"a camera or JPEG tool default: {caption.strip()[:80]!r}"))
    if r.numeric and numeric(caption):
        out.append(("numeric_caption", f"no letters: {caption[:80]!r}"))
    if r.keyword_list and (why := keyword_list(caption, r)):
        out.append(("keyword_list", why))
    if r.symbol_flood and (why := symbol_flood(caption, r)):
        out.append(("symbol_flood", why))
    if r.shouting and (why := shouting(caption, r)):
        out.append(("shouting", why))
    return out
