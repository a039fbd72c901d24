"""Offline sample dataset for the demo: real photos, rendered bilingual documents and deliberate defects.

`build_dataset` writes an InternVL meta JSON with photos/documents/defects (and scaled) JSONL annotations, a Parquet
file and a WebDataset shard. Photos come from images shipped inside installed packages (scikit-image,
scikit-learn, matplotlib); charts, receipts, signs and tables are rendered here with Pillow, so nothing is
downloaded. Each defect is listed in the dataset's README.md with the reject reason `pipelines/demo.yaml`
should give it. Output is deterministic for a seed and appears atomically: it is written to a temporary
sibling directory, the `.complete` marker last, and renamed into place."""

from __future__ import annotations

import json
import os
import random
import secrets
import shutil
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from rich.console import Console

from dataengine.sample_data.common import PHOTO_QA, PHOTOS, ZH_PHOTOS, load, save, text_fields
from dataengine.sample_data.defects import DEFECTS, write_defects
from dataengine.sample_data.documents import DOC_SLOTS, RENDERERS
from dataengine.sample_data.web import scaled_one, write_web


# ---------------------------------------------------------------- build
def build_dataset(target: str, scale: int = 0, seed: int = 0) -> dict[str, int]:
    """Write the sample dataset into `target` atomically (a temp sibling renamed into place); returns counts."""
    target = os.path.abspath(target)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = f"{target}.tmp-{secrets.token_hex(4)}"
    try:
        counts = _write(tmp, scale, seed)
        if os.path.exists(target):  # replace the old dataset only now that the new one is complete
            old = f"{target}.old-{secrets.token_hex(4)}"
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return counts


