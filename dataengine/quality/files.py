"""`dataengine assess IN.jsonl OUT.jsonl`: rate an InternVL/LLaVA annotation file outside a pipeline run, as
`dataengine translate` translates one.

Each record keeps its fields and gains `quality_en` and `quality_zh` (the rubric's 0-10 rating of the caption, or
of the answer turns, in each language present), `translation_qe` (0-100, when the record has both languages),
`repetition` (the share of the text that loops, 0 when none), `rule_reasons` (every reason the `text` stage's
checks give, [] when none) and a `quality` provenance object. The text is read by the pipeline's readers
(`fill_text`); the Chinese comes from `caption_zh` or `conversations_zh` when the record carries them, else a
source text written in Chinese is rated as Chinese. Records that cannot be assessed (unparsable, text the readers
refuse, a malformed `caption_zh`/`conversations_zh`, a score the model did not give) go to `OUT.rejects.jsonl`
with a reason, so OUT + rejects = IN. Both files are written atomically.
"""

from __future__ import annotations

import json
import os
from typing import Any

from dataengine.core.rows import _answers
from dataengine.core.storage import atomic_write
from dataengine.core.text import script_counts
from dataengine.quality.judge import RUBRIC_VERSION, Judge
from dataengine.quality.signals import repetition_score, rule_reasons
from dataengine.readers.jsonl import iter_lines
from dataengine.translate.files import _parse, _reject

CHUNK = 64


def _chinese(text: str) -> bool:
    counts = script_counts(text)
    letters = sum(counts.values())
    return bool(letters) and counts["han"] / letters >= 0.5


def texts(obj: dict[str, Any], row: dict[str, Any]) -> tuple[str | None, str | None, str, str]:
    """(English text, Chinese text, kind, why not) of one parsed record: kind is caption or answer; `why not` is
    a reject reason when its Chinese fields are malformed."""
    kind = "caption" if row["caption"] is not None else "answer"
    own = row["caption"] if kind == "caption" else _answers(row["conversations"])
    zh: str | None = None
    if obj.get("caption_zh") is not None:
        if not isinstance(obj["caption_zh"], str):
            return None, None, kind, "invalid_caption_zh"
        zh = obj["caption_zh"]
    elif obj.get("conversations_zh") is not None:
        turns = obj["conversations_zh"]
        ok = isinstance(turns, list) and all(
            isinstance(t, dict) and isinstance(t.get("from"), str) and isinstance(t.get("value"), str) for t in turns
        )
        if not ok:
            return None, None, kind, "invalid_conversations_zh"
        zh = _answers(turns)
    if own and zh is None and _chinese(own):
        return None, own, kind, ""  # a Chinese source: rated as Chinese, no pair
    return own, zh, kind, ""


def _rules(obj: dict[str, Any], row: dict[str, Any], en: str | None, zh: str | None) -> tuple[list[str], float]:
    reasons: list[str] = []
    rep = 0.0
    if row["caption"] is not None:
        pieces = [(t, "caption", lang) for t, lang in ((en, "en"), (zh, "zh")) if t]
    else:
        turns = [t["value"] for t in row["conversations"] if t["from"] == "gpt"]
        zh_turns = [t["value"] for t in obj.get("conversations_zh") or [] if t.get("from") == "gpt"]
        pieces = [(t, "answer", None) for t in turns + zh_turns]
    for text, kind, lang in pieces:
        for reason in rule_reasons(text, kind, lang):
            if reason not in reasons:
                reasons.append(reason)
        rep = max(rep, repetition_score(text, lang))
    return reasons, rep


def assess_file(src: str, dst: str, judge: Judge, max_record_bytes: int = 16 << 20) -> dict[str, Any]:
    """Assess src into dst (+ dst's rejects file); returns counts."""
    rejects_path = os.path.splitext(dst)[0] + ".rejects.jsonl"
    good: list[str] = []
    bad: list[str] = []
    batch: list[tuple[int, dict[str, Any], dict[str, Any], bytes, str | None, str | None, str]] = []

    def flush() -> None:
        en_at = [i for i, b in enumerate(batch) if b[4]]
        zh_at = [i for i, b in enumerate(batch) if b[5]]
        pair_at = [i for i, b in enumerate(batch) if b[4] and b[5]]
        q_en = dict(zip(en_at, judge.quality([(batch[i][4], "en", batch[i][6]) for i in en_at]), strict=True))
        q_zh = dict(zip(zh_at, judge.quality([(batch[i][5], "zh", batch[i][6]) for i in zh_at]), strict=True))
        qe = dict(zip(pair_at, judge.translation_qe([(batch[i][4], batch[i][5]) for i in pair_at]), strict=True))
        for i, (lineno, obj, row, raw, en, zh, _) in enumerate(batch):
            scores = (("quality_en", q_en), ("quality_zh", q_zh), ("translation_qe", qe))
            missing = [name for name, got in scores if i in got and got[i] is None]
            if missing:
                bad.append(_reject(lineno, raw, "unscored", f"the model gave no score for {', '.join(missing)}"))
                continue
            reasons, rep = _rules(obj, row, en, zh)
            rec = dict(obj)
            rec.update(
                quality_en=q_en.get(i),
                quality_zh=q_zh.get(i),
                translation_qe=qe.get(i),
                repetition=rep,
                rule_reasons=reasons,
                quality={
                    "model": judge.model,
                    "engine": judge.engine.name,
                    "rubric": RUBRIC_VERSION,
                    "scoring": judge.method,
                },
            )
            good.append(json.dumps(rec, ensure_ascii=False))
        batch.clear()

    for lineno, line in iter_lines(src, max_record_bytes):
        obj, row, reason, detail = _parse(line)
        if obj is None or row is None:
            bad.append(_reject(lineno, line or b"", reason, detail))
            continue
        en, zh, kind, why = texts(obj, row)
        if why:
            bad.append(_reject(lineno, line or b"", why, "expected a string, or a list of {from, value} turns"))
            continue
        batch.append((lineno, obj, row, line or b"", en, zh, kind))
        if len(batch) >= CHUNK:
            flush()
    if batch:
        flush()
    atomic_write(dst, lambda f: f.write("".join(x + "\n" for x in good).encode()))
    atomic_write(rejects_path, lambda f: f.write("".join(x + "\n" for x in bad).encode()))
    return {"assessed": len(good), "rejected": len(bad), "rejects_file": rejects_path}
