"""The `filter` stage: drop scored samples by policy, each reject carrying its scores and the rule it broke.

Policies (any combination): absolute thresholds on match/log-likelihood per language, a limit on
translation drift (match_en - match_zh), thresholds on the quality stage's LLM ratings (quality_en/zh,
translation_qe), and keep-the-top-fraction by a score (DataComp style). The top
fraction needs every score first, so with it the stage is a signature stage (`TopFraction`): the scored rows
are spilled once, the cut-off is computed over the surviving samples' scores (the signature: three numbers a
row) by histogram passes that hold 65,536 counts on the driver, and the spilled rows stream through the filter
with it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, model_validator

from dataengine.core.rows import Reject, to_table
from dataengine.ops.base import RowStage, RunContext, SignatureStage, Stage, StageConfig

STAGE = "filter"


class FilterConfig(StageConfig):
    op: Literal["filter"] = "filter"
    min_match_en: float | None = Field(None, ge=0, le=1)
    min_match_zh: float | None = Field(None, ge=0, le=1)
    min_loglik_en: float | None = None
    min_loglik_zh: float | None = None
    max_drift: float | None = Field(None, ge=0, le=1, description="reject when match_en - match_zh exceeds it")
    min_quality_en: float | None = Field(None, ge=0, le=10, description="quality stage: LLM rating of the English")
    min_quality_zh: float | None = Field(None, ge=0, le=10, description="quality stage: LLM rating of the Chinese")
    min_translation_qe: float | None = Field(
        None, ge=0, le=100, description="translation QE: the quality stage's, or translate's min_qe rating"
    )
    keep_top_fraction: float | None = Field(None, gt=0, le=1, description="keep this fraction, best first")
    top_by: Literal["match_en", "match_zh", "match_min", "match_mean"] = "match_mean"
    missing: Literal["keep", "reject"] = Field("keep", description="a sample lacking the score a rule needs")
    cutoff: float | None = Field(None, description="computed from keep_top_fraction; not for YAML")

    @model_validator(mode="after")
    def _some_rule(self) -> FilterConfig:
        if not self._score_rules() and not self._quality_rules():
            raise ValueError("filter: set at least one rule (min_*, max_drift or keep_top_fraction)")
        return self

    def _score_rules(self) -> bool:
        rules = (self.min_match_en, self.min_match_zh, self.min_loglik_en, self.min_loglik_zh, self.max_drift)
        return any(r is not None for r in rules) or self.keep_top_fraction is not None

    def _quality_rules(self) -> bool:
        return any(r is not None for r in (self.min_quality_en, self.min_quality_zh, self.min_translation_qe))

    @property
    def needs(self) -> frozenset[str]:  # type: ignore[override]
        """The stages whose columns the configured rules read: `score` for match/loglik/drift/top fraction,
        `quality` for the LLM ratings."""
        return frozenset({"score"} if self._score_rules() else ()) | frozenset(
            {"quality"} if self._quality_rules() else ()
        )

    def variant(self) -> type[Stage] | None:
        return TopFraction if self.keep_top_fraction is not None and self.cutoff is None else None


def top_value(row: dict[str, Any], by: str) -> float | None:
    """The score `keep_top_fraction` ranks by; None when the sample lacks it."""
    en, zh = row.get("match_en"), row.get("match_zh")
    if by in ("match_en", "match_zh"):
        return row.get(by)
    present = [v for v in (en, zh) if v is not None]
    if not present:
        return None
    return min(present) if by == "match_min" else sum(present) / len(present)


def _fmt(row: dict[str, Any]) -> str:
    keys = (
        "match_en",
        "match_zh",
        "loglik_en",
        "loglik_zh",
        "translation_drift",
        "quality_en",
        "quality_zh",
        "translation_qe",
    )
    return ", ".join(f"{k}={row[k]:.4f}" for k in keys if row.get(k) is not None)


class ScoreFilter(RowStage):
    """Reject by the first rule a sample breaks; reason names the rule, detail gives the numbers."""

    name = STAGE
    Config: ClassVar[type[StageConfig]] = FilterConfig

    def _check(self, row: dict[str, Any], value: float | None, limit: float | None, reason: str, below: bool) -> None:
        if limit is None:
            return
        if value is None:
            if self.config.missing == "reject":
                raise Reject(f"missing_{reason.split('_', 1)[1]}", f"no score for this rule; {_fmt(row)}")
            return
        if (value < limit) if below else (value > limit):
            raise Reject(reason, f"{'<' if below else '>'} {limit}: {_fmt(row)}")

    def process(self, row: dict[str, Any]) -> dict[str, Any]:
        c: FilterConfig = self.config  # type: ignore[assignment]
        self._check(row, row.get("match_en"), c.min_match_en, "low_match_en", True)
        self._check(row, row.get("match_zh"), c.min_match_zh, "low_match_zh", True)
        self._check(row, row.get("loglik_en"), c.min_loglik_en, "low_loglik_en", True)
        self._check(row, row.get("loglik_zh"), c.min_loglik_zh, "low_loglik_zh", True)
        self._check(row, row.get("translation_drift"), c.max_drift, "translation_drift", False)
        self._check(row, row.get("quality_en"), c.min_quality_en, "low_quality_en", True)
        self._check(row, row.get("quality_zh"), c.min_quality_zh, "low_quality_zh", True)
        self._check(row, row.get("translation_qe"), c.min_translation_qe, "low_translation_qe", True)
        if c.cutoff is not None:
            self._check(row, top_value(row, c.top_by), c.cutoff, "below_top_fraction", True)
        return row


class TopFraction(SignatureStage):
    """`filter` with `keep_top_fraction`: the cut-off from every surviving sample's score, then the filter."""

    name = STAGE
    Config = FilterConfig
    signature = ("reason", "match_en", "match_zh")

    @classmethod
    def decide(cls, signatures: Any, config: StageConfig, ctx: RunContext) -> float | None:
        return top_cutoff(signatures, config)  # type: ignore[arg-type]

    @staticmethod
    def apply(batch: pa.Table, decision: Any, config: StageConfig, ctx: RunContext) -> pa.Table:
        cut = ScoreFilter(config.model_copy(update={"cutoff": decision}), ctx)
        return to_table(cut.run_rows(batch.to_pylist()))


