"""Read tile shards for training: stream (id, tiles) from a run output, a tiles/ folder or one shard, and
turn tiles into InternVL pixel values. Works from plain Python, a PyTorch DataLoader or Ray Data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import simplejpeg

from dataengine.core.storage import TILES_DIR, exists, join, list_files, read_bytes, resolve
from dataengine.tiling import to_pixel_values


def shard_files(uri: str) -> list[str]:
    """Shard files of a run output (the ones its manifest's tile index names: a rebuild in progress may have
    written its own beside them), of a tiles/ folder, or the single shard given."""
    if uri.endswith(".parquet"):
        return [uri]
    committed = join(uri, "manifest.json")
    if exists(committed):
        index = json.loads(read_bytes(committed)).get("tile_index")
        if not index:
            return []
        fs, path = resolve(index)
        with fs.open_input_file(path) as f:
            names = pq.read_table(f, columns=["shard"]).column("shard").unique().to_pylist()
        return sorted(join(uri, TILES_DIR, name) for name in names)
    base = join(uri, TILES_DIR) if exists(join(uri, TILES_DIR)) else uri
    return list_files(base, (".parquet",))


def iter_samples(
    uri: str, *, shards: list[str] | None = None, batch_rows: int = 16
) -> Iterator[tuple[str, list[bytes]]]:
    """(id, JPEG tiles) for every sample, shard by shard, a few rows in memory at a time."""
    for shard in shards if shards is not None else shard_files(uri):
        fs, path = resolve(shard)
        with fs.open_input_file(path) as f:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=batch_rows, columns=["id", "tiles"]):
                yield from zip(batch.column("id").to_pylist(), batch.column("tiles").to_pylist(), strict=True)


def without_thumbnail(uri: str) -> list[str]:
    """Ids of samples cut into several tiles with no thumbnail (tile stage run with `thumbnail: false`)."""
    out = []
    for shard in shard_files(uri):
        fs, path = resolve(shard)
        with fs.open_input_file(path) as f:
            rows = pq.read_table(f, columns=["id", "num_tiles", "thumbnail"]).to_pylist()
        out += [r["id"] for r in rows if r["num_tiles"] > 1 and not r["thumbnail"]]
    return out


def pixel_values(tiles: list[bytes]) -> np.ndarray:
    """(N, 3, 448, 448) float32, ImageNet-normalised, from JPEG tiles."""
    return to_pixel_values([simplejpeg.decode_jpeg(t, colorspace="RGB") for t in tiles])


def torch_dataset(uri: str) -> Any:
    """A torch IterableDataset yielding {"id", "pixel_values"}; DataLoader workers split the shards."""
    import torch
    from torch.utils.data import IterableDataset, get_worker_info

    files = shard_files(uri)

    class TileDataset(IterableDataset):
        def __iter__(self) -> Iterator[dict[str, Any]]:
            info = get_worker_info()
            mine = files if info is None else files[info.id :: info.num_workers]
            for sid, tiles in iter_samples(uri, shards=mine):
                yield {"id": sid, "pixel_values": torch.from_numpy(pixel_values(tiles))}

    return TileDataset()


def ray_dataset(uri: str) -> Any:
    """The shards as a Ray Dataset (one row per sample, tiles as JPEG bytes)."""
    import ray.data

    return ray.data.read_parquet(shard_files(uri))
