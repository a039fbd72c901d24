"""`dataengine eval translation`: translate English sentences of a parallel EN/ZH set (the HSK sentences
package) and score against the reference Chinese with sacreBLEU: BLEU (zh tokenizer) and chrF."""

from __future__ import annotations

import random
from typing import Any

from dataengine.translate.translator import Translator


def hsk_pairs(n: int, seed: int = 0, min_level: int = 4) -> list[tuple[str, str]]:
    """n (English, Chinese) pairs from HSK levels >= min_level, sampled deterministically."""
    from hsk_sentences_audio import load_sentences

    pairs = [
        (s["translation"]["en"], s["chinese"])
        for s in load_sentences()
        if int(s.get("hsk_level") or 0) >= min_level and s.get("translation", {}).get("en")
    ]
    # 80 pairs in the package carry a stub instead of English ("placeholder-p1"...): nothing to score against
    pairs = [(en.strip(), zh) for en, zh in pairs if not en.strip().lower().startswith("placeholder")]
    random.Random(seed).shuffle(pairs)
    return pairs[:n]


def evaluate(translator: Translator, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    import sacrebleu

    outs = translator.translate_samples([{"caption": en} for en, _ in pairs])
    hyps = [o.caption_zh or "" for o in outs]
    refs = [zh for _, zh in pairs]
    return {
        "sentences": len(pairs),
        "bleu_zh": round(sacrebleu.corpus_bleu(hyps, [refs], tokenize="zh").score, 2),
        "chrf": round(sacrebleu.corpus_chrf(hyps, [refs]).score, 2),
        "validated": sum(o.status == "ok" for o in outs),
        "examples": [{"en": en, "ref": zh, "hyp": h} for (en, zh), h in list(zip(pairs, hyps, strict=True))[:5]],
    }