def top_values(batch: pa.Table, by: str) -> np.ndarray:
    """The `top_value` of every sample a block has that no stage rejected and that has it (float64)."""
    ok = pc.is_null(batch.column("reason"))
    en, zh = (batch.column(c).cast(pa.float64()) for c in ("match_en", "match_zh"))
    if by in ("match_en", "match_zh"):
        v = en if by == "match_en" else zh
    elif by == "match_min":
        v = pc.min_element_wise(en, zh)  # nulls skipped: the one present, or null
    else:
        both = pc.divide(pc.add(en, zh), 2.0)
        v = pc.coalesce(both, en, zh)
    keep = pc.and_(ok, pc.is_valid(v))
    out = pc.filter(v, keep).to_numpy(zero_copy_only=False).astype(np.float64)
    return out[~np.isnan(out)]


def order_keys(values: np.ndarray) -> np.ndarray:
    """float64 -> uint64 in the same order (the IEEE bits, negatives flipped)."""
    bits = values.view(np.uint64)
    return np.where(bits >> np.uint64(63), ~bits, bits | np.uint64(1 << 63))


def _histogram(batch: pa.Table, by: str, prefix: int, depth: int) -> pa.Table:
    """Counts of the block's keys by their 16 bits at `depth` (0: the top 16), among keys whose higher bits are
    `prefix`."""
    keys = order_keys(top_values(batch, by))
    shift = np.uint64(48 - 16 * depth)
    if depth:
        keys = keys[(keys >> (shift + np.uint64(16))) == np.uint64(prefix)]
    bins, counts = np.unique((keys >> shift) & np.uint64(0xFFFF), return_counts=True)
    return pa.table({"bin": pa.array(bins.astype(np.int64)), "n": pa.array(counts.astype(np.int64))})


def top_cutoff(ds: Any, cfg: FilterConfig) -> float | None:
    """The score at which the best `keep_top_fraction` of the surviving scored samples starts: numpy's
    `quantile(values, 1 - fraction, method="higher")`, found exactly by four passes of 16-bit histograms over
    the scores' order-preserving bits (radix select). Memory: 65,536 counts on the driver, whatever the run's
    size; each pass is one read of the signature columns."""
    prefix, rank, total = 0, 0, None
    for depth in range(4):
        counts = np.zeros(1 << 16, np.int64)
        hist = ds.map_batches(_histogram, fn_kwargs={"by": cfg.top_by, "prefix": prefix, "depth": depth},
                              batch_format="pyarrow")  # fmt: skip
        for b in hist.iter_batches(batch_format="pyarrow", batch_size=None):
            np.add.at(counts, b.column("bin").to_numpy(), b.column("n").to_numpy())
        if total is None:
            total = int(counts.sum())
            if total == 0:
                return None
            rank = int(np.ceil((1 - cfg.keep_top_fraction) * (total - 1)))  # numpy's "higher" index
        below = np.cumsum(counts)
        b = int(np.searchsorted(below, rank, side="right"))
        rank -= int(below[b - 1]) if b else 0
        prefix = (prefix << 16) | b
    key = np.array([prefix], np.uint64)
    bits = np.where(key >> np.uint64(63), key & np.uint64((1 << 63) - 1), ~key)
    return float(bits.view(np.float64)[0])
