"""Hard negatives for image-text matching: change one colour, count, object or spatial word of a caption.

The same word classes exist in English and Chinese, so a pair's two captions are perturbed the same way. A
caption with no word of a class cannot be perturbed in that class; `perturb` tries the classes in a random
order and returns None only when the caption has none of them.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

KINDS = ("colour", "count", "object", "spatial")

EN_COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white", "pink", "brown", "grey"]
ZH_COLOURS = ["红色", "绿色", "蓝色", "黄色", "紫色", "橙色", "黑色", "白色", "粉色", "棕色", "灰色"]
# (singular, plural) so a count change keeps the sentence grammatical: no shortcut for the model to learn
EN_OBJECTS = [
    ("circle", "circles"),
    ("square", "squares"),
    ("triangle", "triangles"),
    ("star", "stars"),
    ("cat", "cats"),
    ("dog", "dogs"),
    ("car", "cars"),
    ("tree", "trees"),
    ("person", "people"),
    ("bird", "birds"),
    ("cup", "cups"),
    ("book", "books"),
]
ZH_OBJECTS = ["圆形", "正方形", "三角形", "星形", "猫", "狗", "汽车", "树", "人", "鸟", "杯子", "书"]
EN_COUNTS = ["one", "two", "three", "four", "five"]
ZH_COUNTS = ["一", "两", "三", "四", "五"]
EN_SPATIAL = [("left", "right"), ("above", "below"), ("top", "bottom"), ("front", "behind")]
ZH_SPATIAL = [("左", "右"), ("上", "下"), ("前", "后")]

# a spatial word that relates two things ("to the left of a tree", "在树的左边") rather than placing one in the
# picture ("on the left", "在左边"): evaluation reports the two apart, relations need binding words to objects
_RELATION = {
    "en": re.compile(r"\b(?:to the (?:left|right) of|above|below|in front of|behind)\b"),
    "zh": re.compile(r"的(?:左|右|上|下|前|后)(?:边|面)"),
}

_SINGULAR = {p: s for s, p in EN_OBJECTS}
_PLURAL = dict(EN_OBJECTS)


@dataclass(frozen=True)
class Negative:
    text: str
    kind: str  # colour | count | object | spatial


def _find(text: str, words: list[str], lang: str) -> list[re.Match[str]]:
    """Every occurrence of one of `words` in `text`, in order (whole words in English, longest first)."""
    alternation = "(" + "|".join(map(re.escape, sorted(words, key=len, reverse=True))) + ")"
    return list(re.finditer(rf"\b{alternation}\b" if lang == "en" else alternation, text))


def _swap_word(text: str, words: list[str], rng: random.Random, lang: str) -> str | None:
    """Replace one occurrence of one of `words` with another of them (whole words in English)."""
    hits = _find(text, words, lang)
    if not hits:
        return None
    hit = rng.choice(hits)
    new = rng.choice([w for w in words if w != hit.group(1)])
    return text[: hit.start()] + new + text[hit.end() :]


def _en_count(text: str, rng: random.Random) -> str | None:
    """Change a count word ("a"/"an"/"one".."five" before an object) and the object's number with it."""
    nouns = "|".join(map(re.escape, [w for pair in EN_OBJECTS for w in pair]))
    counts = "|".join(["a", "an", *EN_COUNTS])
    hits = list(re.finditer(rf"\b({counts})\b((?:\s+[a-z]+){{0,2}}?)\s+({nouns})\b", text, flags=re.IGNORECASE))
    if not hits:
        return None
    hit = rng.choice(hits)
    old = hit.group(1).lower()
    old_n = 1 if old in ("a", "an", "one") else EN_COUNTS.index(old) + 1
    new_n = rng.choice([n for n in range(1, len(EN_COUNTS) + 1) if n != old_n])
    noun = hit.group(3)
    noun = _PLURAL.get(noun, noun) if new_n > 1 else _SINGULAR.get(noun, noun)
    following = (hit.group(2).strip() or noun)[:1].lower()  # the article agrees with the next word's sound
    word = EN_COUNTS[new_n - 1] if new_n > 1 or old == "one" else ("an" if following in "aeiou" else "a")
    if hit.group(1)[0].isupper():
        word = word.capitalize()
    return text[: hit.start()] + f"{word}{hit.group(2)} {noun}" + text[hit.end() :]


def _swap_pair(text: str, pairs: list[tuple[str, str]], rng: random.Random, lang: str) -> str | None:
    """Flip one spatial word to its opposite (left <-> right, 上 <-> 下)."""
    opposite = {a: b for a, b in pairs} | {b: a for a, b in pairs}
    hits = _find(text, list(opposite), lang)
    if not hits:
        return None
    hit = rng.choice(hits)
    return text[: hit.start()] + opposite[hit.group(1)] + text[hit.end() :]


def spatial_kind(text: str, lang: str) -> str:
    """ "relation" when the caption relates two things by a spatial word, else "position" (where one thing is)."""
    return "relation" if _RELATION["zh" if lang == "zh" else "en"].search(text) else "position"


def perturb_kind(text: str, lang: str, kind: str, rng: random.Random) -> str | None:
    """`text` with one word of class `kind` changed, or None when it has no such word."""
    if lang == "en":
        if kind == "colour":
            return _swap_word(text, EN_COLOURS, rng, lang)
        if kind == "count":
            return _en_count(text, rng)
        if kind == "object":
            nouns = [s for s, _ in EN_OBJECTS] if rng.random() < 0.5 else [p for _, p in EN_OBJECTS]
            return _swap_word(text, nouns, rng, lang) or _swap_word(
                text, [w for p in EN_OBJECTS for w in p], rng, lang
            )
        return _swap_pair(text, EN_SPATIAL, rng, lang)
    if kind == "colour":
        return _swap_word(text, ZH_COLOURS, rng, lang)
    if kind == "count":
        return _swap_word(text, ZH_COUNTS, rng, lang)
    if kind == "object":
        return _swap_word(text, ZH_OBJECTS, rng, lang)
    return _swap_pair(text, ZH_SPATIAL, rng, lang)


def perturb(text: str, lang: str, rng: random.Random, kinds: tuple[str, ...] = KINDS) -> Negative | None:
    """A hard negative of `text` (language "en" or "zh"): the first class, in random order, that applies."""
    order = list(kinds)
    rng.shuffle(order)
    for kind in order:
        new = perturb_kind(text, lang, kind, rng)
        if new is not None and new != text:
            return Negative(new, kind)
    return None
