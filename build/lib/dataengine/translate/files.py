"""`dataengine translate IN.jsonl OUT.jsonl`: translate an InternVL/LLaVA annotation file outside a pipeline run.

OUT keeps input order with Chinese text in place and the English alongside (`caption_en`, or `value_en` per
turn) plus a `translation` provenance object; records that cannot be translated (unparsable, no text, or
failed validation) go to `OUT.rejects.jsonl` with a reason, so OUT + rejects = IN. Both files are written
atomically.
"""

from __future__ import annotations

import json
import os
from typing import Any

from dataengine.readers.jsonl import iter_lines
from dataengine.readers.records import load_json
from dataengine.storage import atomic_write
from dataengine.translate.translator import Outcome, Translator

CHUNK = 64


def _parse(line: bytes | None) -> tuple[dict[str, Any] | None, str | None]:
    if line is None:
        return None, "record_too_large"
    try:
        obj = load_json(line.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        return None, "invalid_json"
    if not isinstance(obj, dict):
        return None, "invalid_record"
    conv = obj.get("conversations")
    if isinstance(obj.get("caption"), str):
        return obj, None
    if (
        isinstance(conv, list)
        and conv
        and all(
            isinstance(t, dict) and isinstance(t.get("value"), str) and isinstance(t.get("from"), str) for t in conv
        )
    ):
        return obj, None
    return None, "missing_text"


def _translated(obj: dict[str, Any], out: Outcome, translator: Translator, prompt_version: str) -> dict[str, Any]:
    rec = dict(obj)
    if out.caption_zh is not None:
        rec["caption_en"], rec["caption"] = obj["caption"], out.caption_zh
    else:
        rec["conversations"] = [
            {**t, "value": zh["value"], "value_en": t["value"]}
            for t, zh in zip(obj["conversations"], out.conversations_zh or [], strict=True)
        ]
    rec["translation"] = {
        "model": translator.engine.model,
        "engine": translator.engine.name,
        "prompt_version": prompt_version,
        "attempts": out.attempts,
        "cache_hits": out.cache_hits,
        "status": out.status,
    }
    return rec


def translate_file(
    src: str, dst: str, translator: Translator, prompt_version: str, max_record_bytes: int = 16 << 20
) -> dict[str, int]:
    """Translate src into dst (+ dst's rejects file); returns counts."""
    rejects_path = os.path.splitext(dst)[0] + ".rejects.jsonl"
    good: list[str] = []
    bad: list[str] = []
    batch: list[tuple[int, dict[str, Any], bytes]] = []

    def flush() -> None:
        outcomes = translator.translate_samples(
            [
                {
                    "caption": o.get("caption") if isinstance(o.get("caption"), str) else None,
                    "conversations": o.get("conversations"),
                }
                for _, o, _ in batch
            ]
        )
        for (lineno, obj, raw), out in zip(batch, outcomes, strict=True):
            if out.status == "ok":
                good.append(json.dumps(_translated(obj, out, translator, prompt_version), ensure_ascii=False))
            else:
                bad.append(_reject(lineno, raw, "translation_" + out.status.split(":", 1)[1], out.detail))
        batch.clear()

    for lineno, line in iter_lines(src, max_record_bytes):
        obj, reason = _parse(line)
        if obj is None:
            bad.append(_reject(lineno, line or b"", reason or "invalid_record", ""))
            continue
        batch.append((lineno, obj, line or b""))
        if len(batch) >= CHUNK:
            flush()
    if batch:
        flush()
    atomic_write(dst, lambda f: f.write("".join(x + "\n" for x in good).encode()))
    atomic_write(rejects_path, lambda f: f.write("".join(x + "\n" for x in bad).encode()))
    return {"translated": len(good), "rejected": len(bad), "rejects_file": rejects_path}  # type: ignore[dict-item]


def _reject(lineno: int, raw: bytes, reason: str, detail: str) -> str:
    return json.dumps(
        {"line": lineno, "reason": reason, "detail": detail, "record": raw.decode("utf-8", "backslashreplace")},
        ensure_ascii=False,
    )
