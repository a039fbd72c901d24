"""The `translate` stage: English captions and conversation turns to Simplified Chinese, English kept.

Runs on an actor pool (the model loads once per actor). Chinese samples pass untouched; other allowed
languages are marked skipped. A sample whose translation still fails validation after the retries is
rejected with the reason, or kept English-only and flagged, as `on_failure` says.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import pyarrow as pa
from pydantic import Field, model_validator

from dataengine.core.config import Compute, Strict
from dataengine.core.metrics import StageMetrics
from dataengine.core.rows import reject, to_table
from dataengine.ops.base import BatchStage, DatasetStage, RunContext, Stage, StageConfig

STAGE = "translate"


class ValidationSettings(Strict):
    min_cjk_share: float = Field(0.3, ge=0, le=1)
    min_length_ratio: float = Field(0.1, ge=0)
    max_length_ratio: float = Field(1.6, gt=0)


class TranslateConfig(StageConfig):
    needs = frozenset({"language"})
    actors_only = True  # a model or client per worker

    op: Literal["translate"] = "translate"
    engine: Literal["transformers", "openai", "vllm"] = "transformers"
    model: str = Field(
        "demo-translator",
        description="registered name, local HF folder or .gguf file; for openai: the served model name",
    )
    base_url: str = Field("http://127.0.0.1:8000/v1", description="openai engine: server base URL")
    api_key_env: str | None = Field(None, description="openai engine: environment variable holding the API key")
    concurrency: int = Field(8, ge=1, description="openai engine: requests in flight per actor")
    trust_remote_code: bool = False
    num_threads: int | None = Field(
        None,
        ge=1,
        description="transformers engine: torch threads per actor (Ray sets one per reserved CPU otherwise)",
    )
    prefix_cache: bool = Field(
        True, description="transformers engine: compute the shared system prompt's KV cache once and reuse it"
    )
    onednn: bool = Field(
        True, description="transformers engine on CPU: run float32 linear layers on oneDNN (faster, batched)"
    )
    glossary: dict[str, str] = Field(default_factory=dict, description="English term -> required Chinese")
    attempts: int = Field(2, ge=1, le=5, description="tries per segment; retries use a stricter prompt, greedy")
    max_new_tokens: int = Field(384, ge=8)
    temperature: float = Field(0.0, ge=0)
    on_failure: Literal["reject", "keep_english"] = "reject"
    min_qe: float | None = Field(
        None,
        ge=0,
        le=100,
        description="transformers/openai engines: rate each validated translation with the quality stage's QE "
        "prompt on the same engine; below this it fails as low_qe and is retried like a validation failure",
    )
    validation: ValidationSettings = ValidationSettings()
    vllm_max_model_len: int = Field(4096, ge=256, description="vllm engine: context length")
    vllm_accelerator_type: str | None = Field(None, description="vllm engine: e.g. H100, L40S")
    vllm_engine_kwargs: dict[str, Any] = Field(default_factory=dict, description="vllm engine: extra vLLM args")
    batch_size: int = Field(
        16, ge=1, description="samples per Ray Data batch and segments per engine call (CPU: 16 rows cost as 8)"
    )
    compute: Compute = Compute(kind="actors", size=1)

    @model_validator(mode="after")
    def _qe_engine(self) -> TranslateConfig:
        if self.min_qe is not None and self.engine == "vllm":
            raise ValueError("translate.min_qe: not with the vllm engine yet (use openai against a vLLM server)")
        return self

    def variant(self) -> type[Stage] | None:
        return VllmTranslate if self.engine == "vllm" else None


class Translate(BatchStage):
    """Builds the engine and cache once per actor, then translates batches of working rows."""

    name = STAGE
    Config = TranslateConfig

    def setup(self) -> None:
        from dataengine.translate.cache import TranslationCache
        from dataengine.translate.engines import build_engine
        from dataengine.translate.prompt import PROMPT_VERSION, glossary_hash
        from dataengine.translate.translator import Translator
        from dataengine.translate.validate import ValidationConfig

        assert self.ctx is not None, "the translate stage reads models and its cache from the run's data root"
        cfg: TranslateConfig = self.config  # type: ignore[assignment]
        self.cfg, storage = cfg, self.ctx.storage
        options: dict[str, Any] = {"model": cfg.model}
        if cfg.engine == "openai":
            api_key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
            options.update(base_url=cfg.base_url, api_key=api_key, concurrency=cfg.concurrency)
        else:
            options.update(
                storage=storage,
                trust_remote_code=cfg.trust_remote_code,
                num_threads=cfg.num_threads,
                prefix_cache=cfg.prefix_cache,
                onednn=cfg.onednn,
            )
        self.engine = build_engine(cfg.engine, **options)
        cache = TranslationCache(storage, self.engine, PROMPT_VERSION, glossary_hash(cfg.glossary))
        self.prompt_version = PROMPT_VERSION
        self.translator = Translator(
            self.engine,
            cache,
            glossary=cfg.glossary,
            attempts=cfg.attempts,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            batch_size=cfg.batch_size,
            validation=ValidationConfig(**cfg.validation.model_dump()),
            judge=self._judge() if cfg.min_qe is not None else None,
            min_qe=cfg.min_qe,
        )
        self.metrics = StageMetrics(self.ctx.stage_labels(self.name))

    def _judge(self) -> Any:
        from dataengine.quality.judge import Judge, ScoreCache

        assert self.ctx is not None
        return Judge(self.engine, ScoreCache(self.ctx.storage, self.engine), batch_size=self.cfg.batch_size)

    def _usage(self) -> dict[str, int]:
        """The translator's running totals (tokens, engine requests, cache look-ups) in this actor."""
        t, cache = self.translator, self.translator.cache
        hits, misses = (cache.hits, cache.misses) if cache else (0, 0)
        return {
            "prompt": t.prompt_tokens,
            "generated": t.completion_tokens,
            "requests": t.llm_calls,
            "hits": hits,
            "lookups": hits + misses,
        }

    def process_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        before = self._usage()
        out = self._translate(rows)
        used = {k: v - before[k] for k, v in self._usage().items()}
        m = self.metrics
        m.inc("dataengine_translate_tokens", used["prompt"], kind="prompt")
        m.inc("dataengine_translate_tokens", used["generated"], kind="generated")
        m.inc("dataengine_translate_requests", used["requests"])
        m.inc("dataengine_translate_cache_lookups", used["lookups"])
        m.inc("dataengine_translate_cache_hits", used["hits"])
        return out

    def _translate(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        todo = [r for r in rows if r["language"] == "en" and r["caption_zh"] is None]
        for r in rows:
            if r["language"] != "en":
                r["translation_status"] = "source_zh" if r["language"] == "zh" else "skipped_language"
            elif r["caption_zh"] is not None:  # bilingual source: its Chinese is kept
                r["translation_status"] = "source_bilingual"
        for row, out in zip(todo, self.translator.translate_samples(todo), strict=True):
            row.update(
                translation_model=self.engine.model,
                translation_engine=self.engine.name,
                translation_prompt=self.prompt_version,
                translation_attempts=out.attempts,
                translation_status=out.status,
                translation_cache_hits=out.cache_hits,
            )
            if out.status == "ok":
                row["caption_zh"], row["conversations_zh"] = out.caption_zh, out.conversations_zh
                if out.qe is not None:  # rated with min_qe: the lowest rating of the sample's translated texts
                    row["translation_qe"] = out.qe
            elif self.cfg.on_failure == "reject":
                reject(row, STAGE, "translation_" + out.status.split(":", 1)[1], out.detail)
        return rows


def _apply_vllm(batch: pa.Table, config: dict[str, Any], model: str) -> pa.Table:
    """Joined rows (+ vllm_texts/ks/status/detail) -> working rows with translations, provenance or rejects."""
    from dataengine.translate.prompt import PROMPT_VERSION
    from dataengine.translate.vllm import needs_model, source_texts

    cfg = TranslateConfig.model_validate(config)
    rows = batch.to_pylist()
    for r in rows:
        status, texts, ks = r.pop("vllm_status", None), r.pop("vllm_texts", None), r.pop("vllm_ks", None)
        detail = r.pop("vllm_detail", None)
        if r["reason"] is not None:
            continue
        if r["language"] != "en":
            r["translation_status"] = "source_zh" if r["language"] == "zh" else "skipped_language"
            continue
        if r["caption_zh"] is not None:  # bilingual source: its Chinese is kept, as on the other engines' path
            r["translation_status"] = "source_bilingual"
            continue
        source = source_texts(r)
        sent = any(needs_model(t) for t in source)
        if not sent:  # only tags, markup or numbers: nothing went to the model, the text is its own translation
            status, texts, ks = "ok", [], []
        r.update(
            translation_model=model,
            translation_engine="vllm",
            translation_prompt=PROMPT_VERSION,
            translation_attempts=int(sent),
            translation_status=status or "failed:missing_output",
            translation_cache_hits=0,
        )
        if status == "ok":
            zh = dict(zip(ks, texts, strict=True))
            translated = [zh.get(k, text) for k, text in enumerate(source)]
            if r["caption"] is not None:
                r["caption_zh"] = translated[0]
            else:
                r["conversations_zh"] = [
                    {"from": t["from"], "value": v} for t, v in zip(r["conversations"], translated, strict=True)
                ]
        elif cfg.on_failure == "reject":
            reject(r, STAGE, "translation_" + r["translation_status"].split(":", 1)[1], detail or "")
    return to_table(rows)


class VllmTranslate(DatasetStage):
    """The vLLM engine (GPU clusters) as a dataset stage: Ray Data LLM's processor runs its own engine actors."""

    name = STAGE
    Config = TranslateConfig

    @classmethod
    def attach(cls, ds: Any, config: StageConfig, ctx: RunContext) -> Any:
        return translate_with_vllm(ds, config, ctx.storage)  # type: ignore[arg-type]


def translate_with_vllm(ds: Any, cfg: TranslateConfig, storage: str) -> Any:
    """Dataset-level vLLM path: segments -> Ray Data LLM processor -> regroup -> join back. The join shuffles the
    run's rows through Ray Data's hash join (memory grows with the run: not yet streamed like dedup)."""
    from dataengine.models import ModelError, resolve_model
    from dataengine.translate import vllm

    try:
        path = resolve_model(cfg.model, storage).path
    except ModelError:
        path = cfg.model  # a path or model id the GPU workers can load themselves
    segs = ds.flat_map(
        vllm.segment_rows,
        fn_kwargs={"glossary": cfg.glossary, "max_new_tokens": cfg.max_new_tokens, "temperature": cfg.temperature},
    )
    return attach_translations(ds, vllm.build_processor(cfg, path)(segs), cfg)


def attach_translations(ds: Any, results: Any, cfg: TranslateConfig) -> Any:
    """Validated segment results -> one row per sample -> left-joined onto the working rows and applied."""
    from dataengine.translate import vllm

    per_sample = results.groupby("id").map_groups(
        lambda t: pa.Table.from_pylist([vllm.assemble(t.to_pylist())], schema=vllm.RESULT_SCHEMA),
        batch_format="pyarrow",
    )
    joined = ds.join(per_sample, join_type="left_outer", num_partitions=8, on=("id",))
    return joined.map_batches(
        _apply_vllm, fn_kwargs={"config": cfg.model_dump(), "model": cfg.model}, batch_format="pyarrow"
    )
