"""Engines: transformers (tiny random model, batched, left padding) and the OpenAI client against real HTTP
servers (scripted, and `dataengine serve translator` on Ray Serve)."""

from __future__ import annotations

import json
import socket
import urllib.request

import pytest
from llm_helpers import ScriptedLLM, build_tiny_llm

from dataengine.translate.engines import EngineError
from dataengine.translate.engines.hf import TransformersEngine
from dataengine.translate.engines.openai import OpenAIEngine

MSGS = [[{"role": "user", "content": "Text for translation: " + t}] for t in ["a", "a dog on the grass", "12"]]


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    return build_tiny_llm(tmp_path_factory.mktemp("tiny-llm"))


def test_transformers_engine_batches_with_left_padding(tiny_llm):
    engine = TransformersEngine(str(tiny_llm))
    assert engine.tokenizer.padding_side == "left" and engine.device == "cpu"
    batched = engine.generate(MSGS, max_new_tokens=6, temperature=0.0)
    single = [engine.generate([m], max_new_tokens=6, temperature=0.0)[0] for m in MSGS]
    assert len(batched) == 3
    assert [b.text for b in batched] == [s.text for s in single]  # padding does not change greedy output
    for c in batched:
        assert c.finish_reason in ("stop", "length") and c.completion_tokens <= 6 and c.prompt_tokens > 0


def test_prefix_cache_gives_the_same_next_token_distribution(tiny_llm):
    """[shared prefix from the cache][masked padding][own suffix] scores the next token exactly as the plain
    left-padded prompt does; weights are scaled up so that the tiny model's outputs depend on its input."""
    import torch

    from dataengine.translate import prompt

    engine = TransformersEngine(str(tiny_llm))
    torch.manual_seed(1)
    with torch.no_grad():
        for p in engine.lm.parameters():
            p.normal_(0, 0.3)
    msgs = [prompt.messages(t) for t in ["a", "a dog on the grass", "A red car parked on the street."]]
    rows = [engine._split(m) for m in msgs]
    prefix = rows[0][0]
    assert prefix and all(r[0] == prefix for r in rows)  # the system prompt is the shared prefix
    suffixes = [r[1] for r in rows]
    width = max(map(len, suffixes))
    pad = engine.tokenizer.pad_token_id
    kv = __import__("copy").deepcopy(engine._prefix_kv(prefix))
    kv.batch_repeat_interleave(len(suffixes))
    ids = torch.tensor([[pad] * (width - len(s)) + s for s in suffixes])
    mask = torch.tensor([[1] * len(prefix) + [0] * (width - len(s)) + [1] * len(s) for s in suffixes])
    position = (mask.cumsum(-1) - 1)[:, len(prefix) :]
    with torch.inference_mode():
        cached = engine.lm(input_ids=ids, attention_mask=mask, past_key_values=kv, position_ids=position).logits
        for i, m in enumerate(msgs):
            full = torch.tensor(
                [
                    engine.tokenizer(
                        engine.tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True),
                        add_special_tokens=False,
                    )["input_ids"]
                ]
            )
            plain = engine.lm(input_ids=full).logits
            torch.testing.assert_close(cached[i, -1], plain[0, -1], rtol=1e-4, atol=1e-4)


def test_prefix_cache_changes_no_output(tiny_llm):
    msgs = [[{"role": "system", "content": "You are a professional translator."}, *m] for m in MSGS]
    cached, plain = TransformersEngine(str(tiny_llm)), TransformersEngine(str(tiny_llm), prefix_cache=False)
    first = cached.generate(msgs, max_new_tokens=6, temperature=0.0)
    assert cached.prefix_hits == 2  # three rows, one prefix computed
    again = cached.generate(msgs[:1], max_new_tokens=6, temperature=0.0)
    assert cached.prefix_hits == 3 and again[0] == first[0]
    assert first == plain.generate(msgs, max_new_tokens=6, temperature=0.0)
    assert plain.prefix_hits == 0


def test_transformers_engine_refuses_missing_model(tmp_path):
    with pytest.raises(EngineError, match="not found"):
        TransformersEngine(str(tmp_path / "nope"))


def test_openai_engine_against_scripted_server():
    with ScriptedLLM() as server:
        engine = OpenAIEngine("scripted", base_url=server.base_url, concurrency=4)
        msgs = [[{"role": "user", "content": "Text for translation: A cat sleeping on a sofa."}]] * 5
        outs = engine.generate(msgs, max_new_tokens=64, temperature=0.0)
        assert [o.text for o in outs] == ["一只猫睡在沙发上。"] * 5 and outs[0].finish_reason == "stop"
        assert server.requests == 5


def test_openai_engine_retries_with_backoff():
    with ScriptedLLM() as server:
        server.fail_next = 2
        engine = OpenAIEngine("scripted", base_url=server.base_url, backoff_s=0.01)
        (out,) = engine.generate(MSGS[:1], max_new_tokens=8, temperature=0.0)
        assert server.requests == 3 and out.finish_reason == "stop"


def test_openai_engine_clear_error_when_server_down():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again on exit: nothing listens there
    engine = OpenAIEngine("x", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, backoff_s=0.01, timeout_s=2)
    with pytest.raises(EngineError, match="no OpenAI-compatible server answering"):
        engine.generate(MSGS[:1], max_new_tokens=8, temperature=0.0)


def test_openai_engine_does_not_retry_client_errors(tmp_path):
    with ScriptedLLM() as server:
        engine = OpenAIEngine("x", base_url=server.base_url.replace("/v1", "/nope"), backoff_s=0.01)
        with pytest.raises(EngineError, match="HTTP 404"):
            engine.generate(MSGS[:1], max_new_tokens=8, temperature=0.0)
        assert server.requests == 1


def test_serve_translator_speaks_openai(ray_local, tiny_llm):
    from ray import serve

    from dataengine.translate import serve as translator_serve

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = translator_serve.start(str(tiny_llm), host="127.0.0.1", port=port)
    try:
        models = json.loads(urllib.request.urlopen(f"{base}/models", timeout=30).read())
        assert models["data"][0]["id"] == tiny_llm.name
        engine = OpenAIEngine(tiny_llm.name, base_url=base, concurrency=3)
        outs = engine.generate(MSGS, max_new_tokens=5, temperature=0.0)
        direct = TransformersEngine(str(tiny_llm)).generate(MSGS, max_new_tokens=5, temperature=0.0)
        assert [o.text for o in outs] == [d.text for d in direct]
        assert all(o.finish_reason in ("stop", "length") for o in outs)
        bad = urllib.request.Request(
            f"{base}/chat/completions", data=b'{"nope": 1}', headers={"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad, timeout=30)
        assert err.value.code == 400
    finally:
        serve.shutdown()


def test_bench_translate_reports_both_modes_and_a_cached_rerun(tiny_llm):
    from dataengine.translate import bench

    result = bench.run(str(tiny_llm), None, n=4, batch_size=4, max_new_tokens=4)
    for mode in ("batched", "one_at_a_time", "batched_no_prefix_cache", "one_at_a_time_no_prefix_cache"):
        assert result[mode]["wall_s"] >= 0 and result[mode]["prompt_tokens"] > 0
    assert result["batched"]["prefix_cache"] and not result["batched_no_prefix_cache"]["prefix_cache"]
    assert result["batching_speedup"] > 0 and result["batching_speedup_no_prefix_cache"] > 0
    assert result["cache_first_run"]["llm_calls"] > 0  # the tiny model's outputs fail validation: retried
    assert result["cache_second_run"]["llm_calls"] == result["cache_first_run"]["llm_calls"]
