"""Opt-in slow test with the real demo LLM (run `dataengine models pull demo-translator`, then
`pytest -m slow`): real captions and a conversation come back as validated Chinese."""

from __future__ import annotations

import pytest

from dataengine.models import ModelError, resolve_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_translator():
    try:
        resolve_model("demo-translator")
    except ModelError:
        pytest.skip("demo model not registered: dataengine models pull demo-translator")
    from dataengine.translate.engines.hf import TransformersEngine
    from dataengine.translate.translator import Translator

    return Translator(TransformersEngine("demo-translator", num_threads=2), None, batch_size=4)


def test_real_captions_translate(real_translator):
    outs = real_translator.translate_samples(
        [
            {"caption": "A cup of coffee on a wooden table next to a laptop."},
            {"caption": "Two children are playing football in a park in 2023."},
            {
                "conversations": [
                    {"from": "human", "value": "<image>\nWhat animal is in the photo?"},
                    {"from": "gpt", "value": "A tabby cat sleeping on a sofa."},
                ]
            },
        ]
    )
    ok = [o for o in outs if o.status == "ok"]
    assert len(ok) >= 2, [o.status for o in outs]
    for o in ok:
        text = o.caption_zh or "".join(t["value"] for t in o.conversations_zh)
        assert sum("\u4e00" <= c <= "\u9fff" for c in text) >= 4
    if outs[1].status == "ok":
        assert "2023" in outs[1].caption_zh
    if outs[2].status == "ok":
        assert outs[2].conversations_zh[0]["value"].startswith("<image>\n")


def test_prefix_cache_does_not_change_real_translations(real_translator):
    """The demo model gives the same greedy translations with the system prompt's cache reused as without."""
    from dataengine.translate import prompt

    engine = real_translator.engine
    msgs = [prompt.messages(t) for t in ["A red bus on a rainy street.", "Three dogs run on the beach."]]
    engine.prefix_cache = True
    cached = engine.generate(msgs, max_new_tokens=48, temperature=0.0)
    engine.prefix_cache = False
    try:
        plain = engine.generate(msgs, max_new_tokens=48, temperature=0.0)
    finally:
        engine.prefix_cache = True
    assert [c.text for c in cached] == [p.text for p in plain]
