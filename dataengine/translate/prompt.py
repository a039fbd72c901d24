"""The translation prompt (InternVL 1.5's instructions, in our words) as a versioned template, with protected
spans: tags, placeholders, URLs, code, LaTeX and box/coordinate markup are swapped for numbered markers before
the LLM sees the text and put back afterwards, so they survive byte for byte."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

PROMPT_VERSION = "internvl15-zh-v2"

# Short on purpose: on CPU every request pays for the system prompt's tokens before it generates anything.
SYSTEM = (
    "Translate the user's English text into fluent, natural Simplified Chinese, not translationese. Keep proper "
    "nouns, brands, place names and technical terms in English; render idioms with Chinese idioms; keep the "
    "tone of quotes; write acronyms as the Chinese full name with the English acronym in parentheses. Copy "
    "markers like ⟦0⟧ and all numbers unchanged. Reply with the translation only."
)
STRICT_SUFFIX = " Output only the Chinese translation, nothing else; keep every ⟦n⟧ marker and number exactly."
USER = "Text for translation: {text}"
CONTEXT = "Earlier turns of this conversation, for context only (do not translate them again):\n{context}\n\n"

PROTECT = re.compile(
    r"(<\/?[A-Za-z_][\w-]*>"  # <image>, <ref>, </box> and other tags
    r"|\[\[[\d.,\s]+\](?:\s*,\s*\[[\d.,\s]+\])*\]"  # [[x1, y1, x2, y2]] boxes, [[...], [...]] several
    r"|\(\s*\d+(?:\.\d+)?\s*,\s*\d+(?:\.\d+)?\s*\)"  # (x, y) coordinates
    r"|\{\{?\s*\w+\s*\}?\}|%\(\w+\)s|%[sd]"  # {placeholder}, {{x}}, %(x)s, %s
    r"|`[^`\n]+`"  # code spans
    r"|\$\$[^$]+\$\$"  # $$...$$ display math, whole (may span lines)
    r"|\$(?=\S)[^$\n]*?(?<=\S)\$(?!\d)|\\\(.+?\\\)|\\\[.+?\\\]"  # LaTeX ($ as pandoc: not "$5 and $10")
    r"|\b(?:https?|ftp)://\S+|\bwww\.\S+"  # URLs
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+)"  # e-mails
)
MARKER = re.compile(r"⟦(\d+)⟧")


EDGE_TAGS = re.compile(r"^((?:\s*<\/?[A-Za-z_][\w-]*>)*\s*)(.*?)(\s*(?:<\/?[A-Za-z_][\w-]*>\s*)*)$", re.S)


@dataclass(frozen=True)
class Protected:
    text: str  # what the model sees, with markers
    spans: list[str]  # original spans, by marker number
    prefix: str = ""  # tags at the edges (e.g. "<image>\n") never reach the model
    suffix: str = ""

    def restore(self, translated: str) -> str:
        body = MARKER.sub(
            lambda m: self.spans[int(m.group(1))] if int(m.group(1)) < len(self.spans) else m.group(0), translated
        )
        return f"{self.prefix}{body}{self.suffix}"


def protect(text: str) -> Protected:
    spans: list[str] = []

    def swap(m: re.Match[str]) -> str:
        spans.append(m.group(0))
        return f"⟦{len(spans) - 1}⟧"

    prefix, body, suffix = EDGE_TAGS.match(text).groups()  # type: ignore[union-attr]
    return Protected(PROTECT.sub(swap, body), spans, prefix, suffix)


def glossary_block(glossary: dict[str, str]) -> str:
    if not glossary:
        return ""
    rows = "\n".join(f"- {en} => {zh}" for en, zh in sorted(glossary.items()))
    return f"\nUse exactly these translations for these terms:\n{rows}"


def glossary_hash(glossary: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(glossary, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


def messages(
    text: str, *, glossary: dict[str, str] | None = None, context: list[str] | None = None, strict: bool = False
) -> list[dict[str, str]]:
    """Chat messages for one segment (already protected); earlier conversation turns go in as context."""
    system = SYSTEM + glossary_block(glossary or {}) + (STRICT_SUFFIX if strict else "")
    prefix = CONTEXT.format(context="\n".join(context)) if context else ""
    return [{"role": "system", "content": system}, {"role": "user", "content": prefix + USER.format(text=text)}]


def has_words(protected_text: str) -> bool:
    """Whether protected text has words to translate: text of only tags, markup, numbers or markers is its own
    translation and never goes to the model."""
    return any(c.isalpha() for c in MARKER.sub("", protected_text))