def _write(root: str, scale: int, seed: int) -> dict[str, int]:
    rng, np_rng, images = random.Random(seed), np.random.default_rng(seed), os.path.join(root, "images")
    photos = []
    for key, _, _, en, zh in PHOTOS:
        if (img := load(key)) is not None:
            name = f"photos/{key}.{'png' if img.mode == 'L' else 'jpg'}"
            save(img, os.path.join(images, name))
            mode = "qa_en" if key in PHOTO_QA else "zh" if key in ZH_PHOTOS else "en"
            texts = {"en": en, "zh": zh, "qa_en": PHOTO_QA.get(key)}
            photos.append({"id": f"photo-{key}", "image": name, **text_fields(texts, mode)})
    documents = []
    for i, (kind, size, variant, mode) in enumerate(DOC_SLOTS, 1):
        img, texts = RENDERERS[kind][0](rng, size, variant)
        name = f"docs/{kind}_{i:02d}.png"
        save(img, os.path.join(images, name))
        documents.append({"id": f"doc-{i:02d}-{kind}", "image": name, **text_fields(texts, mode)})
    defects = write_defects(images, photos, np_rng)
    web_rows, tar_keys = write_web(root, rng)
    jobs = [(images, seed, i) for i in range(scale)]
    if scale >= 200:  # worth two processes (about 10 ms a sample)
        with ProcessPoolExecutor(max_workers=2) as pool:
            scaled = list(pool.map(scaled_one, jobs, chunksize=50))
    else:
        scaled = [scaled_one(job) for job in jobs]
    sets = {"photos": photos, "documents": documents, "defects": defects, **({"scaled": scaled} if scale else {})}
    meta = {}
    for name, records in sets.items():
        with open(os.path.join(root, f"{name}.jsonl"), "wb") as f:
            for rec in records:
                f.write((rec if isinstance(rec, bytes) else json.dumps(rec, ensure_ascii=False).encode()) + b"\n")
        meta[name] = {
            "root": "images",
            "annotation": f"{name}.jsonl",
            "data_augment": False,
            "repeat_time": 1,
            "length": len(records),
        }
    with open(os.path.join(root, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False, indent=2)
    counts = {
        "records": sum(map(len, sets.values())) + web_rows + tar_keys,
        "photos": len(photos),
        "documents": len(documents),
        "defects": len(defects),
        "scaled": scale,
        "web_parquet": web_rows,
        "web_tar": tar_keys,
    }
    written = {rid for rid in DEFECTS if any(f'"id": "{rid}"'.encode() in line for line in defects)}
    with open(os.path.join(root, "README.md"), "w", encoding="utf-8") as f:
        f.write(readme(counts, seed, written))
    with open(os.path.join(root, ".complete"), "w", encoding="utf-8") as f:
        json.dump(counts, f)
    return counts


def readme(counts: dict[str, int], seed: int, written: set[str]) -> str:
    """The dataset's README.md: what each file holds and the reject reason each defect should get."""
    table = "\n".join(f"| `{rid}` | {what} | `{why}` |" for rid, (what, why) in DEFECTS.items() if rid in written)
    return f"""# Sample dataset (built by `dataengine.sample_data`, seed {seed})

Offline input for `pipelines/demo.yaml`: real photos shipped inside scikit-image, scikit-learn and matplotlib,
Chinese/English charts and documents rendered with Pillow, and deliberate defects. Counts: {json.dumps(counts)}

| path | contents |
|---|---|
| `meta.json` | InternVL meta JSON naming the JSONL annotations below; image root `images/` |
| `photos.jsonl` | real photos with English or Chinese captions, three as question/answer conversations |
| `documents.jsonl` | rendered charts, receipts, signs, tables, a notice, a menu, a timetable, values in the text |
| `defects.jsonl` | one record per deliberate defect, listed below |
| `scaled.jsonl` | only when built with scale > 0: augmented photo crops and freshly rendered documents |
| `web.parquet` | `id`, `image` (JPEG bytes), `caption` rows from photo crops; all valid |
| `shards/web-000000.tar` | WebDataset: `.jpg` + `.txt`/`.json` per key; the last key, `.txt` only: `missing_image` |

## Defects and the reject reason expected for each (`accepted`: must pass, after cleaning where noted)

| id | defect | expected |
|---|---|---|
{table}

The demo deduplicates on image+text, so the two duplicates repeat their original photo's caption word for word.
The identical pair has the same size, so the pipeline keeps the one with the smaller sample id and the
`duplicate_exact` reject may land on the photo rather than on the copy; the near duplicate is the smaller
image of its pair and is always the one rejected.
"""


def ensure(target: str, scale: int = 0, rebuild: bool = False, console: Console | None = None) -> str:
    """Build the sample dataset unless `target/.complete` exists (or rebuild is set); returns target."""
    say = (lambda msg: console.print(msg, markup=False, highlight=False)) if console else print
    if not rebuild and os.path.exists(os.path.join(target, ".complete")):
        say(f"sample data: {target} already built; pass rebuild to rebuild it")
        return target
    start = time.perf_counter()
    counts = build_dataset(target, scale=scale)
    say(
        f"sample data: built {target} in {time.perf_counter() - start:.1f}s ("
        + ", ".join(f"{v} {k}" for k, v in counts.items())
        + ")"
    )
    return target


def ensure_shapes(target: str, n: int, seed: int = 0, console: Console | None = None) -> str:
    """Build the shapes world (n samples, EN + ZH captions) at `target` unless a complete one of the same size,
    seed and world version is already there."""
    from dataengine.sample_data.shapes import WORLD_VERSION, write_shapes

    say = (lambda msg: console.print(msg, markup=False, highlight=False)) if console else print
    marker = {"records": n, "seed": seed, "world": WORLD_VERSION}
    if os.path.exists(os.path.join(target, ".complete")):
        with open(os.path.join(target, ".complete"), encoding="utf-8") as f:
            if {"world": 1, **json.load(f)} == marker:  # markers before versioning are world 1
                return target
    start = time.perf_counter()
    tmp = f"{os.path.abspath(target)}.tmp-{secrets.token_hex(4)}"
    try:
        write_shapes(tmp, n, seed)
        with open(os.path.join(tmp, ".complete"), "w", encoding="utf-8") as f:
            json.dump(marker, f)
        if os.path.exists(target):
            shutil.rmtree(target)
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    say(f"sample data: built the shapes world ({n} samples) at {target} in {time.perf_counter() - start:.1f}s")
    return target
