"""The demo end to end: the sample dataset through pipelines/demo.yaml shows accepted samples in both languages
and the deliberate defects as rejects with their reasons."""

from __future__ import annotations

import polars as pl
import pytest
import yaml
from llm_helpers import build_tiny_llm
from scorer_helpers import save_tiny_scorer

from dataengine import pipeline, runner, sample_data
from dataengine.quality.judge import RUBRIC_VERSION


@pytest.fixture(scope="module")
def demo_run(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    data = sample_data.ensure(str(root / "datasets" / "demo"))
    raw = yaml.safe_load(pipeline.find("demo").read_text())
    # the real 1.1 GB demo LLM is not part of the default suite (test_translate_real.py covers it, opt-in): no
    # translation, and the quality stage rates with a tiny LLM whose ratings mean nothing, so none filters
    raw["stages"] = [s for s in raw["stages"] if s["op"] != "translate"]
    for stage in raw["stages"]:
        if stage["op"] == "quality":
            stage["model"] = str(build_tiny_llm(root / "tiny-llm", weight_std=1.0))
        if stage["op"] == "filter":
            assert stage.pop("min_quality_en") and stage.pop("min_quality_zh")
    raw["ray"]["progress"] = False
    save_tiny_scorer(str(root), name="demo-scorer")  # untrained: the demo trains its own on the shapes world
    return runner.run(pipeline.parse(raw), input_uri=data, storage=str(root))


def test_demo_accounts_for_everything(demo_run):
    acc = demo_run["accounting"]
    assert acc["ok"] and acc["accepted"] > 20 and acc["rejected"] >= 15


def test_demo_shows_each_kind_of_defect(demo_run):
    rejects = pl.read_parquet(demo_run["files"]["rejects"])
    reasons = set(rejects["reason"])
    for reason in [
        "decode_error",
        "empty_file",
        "not_an_image",
        "duplicate_exact",
        "duplicate_near",
        "language_not_allowed",
        "too_small",
        "path_outside_root",
        "missing_file",
        "too_many_pixels",
        "invalid_json",
        "invalid_utf8",
        "boilerplate",
        "caption_too_short",
    ]:
        assert reason in reasons, reason
    dup = rejects.filter(pl.col("reason") == "duplicate_exact").row(0, named=True)
    assert dup["duplicate_of"]


def test_demo_samples_are_bilingual_and_from_every_format(demo_run):
    samples = pl.read_parquet(demo_run["files"]["samples"])
    assert set(samples["language"]) == {"en", "zh"}
    assert samples.filter(pl.col("conversations").is_not_null()).height >= 3
    sources = set(samples["source"])
    assert {"photos", "documents"} <= sources
    assert any(s.endswith(".parquet") for s in sources) and any(s.endswith(".tar") for s in sources)


def test_demo_scores_every_accepted_sample(demo_run):
    samples = pl.read_parquet(demo_run["files"]["samples"])
    assert samples["scorer_model"].unique().to_list() == ["demo-scorer:v1"]
    assert samples.filter(pl.col("match_en").is_null() & pl.col("match_zh").is_null()).height == 0
    assert samples.filter(pl.col("language") == "zh")["match_zh"].null_count() == 0


def test_demo_rates_every_accepted_text(demo_run):
    samples = pl.read_parquet(demo_run["files"]["samples"])
    assert samples["quality_rubric"].unique().to_list() == [RUBRIC_VERSION]
    for lang in ("en", "zh"):
        rated = samples.filter(pl.col("language") == lang)[f"quality_{lang}"]
        assert rated.null_count() == 0 and rated.min() >= 0 and rated.max() <= 10
