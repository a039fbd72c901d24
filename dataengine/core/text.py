"""Text helpers several layers share."""

from __future__ import annotations

import re
import unicodedata

from dataengine.core.ids import content_hash

IMAGE_TAG = "<image>"  # InternVL's image placeholder in a conversation
KEY_DROP = re.compile(r"[\W_]+", re.U)


def script_counts(text: str) -> dict[str, int]:
    counts = {"han": 0, "kana": 0, "hangul": 0, "ascii": 0, "latin": 0, "other": 0}
    for c in text:
        if not c.isalpha():
            continue
        o = ord(c)
        if 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x2FA1F:
            counts["han"] += 1
        elif 0x3040 <= o <= 0x30FF or 0x31F0 <= o <= 0x31FF:
            counts["kana"] += 1
        elif 0xAC00 <= o <= 0xD7AF or 0x1100 <= o <= 0x11FF:
            counts["hangul"] += 1
        elif c.isascii():
            counts["ascii"] += 1
        elif unicodedata.name(c, "").startswith("LATIN"):
            counts["latin"] += 1
        else:
            counts["other"] += 1
    return counts


def text_key(texts: list[str]) -> str:
    """Hash of the text with case, punctuation and spacing removed: dedup key for image+text mode."""
    norm = KEY_DROP.sub("", " ".join(texts).replace(IMAGE_TAG, "").lower())
    return content_hash(norm.encode(), 8)
