"""Same results through a change of the runner: the sample dataset through the demo's stages (translation left out:
the real LLM is not part of the default suite; scoring with a tiny scorer saved from a fixed seed) and a
top-fraction filter gives the accepted ids, the rejected ids with their stage and reason, and the tile bytes of
each accepted sample recorded in `fixtures/same_results_demo.json`.

The fixture was recorded by the runner before the stage contract (`DATAENGINE_RECORD_FIXTURE=1` writes it again:
do so only for a change meant to alter results, and say why in the commit)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import polars as pl
import pytest
import torch
import yaml
from scorer_helpers import save_tiny_scorer

from dataengine import pipeline, runner, sample_data

FIXTURE = Path(__file__).parent / "fixtures" / "same_results_demo.json"


def summary(record: dict) -> dict:
    """What must not change: accepted ids, (stage, reason) of each rejected id, a digest of each sample's tiles."""
    samples = pl.read_parquet(record["files"]["samples"], columns=["id", "tile_shard"])
    rejects = pl.read_parquet(record["files"]["rejects"], columns=["id", "stage", "reason"])
    out = Path(record["output"])
    tiles = {}
    for shard in sorted(set(samples["tile_shard"].drop_nulls())):
        for sid, jpegs in pl.read_parquet(out / shard, columns=["id", "tiles"]).iter_rows():
            tiles[sid] = hashlib.blake2b(b"".join(jpegs), digest_size=12).hexdigest()
    return {
        "accepted": sorted(samples["id"]),
        "rejected": {sid: [stage, reason] for sid, stage, reason in sorted(rejects.iter_rows())},
        "tiles": dict(sorted(tiles.items())),
    }


@pytest.fixture(scope="module")
def demo_summary(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("same")
    data = sample_data.ensure(str(root / "datasets" / "demo"))
    raw = yaml.safe_load(pipeline.find("demo").read_text())
    # the recorded results predate the demo's LLM stages: without translate and quality (and its thresholds)
    raw["stages"] = [s for s in raw["stages"] if s["op"] not in ("translate", "quality")]
    for stage in raw["stages"]:
        if stage["op"] == "filter":
            stage.pop("min_quality_en"), stage.pop("min_quality_zh")
            stage["keep_top_fraction"] = 0.8  # the whole-run cut, besides the demo's drift rule
    raw["ray"]["progress"] = False
    torch.manual_seed(0)
    save_tiny_scorer(str(root), name="demo-scorer")
    return summary(runner.run(pipeline.parse(raw), input_uri=data, storage=str(root)))


def test_the_demo_stages_give_the_recorded_results(demo_summary):
    if os.environ.get("DATAENGINE_RECORD_FIXTURE"):
        FIXTURE.parent.mkdir(exist_ok=True)
        FIXTURE.write_text(json.dumps(demo_summary, indent=1) + "\n")
    want = json.loads(FIXTURE.read_text())
    assert len(want["accepted"]) > 20 and len(want["rejected"]) > 15 and len(want["tiles"]) == len(want["accepted"])
    assert demo_summary["accepted"] == want["accepted"]
    assert demo_summary["rejected"] == want["rejected"]
    assert demo_summary["tiles"] == want["tiles"]
