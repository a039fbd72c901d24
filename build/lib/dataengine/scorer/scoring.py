"""Score image-text pairs with a loaded scorer: match_en/match_zh (VQAScore P(yes)), optional caption
log-likelihood, and translation_drift = match_en - match_zh. Shared by the batch stage and the server.

Samples are sorted by tile count and cut into micro-batches of at most `max_batch_tiles` tiles, so a forward
pass holds samples of similar sizes; each sample's visual tokens are computed once for all its texts.
"""

from __future__ import annotations

from dataclasses import dataclass

from dataengine.scorer.model import ScorerModel
from dataengine.shards import pixel_values

SCORE_COLUMNS = ("match_en", "match_zh", "loglik_en", "loglik_zh", "translation_drift")


@dataclass
class Item:
    """One sample to score: its tiles (JPEG bytes, thumbnail last) and its texts by language."""

    tiles: list[bytes]
    en: str | None = None
    zh: str | None = None


def micro_batches(sizes: list[int], max_tiles: int) -> list[list[int]]:
    """Indices grouped by similar size: sorted by size, cut when a batch would exceed `max_tiles` tiles."""
    order = sorted(range(len(sizes)), key=lambda i: sizes[i])
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i in order:
        if current and total + sizes[i] > max_tiles:
            batches.append(current)
            current, total = [], 0
        current.append(i)
        total += sizes[i]
    if current:
        batches.append(current)
    return batches


class Scorer:
    """Batch scoring over a `ScorerModel`; results are dicts with SCORE_COLUMNS (None where no text)."""

    def __init__(self, model: ScorerModel, *, loglik: bool = True, max_batch_tiles: int = 32):
        self.model, self.loglik, self.max_batch_tiles = model, loglik, max_batch_tiles

    @property
    def label(self) -> str:
        return self.model.meta.label

    def score_each(self, items: list[Item]) -> list[dict[str, float | None] | Exception]:
        """`score`, except that if the batch fails each item is scored alone: one bad item (a corrupt tile) fails
        by itself, its exception in its place."""
        try:
            return list(self.score(items))
        except Exception:
            out: list[dict[str, float | None] | Exception] = []
            for item in items:
                try:
                    out.append(self.score([item])[0])
                except Exception as exc:
                    out.append(exc)
            return out

    def score(self, items: list[Item]) -> list[dict[str, float | None]]:
        import torch

        tiles = [self.model.select_tiles(it.tiles) for it in items]
        results: list[dict[str, float | None]] = [dict.fromkeys(SCORE_COLUMNS) for _ in items]
        with torch.inference_mode():
            for group in micro_batches([len(t) for t in tiles], self.max_batch_tiles):
                pv = pixel_values([t for i in group for t in tiles[i]])
                flat = self.model.image_features(pv)
                feats, start = {}, 0
                for i in group:
                    feats[i] = flat[start : start + len(tiles[i])]
                    start += len(tiles[i])
                jobs = [(i, lang, text) for i in group for lang in ("en", "zh") if (text := getattr(items[i], lang))]
                if not jobs:
                    continue
                f = [feats[i] for i, _, _ in jobs]
                texts, langs = [t for _, _, t in jobs], [lang for _, lang, _ in jobs]
                yes, _ = self.model.yes_logprobs(f, texts, langs)
                ll = self.model.caption_logprob(f, texts, langs) if self.loglik else None
                for k, (i, lang, _) in enumerate(jobs):
                    results[i][f"match_{lang}"] = round(float(yes[k].exp()), 6)
                    if ll is not None:
                        results[i][f"loglik_{lang}"] = round(float(ll[k]), 6)
        for r in results:
            if r["match_en"] is not None and r["match_zh"] is not None:
                r["translation_drift"] = round(r["match_en"] - r["match_zh"], 6)
        return results
