"""The `quality` stage: an LLM rates each sample's text 0-10 against a versioned rubric, in the text's language
(`quality_en`, `quality_zh`: the caption, or a conversation's answer turns), and how well a translation says
what its English says (`translation_qe`, 0-100), optionally confirmed by a back-translation scored with chrF
(`translation_chrf`). It only scores; `filter` rejects on `min_quality_en|zh` and `min_translation_qe`.

The engines are the translate stage's (transformers in process, any OpenAI-compatible server), built once per
actor; scores are cached under `<storage>/cache/quality/` (dataengine/quality/judge.py).
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import Field

from dataengine.core.config import Compute
from dataengine.core.metrics import StageMetrics
from dataengine.core.rows import texts_of
from dataengine.ops.base import BatchStage, StageConfig

STAGE = "quality"


class QualityConfig(StageConfig):
    needs = frozenset({"language"})
    actors_only = True  # a model or client per worker

    op: Literal["quality"] = "quality"
    engine: Literal["transformers", "openai"] = "transformers"
    model: str = Field(
        "demo-translator",
        description="registered name, local HF folder or .gguf file; for openai: the served model name",
    )
    base_url: str = Field("http://127.0.0.1:8000/v1", description="openai engine: server base URL")
    api_key_env: str | None = Field(None, description="openai engine: environment variable holding the API key")
    concurrency: int = Field(8, ge=1, description="openai engine: requests in flight per actor")
    trust_remote_code: bool = False
    num_threads: int | None = Field(None, ge=1, description="transformers engine: torch threads per actor")
    prefix_cache: bool = Field(True, description="transformers engine: reuse the rubric's KV cache")
    onednn: bool = Field(True, description="transformers engine on CPU: float32 linear layers on oneDNN")
    scoring: Literal["auto", "logits", "text"] = Field(
        "auto",
        description="logits: expected score from next-token probabilities (transformers in process; openai: the "
        "server's top_logprobs, as vLLM serves them); text: parse the answer; auto: logits with transformers, "
        "text on a server",
    )
    text_quality: bool = Field(True, description="rate the caption/answers in each language (quality_en/zh)")
    translation_qe: bool = Field(True, description="rate each English/Chinese pair (translation_qe)")
    back_translation: bool = Field(
        False, description="also translate the Chinese back and score it against the English (translation_chrf)"
    )
    batch_size: int = Field(16, ge=1, description="samples per Ray Data batch and texts per engine call")
    compute: Compute = Compute(kind="actors", size=1)


def judge_for(cfg: Any, storage: str | None, batch_size: int | None = None) -> Any:
    """A Judge on the engine a stage or command config names, with the quality cache."""
    from dataengine.quality.judge import Judge, ScoreCache
    from dataengine.translate.engines import build_engine

    options: dict[str, Any] = {"model": cfg.model}
    if cfg.engine == "openai":
        api_key = os.environ.get(cfg.api_key_env) if getattr(cfg, "api_key_env", None) else None
        options.update(base_url=cfg.base_url, api_key=api_key, concurrency=getattr(cfg, "concurrency", 8))
    else:
        options.update(
            storage=storage,
            trust_remote_code=getattr(cfg, "trust_remote_code", False),
            num_threads=getattr(cfg, "num_threads", None),
            prefix_cache=getattr(cfg, "prefix_cache", True),
            onednn=getattr(cfg, "onednn", True),
        )
    engine = build_engine(cfg.engine, **options)
    return Judge(engine, ScoreCache(storage, engine), batch_size=batch_size or cfg.batch_size, scoring=cfg.scoring)


def kind_of(row: dict[str, Any]) -> str:
    return "caption" if row.get("caption") is not None else "answer"


class Quality(BatchStage):
    """Scores a batch's texts in three engine passes (English, Chinese, pairs), each cache first."""

    name = STAGE
    Config = QualityConfig

    def setup(self) -> None:
        from dataengine.quality.judge import RUBRIC_VERSION

        assert self.ctx is not None, "the quality stage reads models and its cache from the run's data root"
        self.cfg: QualityConfig = self.config  # type: ignore[assignment]
        self.judge = judge_for(self.cfg, self.ctx.storage)
        self.rubric = RUBRIC_VERSION
        self.metrics = StageMetrics(self.ctx.stage_labels(self.name))

    def process_batch(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        calls, cache = self.judge.llm_calls, self.judge.cache
        hits = cache.hits if cache else 0
        score_rows(rows, self.judge, self.cfg, self.rubric)
        self.metrics.inc("dataengine_quality_requests", self.judge.llm_calls - calls)
        self.metrics.inc("dataengine_quality_cache_hits", (cache.hits if cache else 0) - hits)
        return rows


def score_rows(rows: list[dict[str, Any]], judge: Any, cfg: Any, rubric: str) -> None:
    """Set quality_en/zh, translation_qe (and translation_chrf) and the provenance on working rows in place."""
    texts = [texts_of(r) for r in rows]
    for lang in ("en", "zh"):
        at = [i for i, t in enumerate(texts) if t[lang]] if cfg.text_quality else []
        scores = judge.quality([(texts[i][lang], lang, kind_of(rows[i])) for i in at])
        for i, s in zip(at, scores, strict=True):
            rows[i][f"quality_{lang}"] = s
    pairs = [i for i, t in enumerate(texts) if t["en"] and t["zh"]]
    if cfg.translation_qe and pairs:
        for i, s in zip(pairs, judge.translation_qe([(texts[i]["en"], texts[i]["zh"]) for i in pairs]), strict=True):
            rows[i]["translation_qe"] = s
    if cfg.back_translation and pairs:
        for i, s in zip(pairs, judge.back_chrf([(texts[i]["en"], texts[i]["zh"]) for i in pairs]), strict=True):
            rows[i]["translation_chrf"] = s
    for r in rows:
        r["quality_model"], r["quality_rubric"] = judge.model, rubric
