"""Held-out evaluation of a scorer: ROC-AUC of match (P(yes)) and caption likelihood, per language."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dataengine.shards import pixel_values


def roc_auc(labels: list[int], scores: list[float]) -> float:
    """Area under the ROC curve: P(a positive scores above a negative), ties counting half."""
    y, s = np.asarray(labels, bool), np.asarray(scores, float)
    pos, neg = s[y], s[~y]
    if not len(pos) or not len(neg):
        return float("nan")
    wins = 0.0
    for chunk in np.array_split(pos, max(1, len(pos) // 512)):
        wins += (chunk[:, None] > neg[None, :]).sum() + 0.5 * (chunk[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def score_examples(scorer: Any, tiles: list[list[bytes]], examples: list[dict[str, Any]], batch: int = 32) -> dict:
    """Scores of evaluation rows ({pair, lang, text, label}) against their pair's tiles."""
    import torch

    out: dict[str, list[float]] = {"match": [], "loglik": []}
    with torch.no_grad():
        for i in range(0, len(examples), batch):
            chunk = examples[i : i + batch]
            by_pair = {
                p: scorer.image_features(pixel_values(scorer.select_tiles(tiles[p])))
                for p in {e["pair"] for e in chunk}
            }
            feats = [by_pair[e["pair"]] for e in chunk]
            texts, langs = [e["text"] for e in chunk], [e["lang"] for e in chunk]
            yes, _ = scorer.yes_logprobs(feats, texts, langs)
            out["match"] += yes.exp().tolist()
            out["loglik"] += scorer.caption_logprob(feats, texts, langs).tolist()
    return out


def position_r2(scorer: Any, tiles: list[list[bytes]], limit: int = 64) -> float:
    """How much of where each visual token sits (its grid row and column) a linear map recovers from what the
    language model receives, the projector's output: R^2 on a quarter of `limit` pictures, fitted on the rest.

    Near 0, no word about position can be checked against the picture. The tiny preset starts near 0.9 (its
    vision tower has 2D sine-cosine position codes); trained, its projector squeezed it to 0.01-0.04 (BENCHMARKS.md).
    """
    import torch

    with torch.no_grad():
        feats = np.concatenate(
            [
                scorer.image_features(pixel_values(scorer.select_tiles(t)[:1])).float().cpu().numpy()
                for t in tiles[:limit]
            ]
        )  # (pictures, tokens, hidden): the first tile each, or the thumbnail alone
    n, tokens, hidden = feats.shape
    grid = math.isqrt(tokens)
    if grid * grid != tokens or n < 4:
        return float("nan")
    x = np.c_[feats.reshape(n * tokens, hidden), np.ones(n * tokens)]
    where = np.stack([np.repeat(np.arange(grid), grid), np.tile(np.arange(grid), grid)], 1).astype(float)
    y = np.tile(where, (n, 1))
    cut = (n - n // 4) * tokens
    w = np.linalg.solve(x[:cut].T @ x[:cut] + 1e-2 * np.eye(hidden + 1), x[:cut].T @ y[:cut])
    residual = ((x[cut:] @ w - y[cut:]) ** 2).mean(0)
    return float(np.mean(1 - residual / y[cut:].var(0)))


def heldout_auc(scorer: Any, tiles: list[list[bytes]], examples: list[dict[str, Any]]) -> dict[str, float]:
    """auc_match_en, auc_match_zh, auc_loglik_en, auc_loglik_zh over matched vs hard-negative rows, and
    auc_match_<kind> per kind of hard negative (colour, count, object, position, relation; both languages).

    A kind's AUC ranks its negatives against the matched captions of the same pictures only: against all
    matched captions, a kind that only occurs in some scenes (relations need two groups) would be credited for
    telling scenes apart rather than for the changed word."""
    return aucs(examples, score_examples(scorer, tiles, examples))


def aucs(examples: list[dict[str, Any]], scores: dict[str, list[float]]) -> dict[str, float]:
    """The AUCs of `heldout_auc` from evaluation rows and their scores."""
    result = {}
    for lang in ("en", "zh"):
        idx = [i for i, e in enumerate(examples) if e["lang"] == lang]
        labels = [examples[i]["label"] for i in idx]
        for name in ("match", "loglik"):
            result[f"auc_{name}_{lang}"] = round(roc_auc(labels, [scores[name][i] for i in idx]), 4)
    positive = {(e["pair"], e["lang"]): i for i, e in enumerate(examples) if e["label"] == 1}
    for kind in sorted({e["kind"] for e in examples if e["label"] == 0}):
        negs = [i for i, e in enumerate(examples) if e["label"] == 0 and e["kind"] == kind]
        idx = [positive[(examples[i]["pair"], examples[i]["lang"])] for i in negs] + negs
        auc = roc_auc([examples[i]["label"] for i in idx], [scores["match"][i] for i in idx])
        result[f"auc_match_{kind}"] = round(auc, 4)
    return result
