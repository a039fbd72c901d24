"""Language routing: English and Chinese kept, others rejected unless configured; short-text fallback."""

from __future__ import annotations

import pytest
from conftest import row

from dataengine.ops.language import LanguageConfig, LanguageRoute, detect


def route(caption=None, conversations=None, **cfg):
    return LanguageRoute(LanguageConfig(**cfg)).apply(row(caption=caption, conversations=conversations))


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("A man in a grey coat walks his dog along a rainy street at night.", "en"),
        ("一只橘色的猫躺在窗台上晒太阳。", "zh"),
        ("季度销售额 Quarterly Sales 2025：第三季度最高", "zh"),
        ("Une femme lit un livre dans un café près de la fenêtre ouverte.", "fr"),
        ("Ein kleiner Hund spielt im Garten mit einem roten Ball und bellt.", "de"),
        ("日本の山と湖の写真です", "ja"),
        ("서울의 밤거리 풍경입니다", "ko"),
        ("red car", "en"),
        ("A dog on the grass", "en"),
        ("Dog in a park", "en"),
        # short English noun phrases with no function word: the words' English frequency is the evidence
        ("Golden retriever puppy", "en"),
        ("Cat sleeping", "en"),
        ("blue sky", "en"),
        ("cute puppy", "en"),
        ("Mountain lake", "en"),
        ("Tokyo tower at night", "en"),
        # short non-English Latin text: no evidence of English, so undetermined (never sent to translation)
        ("Un perro en el parque", "und"),
        ("Ein Hund im Park", "und"),
        ("Kucing tidur di sofa", "und"),
        ("Il gatto in giardino", "und"),  # "in" is English too, "il" is not
        ("Le chat noir", "und"),
        ("Gato negro", "und"),
        ("Chien noir", "und"),
        ("An abstract colourful texture, sample number 1.", "en"),  # langdetect alone says Romanian
        ("Il gatto dorme sul divano tutto il giorno.", "it"),
        ("Een grote hond rent op het strand met een bal.", "nl"),
        ("12345 !!", "und"),
    ],
)
def test_detect(text, lang):
    assert detect(text)[0] == lang


def test_detection_is_deterministic():
    text = "Un perro grande corre por la playa al atardecer con su dueño."
    assert len({detect(text) for _ in range(5)}) == 1


def test_english_and_chinese_routed():
    assert route("A bowl of ramen with egg and green onions.")["language"] == "en"
    out = route("一碗拉面，上面有鸡蛋和葱花。")
    assert out["reason"] is None and out["language"] == "zh" and out["language_score"] > 0.5


def test_other_language_rejected_with_reason():
    out = route("Une femme lit un livre dans un café près de la fenêtre ouverte.")
    assert (out["stage"], out["reason"], out["language"]) == ("language", "language_not_allowed", "fr")


def test_other_language_kept_when_configured():
    assert (
        route("Une femme lit un livre dans un café près de la fenêtre ouverte.", keep=["en", "zh", "fr"])["reason"]
        is None
    )


def test_no_letters_is_undetermined():
    assert route("2024 - 100%")["reason"] == "undetermined_language"


def test_short_foreign_caption_is_undetermined_not_english():
    out = route("Un perro en el parque")
    assert (out["stage"], out["reason"], out["language"]) == ("language", "undetermined_language", "und")
    assert "no evidence of English" in out["detail"]


def test_conversation_language_uses_all_turns():
    turns = [{"from": "human", "value": "<image>\n图中有什么？"}, {"from": "gpt", "value": "一只狗在草地上奔跑。"}]
    assert route(conversations=turns)["language"] == "zh"
