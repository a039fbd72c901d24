"""Translator and the `translate` stage against a real local OpenAI-compatible server with a scripted model."""

from __future__ import annotations

import polars as pl
import pytest
from conftest import encode, textured, write_jsonl
from llm_helpers import ScriptedLLM

from dataengine import pipeline, runner
from dataengine.translate.cache import TranslationCache
from dataengine.translate.engines.openai import OpenAIEngine
from dataengine.translate.prompt import PROMPT_VERSION
from dataengine.translate.translator import Translator
from dataengine.translate.validate import ValidationConfig

CONV = [
    {"from": "human", "value": "<image>\nWhat is in the picture?"},
    {"from": "gpt", "value": "A cat sleeping on a sofa."},
]


@pytest.fixture
def server():
    with ScriptedLLM() as s:
        yield s


def translator(server, tmp_path, validation=None):
    engine = OpenAIEngine("scripted", base_url=server.base_url, backoff_s=0.01)
    return Translator(engine, TranslationCache(str(tmp_path), engine, PROMPT_VERSION, "none"), validation=validation)


def test_captions_conversations_protection_and_provenance(server, tmp_path):
    t = translator(server, tmp_path)
    outs = t.translate_samples(
        [
            {"caption": "A red car parked on the street."},
            {"conversations": CONV},
            {"caption": "A photo of Paris at night, see https://example.com/paris"},
            {"caption": "A dog runs on the grass with 2 balls."},
        ]
    )
    assert [o.status for o in outs] == ["ok"] * 4
    assert outs[0].caption_zh == "一辆红色的汽车停在街上。"
    assert outs[1].conversations_zh == [
        {"from": "human", "value": "<image>\n图片里有什么？"},
        {"from": "gpt", "value": "一只猫睡在沙发上。"},
    ]
    assert outs[2].caption_zh == "巴黎夜景照片，见https://example.com/paris"
    assert outs[0].attempts == 1 and outs[0].cache_hits == 0


def test_failed_validation_is_retried_then_reported(server, tmp_path):
    t = translator(server, tmp_path)
    (out,) = t.translate_samples([{"caption": "Say hello"}])
    assert out.status == "failed:preamble_or_echo" and out.attempts == 2 and server.requests == 2
    (out,) = t.translate_samples([{"caption": "Untranslated English stays English here."}])
    assert out.status == "failed:not_chinese"


def test_cache_makes_reruns_free(server, tmp_path):
    samples = [{"caption": "A red car parked on the street."}, {"conversations": CONV}]
    translator(server, tmp_path).translate_samples(samples)
    first = server.requests
    again = translator(server, tmp_path)
    outs = again.translate_samples(samples + [{"caption": "A red car parked on the street."}])
    assert server.requests == first and again.llm_calls == 0
    assert [o.cache_hits for o in outs] == [1, 2, 1] and all(o.status == "ok" for o in outs)


def test_cache_hit_is_validated_under_this_runs_settings(server, tmp_path):
    """A cached translation that passed a lenient run is not taken as `ok` by a stricter one: it is translated
    again and judged by the stricter settings."""
    caption = [{"caption": "A red car parked on the street."}]  # 一辆红色的汽车停在街上。: length ratio 0.39
    assert translator(server, tmp_path).translate_samples(caption)[0].status == "ok"
    first = server.requests
    strict = translator(server, tmp_path, ValidationConfig(min_length_ratio=0.5))
    (out,) = strict.translate_samples(caption)
    assert out.status == "failed:length_ratio" and out.cache_hits == 0
    assert server.requests - first == 2 and strict.cache.hits == 0  # both attempts went to the model
    (again,) = translator(server, tmp_path).translate_samples(caption)  # the lenient settings still reuse it
    assert again.status == "ok" and again.cache_hits == 1 and server.requests - first == 2


