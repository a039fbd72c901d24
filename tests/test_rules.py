"""Rule-based text quality (`dataengine/quality/rules.py`): for each rule, texts it must reject and near misses it
must keep (English and Chinese), then one `text` stage test per reason. Pure functions and `process` only: no Ray."""

from __future__ import annotations

import pytest
from conftest import row

from dataengine import pipeline
from dataengine.ops.text import TextClean, TextConfig
from dataengine.quality import CaptionRules, RepetitionSettings, caption_rules, repetition
from dataengine.quality.rules import camera_default, keyword_list, numeric, shouting, symbol_flood, url_only

GOOD_CAPTIONS = [
    "A red car parked on the street.",
    "一只橘猫趴在窗台上晒太阳，窗外是一片绿色的树林。",
    "一只（橘色）的猫，在窗台上！可爱吗？",
    "「你好」：他说；【注】……《书名》！！！？？？",
    "今天好开心！！！！！！太阳好大。。。。。。",
    "red, green, blue",
    "The equation x² + y² = r² on a blackboard",
    "Coca-Cola® bottles on a shelf at 25°C, $5 each",
    "🎉🎉 Happy birthday 🎂🎈",
    "A five-star rating ★★★★★ shown on a phone screen",
    "NASA's Perseverance rover on Mars",
    "A sign that says NO PARKING ANY TIME",
    "一辆BMW汽车停在路边",
    "2024年春节的烟花",
    "3 cats on a sofa",
    "Sunset over the sea #sunset #beach",
    "#今日穿搭# 分享一下今天的衣服，很喜欢这件外套",
    "A table with apples, oranges, bananas, grapes, pears, plums, kiwis, figs, dates, limes and cherries",
    "Colors: red, orange, yellow, green, blue, indigo, violet",
    "一只橘猫，趴在沙发上，眯着眼睛，很放松，旁边有抱枕，窗外阳光，地板干净，桌上有书，墙上挂画，房间温馨",
    "An Olympus digital camera on a wooden table",
    "Olympus digital camera",
    "Sony DSC-RX100 compact camera in a hand",
    "Wow!!! A rainbow over the lake",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "ha ha ha ha ha",
    "哈哈哈哈哈哈",
    "Let it be, let it be, let it be, let it be",
]


@pytest.mark.parametrize("text", GOOD_CAPTIONS)
def test_good_captions_break_no_rule(text):
    assert caption_rules(text, raw=text) == []
    assert repetition(text) is None


@pytest.mark.parametrize("text", GOOD_CAPTIONS)
def test_good_captions_pass_the_text_stage(text):
    out = clean_caption(text)
    assert out["reason"] is None, out["detail"]


# ---------------------------------------------------------------- repetition

LONG_EN = (
    "The image shows a busy street with cars, buses and pedestrians. On the left there is a red bus, and on the "
    "right a line of taxis waits at the light. In the background tall buildings rise against a cloudy sky, and a few "
    "people cross at the zebra crossing while a cyclist waits beside them."
)
LONG_ZH = (
    "图片中是一条繁忙的街道，左边停着一辆红色的公交车，右边有一排出租车在等红灯。远处的高楼在多云的天空下显得格外醒目，"
    "几位行人正在斑马线上过马路，一位骑自行车的人在路边等候。街角有一家咖啡店，门口摆着几把椅子和一块写着菜单的黑板。"
)


@pytest.mark.parametrize(
    ("text", "span", "count"),
    [
        ("The cat is sleeping on the mat. " * 5, "The cat is sleeping on the mat", 5),
        ("The dog runs. " * 5, "The dog runs", 5),
        ("红色的苹果放在桌子上。" * 5, "红色的苹果放在桌子上", 5),
        (LONG_EN + " It is a sunny day." * 6, "It is a sunny day", 6),
        (LONG_ZH + "这是一只猫。" * 6, "这是一只猫", 6),
        ("very " * 20, "very", 20),
        ("哈" * 30, "哈", 30),
        ("".join(f"{i}. The cat is sleeping on the mat.\n" for i in range(1, 7)), "The cat is sleeping on the mat", 6),
    ],
)
def test_repetition_found(text, span, count):
    found = repetition(text)
    assert found is not None and (found.span, found.count) == (span, count), found
    assert 0 < found.score < 1 and span in found.detail()


