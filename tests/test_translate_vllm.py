"""The thin vllm path: config translation into Ray Data LLM and the row mapping around the processor
(vLLM itself cannot run here)."""

from __future__ import annotations

import json

from dataengine.ops.translate import TranslateConfig
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
        "zh_texts": ["<image>\n这是什么？", "一辆有2扇门的红色汽车。"],
        "status": "ok",
        "detail": "",
    }
    bad = vllm.checked(
        {**segs[1], "generated_text": "Here is the translation: 汽车", "num_generated_tokens": 3},
        {"min_cjk_share": 0.3, "min_length_ratio": 0.1, "max_length_ratio": 1.6},
    )
    assert vllm.assemble([results[1], bad])["status"] == "failed:preamble_or_echo"
    assert vllm.assemble([results[1]])["status"] == "failed:missing_output"
    assert json.loads(segs[0]["spans"]) == ["<image>\n", ""]


def test_non_english_and_rejected_rows_make_no_segments():
    assert vllm.segment_rows({"id": "z", "reason": None, "language": "zh", "caption": "一只猫"}, {}, 8, 0.0) == []
    assert vllm.segment_rows({"id": "r", "reason": "too_small", "language": "en", "caption": "x"}, {}, 8, 0.0) == []
