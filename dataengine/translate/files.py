"""`dataengine translate IN.jsonl OUT.jsonl`: translate an InternVL/LLaVA annotation file outside a pipeline run.

OUT keeps input order with Chinese text in place and the English alongside (`caption_en`, or `value_en` per
turn) plus a `translation` provenance object; records that cannot be translated (unparsable, text the
pipeline's readers refuse with the same reason, e.g. `ambiguous_text` for both a caption and conversations, or
failed validation) go to `OUT.rejects.jsonl` with a reason, so OUT + rejects = IN. Both files are written
atomically.
"""

from __future__ import annotations

import json
import os
from typing import Any

from dataengine.core.rows import new_row
from dataengine.core.storage import atomic_write
from dataengine.readers.annotations import fill_text, load_json
from dataengine.readers.jsonl import iter_lines
from dataengine.translate.translator import Outcome, Translator

CHUNK = 64


def _parse(line: bytes | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str, str]:
    """(record, working row with its text, reject reason, detail) of one line. The text is read by the readers'
    `fill_text`, so a record the pipeline refuses (both caption and conversations, malformed turns) is refused
    here with the same reason."""
    if line is None:
        return None, None, "record_too_large", ""
    try:
        obj = load_json(line.decode("utf-8"))
    except ValueError:  # UnicodeDecodeError included
        return None, None, "invalid_json", ""
    if not isinstance(obj, dict):
        return None, None, "invalid_record", ""
    row = fill_text(new_row(), obj)
    if row["reason"] is not None:
        return None, None, row["reason"], row["detail"] or ""
    return obj, row, "", ""


def _translated(
    obj: dict[str, Any], row: dict[str, Any], out: Outcome, translator: Translator, prompt_version: str
) -> dict[str, Any]:
    rec = dict(obj)
    if out.caption_zh is not None:
        key = next(k for k in ("caption", "text", "txt") if obj.get(k) is not None)  # where fill_text found it
        rec[f"{key}_en"], rec[key] = row["caption"], out.caption_zh
    else:
        turns = obj["conversations"] if isinstance(obj["conversations"], list) else row["conversations"]
        rec["conversations"] = [
            {**t, "value": zh["value"], "value_en": t["value"]}
            for t, zh in zip(turns, out.conversations_zh or [], strict=True)
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
    batch: list[tuple[int, dict[str, Any], dict[str, Any], bytes]] = []

    def flush() -> None:
        outcomes = translator.translate_samples(
            [{"caption": row["caption"], "conversations": row["conversations"]} for _, _, row, _ in batch]
        )
        for (lineno, obj, row, raw), out in zip(batch, outcomes, strict=True):
            if out.status == "ok":
                good.append(json.dumps(_translated(obj, row, out, translator, prompt_version), ensure_ascii=False))
            else:
                bad.append(_reject(lineno, raw, "translation_" + out.status.split(":", 1)[1], out.detail))
        batch.clear()

    for lineno, line in iter_lines(src, max_record_bytes):
        obj, row, reason, detail = _parse(line)
        if obj is None or row is None:
            bad.append(_reject(lineno, line or b"", reason, detail))
            continue
        batch.append((lineno, obj, row, line or b""))
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
