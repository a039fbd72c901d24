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
