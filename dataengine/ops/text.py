"""Normalise captions and conversation turns; reject empty, oversized, malformed, boilerplate or looping text.

Order: early size guard, the URL-only rule on the caption as written, width folding, HTML (script/style blocks,
tags, entities), control and zero-width characters, URLs and e-mails, whitespace; then length, filename and
boilerplate checks, the caption rules and the repetition check (`dataengine/quality/rules.py`) on the cleaned
text. The rules only reject: the text is kept as the cleaning wrote it.

Width folding is the part of NFKC that captions need: full-width ASCII letters and digits (`ＡＢＣ１２３`) and
compatibility spaces (ideographic, no-break, fixed-width) become ASCII. Full NFKC is not used: it rewrites
Chinese full-width punctuation to ASCII (`（橘色），！？` -> `(橘色),!?`) and superscripts to digits (`x²` -> `x2`).
"""

from __future__ import annotations

import html
import re
import unicodedata
from functools import cached_property
from typing import Any, Literal

from pydantic import AliasChoices, Field

from dataengine.core.rows import Reject
from dataengine.core.text import IMAGE_TAG, text_key
from dataengine.ops.base import RowStage, StageConfig
from dataengine.quality.rules import CaptionRules, RepetitionSettings, caption_rules, repetition, url_only

HTML_OPEN = re.compile(r"<(script|style)\b[^<>]{0,2000}>", re.I)  # bounded, so no run of opens goes quadratic
HTML_CLOSE = {tag: re.compile(rf"</{tag}\s*>", re.I) for tag in ("script", "style")}
HTML_TAG = re.compile(
    r"</?(?:a|abbr|b|big|blockquote|body|br|center|code|div|em|font|h[1-6]|head|hr|html|i|img|li|meta|ol|p|pre"
    r"|small|span|strong|sub|sup|table|tbody|td|th|thead|title|tr|u|ul)\b[^<>]*/?>",
    re.I,
)
URL = re.compile(r"\b(?:https?|ftp)://\S+|\bwww\.[^\s/]+\.\S+", re.I)
EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
SPACES = re.compile(r"[^\S\n]+")
NEWLINES = re.compile(r"\n{3,}")
FULL_WIDTH_ALNUM = [*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B)]  # ０-９ Ａ-Ｚ ａ-ｚ
COMPAT_SPACES = [0x00A0, *range(0x2000, 0x200B), 0x202F, 0x205F, 0x3000]  # no-break, fixed-width, ideographic
WIDTH_FOLD = {**{c: c - 0xFEE0 for c in FULL_WIDTH_ALNUM}, **dict.fromkeys(COMPAT_SPACES, ord(" "))}
# a whole caption that is one file name or path with an image/video extension, or a camera's file name without
# one; a sentence that mentions a file name has spaces and is not matched
FILENAME = re.compile(
    r"^(?:\S*\.(?:jpe?g|jfif|png|gif|webp|bmp|tiff?|heic|heif|avif|dng|cr2|nef|arw|raw|svg|mp4|mov|avi|mkv|webm)"
    r"|(?:img|dsc[fn]?|pxl|mvimg|vid|wp|pano)[-_]\d{4,}(?:[-_]\d+)*)$",
    re.I,
)
DEFAULT_BOILERPLATE = [
    r"^(image|photo|picture|img|screenshot|untitled|thumbnail|图片|图像|照片)\s*[-_#]?\s*\d*(\.(jpe?g|png|gif|webp))?$",
    r"^(dsc|dscn|img|pic|p)[-_]?\d+(\.\w+)?$",
    r"\b(click|tap) (here )?to (enlarge|zoom|view|see)",
    r"\bstock (photo|image|picture|footage|vector|illustration)s?\b",
    r"\broyalty[- ]free\b",
    r"this image has an empty alt attribute",  # WordPress's alt text for an image given none
    r"^(alt(ernative)?[ _-]?text|image alt|placeholder( image)?|(featured|thumbnail|banner|hero) image"
    r"|image description|insert (image|alt text)( here)?)\s*:?$",
    r"^(image|photo|picture)s? (not available|unavailable|not found|coming soon)\.?$",
    r"^no (image|photo|picture)s? (available|found)\.?$",
    r"图片(来源|来自)(于)?网络|^网络图片$|侵权(请)?(联系)?删除|^暂无图片$|图片加载失败",
    r"all rights reserved|版权所有",
    r"^(no|without) (description|caption|alt text)( available)?\.?$",
    r"^(an? )?(image|photo|picture) (may contain|of)\s*:?$",
    r"^lorem ipsum",
    r"点击(查看)?(大图|放大)",
]


def _char(c: str) -> str:
    """Controls become spaces; zero-width, bidi, BOM, surrogates and private-use characters vanish."""
    if c in "\n\t":
        return c
    cat = unicodedata.category(c)
    if cat == "Cc":
        return " "
    return "" if cat in ("Cf", "Cs", "Co") else c


def strip_blocks(text: str) -> str:
    """`text` without its <script>/<style> blocks, in linear time (a regex with a lazy body rescans the rest of
    the text for every unclosed opening tag); an unclosed block's text is kept."""
    out, pos, start, unclosed = [], 0, 0, set()
    while (m := HTML_OPEN.search(text, start)) is not None:
        tag = m.group(1).lower()
        close = None if tag in unclosed else HTML_CLOSE[tag].search(text, m.end())
        if close is None:  # no closing tag after here, so none after any later opening of it either
            unclosed.add(tag)
            start = m.end()
            continue
        out += [text[pos : m.start()], " "]
        pos = start = close.end()
    out.append(text[pos:])
    return "".join(out)


