"""`dataengine bench tiling`: InternVL's reference tiling (PIL BICUBIC + PIL JPEG encode of every tile)
against `tile_encoded` on the same images, in one process on one core; and the tile stage through Ray.

Photo sets are built from the real photos shipped in installed packages (see sample_data.common):
web-sized = random crops resized to a long side of 320-1600 px; camera-sized = 4000x3000 (or 3000x4000)
collages of those photos, each scaled x1-2 (LANCZOS); all saved as JPEG q90.
"""

from __future__ import annotations

import io
import os
import random
import tempfile
import time
from typing import Any

import numpy as np
from PIL import Image, ImageOps

from dataengine.tiling import tile_encoded, tile_image


def _photos() -> list[Image.Image]:
    from dataengine.sample_data.common import PHOTOS, load

    return [img.convert("RGB") for img in (load(key) for key, *_ in PHOTOS) if img is not None]


def _jpeg(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def photo_set(kind: str, n: int, seed: int = 0) -> list[bytes]:
    """`n` JPEGs of the given kind ("web" or "camera"), deterministic for a seed."""
    rng, photos = random.Random(seed), _photos()
    out = []
    for i in range(n):
        if kind == "web":
            p = rng.choice(photos)
            cw, ch = int(p.width * rng.uniform(0.6, 1)), int(p.height * rng.uniform(0.6, 1))
            x, y = rng.randint(0, p.width - cw), rng.randint(0, p.height - ch)
            crop = p.crop((x, y, x + cw, y + ch))
            scale = rng.randint(320, 1600) / max(crop.size)
            img = crop.resize(
                (max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.Resampling.LANCZOS
            )
        else:
            size = (4000, 3000) if i % 2 == 0 else (3000, 4000)
            img = Image.new("RGB", size)
            y = 0
            while y < size[1]:
                x, row_h = 0, 0
                while x < size[0]:
                    p = rng.choice(photos)
                    f = rng.uniform(1.0, 2.0)
                    p = p.resize((round(p.width * f), round(p.height * f)), Image.Resampling.LANCZOS)
                    img.paste(p, (x, y))
                    x, row_h = x + p.width, max(row_h, p.height)
                y += row_h
        out.append(_jpeg(img))
    return out


def reference(data: bytes, quality: int = 95) -> tuple[tuple[int, int], list[np.ndarray], list[bytes]]:
    """InternVL's path: decode with PIL, tile with PIL BICUBIC, encode each tile with PIL."""
    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB")
    tiles = tile_image(img)
    encoded = []
    for t in tiles:
        buf = io.BytesIO()
        t.save(buf, "JPEG", quality=quality)
        encoded.append(buf.getvalue())
    n = len(tiles) - (1 if len(tiles) > 1 else 0)
    return (n, len(tiles)), [np.asarray(t) for t in tiles], encoded


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def compare(images: list[bytes]) -> dict[str, Any]:
    """Time both paths over the same images (interleaved passes), check grids and tile PSNR."""
    from dataengine.tiling import plan_grid

    t_ref = t_fast = 0.0
    tiles = 0
    for data in images[:2]:  # warm up codecs and caches
        reference(data), tile_encoded(data)
    ref_out, fast_out = [], []
    for data in images:
        t0 = time.perf_counter()
        ref_out.append(reference(data))
        t1 = time.perf_counter()
        fast_out.append(tile_encoded(data))
        t_fast += time.perf_counter() - t1
        t_ref += t1 - t0
    scores, grids_ok = [], True
    for data, (_, ref_tiles, _), fast in zip(images, ref_out, fast_out, strict=True):
        with Image.open(io.BytesIO(data)) as probe:
            w, h = ImageOps.exif_transpose(probe).size
        grids_ok &= fast.grid == plan_grid(w, h) and len(fast.tiles) == len(ref_tiles)
        tiles += len(ref_tiles)
        for ref_tile, enc in zip(ref_tiles, fast.tiles, strict=True):
            scores.append(psnr(ref_tile, np.asarray(Image.open(io.BytesIO(enc)).convert("RGB"))))
    n = len(images)
    return {
        "images": n,
        "tiles": tiles,
        "grids_identical": bool(grids_ok),
        "reference_images_per_s": round(n / t_ref, 2),
        "fast_images_per_s": round(n / t_fast, 2),
        "reference_tiles_per_s": round(tiles / t_ref, 1),
        "fast_tiles_per_s": round(tiles / t_fast, 1),
        "speedup": round(t_ref / t_fast, 2),
        "psnr_median_db": round(float(np.median(scores)), 2),
        "psnr_min_db": round(float(np.min(scores)), 2),
        "psnr_p5_db": round(float(np.percentile(scores, 5)), 2),
        "psnr_values": scores,
    }


def load_dir(path: str) -> list[bytes]:
    names = sorted(f for f in os.listdir(path) if f.lower().endswith((".jpg", ".jpeg", ".png", ".webp")))
    return [open(os.path.join(path, f), "rb").read() for f in names]


def _read_into_rows(batch: Any) -> Any:
    from dataengine.core.rows import new_row, to_table

    rows = [
        new_row(id=os.path.basename(p) + f"#{i}", image_out=open(p, "rb").read())
        for i, p in zip(batch["i"].to_pylist(), batch["path"].to_pylist(), strict=True)
    ]
    return to_table(rows)


class _TileOnly:
    """The tile stage as the pipeline runs it, minus the normalised image bytes in its output (export would
    consume them; here nothing does), so the measurement isolates the stage."""

    def __init__(self, config: dict[str, Any], output: str):
        from dataengine.ops.base import RunContext, Worker
        from dataengine.ops.tile import Tile

        self.stage = Worker(Tile, config, RunContext("bench", "bench", output, output, metrics=False))

    def __call__(self, batch: Any) -> Any:
        out = self.stage.table(batch)
        return out.drop_columns(["image_out", "image"])


def bench_ray(images: list[bytes], repeat: int, num_cpus: int, object_store_mb: int) -> dict[str, Any]:
    """Single-process fast path vs the real tile stage (ops.tile.Tile) on a local Ray with a small object store,
    streaming `repeat` passes over the images; peak memory of all processes and tile bytes written."""
    import pyarrow as pa
    import ray

    from dataengine.bench.clean import MemorySampler
    from dataengine.core.storage import TILES_DIR, list_files
    from dataengine.ops.tile import TileConfig

    passes = 3  # single-process baselines over several passes: one pass of a dozen images is too noisy
    tile_encoded(images[0])
    t0 = time.perf_counter()
    for _ in range(passes):
        for data in images:
            tile_encoded(data)
    single_tiling = passes * len(images) / (time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, data in enumerate(images):
            paths.append(os.path.join(tmp, f"{i:05d}.jpg"))
            with open(paths[-1], "wb") as f:
                f.write(data)
        items = [{"i": k, "path": p} for k in range(repeat) for p in paths]
        out = os.path.join(tmp, "out")
        config = TileConfig(shard_target_bytes=64 * 2**20).model_dump()
        stage = _TileOnly(config, os.path.join(tmp, "single"))  # the same work in this one process
        stage(_read_into_rows(pa.table({"i": [0], "path": paths[:1]})))  # warm up
        t0 = time.perf_counter()
        for k in range(passes):
            for j in range(0, len(paths), 8):
                stage(_read_into_rows(pa.table({"i": [k] * len(paths[j : j + 8]), "path": paths[j : j + 8]})))
        single = passes * len(paths) / (time.perf_counter() - t0)
        ray.init(
            num_cpus=num_cpus,
            object_store_memory=object_store_mb * 2**20,
            include_dashboard=False,
            log_to_driver=False,
        )
        try:
            ctx = ray.data.DataContext.get_current()
            ctx.enable_progress_bars = False
            ds = ray.data.from_items(items, override_num_blocks=max(1, len(items) // 8))
            ds = ds.map_batches(_read_into_rows, batch_format="pyarrow", batch_size=8)
            ds = ds.map_batches(
                _TileOnly,
                fn_constructor_args=(config, out),
                batch_format="pyarrow",
                batch_size=8,
                compute=ray.data.ActorPoolStrategy(size=num_cpus),
                num_cpus=1,
            )
            with MemorySampler() as mem:
                t0 = time.perf_counter()
                rows = sum(len(b["id"]) for b in ds.iter_batches(batch_format="pyarrow", batch_size=None))
                wall = time.perf_counter() - t0
            written = sum(os.path.getsize(f) for f in list_files(os.path.join(out, TILES_DIR)))
        finally:
            ray.shutdown()
    return {
        "images": rows,
        "num_cpus": num_cpus,
        "ray_images_per_s": round(rows / wall, 2),
        "single_process_stage_images_per_s": round(single, 2),
        "single_process_tile_encoded_images_per_s": round(single_tiling, 2),
        "scaling_vs_stage": round(rows / wall / single, 2),
        "scaling_vs_tile_encoded": round(rows / wall / single_tiling, 2),
        "object_store_mib": object_store_mb,
        "tile_bytes_written_mib": round(written / 2**20, 1),
        "tile_data_vs_object_store": round(written / (object_store_mb * 2**20), 1),
        "peak_memory_gib": round(mem.peak / 2**30, 2),
    }
