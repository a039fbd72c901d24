"""The `quality` stage in a real run (Ray): translate (scripted server) -> quality (tiny test LLM) -> filter on the
LLM's ratings -> export, in schemas samples.v4 / rejects.v3; a second run scores from the cache."""

from __future__ import annotations

import polars as pl
import pytest
from conftest import encode, textured, write_jsonl
from llm_helpers import ScriptedLLM, build_tiny_llm

from dataengine import pipeline, runner
from dataengine.quality.judge import RUBRIC_VERSION


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    return build_tiny_llm(tmp_path_factory.mktemp("tiny-llm"), weight_std=1.0)


def _dataset(root):
    (root / "img").mkdir(parents=True)
    captions = [
        "A red car parked on the street.",
        "A dog runs on the grass with 2 balls.",
        "一只猫睡在沙发上，阳光很好。",
    ]
    recs = []
    for i, cap in enumerate(captions):
        (root / "img" / f"{i}.png").write_bytes(encode(textured(700 + i), "PNG"))
        recs.append({"id": f"s{i}", "image": f"img/{i}.png", "caption": cap})
    write_jsonl(root / "a.jsonl", recs)


def _spec(server, model, min_quality_zh=None):
    rules = {"min_quality_zh": min_quality_zh} if min_quality_zh is not None else {"min_quality_en": 0}
    return pipeline.parse(
        {
            "name": "q",
            "ray": {"progress": False},
            "stages": [
                {"op": "resolve"},
                {"op": "image"},
                {"op": "text"},
                {"op": "language"},
                {"op": "translate", "engine": "openai", "model": "scripted", "base_url": server.base_url},
                {"op": "quality", "model": str(model), "batch_size": 2},
                {"op": "filter", **rules},
                {"op": "export"},
            ],
        }
    )


def test_quality_stage_in_a_run(ray_local, tiny_llm, tmp_path):
    _dataset(tmp_path / "data")
    with ScriptedLLM() as server:
        record = runner.run(_spec(server, tiny_llm), input_uri=str(tmp_path / "data"), storage=str(tmp_path / "st"))
        assert record["accounting"]["ok"] and record["schemas"]["samples"] == "samples.v4"
        samples = pl.read_parquet(record["files"]["samples"])
        by_key = {r["source_key"]: r for r in samples.iter_rows(named=True)}
        assert set(by_key) == {"s0", "s1", "s2"}
        s0, s2 = by_key["s0"], by_key["s2"]
        assert 0 <= s0["quality_en"] <= 10 and 0 <= s0["quality_zh"] <= 10 and 0 <= s0["translation_qe"] <= 100
        assert s2["quality_en"] is None and s2["quality_zh"] is not None and s2["translation_qe"] is None
        assert s0["quality_rubric"] == RUBRIC_VERSION and s0["quality_model"] == tiny_llm.name

        strict = _spec(server, tiny_llm, min_quality_zh=10)
        again = runner.run(strict, input_uri=str(tmp_path / "data"), storage=str(tmp_path / "st"))
    rejects = pl.read_parquet(again["files"]["rejects"])
    assert set(rejects["reason"]) == {"low_quality_zh"} and rejects.height == 3
    assert rejects["quality_zh"].null_count() == 0  # the scores the filter dropped them for (rejects.v3)
    assert sorted(rejects["quality_zh"].to_list()) == sorted(samples["quality_zh"].to_list())  # from the cache
