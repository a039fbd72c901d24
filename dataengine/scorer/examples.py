"""Image-text-matching examples from a run's accepted pairs: texts per language, tiles from the shards, a
held-out split by id, and the positives / shuffled-caption negatives / hard negatives used to train and
evaluate the scorer."""

from __future__ import annotations

import random
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from dataengine import manifest
from dataengine.core.ids import content_hash
from dataengine.core.rows import texts_of
from dataengine.core.storage import exists, join, list_files
from dataengine.scorer.lexicon import KINDS, perturb, perturb_kind, spatial_kind
from dataengine.shards import iter_samples, without_thumbnail

PAIRS_SCHEMA = pa.schema(
    [("id", pa.string()), ("en", pa.string()), ("zh", pa.string()), ("tiles", pa.list_(pa.binary()))]
)
# relation swaps (left/right, above/below) are the hardest negatives (the tiny preset has not learnt them in
# the budget tried, BENCHMARKS.md): training tries one first this often; evaluation draws every kind uniformly
SPATIAL_FIRST = 0.5


def resolve_run(data: str, storage: str) -> str:
    """A run id under `<storage>/runs/` or a run output URI -> the output URI holding samples/ and tiles/."""
    if "/" not in data and exists(join(storage, "runs", data, manifest.FILENAME)):
        return manifest.load(data, storage)["output"]
    if exists(join(data, "samples")):
        return data
    raise FileNotFoundError(f"{data!r} is neither a committed run id under {storage}/runs nor a run output folder")


def load_pairs(output: str, *, tiles: str = "thumbnail", limit: int | None = None) -> pa.Table:
    """(id, en, zh, tiles) for every accepted sample of a run that has tiles; `tiles` = thumbnail | all."""
    import pyarrow.parquet as pq

    texts: dict[str, dict[str, str | None]] = {}
    cols = ["id", "language", "caption", "caption_zh", "conversations", "conversations_zh"]
    for file in list_files(join(output, "samples"), (".parquet",)):
        for row in pq.read_table(file, columns=cols).to_pylist():
            t = texts_of(row)
            if t["en"] or t["zh"]:
                texts[row["id"]] = t
    if tiles == "thumbnail" and (missing := without_thumbnail(output)):
        raise ValueError(
            f"{len(missing)} samples of {output} (e.g. {missing[0]}) have several tiles and no thumbnail: the scorer "
            "sees the picture through its thumbnail, so tile the run with thumbnail: true"
        )
    rows = []
    for sid, sample_tiles in iter_samples(output):
        if sid in texts:
            rows.append(
                {"id": sid, **texts[sid], "tiles": sample_tiles[-1:] if tiles == "thumbnail" else sample_tiles}
            )
    rows.sort(key=lambda r: r["id"])
    if limit:
        rows = rows[:limit]
    return pa.Table.from_pylist(rows, schema=PAIRS_SCHEMA)


def is_heldout(sample_id: str, fraction: float) -> bool:
    """A stable split by id: the same samples are held out on every run and every worker."""
    digest = content_hash(sample_id.encode(), 8)
    return int(digest, 16) / 16 ** len(digest) < fraction


def hard_negatives(
    en: str | None, zh: str | None, rng: random.Random, prefer: str | None = None
) -> tuple[str | None, str | None, str | None]:
    """(en', zh', kind): both captions changed in the same class of word where possible; the `prefer` class
    first when the caption has a word of it."""
    if prefer in KINDS and en and (text := perturb_kind(en, "en", prefer, rng)) is not None and text != en:
        return text, (perturb_kind(zh, "zh", prefer, rng) if zh else None), prefer
    first = perturb(en, "en", rng) if en else None
    if first is None:
        neg = perturb(zh, "zh", rng) if zh else None
        return None, (neg.text if neg else None), (neg.kind if neg else None)
    return first.text, (perturb_kind(zh, "zh", first.kind, rng) if zh else None), first.kind


def eval_examples(pairs: Iterable[dict[str, Any]], seed: int = 1) -> list[dict[str, Any]]:
    """Held-out evaluation rows: each sample's matched caption (label 1) and a hard negative (label 0), per
    language; the same rows for the same seed. A spatial negative's kind says what it tests: "position" (where
    one thing is) or "relation" (where one thing is relative to another)."""
    rng = random.Random(seed)
    out = []
    for i, p in enumerate(pairs):
        neg_en, neg_zh, kind = hard_negatives(p["en"], p["zh"], rng)
        if kind == "spatial":
            kind = spatial_kind(p["en"], "en") if p["en"] else spatial_kind(p["zh"], "zh")
        for lang, pos, neg in (("en", p["en"], neg_en), ("zh", p["zh"], neg_zh)):
            if pos and neg:
                out.append({"pair": i, "lang": lang, "text": pos, "label": 1, "kind": "match"})
                out.append({"pair": i, "lang": lang, "text": neg, "label": 0, "kind": kind})
    return out


def matching_batch(
    batch: list[dict[str, Any]], rng: random.Random
) -> tuple[list[int], list[str], list[str], list[int]]:
    """Paired yes/no examples: each sample's matched text (label 1) next to a negative in the same language
    (label 0): a hard negative (one word changed) most of the time, else another sample's caption. Seeing the
    minimal difference side by side is what teaches the model which word matters.

    Returns (sample index, text, lang, label) lists."""
    idx: list[int] = []
    texts: list[str] = []
    langs: list[str] = []
    labels: list[int] = []
    for i, p in enumerate(batch):
        lang = rng.choice([lang for lang in ("en", "zh") if p[lang]])
        neg = None
        if rng.random() < 0.8:
            prefer = "spatial" if rng.random() < SPATIAL_FIRST else None
            neg_en, neg_zh, _ = hard_negatives(p["en"], p["zh"], rng, prefer)
            neg = neg_en if lang == "en" else neg_zh
        if neg is None:  # shuffled caption: another sample's text in the same language
            others = [q[lang] for j, q in enumerate(batch) if j != i and q[lang] and q[lang] != p[lang]]
            neg = rng.choice(others) if others else None
        for text, label in ((p[lang], 1), (neg, 0)):
            if text is not None:
                idx.append(i)
                texts.append(text)
                langs.append(lang)
                labels.append(label)
    return idx, texts, langs, labels
