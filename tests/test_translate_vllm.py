"""The thin vllm path: config translation into Ray Data LLM and the row mapping around the processor
(vLLM itself cannot run here)."""

from __future__ import annotations

import json

from dataengine.core.rows import new_row, to_table
from dataengine.ops.translate import TranslateConfig, attach_translations
from dataengine.translate import vllm


def test_processor_config_translation():
    cfg = TranslateConfig(
        engine="vllm",
        model="/models/qwen",
        batch_size=32,
        vllm_accelerator_type="H100",
        compute={"kind": "actors", "size": 4},
        vllm_engine_kwargs={"gpu_memory_utilization": 0.8},
    )
    pc = vllm.processor_config(cfg, "/models/qwen")
    assert pc.model_source == "/models/qwen" and pc.batch_size == 32 and pc.accelerator_type == "H100"
    assert pc.concurrency == 4
    assert pc.engine_kwargs["gpu_memory_utilization"] == 0.8 and pc.engine_kwargs["trust_remote_code"] is False
    assert pc.engine_kwargs["enable_prefix_caching"] is True


def test_segments_validation_and_regrouping():
    row = {
        "id": "x",
        "reason": None,
        "language": "en",
        "caption": None,
        "conversations": [
            {"from": "human", "value": "<image>\nWhat is this?"},
            {"from": "gpt", "value": "A red car with 2 doors."},
        ],
    }
    segs = vllm.segment_rows(row, {"car": "汽车"}, 64, 0.0)
    assert [s["k"] for s in segs] == [0, 1] and segs[0]["protected"] == "What is this?"
    assert "car => 汽车" in segs[0]["messages"][0]["content"] and segs[1]["sampling_params"]["max_tokens"] == 64
    outs = [
        {**segs[0], "generated_text": "这是什么？", "num_generated_tokens": 5},
        {**segs[1], "generated_text": "一辆有2扇门的红色汽车。", "num_generated_tokens": 9},
    ]
    results = [
        vllm.checked(o, {"min_cjk_share": 0.3, "min_length_ratio": 0.1, "max_length_ratio": 1.6})
        for o in reversed(outs)
    ]
    done = vllm.assemble(results)
    assert done == {
        "id": "x",
        "vllm_texts": ["<image>\n这是什么？", "一辆有2扇门的红色汽车。"],
        "vllm_ks": [0, 1],
        "vllm_status": "ok",
        "vllm_detail": "",
    }
    bad = vllm.checked(
        {**segs[1], "generated_text": "Here is the translation: 汽车", "num_generated_tokens": 3},
        {"min_cjk_share": 0.3, "min_length_ratio": 0.1, "max_length_ratio": 1.6},
    )
    assert vllm.assemble([results[1], bad])["vllm_status"] == "failed:preamble_or_echo"
    assert vllm.assemble([results[1]])["vllm_status"] == "failed:missing_output"
    assert json.loads(segs[0]["spans"]) == ["<image>\n", ""]


def test_non_english_and_rejected_rows_make_no_segments():
    assert vllm.segment_rows({"id": "z", "reason": None, "language": "zh", "caption": "一只猫"}, {}, 8, 0.0) == []
    assert vllm.segment_rows({"id": "r", "reason": "too_small", "language": "en", "caption": "x"}, {}, 8, 0.0) == []


def test_segment_results_join_back_onto_the_working_rows(ray_local):
    """The dataset-level half of the vLLM path on a real Ray Data join: bilingual rows keep their Chinese,
    untranslatable turns are not sent, a failed sample follows on_failure, earlier rejects keep their detail."""
    bilingual = {
        "id": "b",
        "reason": None,
        "language": "en",
        "caption": "A red car.",
        "caption_zh": "一辆红色的汽车。",
    }
    assert vllm.segment_rows(bilingual, {}, 8, 0.0) == []
    turns = [{"from": "human", "value": "<image>\nHow many dogs?"}, {"from": "gpt", "value": "3"}]
    vqa = {"id": "q", "reason": None, "language": "en", "caption": None, "conversations": turns}
    segs = vllm.segment_rows(vqa, {}, 8, 0.0)
    assert [(s["k"], s["n"]) for s in segs] == [(0, 1)]  # "3" is its own translation, as in the Translator
    bad = vllm.segment_rows({"id": "f", "reason": None, "language": "en", "caption": "A dog."}, {}, 8, 0.0)
    assert vllm.segment_rows({"id": "n", "reason": None, "language": "en", "caption": "2024"}, {}, 8, 0.0) == []
    results = [
        vllm.checked({**segs[0], "generated_text": "有几只狗？", "num_generated_tokens": 5}, {}),
        vllm.checked({**bad[0], "generated_text": "A dog.", "num_generated_tokens": 3}, {}),
    ]
    rows = [
        new_row(**{k: v for k, v in bilingual.items() if k != "reason"}),
        new_row(id="q", language="en", conversations=turns),
        new_row(id="n", language="en", caption="2024"),
        new_row(id="f", language="en", caption="A dog."),
        new_row(id="r", language="en", caption="x", stage="image", reason="too_small", detail="8x8"),
    ]
    ds = ray_local.data.from_arrow(to_table(rows))
    cfg = TranslateConfig(engine="vllm", model="m", on_failure="reject")
    out = {r["id"]: r for r in attach_translations(ds, ray_local.data.from_items(results), cfg).take_all()}
    assert len(out) == 5
    assert out["b"]["caption_zh"] == "一辆红色的汽车。" and out["b"]["translation_status"] == "source_bilingual"
    assert out["q"]["translation_status"] == "ok" and out["q"]["conversations_zh"] == [
        {"from": "human", "value": "<image>\n有几只狗？"},
        {"from": "gpt", "value": "3"},
    ]
    assert out["n"]["caption_zh"] == "2024" and out["n"]["translation_attempts"] == 0
    assert out["f"]["reason"] == "translation_not_chinese" and out["f"]["caption_zh"] is None
    assert (out["r"]["reason"], out["r"]["detail"]) == ("too_small", "8x8")
    assert all(out[k]["reason"] is None for k in "bqn")