@pytest.mark.parametrize(
    "text",
    [
        LONG_EN,
        LONG_ZH,
        "| Year | Sales |\n|---|---|\n" + "".join(f"| {2000 + i} | {i * 37 % 11} |\n" for i in range(30)),
        "The matrix is:\n" + "\n".join(" ".join(["0"] * 12) for _ in range(12)),  # numbers repeat, not text
        "In the top left there is a red square. In the top right there is a blue square. In the bottom left there is "
        "a red square. In the bottom right there is a green square.",
        "图中有一个红色的正方形，图中有一个蓝色的圆形，图中有一个绿色的三角形，图中有一个黄色的星形，图中有一个紫色的菱形。",
        "Person 1 is wearing a red shirt. Person 2 is wearing a blue shirt. Person 3 is wearing a green shirt. "
        "Person 4 is wearing a white shirt. Person 5 is wearing a black shirt.",
        LONG_EN + " " + LONG_EN,  # a text written twice is not yet a loop
    ],
)
def test_repetition_near_misses(text):
    assert repetition(text) is None


def test_repetition_settings_and_language():
    text = "The dog runs. " * 5
    assert repetition(text, RepetitionSettings(min_copies=6)) is None
    assert repetition(text, RepetitionSettings(min_loop_tokens=16)) is None
    looped = "".join(f"第{i}段：{LONG_ZH[:40]}" for i in "一二三四五六")  # no two copies alike in a row
    found = repetition(looped)
    assert found is not None and found == repetition(looped, lang="zh")
    assert (found.kind, found.count, found.span) == ("ngrams", 6, "段：" + LONG_ZH[:40])
    assert repetition(looped, RepetitionSettings(max_repeated_share=0.9)) is None
    assert repetition("short") is None and repetition("") is None


# ---------------------------------------------------------------- caption rules


@pytest.mark.parametrize(
    "raw", ["https://example.com/a.jpg", "www.example.com/x, https://a.b/c", "<http://x.org/p?q=1>", " ftp://f.io/a "]
)
def test_url_only(raw):
    assert url_only(raw)


@pytest.mark.parametrize(
    "raw", ["see https://example.com", "https://example.com a@b.co", "A photo from www.example.com of a cat", "www"]
)
def test_url_only_near_misses(raw):
    assert not url_only(raw)


@pytest.mark.parametrize(
    "text",
    [
        "OLYMPUS DIGITAL CAMERA",
        "DIGITAL CAMERA",
        "SONY DSC",
        "Exif_JPEG_PICTURE",
        "EXIF_JPEG_422",
        "KODAK Digital Still Camera",
        "SAMSUNG CAMERA PICTURES",
        "CREATOR: gd-jpeg v1.0 (using IJG JPEG v62), quality = 90",
        "LEAD Technologies Inc. V1.01",
        "Created with GIMP",
    ],
)
def test_camera_default(text):
    assert camera_default(text)


@pytest.mark.parametrize(
    "text",
    [
        "Olympus digital camera",
        "An Olympus digital camera on a wooden table",
        "Sony DSC-RX100 compact camera",
        "A digital camera",
        "Created with GIMP: a poster of a cat",
    ],
)
def test_camera_default_near_misses(text):
    assert not camera_default(text)


@pytest.mark.parametrize("text", ["2019", "2023-04-12 10:22:33", "1234 5678", "#12345", "3.14159", "①②③④"])
def test_numeric(text):
    assert numeric(text)


@pytest.mark.parametrize("text", ["3 cats", "2024年春节", "Route 66", "F1 2023", "!!!!"])
def test_numeric_near_misses(text):
    assert not numeric(text)


@pytest.mark.parametrize(
    "text",
    [
        "#sunset #beach #summer",
        "#旅行##美食#",
        "Beach day #summer #beach #sun #sea #vacation #travel",
        "dog, puppy, pet, animal, cute, canine, brown, grass, outdoor, summer, happy",
        "vintage car; classic car; red; chrome; 1950s; retro; automobile; old timer; vehicle; transport",
        "猫，宠物，可爱，动物，毛茸茸，橘猫，小猫，萌宠，家猫，猫咪",
        "猫 宠物 可爱 动物 毛茸茸 橘猫 小猫 萌宠 家猫 猫咪",
        "风景、山、湖、倒影、蓝天、白云、秋天、树林、自然、户外",
        "城市 夜景 灯光",
        "家居 装修 北欧风 客厅",
    ],
)
def test_keyword_list(text):
    assert keyword_list(text)


