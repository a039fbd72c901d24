"""The tile stage on Ray: shards in the tiles schema, index, samples columns, WebDataset tars, size-bounded
shards, and the training readers (plain, PyTorch DataLoader, Ray Data)."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from conftest import encode, textured, write_jsonl

from dataengine import pipeline, runner, shards
from dataengine.core import schema
from dataengine.tiling import plan_grid, tile_image

SIZES = [(640, 480), (1920, 1080), (448, 448), (300, 900), (1200, 500)]


@pytest.fixture(scope="module")
def tiled_run(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("tiled")
    data = root / "data"
    (data / "img").mkdir(parents=True)
    recs = []
    for i, size in enumerate(SIZES):
        (data / "img" / f"{i}.png").write_bytes(encode(textured(300 + i, size), "PNG"))
        recs.append({"image": f"img/{i}.png", "caption": f"A colourful abstract texture number {i} for tiling."})
    recs.append({"image": "img/missing.png", "caption": "This one is missing from the folder."})
    write_jsonl(data / "a.jsonl", recs)
    spec = pipeline.parse(
        {
            "name": "tiled",
            "ray": {"progress": False},
            "stages": [
                {"op": "resolve"},
                {"op": "image"},
                {"op": "text"},
                {"op": "dedup"},
                {"op": "tile", "shard_target_bytes": 200_000, "webdataset": True, "batch_size": 8},
                {"op": "export"},
            ],
        }
    )
    return runner.run(spec, input_uri=str(data), storage=str(root))


def test_shards_follow_schema_and_hold_every_accepted_sample(tiled_run):
    out = tiled_run["output"]
    files = shards.shard_files(out)
    assert len(files) >= 2  # 200 kB target splits the run's tiles
    for f in files:
        assert pq.read_schema(f) == schema.load("tiles")
    tiles = pl.read_parquet(files)
    samples = pl.read_parquet(tiled_run["files"]["samples"])
    assert sorted(tiles["id"]) == sorted(samples["id"]) and samples.height == len(SIZES)
    for r in tiles.iter_rows(named=True):
        cols, rows = plan_grid(r["width"], r["height"])
        assert (r["grid_cols"], r["grid_rows"]) == (cols, rows)
        assert r["num_tiles"] == len(r["tiles"]) == cols * rows + (1 if cols * rows > 1 else 0)
        assert r["thumbnail"] == (cols * rows > 1)


def test_samples_gain_grid_and_shard_reference(tiled_run):
    samples = pl.read_parquet(tiled_run["files"]["samples"])
    assert pq.read_schema(tiled_run["files"]["samples"][0]) == schema.load("samples", 4)
    for r in samples.iter_rows(named=True):
        assert r["tile_shard"].startswith("tiles/shard-") and r["num_tiles"] >= 1
        shard = pl.read_parquet(f"{tiled_run['output']}/{r['tile_shard']}")
        assert r["id"] in shard["id"].to_list()


def test_index_maps_ids_to_shard_rows(tiled_run):
    index = pl.read_parquet(tiled_run["tile_index"])
    assert pq.read_schema(tiled_run["tile_index"]) == schema.load("tile_index")
    for r in index.iter_rows(named=True):
        shard = pl.read_parquet(f"{tiled_run['output']}/tiles/{r['shard']}")
        assert shard.row(r["row"], named=True)["id"] == r["id"]


def test_webdataset_tars_mirror_the_shards(tiled_run):
    for f in shards.shard_files(tiled_run["output"]):
        table = pl.read_parquet(f)
        with tarfile.open(f.replace(".parquet", ".tar")) as tar:
            names = tar.getnames()
            first = table.row(0, named=True)
            assert f"{first['id']}.0.jpg" in names and f"{first['id']}.json" in names
            meta = json.loads(tar.extractfile(f"{first['id']}.json").read())
            assert meta["num_tiles"] == first["num_tiles"]
        assert len(names) == sum(n + 1 for n in table["num_tiles"])


def test_reader_yields_tiles_and_pixel_values(tiled_run):
    seen = dict(shards.iter_samples(tiled_run["output"]))
    assert len(seen) == len(SIZES)
    sid, tiles = next(iter(seen.items()))
    pv = shards.pixel_values(tiles)
    assert pv.shape == (len(tiles), 3, 448, 448) and pv.dtype == np.float32
    assert -3 < float(pv.min()) and float(pv.max()) < 3


def test_tiles_are_faithful_to_the_reference(tiled_run, tmp_path):
    samples = pl.read_parquet(tiled_run["files"]["samples"])
    seen = dict(shards.iter_samples(tiled_run["output"]))
    from PIL import Image

    for r in samples.iter_rows(named=True):
        ref = tile_image(Image.open(io.BytesIO(r["image"])).convert("RGB"))
        got = [Image.open(io.BytesIO(t)).convert("RGB") for t in seen[r["id"]]]
        assert len(ref) == len(got)
        for a, b in zip(ref, got, strict=True):
            mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
            assert 10 * np.log10(255**2 / max(mse, 1e-9)) > 35


def test_torch_dataloader_splits_shards_across_workers(tiled_run):
    import torch

    loader = torch.utils.data.DataLoader(shards.torch_dataset(tiled_run["output"]), batch_size=None, num_workers=2)
    ids = [item["id"] for item in loader]
    assert sorted(ids) == sorted(dict(shards.iter_samples(tiled_run["output"])))
    assert isinstance(next(iter(loader))["pixel_values"], torch.Tensor)


def test_ray_dataset_reader(tiled_run):
    assert shards.ray_dataset(tiled_run["output"]).count() == len(SIZES)


def test_export_internvl_writes_meta_jsonl_and_images(tiled_run, tmp_path):
    from PIL import Image

    from dataengine.export_internvl import export_internvl

    storage = tiled_run["output"].split("/runs/")[0]
    meta = export_internvl(tiled_run["run_id"], str(tmp_path / "ivl"), storage)
    assert json.loads((tmp_path / "ivl" / "meta.json").read_text()) == meta
    ((name, entry),) = meta.items()
    assert name == "tiled_en" and entry["length"] == len(SIZES) and entry["max_dynamic_patch"] == 12
    lines = [json.loads(x) for x in open(entry["annotation"], encoding="utf-8")]
    for rec in lines:
        first = rec["conversations"][0]
        assert first["from"] == "human" and first["value"].startswith("<image>\n")
        assert rec["conversations"][1]["from"] == "gpt" and rec["conversations"][1]["value"]
        with Image.open(f"{entry['root']}/{rec['image']}") as img:
            assert img.size == (rec["width"], rec["height"])
