"""`dataengine bench near-check`: can a second signature tell the pairs pHash puts together apart?

Two kinds of pairs within the pHash threshold: same-template documents from a scaled sample dataset (different
text, numbers or values: distinct samples) and true near duplicates made here from the sample photos (resized to
40-95%, cropped by up to `crop` of each side, brightness within 5%, re-encoded at JPEG quality 50-95). For each
candidate second signature, the threshold that keeps every true near duplicate (recall 1.0) and the share of
document pairs it would keep apart. Runs in one process (no Ray): it measures signatures, not the pipeline.
"""

from __future__ import annotations

import io
import json
import os
import platform
import random
from collections.abc import Callable
from typing import Any

import imagehash
import numpy as np
import psutil
from PIL import Image, ImageEnhance
from scipy.fft import dctn

from dataengine.sample_data.common import load, source_path
from dataengine.sample_data.web import SCALED_PHOTOS

Signature = dict[str, Any]


def _bits(h: imagehash.ImageHash) -> np.ndarray:
    return np.asarray(h.hash, dtype=bool).ravel()


def _cell_hashes(luma: Image.Image, grid: int = 8, cell: int = 32) -> np.ndarray:
    """An 8x8 grid of 64-bit DCT hashes, one a cell of the image at 256x256: local detail in 512 bytes."""
    a = np.asarray(luma.resize((grid * cell, grid * cell), Image.Resampling.LANCZOS), dtype=np.float32)
    out = []
    for i in range(grid):
        for j in range(grid):
            d = dctn(a[i * cell : (i + 1) * cell, j * cell : (j + 1) * cell], norm="ortho")[:8, :8].ravel()
            out.append(d > np.median(d))
    return np.stack(out)


def signature(img: Image.Image) -> Signature:
    """The pipeline's 64-bit pHash and every candidate second signature of one image."""
    luma = img.convert("L")
    thumb = np.asarray(luma.resize((32, 32), Image.Resampling.BOX), dtype=np.float32)
    return {
        "phash": int(str(imagehash.phash(luma)), 16),
        "phash256": _bits(imagehash.phash(luma, hash_size=16)),
        "dhash256": _bits(imagehash.dhash(luma, hash_size=16)),
        "thumb32": thumb,
        "cells": _cell_hashes(luma),
    }


# candidate second checks: (signature bytes, distance of two signatures; a pair passes at or below a threshold)
CHECKS: dict[str, tuple[int, Callable[[Signature, Signature], float]]] = {
    "pHash 256-bit (Hamming)": (32, lambda a, b: float((a["phash256"] != b["phash256"]).sum())),
    "dHash 256-bit (Hamming)": (32, lambda a, b: float((a["dhash256"] != b["dhash256"]).sum())),
    "32x32 grey thumbnail (mean abs diff)": (1024, lambda a, b: float(np.abs(a["thumb32"] - b["thumb32"]).mean())),
    "32x32 grey thumbnail (max abs diff)": (1024, lambda a, b: float(np.abs(a["thumb32"] - b["thumb32"]).max())),
    "8x8 grid of cell pHashes (max cell Hamming)": (
        512,
        lambda a, b: float((a["cells"] != b["cells"]).sum(axis=1).max()),
    ),
}


def _near_copy(img: Image.Image, rng: random.Random, crop: float) -> Image.Image:
    w, h = img.size
    c = [rng.uniform(0, crop) for _ in range(4)]
    out = img.crop((int(w * c[0]), int(h * c[1]), int(w * (1 - c[2])), int(h * (1 - c[3]))))
    s = rng.uniform(0.4, 0.95)
    out = out.resize((max(8, int(out.width * s)), max(8, int(out.height * s))), Image.Resampling.LANCZOS)
    out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.95, 1.05))
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=rng.randint(50, 95))
    return Image.open(io.BytesIO(buf.getvalue()))


def _close(a: Signature, b: Signature, threshold: int) -> bool:
    return (a["phash"] ^ b["phash"]).bit_count() <= threshold


def bench_near_check(
    data: str, docs: int = 800, copies: int = 12, crop: float = 0.02, threshold: int = 4
) -> dict[str, Any]:
    """Document pairs from `data`'s scaled.jsonl (its first `docs` rendered documents) and `copies` near copies a
    sample photo; for each check, the recall-1.0 threshold and the share of document pairs kept apart."""
    path = os.path.join(data, "scaled.jsonl")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing: build a scaled set with `dataengine sample-data --scale N`")
    with open(path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    documents = [r for r in records if r["image"].endswith(".png")][:docs]
    sigs = [signature(Image.open(os.path.join(data, "images", r["image"]))) for r in documents]
    doc_pairs = [
        (a, b) for i, a in enumerate(sigs) for b in sigs[i + 1 :] if _close(a, b, threshold)
    ]  # same-template documents that pHash alone would merge
    rng = random.Random(2)
    made, near_pairs = 0, []
    for key in SCALED_PHOTOS:
        if not source_path(key):
            continue
        photo = load(key).convert("RGB")
        base = signature(photo)
        for _ in range(copies):
            made += 1
            copy = signature(_near_copy(photo, rng, crop))
            if _close(base, copy, threshold):
                near_pairs.append((base, copy))
    checks = {}
    for name, (size, dist) in CHECKS.items():
        near = np.array([dist(a, b) for a, b in near_pairs])
        apart = np.array([dist(a, b) for a, b in doc_pairs])
        limit = float(near.max()) if len(near) else None  # no near copies (no sample photos): nothing to say
        checks[name] = {
            "bytes": size,
            "threshold_for_recall_1": None if limit is None else round(limit, 3),
            "document_pairs_kept_apart": None
            if limit is None or not len(apart)
            else round(float((apart > limit).mean()), 4),
        }
    return {
        "documents": len(documents),
        "document_pairs_within_phash_threshold": len(doc_pairs),
        "near_copies_made": made,
        "near_copies_within_phash_threshold": len(near_pairs),
        "checks": checks,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB",
    }
