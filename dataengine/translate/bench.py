"""`dataengine bench translate`: captions/s and generated tokens/s of the transformers engine, batched vs one
at a time (same loaded model, same captions, one run), then a cached re-run (expected: zero LLM calls)."""

from __future__ import annotations

import tempfile
import time
from typing import Any

from dataengine.translate.cache import TranslationCache
from dataengine.translate.engines.hf import TransformersEngine
from dataengine.translate.prompt import PROMPT_VERSION
from dataengine.translate.translator import Translator


def sample_captions(n: int) -> list[str]:
    """The sample dataset's hand-written English photo captions (real, varied lengths), cycled to n."""
    from dataengine.sample_data.common import PHOTOS

    captions = [en for _, _, _, en, _ in PHOTOS]
    return [captions[i % len(captions)] for i in range(n)]


def run(
    model: str, storage: str | None, n: int, batch_size: int, max_new_tokens: int, prefix_ablation: bool = True
) -> dict[str, Any]:
    """Batched vs one at a time with the engine's defaults (the target figure); with `prefix_ablation`, the
    same two again with the system prompt's KV cache off, to show what prefix caching adds."""
    t0 = time.perf_counter()
    engine = TransformersEngine(model, storage=storage)
    load_s = time.perf_counter() - t0
    captions = sample_captions(n)
    samples = [{"caption": c} for c in captions]
    result: dict[str, Any] = {"model": engine.model, "captions": n, "load_s": round(load_s, 1)}
    modes = [("batched", batch_size, True), ("one_at_a_time", 1, True)]
    if prefix_ablation:
        modes += [("batched_no_prefix_cache", batch_size, False), ("one_at_a_time_no_prefix_cache", 1, False)]
    walls: dict[str, float] = {}
    for label, bs, prefix_cache in modes:
        engine.prefix_cache = prefix_cache
        tr = Translator(engine, None, batch_size=bs, attempts=1, max_new_tokens=max_new_tokens)
        t0 = time.perf_counter()
        outs = tr.translate_samples(samples)
        wall = walls[label] = time.perf_counter() - t0
        result[label] = {
            "batch_size": bs,
            "prefix_cache": prefix_cache,
            "wall_s": round(wall, 1),
            "captions_per_s": round(n / wall, 3),
            "generated_tokens_per_s": round(tr.completion_tokens / wall, 2),
            "generated_tokens": tr.completion_tokens,
            "prompt_tokens": tr.prompt_tokens,
            "validated": sum(o.status == "ok" for o in outs),
        }
    engine.prefix_cache = True
    result["batching_speedup"] = round(walls["one_at_a_time"] / walls["batched"], 2)
    if prefix_ablation:
        plain = walls["one_at_a_time_no_prefix_cache"]
        result["batching_speedup_no_prefix_cache"] = round(plain / walls["batched_no_prefix_cache"], 2)
        result["batched_vs_plain_one_at_a_time"] = round(plain / walls["batched"], 2)
    with tempfile.TemporaryDirectory() as cache_root:
        calls = []
        for _ in range(2):
            cache = TranslationCache(cache_root, engine.model, PROMPT_VERSION, "none")
            tr = Translator(engine, cache, batch_size=batch_size, max_new_tokens=max_new_tokens)
            tr.translate_samples(samples)
            calls.append({"llm_calls": tr.llm_calls, "cache_hits": cache.hits})
    result["cache_first_run"], result["cache_second_run"] = calls
    return result