@pytest.mark.parametrize(
    "text",
    [
        "Sunset over the sea #sunset #beach",
        "A cat on a sofa #cat",
        "#今日穿搭# 分享一下今天的衣服，很喜欢这件外套",
        "red, green, blue",
        "Colors: red, orange, yellow, green, blue, indigo, violet",
        "A table with apples, oranges, bananas, grapes, pears, plums, kiwis, figs, dates, limes and cherries",
        "一只橘猫，趴在沙发上，眯着眼睛，很放松，旁边有抱枕，窗外阳光，地板干净，桌上有书，墙上挂画，房间温馨",
        "桌上有苹果、香蕉、橙子、葡萄、梨、桃子、草莓、西瓜、芒果和菠萝",
        "Ranked #1 in the world",
        "白日依山尽 黄河入海流 欲穷千里目 更上一层楼",
        "北京 上海",
        "一只猫 在沙发上 睡觉",
        "red green blue",
    ],
)
def test_keyword_list_near_misses(text):
    assert keyword_list(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "What a view!!!!!!",
        "🔥🔥🔥🔥🔥🔥 hot deal",
        "🔥 🔥 🔥 🔥 🔥 🔥",
        "😍😍😍 so cute 😍",
        "❤️❤️❤️❤️ love",
        "太美了!!!!!!",
        "???!!!",
    ],
)
def test_symbol_flood(text):
    assert symbol_flood(text)


@pytest.mark.parametrize(
    "text",
    [
        "Wow!!! A rainbow over the lake",
        "What a view!!!!",
        "🎉🎉 Happy birthday 🎂🎈",
        "A five-star rating ★★★★★ shown on a phone screen",
        "今天好开心！！！！！！",
        "「你好」：他说；【注】……《书名》！！！？？？",
        "等待中……………………",
        "The equation x² + y² = r² on a blackboard",
        "Coca-Cola® bottles on a shelf at 25°C",
        "A road sign: ----> exit 12",
        "Loading......",
    ],
)
def test_symbol_flood_near_misses(text):
    assert symbol_flood(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "BEAUTIFUL SUNSET OVER THE OCEAN BEACH",
        "USA TODAY NEWSPAPER FRONT PAGE",
        "ÉTÉ À PARIS AVEC LES AMIS DE LA FAMILLE",
    ],
)
def test_shouting(text):
    assert shouting(text)


@pytest.mark.parametrize(
    "text",
    [
        "A sign that says NO PARKING ANY TIME",
        "NASA's Perseverance rover on Mars",
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "BIG RED BUS",
        "华为MATEBOOK PRO笔记本电脑放在木质桌面上，旁边有一杯咖啡和一本书",
        "The USA, UK, EU and UN flags at the NATO summit",
    ],
)
def test_shouting_near_misses(text):
    assert shouting(text) is None


def test_caption_rules_lists_every_rule_broken_and_obeys_its_switches():
    text = "#SUNSET #BEACH #SUMMER #OCEAN #WAVES #SURFING 🔥🔥🔥🔥🔥🔥"
    assert [r for r, _ in caption_rules(text)] == ["keyword_list", "symbol_flood", "shouting"]
    off = CaptionRules(keyword_list=False, symbol_flood=False)
    assert [r for r, _ in caption_rules(text, rules=off)] == ["shouting"]
    assert caption_rules("https://x.org/a", raw="https://x.org/a")[0][0] == "url_only_caption"
    assert caption_rules("https://x.org/a") == []  # no raw caption: the URL-only rule is skipped


# ---------------------------------------------------------------- the text stage, one test per reason


def clean_caption(text, **cfg):
    return TextClean(TextConfig(**cfg)).apply(row(caption=text))


def clean_conv(turns, **cfg):
    return TextClean(TextConfig(**cfg)).apply(row(conversations=turns))


