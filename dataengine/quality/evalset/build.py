"""Build the quality evaluation set from `source.py`, deterministically (no randomness: each corruption is a
rule on the text): `python -m dataengine.quality.evalset.build` writes, beside this file,

- `captions.jsonl`: good captions (label 1) in English and Chinese against junk (label 0) by kind;
- `translations.jsonl`: each good translation (label 1) and its corrupted copies (label 0), one per kind:
  number changed, negation flipped, clause dropped, colour or object swapped, English left untranslated,
  truncated, something added.

`dataengine eval quality` reads the shipped files; `tests/test_quality.py` checks they are what this builds.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from dataengine.quality.evalset.source import ADDITIONS, JUNK_EN, JUNK_ZH, PAIRS

HERE = Path(__file__).parent
KINDS = ("number", "negation", "clause_dropped", "swap", "untranslated", "truncated", "added")

CLASSIFIERS = "只个辆位名条张把盆匹艘盏扇杯盘块根枚台头列棵桶瓶"
NUMERAL = re.compile(rf"(二十|十|[一两二三四五六七八九])(?=[{CLASSIFIERS}])")
NEXT_NUMBER = {"一": "两", "两": "三", "二": "三", "三": "四", "四": "五", "五": "六", "六": "七", "七": "八"}
NEXT_NUMBER.update({"八": "九", "九": "十", "十": "十二", "二十": "三十"})
VERBS = "跑走骑坐站睡躺吃玩拉看喂切吹提推端盯拍冲爬踢抓烤喷写浇买弹修遛堆飞停靠挂放打撑坐等钓休演作喝摆围"
COLOURS = {"红": "蓝", "蓝": "红", "绿": "黄", "黄": "绿", "白": "黑", "黑": "白", "灰": "粉", "棕": "白"}
COLOURS.update({"橙": "紫", "紫": "橙", "粉": "绿", "金": "银", "银": "金"})
OBJECTS = [
    ("自行车", "摩托车"),
    ("摩托车", "自行车"),
    ("出租车", "救护车"),
    ("消防车", "救护车"),
    ("公交车", "卡车"),
    ("汽车", "卡车"),
    ("卡车", "汽车"),
    ("男孩", "女孩"),
    ("女孩", "男孩"),
    ("男人", "女人"),
    ("女人", "男人"),
    ("狗", "猫"),
    ("猫", "狗"),
    ("马", "牛"),
    ("鸭子", "鹅"),
    ("苹果", "橙子"),
    ("面包", "蛋糕"),
    ("企鹅", "海豹"),
    ("大象", "犀牛"),
    ("火车", "汽车"),
    ("风筝", "气球"),
    ("小船", "汽车"),
    ("飞机", "直升机"),
    ("吉他", "小提琴"),
    ("小提琴", "吉他"),
    ("鹦鹉", "鸽子"),
    ("鸽子", "乌鸦"),
    ("老师", "医生"),
    ("厨师", "警察"),
    ("农民", "士兵"),
]


def _body(zh: str) -> str:
    return zh.rstrip("。")


def number_changed(zh: str) -> str | None:
    found = [m for m in NUMERAL.finditer(zh)]
    m = next((m for m in found if m.group(1) != "一"), found[0] if found else None)
    if m is None:
        return None
    return zh[: m.start()] + NEXT_NUMBER[m.group(1)] + zh[m.end() :]


def negation_flipped(zh: str) -> str | None:
    if "正在" in zh:
        return zh.replace("正在", "并没有在", 1)
    i = next((i for i, c in enumerate(zh) if i >= 2 and c in VERBS), None)
    return None if i is None else zh[:i] + "没有" + zh[i:]


def clause_dropped(zh: str) -> str | None:
    clauses = _body(zh).split("，")
    if len(clauses) >= 2:
        keep = clauses[:-1] if len(clauses) == 2 else clauses[:1] + clauses[2:]
        return "，".join(keep) + "。"
    shorter = re.sub(rf"(?<=[{CLASSIFIERS}])[^，。的]{{1,8}}的", "", zh, count=1)
    return shorter if shorter != zh else None


def swapped(zh: str, i: int) -> str | None:
    def colour() -> str | None:
        at = next((k for k, c in enumerate(zh) if c in COLOURS), None)
        return None if at is None else zh[:at] + COLOURS[zh[at]] + zh[at + 1 :]

    def thing() -> str | None:
        for word, other in OBJECTS:
            if word in zh:
                return zh.replace(word, other, 1)
        return None

    first, second = (colour, thing) if i % 2 == 0 else (thing, colour)
    return first() or second()


def untranslated(en: str, zh: str, i: int) -> str:
    if i % 3 == 0:
        return en  # not translated at all
    words = en.split()
    tail = " ".join(words[len(words) // 2 :])
    clauses = _body(zh).split("，")
    head = clauses[0] if len(clauses) >= 2 else _body(zh)[: len(_body(zh)) // 2]
    return f"{head}，{tail}"  # half translated, the rest left in English


def truncated(zh: str) -> str:
    body = _body(zh)
    return body[: max(4, int(len(body) * 0.55))]


def added(zh: str, i: int) -> str:
    return _body(zh) + ADDITIONS[i % len(ADDITIONS)] + "。"


def corruptions(en: str, zh: str, i: int) -> dict[str, str | None]:
    return {
        "number": number_changed(zh),
        "negation": negation_flipped(zh),
        "clause_dropped": clause_dropped(zh),
        "swap": swapped(zh, i),
        "untranslated": untranslated(en, zh, i),
        "truncated": truncated(zh),
        "added": added(zh, i),
    }


def captions() -> list[dict[str, Any]]:
    rows = []
    for i, (en, zh) in enumerate(PAIRS):
        rows.append({"id": f"good-en-{i:03d}", "lang": "en", "text": en, "label": 1, "kind": "good"})
        rows.append({"id": f"good-zh-{i:03d}", "lang": "zh", "text": zh, "label": 1, "kind": "good"})
    for lang, junk in (("en", JUNK_EN), ("zh", JUNK_ZH)):
        for kind, texts in junk.items():
            for j, text in enumerate(texts):
                rows.append({"id": f"junk-{lang}-{kind}-{j}", "lang": lang, "text": text, "label": 0, "kind": kind})
    return rows


def translations() -> list[dict[str, Any]]:
    rows = []
    for i, (en, zh) in enumerate(PAIRS):
        rows.append({"id": f"pair-{i:03d}-good", "pair": i, "en": en, "zh": zh, "label": 1, "kind": "good"})
        for kind, bad in corruptions(en, zh, i).items():
            if bad is not None and bad != zh:
                rows.append({"id": f"pair-{i:03d}-{kind}", "pair": i, "en": en, "zh": bad, "label": 0, "kind": kind})
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def main() -> None:
    for name, rows in (("captions", captions()), ("translations", translations())):
        (HERE / f"{name}.jsonl").write_text(render(rows), encoding="utf-8")
        print(f"{name}.jsonl: {len(rows)} items")


if __name__ == "__main__":
    main()
