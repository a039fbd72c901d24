"""`dataengine eval quality` and `dataengine bench quality`: how well each quality signal separates the shipped
labelled set's good items from bad ones (ROC-AUC), and what the LLM signals cost on this machine.

Signals: captions: `rules` (the text stage's checks: 1 when none fires), `llm` (the rubric's 0-10 rating) and
`combined` (0 when a rule fires, else the LLM's: what `text` + `quality` + `filter` keep). Translations: `rules`
(the translate stage's validation), `qe` (translation_qe), `back_chrf` (back-translation chrF, when asked for)
and `combined` (0 when validation fails, else QE, averaged with back_chrf when there is one).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from dataengine.quality.judge import Judge, combined_quality, combined_translation
from dataengine.quality.signals import rule_reasons
from dataengine.translate.validate import check

EVALSET = Path(__file__).resolve().parent.parent / "quality" / "evalset"


def load(part: str) -> list[dict[str, Any]]:
    """The shipped `captions` or `translations` part of the labelled set."""
    with open(EVALSET / f"{part}.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def roc_auc(scores: list[float | None], labels: list[int]) -> float | None:
    """ROC-AUC of `scores` for label 1 against label 0 (Mann-Whitney U over average ranks, ties half); a missing
    score ranks lowest. None when a class is empty."""
    pos = sum(1 for y in labels if y == 1)
    neg = len(labels) - pos
    if not pos or not neg:
        return None
    values = [-math.inf if s is None else float(s) for s in scores]
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y == 1)
    return round((rank_sum - pos * (pos + 1) / 2) / (pos * neg), 4)


def _subsample(rows: list[dict[str, Any]], limit: int | None, key: str | None = None) -> list[dict[str, Any]]:
    """About `limit` rows spread evenly over the set: every step-th row of each (language, label, kind) stratum,
    or with `key`, every step-th group (a pair with all its corruptions)."""
    if not limit or limit >= len(rows):
        return rows
    step = math.ceil(len(rows) / limit)
    if key is None:
        seen: dict[tuple[Any, ...], int] = {}
        keep_rows = []
        for r in rows:
            stratum = (r.get("lang"), r["label"], r["kind"])
            if seen.setdefault(stratum, 0) % step == 0:
                keep_rows.append(r)
            seen[stratum] += 1
        return keep_rows
    keep = set(sorted({r[key] for r in rows})[::step])
    return [r for r in rows if r[key] in keep]


def _aucs(rows: list[dict[str, Any]], signals: dict[str, list[float | None]], by: str) -> dict[str, Any]:
    """AUC of every signal overall and per bad kind (the good items against those of one kind)."""
    labels = [r["label"] for r in rows]
    out: dict[str, Any] = {"overall": {n: roc_auc(s, labels) for n, s in signals.items()}, "by_kind": {}}
    for kind in sorted({r[by] for r in rows if r["label"] == 0}):
        idx = [i for i, r in enumerate(rows) if r["label"] == 1 or r[by] == kind]
        sub = [labels[i] for i in idx]
        out["by_kind"][kind] = {
            "n": sum(1 for i in idx if labels[i] == 0),
            **{n: roc_auc([s[i] for i in idx], sub) for n, s in signals.items()},
        }
    return out


def eval_captions(judge: Judge | None, rows: list[dict[str, Any]]) -> dict[str, Any]:
    reasons = [rule_reasons(r["text"], "caption", r["lang"]) for r in rows]
    signals: dict[str, list[float | None]] = {"rules": [0.0 if rs else 1.0 for rs in reasons]}
    seconds = 0.0
    if judge is not None:
        t0 = time.perf_counter()
        llm = judge.quality([(r["text"], r["lang"], "caption") for r in rows])
        seconds = time.perf_counter() - t0
        signals["llm"] = llm
        signals["combined"] = [combined_quality(s, rs) for s, rs in zip(llm, reasons, strict=True)]
    result = {"items": len(rows), "good": sum(r["label"] for r in rows), **_aucs(rows, signals, "kind")}
    result["by_language"] = {
        lang: _aucs([r for r in rows if r["lang"] == lang], _pick(signals, rows, lang), "kind")["overall"]
        for lang in ("en", "zh")
    }
    result["llm_seconds"] = round(seconds, 1)
    return result


def _pick(signals: dict[str, list[float | None]], rows: list[dict[str, Any]], lang: str) -> dict[str, Any]:
    idx = [i for i, r in enumerate(rows) if r["lang"] == lang]
    return {n: [s[i] for i in idx] for n, s in signals.items()}


def eval_translations(judge: Judge | None, rows: list[dict[str, Any]], back: bool) -> dict[str, Any]:
    failures = [check(r["en"], r["zh"], "stop") for r in rows]
    signals: dict[str, list[float | None]] = {"rules": [0.0 if f else 1.0 for f in failures]}
    seconds = {"qe": 0.0, "back": 0.0}
    if judge is not None:
        pairs = [(r["en"], r["zh"]) for r in rows]
        t0 = time.perf_counter()
        qe = judge.translation_qe(pairs)
        seconds["qe"] = time.perf_counter() - t0
        signals["qe"] = qe
        backs: list[float | None] = [None] * len(rows)
        if back:
            t0 = time.perf_counter()
            backs = judge.back_chrf(pairs)
            seconds["back"] = time.perf_counter() - t0
            signals["back_chrf"] = backs
        signals["combined"] = [
            combined_translation(q, b, f[0] if f else None) for q, b, f in zip(qe, backs, failures, strict=True)
        ]
    result = {"items": len(rows), "good": sum(r["label"] for r in rows), **_aucs(rows, signals, "kind")}
    result["llm_seconds"] = {k: round(v, 1) for k, v in seconds.items()}
    return result


PARTS = ("captions", "translations")


def evaluate(
    judge: Judge | None, limit: int | None = None, back: bool = False, parts: tuple[str, ...] = PARTS
) -> dict[str, Any]:
    """The named parts (both by default); `judge` None scores the rules alone (no model)."""
    out: dict[str, Any] = {}
    if "captions" in parts:
        out["captions"] = eval_captions(judge, _subsample(load("captions"), limit))
    if "translations" in parts:
        out["translations"] = eval_translations(judge, _subsample(load("translations"), limit, key="pair"), back)
    if judge is not None:
        out["model"], out["scoring"] = judge.model, judge.method
        out["llm_calls"] = judge.llm_calls
    return out


def cost(judge: Judge, n: int, batch_size: int) -> dict[str, Any]:
    """Seconds per 1,000 captions for `quality` and `translation_qe` on the set's good pairs (cycled to n),
    batched and one at a time, without the cache."""
    pairs = load("translations")
    goods = [(r["en"], r["zh"]) for r in pairs if r["label"] == 1]
    items = [goods[i % len(goods)] for i in range(n)]
    # distinct texts (a cycled one would be the same request): a counter keeps them apart without changing much
    items = [(f"{en} ({i})" if i >= len(goods) else en, zh) for i, (en, zh) in enumerate(items)]
    cache, judge.cache = judge.cache, None
    out: dict[str, Any] = {"n": n, "batch_size": batch_size, "model": judge.model, "scoring": judge.method}
    try:
        for mode, size in (("batched", batch_size), ("one_at_a_time", 1)):
            judge.batch_size = size
            t0 = time.perf_counter()
            judge.quality([(en, "en", "caption") for en, _ in items])
            q = time.perf_counter() - t0
            t0 = time.perf_counter()
            judge.translation_qe(items)
            qe = time.perf_counter() - t0
            out[mode] = {
                "quality_s_per_1000": round(q / n * 1000, 1),
                "translation_qe_s_per_1000": round(qe / n * 1000, 1),
            }
        for key in ("quality_s_per_1000", "translation_qe_s_per_1000"):
            out[f"speedup_{key.split('_s_')[0]}"] = round(out["one_at_a_time"][key] / out["batched"][key], 2)
    finally:
        judge.cache, judge.batch_size = cache, batch_size
    return out