@pytest.mark.parametrize(
    ("caption", "reason"),
    [
        ("https://example.com/photos/1234.jpg", "url_only_caption"),
        ("OLYMPUS DIGITAL CAMERA", "camera_default"),
        ("2023-04-12 10:22:33", "numeric_caption"),
        ("#sunset #beach #summer #love", "keyword_list"),
        ("猫，宠物，可爱，动物，毛茸茸，橘猫，小猫，萌宠，家猫，猫咪", "keyword_list"),
        ("😍😍😍 so cute 😍", "symbol_flood"),
        ("BEAUTIFUL SUNSET OVER THE OCEAN BEACH", "shouting"),
        ("The cat is sleeping on the mat. " * 5, "repetitive_text"),
        ("红色的苹果放在桌子上。" * 5, "repetitive_text"),
        ("Cute cat cartoon stock vector", "boilerplate"),
        ("Royalty-free image of a beach", "boilerplate"),
        ("This image has an empty alt attribute; its file name is cat.jpg", "boilerplate"),
        ("Placeholder image", "boilerplate"),
        ("No image available", "boilerplate"),
        ("图片来源网络，如有侵权请联系删除", "boilerplate"),
    ],
)
def test_text_stage_rejects_with_the_rule_reason(caption, reason):
    out = clean_caption(caption)
    assert (out["stage"], out["reason"]) == ("text", reason), out["detail"]
    assert out["detail"]


def test_repetitive_caption_detail_names_the_span_and_count():
    out = clean_caption("A dog on the beach. " * 6)
    assert out["reason"] == "repetitive_text" and "'A dog on the beach' 6 times" in out["detail"]


def test_url_only_checked_before_cleaning_and_existing_reasons_kept():
    assert clean_caption("https://example.com a@b.co")["reason"] == "caption_too_short"
    assert clean_caption("https://example.com/x", caption_rules={"url_only": False})["reason"] == "caption_too_short"
    assert clean_caption("IMG_2041.jpg")["reason"] == "filename_caption"
    assert clean_caption("Click here to enlarge")["reason"] == "boilerplate"


def test_rules_only_reject_never_rewrite():
    text = "一只（橘色）的猫，在窗台上！可爱吗？🎉"
    assert clean_caption(text)["caption"] == text


def test_each_rule_can_be_switched_off():
    assert clean_caption("OLYMPUS DIGITAL CAMERA", caption_rules={"camera_default": False})["reason"] is None
    assert clean_caption("2023-04-12 10:22:33", caption_rules={"numeric": False})["reason"] is None
    assert clean_caption("#sunset #beach #summer", caption_rules={"keyword_list": False})["reason"] is None
    assert clean_caption("😍😍😍 so cute 😍", caption_rules={"symbol_flood": False})["reason"] is None
    assert clean_caption("BEAUTIFUL SUNSET OVER THE OCEAN", caption_rules={"shouting": False})["reason"] is None
    assert clean_caption("The dog runs. " * 5, repetition={"enabled": False})["reason"] is None
    assert clean_caption("What a view!!!!!!", caption_rules={"symbol_run": 7})["reason"] is None


def test_looping_answer_turn_rejected_and_questions_not_judged():
    loop = "The answer is that the cat is sleeping. " * 6
    out = clean_conv([{"from": "human", "value": "What is the cat doing?"}, {"from": "gpt", "value": loop}])
    assert (out["stage"], out["reason"]) == ("text", "repetitive_text") and out["detail"].startswith("turn 1:")
    out = clean_conv([{"from": "human", "value": "Repeat after me. " * 8}, {"from": "gpt", "value": LONG_EN}])
    assert out["reason"] is None
    out = clean_conv([{"from": "human", "value": "图里有什么？"}, {"from": "gpt", "value": "这是一只猫。" * 6}])
    assert out["reason"] == "repetitive_text"
    out = clean_conv([{"from": "human", "value": "描述这张图片。"}, {"from": "gpt", "value": LONG_ZH}])
    assert out["reason"] is None


def test_rules_set_from_a_pipeline_spec():
    spec = pipeline.load("clean", ["stages.text.caption_rules.shouting=false", "stages.text.repetition.min_copies=6"])
    cfg = spec.stage("text")
    assert cfg.caption_rules.shouting is False and cfg.caption_rules.camera_default is True
    assert cfg.repetition.min_copies == 6
    with pytest.raises(pipeline.PipelineError, match="shoutin"):
        pipeline.load("clean", ["stages.text.caption_rules.shoutin=false"])
