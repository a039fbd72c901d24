"""Engines: transformers (tiny random model, batched, left padding) and the OpenAI client against real HTTP
servers (scripted, and `dataengine serve translator` on Ray Serve)."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from llm_helpers import ScriptedLLM, build_tiny_llm

from dataengine.translate.engines import EngineError
from dataengine.translate.engines.hf import TransformersEngine
from dataengine.translate.engines.openai import OpenAIEngine
from dataengine.translate.translator import Translator

MSGS = [[{"role": "user", "content": "Text for translation: " + t}] for t in ["a", "a dog on the grass", "12"]]


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory):
    return build_tiny_llm(tmp_path_factory.mktemp("tiny-llm"))


@pytest.fixture(scope="module")
def lively_llm(tmp_path_factory):
    """The tiny model with large random weights: its outputs depend on its input, and rows end at different
    steps (the engine swaps linear layers for oneDNN ones at load, so weights are set before it loads)."""
    return build_tiny_llm(tmp_path_factory.mktemp("lively-llm"), weight_std=1.0)


def test_transformers_engine_batches_with_left_padding(tiny_llm):
    engine = TransformersEngine(str(tiny_llm))
    assert engine.tokenizer.padding_side == "left" and engine.device == "cpu"
    batched = engine.generate(MSGS, max_new_tokens=6, temperature=0.0)
    single = [engine.generate([m], max_new_tokens=6, temperature=0.0)[0] for m in MSGS]
    assert len(batched) == 3
    assert [b.text for b in batched] == [s.text for s in single]  # padding does not change greedy output
    for c in batched:
        assert c.finish_reason in ("stop", "length") and c.completion_tokens <= 6 and c.prompt_tokens > 0


def test_prefix_cache_gives_the_same_next_token_distribution(lively_llm):
    """[shared prefix from the cache][masked padding][own suffix] scores the next token exactly as the plain
    left-padded prompt does."""
    import torch

    from dataengine.translate import prompt

    engine = TransformersEngine(str(lively_llm))
    assert engine.onednn_linears == 2 * 7 + 1  # q, k, v, o, gate, up, down per layer, and the head
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
        cached = engine.lm(input_ids=ids, attention_mask=mask, cache=kv, position_ids=position).logits
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


def test_finished_rows_leave_the_batch_without_changing_outputs(lively_llm):
    """Rows that end early leave the batch (fewer tokens decoded), and every row's output is unchanged, with the
    prefix cache on or off, on oneDNN or the default linear layers (token 206 taken as the end)."""
    from dataengine.translate import prompt

    msgs = [prompt.messages(t) for t in ["a", "a dog on the grass", "A red car parked.", "two cats", "12 apples"]]
    outputs, steps = {}, {}
    for drop, prefix, onednn in [(d, p, True) for d in (True, False) for p in (True, False)] + [(1, 1, False)]:
        engine = TransformersEngine(str(lively_llm), drop_finished=drop, prefix_cache=prefix, onednn=onednn)
        engine.eos_ids = {206}
        outputs[drop, prefix] = engine.generate(msgs, max_new_tokens=12, temperature=0.0)
        steps[drop, prefix] = engine.row_steps
    reference = outputs[False, False]
    assert len({c.completion_tokens for c in reference}) >= 3  # rows do end at different steps
    assert all(out == reference for out in outputs.values())
    ended = sum(c.completion_tokens + (c.finish_reason == "stop") for c in reference)  # each row's own steps
    assert steps[True, True] == steps[True, False] == ended < steps[False, True] == len(msgs) * 12


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


def test_openai_engine_one_bad_request_fails_alone():
    """A refused request (HTTP 400) or an answer without choices fails its own segment with a reason; a garbled
    body is asked again. The other samples of the batch are translated, and nothing stops the run."""
    with ScriptedLLM() as server:
        server.garble_next = 1
        engine = OpenAIEngine("scripted", base_url=server.base_url, concurrency=1, backoff_s=0.01)
        translator = Translator(engine, None, batch_size=8)
        samples = [
            {"caption": "A cat sleeping on a sofa."},
            {"caption": next(iter(ScriptedLLM.REFUSED))},
            {"caption": next(iter(ScriptedLLM.ERROR_BODY))},
        ]
        ok, refused, choked = translator.translate_samples(samples)
        assert ok.status == "ok" and ok.caption_zh == "一只猫睡在沙发上。"
        assert refused.status == "failed:request_failed" and "HTTP 400" in refused.detail
        assert choked.status == "failed:request_failed" and "malformed response" in choked.detail
        assert server.garble_next == 0  # the garbled answer was retried, not taken as a failure


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


KEY = "test-key-3b1f"


@pytest.fixture(scope="module")
def translator(ray_local, tiny_llm):
    """`serve translator` on the tiny model, on 127.0.0.1 with an API key: (OpenAI base URL, port)."""
    from ray import serve

    from dataengine.translate import serve as translator_serve

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = translator_serve.start(str(tiny_llm), host="127.0.0.1", port=port, api_key=KEY)
    yield base, port
    serve.shutdown()


def _call(url: str, body: object = None, key: str | None = KEY, scheme: str = "Bearer") -> tuple[int, dict, Any]:
    """(status, JSON answer, headers) of a GET (no body) or POST (a JSON value, or raw bytes) to the server."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **({"Authorization": f"{scheme} {key}"} if key else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=60) as resp:
            return resp.status, json.loads(resp.read()), resp.headers
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw), exc.headers
        except ValueError:  # e.g. Serve's own plain-text 500
            return exc.code, {"raw": raw.decode("utf-8", "replace")}, exc.headers


