"""`dataengine bench translate`: captions/s and generated tokens/s of the transformers engine, batched vs one
at a time (same loaded model, same captions, one run), then a cached re-run (expected: zero LLM calls)."""

from __future__ import annotations

import statistics
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


# label -> (batch size or None for the given one, prefix cache, drop finished rows, oneDNN linear layers)
DEFAULTS = {"batched": (None, True, True, True), "one_at_a_time": (1, True, True, True)}
ABLATION = {
    "batched_keep_finished_rows": (None, True, False, True),
    "batched_no_prefix_cache": (None, False, True, True),
    "one_at_a_time_no_prefix_cache": (1, False, True, True),
    "batched_no_onednn": (None, True, True, False),
    "one_at_a_time_no_onednn": (1, True, True, False),
}


def run(
    model: str,
    storage: str | None,
    n: int,
    batch_size: int,
    max_new_tokens: int,
    ablation: bool = True,
    repeats: int = 1,
) -> dict[str, Any]:
    """Batched vs one at a time with the engine's defaults (the target figure), `repeats` times in turn (shared
    machines are noisy: each mode's wall is the median, and each repeat's ratio is kept); with `ablation`, the
    same once with one optimisation off at a time (finished rows kept in the batch, no prefix cache, default BLAS
    instead of oneDNN: a second engine), to show what each adds."""
    t0 = time.perf_counter()
    engines = {True: TransformersEngine(model, storage=storage)}
    load_s = time.perf_counter() - t0
    samples = [{"caption": c} for c in sample_captions(n)]
    result: dict[str, Any] = {"model": engines[True].model, "captions": n, "load_s": round(load_s, 1)}
    walls: dict[str, float] = {}
    runs: dict[str, list[float]] = {}
    texts: dict[str, list[str | None]] = {}
    plan = [*list(DEFAULTS.items()) * repeats, *(ABLATION.items() if ablation else [])]
    for label, (bs, prefix_cache, drop_finished, onednn) in plan:
        if onednn not in engines:
            engines[onednn] = TransformersEngine(model, storage=storage, onednn=onednn)
        engine = engines[onednn]
        engine.prefix_cache, engine.drop_finished = prefix_cache, drop_finished
        steps = engine.row_steps
        tr = Translator(engine, None, batch_size=bs or batch_size, attempts=1, max_new_tokens=max_new_tokens)
        t0 = time.perf_counter()
        outs = tr.translate_samples(samples)
        runs.setdefault(label, []).append(time.perf_counter() - t0)
        wall = walls[label] = statistics.median(runs[label])
        texts[label] = [o.caption_zh for o in outs]
        result[label] = {
            "batch_size": bs or batch_size,
            "prefix_cache": prefix_cache,
            "drop_finished_rows": drop_finished,
            "onednn": onednn and engine.onednn_linears > 0,
            "decoded_row_tokens": engine.row_steps - steps,
            "wall_s": round(wall, 1),
            "wall_s_runs": [round(w, 1) for w in runs[label]],
            "captions_per_s": round(n / wall, 3),
            "generated_tokens_per_s": round(tr.completion_tokens / wall, 2),
            "generated_tokens": tr.completion_tokens,
            "prompt_tokens": tr.prompt_tokens,
            "validated": sum(o.status == "ok" for o in outs),
            "same_translations_as_batched": texts[label] == texts["batched"],
        }
    engine = engines[True]
    engine.prefix_cache, engine.drop_finished = True, True
    result["batching_speedup"] = round(walls["one_at_a_time"] / walls["batched"], 2)
    result["batching_speedup_runs"] = [
        round(one / batched, 2) for batched, one in zip(runs["batched"], runs["one_at_a_time"], strict=True)
    ]
    if ablation:
        for off in ("no_prefix_cache", "no_onednn"):
            result[f"batching_speedup_{off}"] = round(walls[f"one_at_a_time_{off}"] / walls[f"batched_{off}"], 2)
        result["batching_speedup_keep_finished_rows"] = round(
            walls["one_at_a_time"] / walls["batched_keep_finished_rows"], 2
        )
        result["batched_vs_one_at_a_time_no_onednn"] = round(walls["one_at_a_time_no_onednn"] / walls["batched"], 2)
    with tempfile.TemporaryDirectory() as cache_root:
        calls = []
        for _ in range(2):
            cache = TranslationCache(cache_root, engine, PROMPT_VERSION, "none")
            tr = Translator(engine, cache, batch_size=batch_size, max_new_tokens=max_new_tokens)
            tr.translate_samples(samples)
            calls.append({"llm_calls": tr.llm_calls, "cache_hits": cache.hits})
    result["cache_first_run"], result["cache_second_run"] = calls
    return result
