"""Translate the English text of samples to Chinese: segment, protect, look up the cache, generate in batches,
validate, retry failures with stricter settings, restore protected spans, and record provenance.

Shared by the pipeline's `translate` stage and `dataengine translate` for annotation files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dataengine.translate import prompt
from dataengine.translate.cache import TranslationCache
from dataengine.translate.engines import Engine
from dataengine.translate.validate import ValidationConfig, check


@dataclass
class Segment:
    source: str
    context: list[str]
    protected: prompt.Protected = field(init=False)
    result: str | None = None
    failure: tuple[str, str] | None = None
    attempts: int = 0
    cached: bool = False
    qe: float | None = None  # the translation's QE rating (0-100) when the translator rates with min_qe

    def __post_init__(self) -> None:
        self.protected = prompt.protect(self.source)


@dataclass
class Outcome:
    """What happened to one sample's text."""

    caption_zh: str | None = None
    conversations_zh: list[dict[str, str]] | None = None
    status: str = "ok"  # ok | failed:<reason>
    detail: str = ""
    attempts: int = 0
    cache_hits: int = 0
    qe: float | None = None  # with min_qe: the lowest QE of the sample's texts; None if one is unrated


class Translator:
    def __init__(
        self,
        engine: Engine,
        cache: TranslationCache | None,
        *,
        glossary: dict[str, str] | None = None,
        attempts: int = 2,
        max_new_tokens: int = 384,
        temperature: float = 0.0,
        batch_size: int = 16,
        validation: ValidationConfig | None = None,
        context_turns: int = 2,
        judge: Any = None,
        min_qe: float | None = None,
    ):
        self.engine, self.cache, self.glossary = engine, cache, glossary or {}
        self.attempts, self.max_new_tokens, self.temperature = attempts, max_new_tokens, temperature
        self.batch_size, self.validation, self.context_turns = (
            batch_size,
            validation or ValidationConfig(),
            context_turns,
        )
        # with min_qe, a translation that passes validation is also rated (quality.judge.Judge.translation_qe,
        # on the same engine) and one rated below min_qe fails as `low_qe`: retried like a validation failure
        self.judge, self.min_qe = judge, min_qe
        self.llm_calls = self.prompt_tokens = self.completion_tokens = 0

    def segments_of(self, caption: str | None, conversations: list[dict[str, str]] | None) -> list[Segment]:
        if caption is not None:
            return [Segment(caption, [])]
        turns = conversations or []
        return [
            Segment(t["value"], [f"{p['from']}: {p['value']}" for p in turns[max(0, i - self.context_turns) : i]])
            for i, t in enumerate(turns)
        ]

    def translate_segments(self, segments: list[Segment]) -> None:
        """Fill `result` or `failure` on every segment, using the cache first."""
        todo = []
        for seg in segments:
            hit = self.cache.get(seg.source, accept=lambda rec, seg=seg: self._valid(seg, rec)) if self.cache else None
            if hit is not None:
                seg.result, seg.cached = seg.protected.restore(hit["output"]), True
                seg.qe = hit.get("qe") if self.min_qe is not None else None
            elif not prompt.has_words(seg.protected.text):
                seg.result = seg.source  # only tags/markup/numbers: nothing to translate
            else:
                todo.append(seg)
        # similar lengths batched together: less padding, and fewer rows left idling while the longest finishes
        todo.sort(key=lambda s: len(s.protected.text) + sum(map(len, s.context)))
        for attempt in range(1, self.attempts + 1):
            strict = attempt > 1
            for i in range(0, len(todo), self.batch_size):
                chunk = todo[i : i + self.batch_size]
                batch = [
                    prompt.messages(s.protected.text, glossary=self.glossary, context=s.context, strict=strict)
                    for s in chunk
                ]
                outs = self.engine.generate(
                    batch, max_new_tokens=self.max_new_tokens, temperature=0.0 if strict else self.temperature
                )
                self.llm_calls += len(chunk)
                passed = []
                for seg, out in zip(chunk, outs, strict=True):
                    self.prompt_tokens += out.prompt_tokens
                    self.completion_tokens += out.completion_tokens
                    seg.attempts = attempt
                    if out.error is not None:
                        seg.failure = ("request_failed", out.error)
                        continue
                    seg.failure = check(seg.protected.text, out.text, out.finish_reason, self.validation)
                    if seg.failure is None:
                        passed.append((seg, out.text.strip()))
                qe = self._qe([(seg.source, seg.protected.restore(text)) for seg, text in passed])
                for (seg, text), score in zip(passed, qe, strict=True):
                    if self.min_qe is not None and score is not None and score < self.min_qe:
                        seg.failure = ("low_qe", f"translation_qe {score:.1f} < {self.min_qe}")
                        continue
                    seg.result, seg.qe = seg.protected.restore(text), score
                    if self.cache:
                        self.cache.put(seg.source, seg.result, output=text, attempts=attempt, qe=score)
            todo = [s for s in todo if s.result is None]
            if not todo:
                break

    def _qe(self, pairs: list[tuple[str, str]]) -> list[float | None]:
        if self.judge is None or self.min_qe is None or not pairs:
            return [None] * len(pairs)
        return self.judge.translation_qe(pairs)

    def _valid(self, seg: Segment, record: dict[str, Any]) -> bool:
        """Whether a cached output passes this translator's validation (its settings may be stricter than those
        of the run that stored it); an entry without the model's output is treated as a miss, and with min_qe
        one stored without a QE at least min_qe."""
        output = record.get("output")
        if not isinstance(output, str) or check(seg.protected.text, output, "stop", self.validation) is not None:
            return False
        qe = record.get("qe")
        return self.min_qe is None or (isinstance(qe, (int, float)) and qe >= self.min_qe)

    def translate_samples(self, samples: list[dict[str, Any]]) -> list[Outcome]:
        """One Outcome per sample ({caption} or {conversations}), segments of all samples batched together."""
        per_sample = [self.segments_of(s.get("caption"), s.get("conversations")) for s in samples]
        self.translate_segments([seg for segs in per_sample for seg in segs])
        outcomes = []
        for sample, segs in zip(samples, per_sample, strict=True):
            # with min_qe every segment with words was rated; one the judge could not rate leaves the sample unrated
            rated = [s.qe for s in segs if prompt.has_words(s.protected.text)]
            scores = [q for q in rated if q is not None]
            out = Outcome(
                attempts=max((s.attempts for s in segs), default=0),
                cache_hits=sum(s.cached for s in segs),
                qe=min(scores) if scores and len(scores) == len(rated) else None,
            )
            failed = next((s for s in segs if s.result is None), None)
            if failed is not None:
                reason, detail = failed.failure or ("no_output", "")
                out.status, out.detail = f"failed:{reason}", f"{detail} | source: {failed.source[:120]}"
            elif sample.get("caption") is not None:
                out.caption_zh = segs[0].result
            else:
                out.conversations_zh = [
                    {"from": t["from"], "value": s.result} for t, s in zip(sample["conversations"], segs, strict=True)
                ]
            outcomes.append(out)
        return outcomes
