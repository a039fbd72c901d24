"""The `vllm` engine: Ray Data LLM batch inference on GPU workers (`ray.data.llm.build_processor` with a
`vLLMEngineProcessorConfig`). Thin by design: this module only translates our stage config into Ray's
processor config and maps rows in and out; vLLM itself is the `gpu` extra and is never imported on CPU
machines. NOT VERIFIED here (no GPU, no vLLM): tests cover the config translation and the row mapping.

Dataset-level flow used by the runner: explode English samples into segments -> processor -> validate ->
regroup per sample -> join back. Unlike the transformers/openai engines there is one attempt (no stricter
retry) and no cache lookup on this path; failed samples follow `on_failure` as elsewhere.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from dataengine.translate import prompt
from dataengine.translate.validate import ValidationConfig, check


def placement(cfg: Any) -> dict[str, Any] | None:
    """The stage's custom resources (e.g. {gpu_worker: 0.001}) as a placement bundle per vLLM worker, so the
    engine replicas land on the node type that carries them; None (Ray's default bundles) without any."""
    res = cfg.resources
    if not res.custom:
        return None
    # one bundle per engine worker (tensor x pipeline parallel ranks): a whole GPU unless the stage says otherwise
    return {"bundle_per_worker": {"CPU": res.num_cpus, "GPU": res.num_gpus or 1.0, **res.custom}}


def processor_config(cfg: Any, model_path: str) -> Any:
    """Our TranslateConfig -> Ray's vLLMEngineProcessorConfig (custom resources go in its placement bundles)."""
    from ray.data.llm import vLLMEngineProcessorConfig

    return vLLMEngineProcessorConfig(
        model_source=model_path,
        engine_kwargs={
            "trust_remote_code": cfg.trust_remote_code,
            "max_model_len": cfg.vllm_max_model_len,
            "enable_prefix_caching": cfg.prefix_cache,  # every request shares the system prompt
            **cfg.vllm_engine_kwargs,
        },
        concurrency=cfg.compute.size or 1,
        batch_size=cfg.batch_size,
        accelerator_type=cfg.vllm_accelerator_type,
        placement_group_config=placement(cfg),
    )


def needs_model(text: str) -> bool:
    """Whether a segment has words to translate; one of only tags, markup or numbers is kept as it is (as the
    Translator does), never sent to the model."""
    return prompt.has_words(prompt.protect(text).text)


def source_texts(row: dict[str, Any]) -> list[str]:
    """A sample's English segments: its caption, or each conversation turn."""
    if row.get("caption") is not None:
        return [row["caption"]]
    return [t["value"] for t in row.get("conversations") or []]


def segment_rows(
    row: dict[str, Any], glossary: dict[str, str], max_new_tokens: int, temperature: float
) -> list[dict[str, Any]]:
    """One accepted English sample with no Chinese of its own -> one processor input row per segment that needs
    the model (`k` its index among the sample's segments, `n` how many are sent)."""
    if row.get("reason") is not None or row.get("language") != "en" or row.get("caption_zh") is not None:
        return []
    texts = source_texts(row)
    turns = row.get("conversations") or []
    contexts = [[]] if row.get("caption") is not None else [
        [f"{p['from']}: {p['value']}" for p in turns[max(0, i - 2) : i]] for i in range(len(turns))
    ]  # fmt: skip
    sent = [k for k, text in enumerate(texts) if needs_model(text)]
    out = []
    for k in sent:
        text, ctx = texts[k], contexts[k]
        p = prompt.protect(text)
        out.append(
            {
                "id": row["id"],
                "k": k,
                "n": len(sent),
                "protected": p.text,
                "spans": json.dumps([p.prefix, p.suffix, *p.spans]),
                "messages": prompt.messages(p.text, glossary=glossary, context=ctx),
                "sampling_params": {"temperature": temperature, "max_tokens": max_new_tokens},
            }
        )
    return out


def checked(row: dict[str, Any], validation: dict[str, float]) -> dict[str, Any]:
    """Processor output row -> validated segment result."""
    text = (row.get("generated_text") or "").strip()
    finish = "length" if row.get("num_generated_tokens", 0) >= row["sampling_params"]["max_tokens"] else "stop"
    failure = check(row["protected"], text, finish, ValidationConfig(**validation))
    prefix, suffix, *spans = json.loads(row["spans"])
    restored = prompt.Protected(row["protected"], spans, prefix, suffix).restore(text)
    return {
        "id": row["id"],
        "k": row["k"],
        "n": row["n"],
        "text": None if failure else restored,
        "failure": None if failure is None else f"{failure[0]}|{failure[1]}",
    }


def assemble(segments: list[dict[str, Any]]) -> dict[str, Any]:
    """All segment results of one sample -> its translations (in order, `ks` their segment indices) or the
    first failure."""
    segments = sorted(segments, key=lambda s: s["k"])
    failed = next((s for s in segments if s["failure"]), None)
    if failed is None and len(segments) != segments[0]["n"]:
        failed = {"failure": f"missing_output|{len(segments)} of {segments[0]['n']} segments came back"}
    if failed:
        reason, _, detail = failed["failure"].partition("|")
        return result(segments[0]["id"], None, None, f"failed:{reason}", detail)
    return result(segments[0]["id"], [s["text"] for s in segments], [s["k"] for s in segments], "ok", "")


# the per-sample columns joined onto the working rows: prefixed, so none collides with a working column
RESULT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("vllm_texts", pa.list_(pa.string())),
        ("vllm_ks", pa.list_(pa.int64())),
        ("vllm_status", pa.string()),
        ("vllm_detail", pa.string()),
    ]
)


def result(sid: str, texts: list[str] | None, ks: list[int] | None, status: str, detail: str) -> dict[str, Any]:
    return {"id": sid, "vllm_texts": texts, "vllm_ks": ks, "vllm_status": status, "vllm_detail": detail}


def build_processor(cfg: Any, model_path: str) -> Any:
    """The Ray Data LLM processor for our segment rows."""
    from ray.data import llm

    validation = cfg.validation.model_dump()
    keep = ("id", "k", "n", "protected", "spans", "sampling_params")
    return llm.build_processor(
        processor_config(cfg, model_path),
        preprocess=lambda row: {**{k: row[k] for k in keep}, "messages": row["messages"]},
        postprocess=lambda row: checked(row, validation),
    )
