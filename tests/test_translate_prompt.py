"""Prompt template, protected spans and validation of translations."""

from __future__ import annotations

import pytest

from dataengine.translate import prompt
from dataengine.translate.validate import check


def test_protect_and_restore_round_trip():
    text = (
        "<image>\nSee https://example.com/a?b=1 and `x = 1`, $E=mc^2$, box [[10, 20, 110, 220]] at (3, 4), "
        "{name} and %s, <ref>dog</ref> mail a@b.co"
    )
    p = prompt.protect(text)
    assert "https://" not in p.text and "<image>" not in p.text and "$E" not in p.text and "[[10" not in p.text
    assert p.prefix == "<image>\n" and p.restore(p.text) == text
    assert len(p.spans) == 10
    # prices are words to translate, not TeX: "$5 and $10" is no math span
    assert prompt.protect("The room costs $5 and $10 today").spans == []
    assert prompt.protect("math $x$ and $y$.").spans == ["$x$", "$y$"]


def test_multi_box_markup_is_one_span_and_a_mangled_copy_fails_validation():
    boxes = "[[10, 20, 30, 40], [50, 60, 70, 80]]"
    p = prompt.protect(f"Two <ref>dogs</ref><box>{boxes}</box> on the grass.")
    assert boxes in p.spans and "[" not in p.text and "10" not in p.text
    good = p.text.replace("Two ", "两只").replace(" on the grass.", "在草地上。")
    assert check(p.text, good, "stop") is None
    assert p.restore(good) == f"两只<ref>dogs</ref><box>{boxes}</box>在草地上。"  # byte for byte
    # the model writes the boxes out itself, with full-width brackets and commas, instead of copying the marker
    k = p.spans.index(boxes)
    mangled = good.replace(f"⟦{k}⟧", "［［10，20，30，40］，［50，60，70，80］］")
    assert check(p.text, mangled, "stop")[0] == "markers_changed"


def test_display_math_is_protected_whole():
    math = "$$\\int_0^1 x^2 \\, dx = \\frac{1}{3}$$"
    p = prompt.protect(f"The integral {math} is shown on the board.")
    assert p.spans == [math] and p.text == "The integral ⟦0⟧ is shown on the board."
    multi = "$$a^2 + b^2\n= c^2$$"
    assert prompt.protect(f"Pythagoras: {multi} holds.").spans == [multi]
    assert prompt.protect("math $x$ and $$y$$.").spans == ["$x$", "$$y$$"]


def test_edge_tags_never_reach_the_model():
    p = prompt.protect("<image>\nWhat is <ref>this</ref>?")
    assert p.text == "What is ⟦0⟧this⟦1⟧?" and p.prefix == "<image>\n"
    assert p.restore("这是什么⟦0⟧东西⟦1⟧？") == "<image>\n这是什么<ref>东西</ref>？"
    only = prompt.protect("<image>")
    assert only.text == "" and only.restore("") == "<image>"


def test_messages_carry_version_glossary_context_and_strictness():
    msgs = prompt.messages("A red car.", glossary={"Tesla": "特斯拉"}, context=["Q: what?"], strict=True)
    assert msgs[0]["role"] == "system" and "Tesla => 特斯拉" in msgs[0]["content"]
    assert "Output only the Chinese translation" in msgs[0]["content"]
    assert msgs[1]["content"].endswith("Text for translation: A red car.") and "Q: what?" in msgs[1]["content"]
    assert prompt.PROMPT_VERSION and prompt.glossary_hash({"a": "b"}) != prompt.glossary_hash({})


@pytest.mark.parametrize(
    ("src", "out", "finish", "reason"),
    [
        ("A red car with 4 doors.", "一辆有4扇门的红色汽车。", "stop", None),
        ("⟦0⟧ A dog on the grass.", "⟦0⟧ 草地上的一只狗。", "stop", None),
        ("A dog.", "", "stop", "empty_output"),
        ("A dog running on the beach.", "一只狗在沙滩上", "length", "truncated"),
        ("A dog.", "Here is the translation: 一只狗。", "stop", "preamble_or_echo"),
        ("A dog.", "以下是翻译：一只狗。", "stop", "preamble_or_echo"),
        ("A dog.", "好的，这是译文：一只狗。", "stop", "preamble_or_echo"),
        ("This is a book about translation.", "这是一本关于翻译的书。", "stop", None),  # not chatter
        ("Okay, let's go.", "好的，我们走吧。", "stop", None),
        ("Here is the menu: tea and cake.", "以下是菜单：茶和蛋糕。", "stop", None),  # the source says it
        ("⟦0⟧ A dog.", "一只狗。", "stop", "markers_changed"),
        ("⟦0⟧ A dog.", "⟦0⟧⟦0⟧ 一只狗。", "stop", "markers_changed"),
        ("A bus with 12 seats.", "一辆有十二个座位的公共汽车。", "stop", "numbers_changed"),
        ("A small dog on the grass.", "A small dog on the grass.", "stop", "not_chinese"),
        ("A dog.", "犬がいます。", "stop", "not_chinese"),
        ("A dog.", "一只狗" * 30, "stop", "length_ratio"),
    ],
)
def test_validation(src, out, finish, reason):
    result = check(src, out, finish)
    assert (result[0] if result else None) == reason
