"""The Parquet and WebDataset parts of the sample dataset, and the augmented samples of a scaled build."""

from __future__ import annotations

import io
import json
import math
import os
import random
import tarfile
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageEnhance

from dataengine.sample_data.common import (
    PHOTOS,
    TAR_CROPS,
    WEB_CROPS,
    crop,
    encoded,
    load,
    resized,
    save,
    source_path,
)
from dataengine.sample_data.documents import RENDERERS


# ---------------------------------------------------------------- web formats and scaled samples
def write_web(root: str, rng: random.Random) -> tuple[int, int]:
    """web.parquet (id, JPEG bytes, caption) and shards/web-000000.tar; returns their record counts."""
    rows: dict[str, list[Any]] = {"id": [], "image": [], "caption": []}
    for i, (key, box, caption) in enumerate(WEB_CROPS):
        if (img := crop(key, box)) is not None:
            rows["id"].append(f"web-{i:04d}")
            rows["image"].append(encoded(resized(img, rng.randint(320, 640)), quality=90))
            rows["caption"].append(caption)
    schema = pa.schema([("id", pa.string()), ("image", pa.binary()), ("caption", pa.string())])
    pq.write_table(pa.table(rows, schema=schema), os.path.join(root, "web.parquet"))
    os.makedirs(os.path.join(root, "shards"))
    keys = 0
    with tarfile.open(os.path.join(root, "shards", "web-000000.tar"), "w", format=tarfile.USTAR_FORMAT) as tar:

        def member(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tar.addfile(info, io.BytesIO(data))

        for i, (key, box, caption, as_json) in enumerate(TAR_CROPS):
            if (img := crop(key, box)) is not None:
                member(f"{i:06d}.jpg", encoded(resized(img, rng.randint(320, 640)), quality=90))
                text = json.dumps({"caption": caption}, ensure_ascii=False) if as_json else caption
                member(f"{i:06d}.{'json' if as_json else 'txt'}", text.encode())
                keys += 1
        member(f"{len(TAR_CROPS):06d}.txt", b"A caption whose image is missing from the shard.")
    return len(rows["id"]), keys + 1


SCALED_PHOTOS = [
    "chelsea",
    "coffee",
    "rocket",
    "motorcycle",
    "hubble",
    "camera",
    "moon",
    "text",
    "brick",
    "grass",
    "gravel",
    "ihc",
    "china",
    "grace_hopper",
]  # captions that still hold for a crop around the centre
NO_FLIP = {"motorcycle", "text"}  # lettering would be mirrored


def scaled_one(job: tuple[str, int, int]) -> dict[str, Any]:
    """One scaled sample, an augmented photo or a freshly rendered document, written under images/scaled."""
    images, seed, i = job
    rng = random.Random(f"{seed}:scaled:{i}")
    lang = "zh" if rng.random() < 0.15 else "en"
    keys = [k for k in SCALED_PHOTOS if source_path(k)]
    if keys and rng.random() < 0.6:
        key = rng.choice(keys)
        img = load(key)
        w, h = img.size
        area, ratio = rng.uniform(0.4, 0.8), rng.uniform(0.8, 1.25)
        cw, ch = min(w, round(w * math.sqrt(area * ratio))), min(h, round(h * math.sqrt(area / ratio)))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        img = resized(img.crop((x, y, x + cw, y + ch)), rng.randint(320, 1024))
        if key not in NO_FLIP and rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            img = enhancer(img).enhance(rng.uniform(0.88, 1.12))
        name, text = f"scaled/{i:06d}.jpg", next(en if lang == "en" else zh for k, _, _, en, zh in PHOTOS if k == key)
        save(img, os.path.join(images, name), quality=rng.randint(85, 92))
    else:
        render, sizes = RENDERERS[rng.choice(sorted(RENDERERS))]
        img, texts = render(rng, rng.choice(sizes), rng.randrange(1000))
        name, text = f"scaled/{i:06d}.png", texts[lang]
        save(img, os.path.join(images, name), compress_level=4)
    return {"id": f"scaled-{i:06d}", "image": name, "caption": text}