class TextConfig(StageConfig):
    op: Literal["text"] = "text"
    fold_width: bool = Field(
        True,
        validation_alias=AliasChoices("fold_width", "nfkc"),  # `nfkc`: this setting's earlier name, still read
        description="full-width ASCII letters/digits and compatibility spaces to ASCII (not full NFKC)",
    )
    strip_html: bool = True
    remove_urls: bool = True
    remove_emails: bool = True
    min_chars: int = Field(4, ge=0, description="minimum non-space characters in a caption or answer turn")
    max_chars: int = Field(2000, ge=1, description="maximum characters in a caption")
    max_conversation_chars: int = Field(32000, ge=1, description="maximum characters over all turns")
    boilerplate: list[str] = Field(default_factory=lambda: list(DEFAULT_BOILERPLATE))
    caption_rules: CaptionRules = Field(
        default_factory=CaptionRules, description="caption rules: URL-only, camera defaults, numbers, keyword lists..."
    )
    repetition: RepetitionSettings = Field(
        default_factory=RepetitionSettings, description="looping repetition in captions and answer turns"
    )


def visible_len(text: str) -> int:
    return sum(1 for c in text.replace(IMAGE_TAG, "") if not c.isspace())


class TextClean(RowStage):
    name = "text"
    Config = TextConfig

    @cached_property
    def _boilerplate(self) -> list[re.Pattern[str]]:
        return [re.compile(p, re.I) for p in self.config.boilerplate]

    def clean(self, text: str, *, keep_newlines: bool) -> str:
        cfg = self.config
        if cfg.fold_width:
            text = text.translate(WIDTH_FOLD)
        if cfg.strip_html:
            text = HTML_TAG.sub(" ", strip_blocks(text))
            text = html.unescape(text)
        text = "".join(map(_char, text))
        if cfg.remove_urls:
            text = URL.sub(" ", text)
        if cfg.remove_emails:
            text = EMAIL.sub(" ", text)
        if not keep_newlines:
            text = text.replace("\n", " ")
        text = SPACES.sub(" ", text)
        text = "\n".join(line.strip() for line in text.split("\n"))
        return NEWLINES.sub("\n\n", text).strip()

    def process(self, row: dict[str, Any]) -> dict[str, Any]:
        cfg = self.config
        if row["caption"] is not None:
            raw = row["caption"]
            if len(raw) > cfg.max_chars * 20:  # guard before any per-character work on hostile input
                raise Reject("caption_too_long", f"{len(raw)} raw characters")
            if cfg.caption_rules.url_only and url_only(raw):  # before cleaning, which removes URLs
                raise Reject("url_only_caption", f"only URLs: {raw.strip()[:80]!r}")
            caption = self.clean(raw, keep_newlines=False)
            n = visible_len(caption)
            if n < cfg.min_chars:
                raise Reject("caption_too_short", f"{n} characters after cleaning, min {cfg.min_chars}")
            if len(caption) > cfg.max_chars:
                raise Reject("caption_too_long", f"{len(caption)} characters, max {cfg.max_chars}")
            if FILENAME.match(caption):
                raise Reject("filename_caption", f"the caption is a file name: {caption[:80]!r}")
            for pattern in self._boilerplate:
                if pattern.search(caption):
                    raise Reject("boilerplate", f"matches {pattern.pattern!r}")
            for reason, detail in caption_rules(caption, rules=cfg.caption_rules)[:1]:
                raise Reject(reason, detail)
            self._repetition(caption, "caption")
            row["caption"], row["text_key"] = caption, text_key([caption])
            return row
        row["conversations"] = self._conversation(row["conversations"] or [])
        row["text_key"] = text_key([t["value"] for t in row["conversations"]])
        return row

    def _conversation(self, turns: list[dict[str, str]]) -> list[dict[str, str]]:
        cfg = self.config
        if sum(len(t["value"]) for t in turns) > cfg.max_conversation_chars * 20:
            raise Reject("conversation_too_long", "raw turns far over the limit")
        roles = [t["from"] for t in turns]
        if "human" not in roles or "gpt" not in roles or set(roles) - {"human", "gpt", "system"}:
            raise Reject("invalid_conversation", f"roles {roles[:8]}: need human and gpt turns only")
        out = [{"from": t["from"], "value": self.clean(t["value"], keep_newlines=True)} for t in turns]
        if sum(t["value"].count(IMAGE_TAG) for t in out) > 1:
            raise Reject("too_many_image_tags", "one image per sample: more than one <image> tag")
        for t in out:
            if t["from"] == "gpt" and visible_len(t["value"]) < cfg.min_chars:
                raise Reject("empty_turn", f"answer turn with under {cfg.min_chars} characters")
            if t["from"] == "human" and visible_len(t["value"]) == 0 and IMAGE_TAG not in t["value"]:
                raise Reject("empty_turn", "empty question turn")
        first_human = next(t for t in out if t["from"] == "human")
        if not any(IMAGE_TAG in t["value"] for t in out):
            first_human["value"] = f"{IMAGE_TAG}\n{first_human['value']}"  # InternVL: first question carries it
        total = sum(len(t["value"]) for t in out)
        if total > cfg.max_conversation_chars:
            raise Reject("conversation_too_long", f"{total} characters, max {cfg.max_conversation_chars}")
        for i, t in enumerate(out):
            if t["from"] == "gpt":
                self._repetition(t["value"], f"turn {i}")
        return out

    def _repetition(self, text: str, where: str) -> None:
        if self.config.repetition.enabled and (found := repetition(text, self.config.repetition)):
            raise Reject("repetitive_text", f"{where}: {found.detail()}")