def test_serve_translator_speaks_openai(translator, tiny_llm):
    base, _ = translator
    status, models, _ = _call(f"{base}/models")
    assert status == 200 and models["data"][0]["id"] == tiny_llm.name
    engine = OpenAIEngine(tiny_llm.name, base_url=base, api_key=KEY, concurrency=3)
    outs = engine.generate(MSGS, max_new_tokens=5, temperature=0.0)
    direct = TransformersEngine(str(tiny_llm)).generate(MSGS, max_new_tokens=5, temperature=0.0)
    assert [o.text for o in outs] == [d.text for d in direct]
    assert all(o.finish_reason in ("stop", "length") for o in outs)
    status, body, _ = _call(f"{base}/chat/completions", {"nope": 1})
    assert status == 400 and "messages" in body["error"]["message"]


def test_serve_translator_answers_a_bad_request_alone(translator, tiny_llm):
    """Bad requests sent together with good ones are refused (4xx) before they join a batch; a request the engine
    fails on (a temperature so low that sampling overflows) fails alone (422); the good ones are answered."""
    import http.client

    from dataengine.translate import serve as translator_serve

    base, port = translator
    good = {"model": tiny_llm.name, "messages": MSGS[1], "max_tokens": 3}
    bad = [
        ({"messages": []}, "non-empty list"),
        ({**good, "max_tokens": "lots"}, "max_tokens must be an integer"),
        ({**good, "max_tokens": translator_serve.MAX_TOKENS + 1}, f"from 1 to {translator_serve.MAX_TOKENS}"),
        ({**good, "max_tokens": True}, "max_tokens must be an integer"),
        ({**good, "temperature": "hot"}, "temperature must be a number"),
        ({**good, "temperature": 3}, "temperature must be a number"),
        ({**good, "messages": [{"role": "user", "content": 5}]}, "each message must be"),
        ({**good, "messages": [{"role": "robot", "content": "hi"}]}, "each message must be"),
        ({**good, "stream": True}, "stream is not supported"),
        ([good], "body must be a JSON object"),
        (b"{not json", "not valid JSON"),
    ]
    overflow = {**good, "temperature": 1e-300}
    bodies = [good, *(b for b, _ in bad), good, overflow, good]
    with ThreadPoolExecutor(len(bodies)) as pool:
        answers = list(pool.map(lambda b: _call(f"{base}/chat/completions", b), bodies))
    for (status, body, _), (_, why) in zip(answers[1 : 1 + len(bad)], bad, strict=True):
        assert status == 400 and why in body["error"]["message"], body
        assert body["error"]["type"] == "invalid_request_error"
    goods = [answers[0], answers[-3], answers[-1]]
    assert all(st == 200 and r["choices"][0]["message"]["role"] == "assistant" for st, r, _ in goods), goods
    status, body, _ = answers[-2]
    assert status == 422 and "could not generate" in body["error"]["message"], body
    # a body declared over the limit is refused before it is read
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", "/v1/chat/completions")
    conn.putheader("Authorization", f"Bearer {KEY}")
    conn.putheader("Content-Length", str(translator_serve.MAX_BODY + 1))
    conn.endheaders()
    resp = conn.getresponse()
    assert resp.status == 413 and "body over" in json.loads(resp.read())["error"]["message"]
    conn.close()