def test_cache_is_keyed_by_engine_server_and_model(tmp_path):
    """Two servers serving different weights under one model name do not share cache entries."""
    caption = [{"caption": "A red car parked on the street."}]
    with ScriptedLLM() as one, ScriptedLLM() as two:
        assert translator(one, tmp_path).translate_samples(caption)[0].caption_zh == "一辆红色的汽车停在街上。"
        (out,) = translator(two, tmp_path).translate_samples(caption)
        assert out.status == "ok" and out.cache_hits == 0 and two.requests == 1
        assert translator(one, tmp_path).translate_samples(caption)[0].cache_hits == 1 and one.requests == 1
        engines = [OpenAIEngine(m, base_url=u) for m in ("scripted", "other") for u in (one.base_url, two.base_url)]
        assert len({TranslationCache(None, e, PROMPT_VERSION, "none").key("x") for e in engines}) == 4


def _dataset(root):
    (root / "img").mkdir(parents=True)
    captions = [
        "A red car parked on the street.",
        "A dog runs on the grass with 2 balls.",
        "Say hello to everyone",
        "一只猫睡在沙发上，阳光很好。",
    ]
    recs = []
    for i, cap in enumerate(captions):
        (root / "img" / f"{i}.png").write_bytes(encode(textured(500 + i), "PNG"))
        recs.append({"id": f"s{i}", "image": f"img/{i}.png", "caption": cap})
    (root / "img" / "c.png").write_bytes(encode(textured(510), "PNG"))
    recs.append({"id": "conv", "image": "img/c.png", "conversations": CONV})
    write_jsonl(root / "a.jsonl", recs)


def _spec(server, on_failure="reject"):
    return pipeline.parse(
        {
            "name": "tr",
            "ray": {"progress": False},
            "stages": [
                {"op": "resolve"},
                {"op": "image"},
                {"op": "text"},
                {"op": "language"},
                {"op": "dedup"},
                {
                    "op": "translate",
                    "engine": "openai",
                    "model": "scripted",
                    "base_url": server.base_url,
                    "on_failure": on_failure,
                },
                {"op": "export"},
            ],
        }
    )


def test_translate_stage_in_a_run(ray_local, server, tmp_path):
    _dataset(tmp_path / "data")
    record = runner.run(_spec(server), input_uri=str(tmp_path / "data"), storage=str(tmp_path / "st"))
    assert record["accounting"]["ok"]
    samples = pl.read_parquet(record["files"]["samples"])
    rejects = pl.read_parquet(record["files"]["rejects"])
    by_key = {r["source_key"]: r for r in samples.iter_rows(named=True)}
    assert by_key["s0"]["caption"] == "A red car parked on the street."  # English kept
    assert by_key["s0"]["caption_zh"] == "一辆红色的汽车停在街上。"
    assert by_key["s0"]["translation_status"] == "ok" and by_key["s0"]["translation_model"] == "scripted"
    assert by_key["s0"]["translation_engine"] == "openai" and by_key["s0"]["translation_prompt"] == PROMPT_VERSION
    assert by_key["s3"]["translation_status"] == "source_zh" and by_key["s3"]["caption_zh"] is None
    assert by_key["conv"]["conversations_zh"][0]["value"] == "<image>\n图片里有什么？"
    (rej,) = rejects.iter_rows(named=True)
    # "Say hello to everyone" is unknown to the scripted model, which echoes it back: not Chinese, rejected
    assert (rej["source_key"], rej["stage"], rej["reason"]) == ("s2", "translate", "translation_not_chinese")

    before = server.requests
    again = runner.run(_spec(server), input_uri=str(tmp_path / "data"), storage=str(tmp_path / "st"))
    hits = pl.read_parquet(again["files"]["samples"])["translation_cache_hits"].to_list()
    assert server.requests - before == 2  # only the failing caption (2 attempts) calls the LLM again
    assert sum(h or 0 for h in hits) == 4


def test_keep_english_flags_instead_of_rejecting(ray_local, server, tmp_path):
    _dataset(tmp_path / "data")
    record = runner.run(_spec(server, "keep_english"), input_uri=str(tmp_path / "data"), storage=str(tmp_path / "st"))
    samples = pl.read_parquet(record["files"]["samples"])
    flagged = samples.filter(pl.col("source_key") == "s2").row(0, named=True)
    assert flagged["translation_status"] == "failed:not_chinese" and flagged["caption_zh"] is None
    assert samples.height == 5