def test_serve_translator_needs_its_api_key(translator, tiny_llm, monkeypatch):
    """Without the key, with a wrong one or another scheme: 401 with an OpenAI-style error; the OpenAI engine
    sends its api_key, or $OPENAI_API_KEY, and says what to set when the server refuses it."""
    base, _ = translator
    for key, scheme in [(None, "Bearer"), ("wrong", "Bearer"), (KEY, "Basic"), (KEY[:-1], "Bearer")]:
        for body in (None, {"model": tiny_llm.name, "messages": MSGS[0]}):
            status, answer, headers = _call(f"{base}/{'chat/completions' if body else 'models'}", body, key, scheme)
            assert status == 401 and answer["error"]["code"] == "invalid_api_key", answer
            assert headers["WWW-Authenticate"] == "Bearer"
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(EngineError, match="HTTP 401.*OPENAI_API_KEY"):
        OpenAIEngine(tiny_llm.name, base_url=base, backoff_s=0.01).generate(
            MSGS[:1], max_new_tokens=2, temperature=0.0
        )
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    (out,) = OpenAIEngine(tiny_llm.name, base_url=base).generate(MSGS[:1], max_new_tokens=2, temperature=0.0)
    assert out.error is None and out.finish_reason in ("stop", "length")


def test_bench_translate_reports_both_modes_ablations_and_a_cached_rerun(tiny_llm):
    from dataengine.bench import translate as bench

    result = bench.run(str(tiny_llm), None, n=4, batch_size=4, max_new_tokens=4, repeats=2)
    assert len(result["batched"]["wall_s_runs"]) == 2 and len(result["batching_speedup_runs"]) == 2
    for mode in [*bench.DEFAULTS, *bench.ABLATION]:
        assert result[mode]["wall_s"] >= 0 and result[mode]["prompt_tokens"] > 0
        assert result[mode]["decoded_row_tokens"] >= result[mode]["generated_tokens"]
    assert result["batched"]["same_translations_as_batched"]
    assert result["one_at_a_time"]["same_translations_as_batched"]  # greedy: batching changes no output
    assert result["batched"]["prefix_cache"] and not result["batched_no_prefix_cache"]["prefix_cache"]
    assert result["batched"]["drop_finished_rows"] and not result["batched_keep_finished_rows"]["drop_finished_rows"]
    assert result["batched"]["onednn"] and not result["batched_no_onednn"]["onednn"]
    for key in ("", "_no_prefix_cache", "_no_onednn", "_keep_finished_rows"):
        assert result[f"batching_speedup{key}"] > 0
    assert result["cache_first_run"]["llm_calls"] > 0  # the tiny model's outputs fail validation: retried
    assert result["cache_second_run"]["llm_calls"] == result["cache_first_run"]["llm_calls"]
