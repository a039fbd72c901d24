"""Offline sample dataset for the demo: real photos, rendered bilingual documents and deliberate defects.

`build` writes an InternVL meta JSON with photos/documents/defects (and scaled) JSONL annotations, a Parquet
file and a WebDataset shard. Photos come from images shipped inside installed packages (scikit-image,
scikit-learn, matplotlib); charts, receipts, signs and tables are rendered here with Pillow, so nothing is
downloaded. Each defect is listed in the dataset's README.md with the reject reason the pipeline should give
it. Output is deterministic for a seed and appears atomically: it is written to a temporary sibling directory
and renamed into place, with the `.complete` marker written last.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import os
import random
import secrets
import shutil
import struct
import tarfile
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import cache, lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw, ImageEnhance, ImageFont
from rich.console import Console

FONT_PATH = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
CJK = os.path.exists(FONT_PATH)
PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
Texts = dict[str, Any]  # {"en": caption, "zh": caption, "qa_en": (question, answer), "qa_zh": (question, answer)}
Doc = tuple[Image.Image, Texts]

# key, package, file inside the package, English caption, Chinese caption
PHOTOS: list[tuple[str, str, str, str, str]] = [
    ("astronaut", "skimage", "data/astronaut.png", "Official portrait of NASA astronaut Eileen Collins, smiling, in an orange launch-and-entry suit, with a US flag on the left, a space shuttle model behind her and her helmet beside her.", "美国宇航员艾琳·柯林斯的官方肖像：她身穿橙色发射服，面带微笑，左侧是美国国旗，身后有航天飞机模型，身旁放着头盔。"),  # noqa: E501
    ("chelsea", "skimage", "data/chelsea.png", "Close-up of a brown tabby cat's face with yellow-green eyes, a pink nose and long white whiskers.", "一只棕色虎斑猫的面部特写，黄绿色的眼睛，粉色的鼻子，白色的长胡须清晰可见。"),  # noqa: E501
    ("coffee", "skimage", "data/coffee.png", "A cup of espresso with golden crema in a red-and-white cup on a red saucer, with a metal spoon, on a wooden table.", "木桌上的红色茶碟里放着一杯意式浓缩咖啡，杯子外红内白，咖啡表面有一层金色油脂，旁边有一把金属小勺。"),  # noqa: E501
    ("rocket", "skimage", "data/rocket.jpg", "A SpaceX Falcon 9 rocket carrying the DSCOVR satellite stands on its launch pad at dusk between tall lattice towers, with floodlights glowing along the horizon.", "黄昏时分，一枚搭载DSCOVR卫星的SpaceX猎鹰9号火箭矗立在发射台上，两侧是高大的铁塔，地平线上灯光闪耀。"),  # noqa: E501
    ("motorcycle", "skimage", "data/motorcycle_left.png", "A red Yamaha motorcycle parked in a garage in front of shelves stacked with boxes and an old wooden bench.", "一辆红色雅马哈摩托车停在车库里，身后是堆满纸箱的货架和一条旧木长椅。"),  # noqa: E501
    ("horse", "skimage", "data/horse.png", "Black silhouette of a horse standing in profile, facing right, on a white background.", "白色背景上一匹黑色马的侧面剪影，马头朝右。"),  # noqa: E501
    ("hubble", "skimage", "data/hubble_deep_field.jpg", "The Hubble eXtreme Deep Field: thousands of distant galaxies of many shapes and colours scattered across black space.", "哈勃极深空场图像：漆黑的太空中散布着成千上万个形状和颜色各异的遥远星系。"),  # noqa: E501
    ("camera", "skimage", "data/camera.png", "Black-and-white photo of a man in a dark coat looking through a camera on a tripod in a grassy field, with buildings in the distance.", "一张黑白照片：一名身穿深色大衣的男子在草地上通过三脚架上的相机取景，远处可见建筑物。"),  # noqa: E501
    ("coins", "skimage", "data/coins.png", "Grayscale photo of 24 ancient Greek coins from Pompeii laid out in four rows of six on a dark background.", "一张灰度照片：深色背景上整齐排列着来自庞贝的二十四枚古希腊硬币，共四排，每排六枚。"),  # noqa: E501
    ("moon", "skimage", "data/moon.png", "Low-contrast grayscale image of the surface of the Moon with a few small craters.", "一张低对比度的月球表面灰度图像，可以看到几个小陨石坑。"),  # noqa: E501
    ("page", "skimage", "data/page.png", 'A scanned book page headed "Region-based segmentation", with a paragraph about marking the coins and the background, followed by a line of Python code.', "一页扫描的英文书页，标题为“Region-based segmentation”，正文讲的是如何标记硬币和背景，最后是一行Python代码。"),  # noqa: E501
    ("text", "skimage", "data/text.png", "Grayscale close-up, taken at a low angle, of handwritten mathematical formulas on lined paper.", "从很低的角度拍摄的灰度特写：横格纸上写着手写的数学公式。"),  # noqa: E501
    ("brick", "skimage", "data/brick.png", "Grayscale texture of a brick wall with long, narrow bricks laid in a staggered pattern, seen at a slight angle.", "灰度的砖墙纹理：细长的砖块错缝排列，略带透视角度。"),  # noqa: E501
    ("grass", "skimage", "data/grass.png", "Grayscale close-up texture of grass with thin blades and a few small leaves.", "灰度的草地特写纹理，满是细长的草叶和几片小叶子。"),  # noqa: E501
    ("gravel", "skimage", "data/gravel.png", "Grayscale texture of a bed of small, angular gravel stones.", "灰度的碎石纹理，铺满了棱角分明的小石子。"),  # noqa: E501
    ("retina", "skimage", "data/retina.jpg", "Colour fundus photograph of a human retina: the bright optic disc on the left, with blood vessels branching across the orange-red background.", "人眼视网膜的彩色眼底照片：明亮的视盘位于左侧，血管在橙红色的背景上向四周分支。"),  # noqa: E501
    ("ihc", "skimage", "data/ihc.png", "Microscope image of colon tissue stained by immunohistochemistry: glands outlined in brown stain, with blue-stained nuclei in the tissue around them.", "免疫组织化学染色的结肠组织显微图像：腺体呈棕色染色，周围组织中散布着蓝色的细胞核。"),  # noqa: E501
    ("china", "sklearn", "datasets/images/china.jpg", "The Tower of Buddhist Incense at the Summer Palace in Beijing: a multi-storey Chinese pavilion with red columns and orange glazed-tile roofs, overlooking a lake and trees under a hazy sky.", "北京颐和园的佛香阁：一座多层的中国传统楼阁，红色立柱，橙色琉璃瓦屋顶，俯瞰着湖面和绿树，天空略带薄雾。"),  # noqa: E501
    ("flower", "sklearn", "datasets/images/flower.jpg", "Close-up of a peach-orange pompon dahlia with tightly layered petals against a dark green blurred background, with a second bloom at the bottom edge.", "一朵桃橙色绒球大丽花的特写，花瓣层层紧密排列，背景是模糊的深绿色，画面底部还露出另一朵花。"),  # noqa: E501
    ("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg", "Portrait of Rear Admiral Grace Hopper wearing glasses and a US Navy dress uniform and cap, with an American flag behind her.", "美国海军少将格蕾丝·霍珀的肖像：她戴着眼镜，身穿海军制服、头戴军帽，身后是美国国旗。"),  # noqa: E501
]
EXTRA_SOURCES = {"cell": ("skimage", "data/cell.png")}
ZH_PHOTOS = {"chelsea", "coffee", "china", "moon"}
PHOTO_QA = {
    "astronaut": ("What is the person in this portrait wearing?", "An orange NASA launch-and-entry pressure suit with mission patches; her white helmet sits beside her."),  # noqa: E501
    "coins": ("How many coins are in the picture, and how are they arranged?", "There are 24 coins, laid out in four rows of six."),  # noqa: E501
    "hubble": ("What does this image show?", "A Hubble deep-field view: thousands of faint, distant galaxies of many colours and shapes against black space."),  # noqa: E501
}
# source photo, crop box (fractions left, top, right, bottom), caption; distinct from the full photos
WEB_CROPS = [
    ("astronaut", (0.1, 0.0, 0.65, 0.45), "Head-and-shoulders crop of a smiling woman with short light-brown hair, wearing the neck ring of an orange pressure suit."),  # noqa: E501
    ("astronaut", (0.55, 0.6, 1.0, 1.0), "A white space helmet with a dark reflective visor next to the orange sleeve of a flight suit with a name patch."),  # noqa: E501
    ("rocket", (0.35, 0.25, 0.65, 1.0), "A tall white rocket on its launch pad against a deep blue evening sky, lit by floodlights at its base."),  # noqa: E501
    ("coffee", (0.4, 0.5, 0.8, 1.0), "红色茶碟上放着一把不锈钢小勺，旁边是红色咖啡杯的杯底，背景是木质桌面。"),
    ("china", (0.1, 0.0, 0.55, 0.5), "一座多层的中国传统楼阁，屋顶铺着橙色琉璃瓦，檐下是红色立柱和彩绘，背景是淡蓝色的天空。"),
    ("hubble", (0.5, 0.5, 1.0, 1.0), "A crop of a deep-space image with hundreds of small galaxies, some spiral and some reddish, on a black background."),  # noqa: E501
    ("motorcycle", (0.3, 0.35, 0.7, 0.85), "Close-up of a motorcycle's chrome engine with a Yamaha badge, below a red fuel tank and a black seat."),  # noqa: E501
    ("chelsea", (0.25, 0.15, 0.75, 0.6), "Extreme close-up of a tabby cat's two yellow-green eyes and striped fur."),
]
TAR_CROPS = [  # (source, box, caption, written as .json instead of .txt)
    ("grace_hopper", (0.2, 0.05, 0.8, 0.6), "Close-up of an elderly woman wearing glasses and a navy officer's cap with a gold emblem, in front of an American flag.", False),  # noqa: E501
    ("retina", (0.0, 0.2, 0.45, 0.65), "Close-up of a retinal photograph: the bright optic disc with red blood vessels branching out from it.", False),  # noqa: E501
    ("flower", (0.3, 0.0, 0.75, 0.7), "A peach-orange pompon dahlia in full bloom against a dark green blurred background.", True),
    ("coins", (0.0, 0.0, 1.0, 0.5), "Two rows of six ancient coins, twelve in all, photographed in black and white on a dark background.", False),  # noqa: E501
    ("camera", (0.2, 0.1, 0.9, 1.0), "Black-and-white photo of a man in a dark coat looking through a camera mounted on a tripod on a lawn.", True),  # noqa: E501
    ("page", (0.0, 0.0, 1.0, 0.4), 'The printed heading "Region-based segmentation" above the first lines of a paragraph about markers of the coins.', False),  # noqa: E501
    ("ihc", (0.4, 0.4, 1.0, 1.0), "Microscope view of stained colon tissue: glands outlined in brown among pale tissue with small blue nuclei.", False),  # noqa: E501
]


@cache
def source_path(key: str) -> str | None:
    """Path of a named photo inside its installed package, or None when the package or file is missing."""
    package, rel = EXTRA_SOURCES.get(key) or next((p, r) for k, p, r, _, _ in PHOTOS if k == key)
    spec = importlib.util.find_spec(package)  # locates the package without importing it (fast)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], rel)
    return path if os.path.exists(path) else None


@cache
def load(key: str) -> Image.Image | None:
    """A source photo as RGB (or L for grayscale and line art), transparency flattened onto white."""
    path = source_path(key)
    if path is None:
        return None
    img = Image.open(path)
    if img.mode in ("RGBA", "LA", "P"):
        rgba = img.convert("RGBA")
        flat = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
        return flat.convert("L") if _is_gray(flat) else flat
    return img.convert("L" if img.mode in ("L", "I;16", "I") else "RGB")


def _is_gray(img: Image.Image) -> bool:
    r, g, b = img.split()
    return r.tobytes() == g.tobytes() == b.tobytes()


def crop(key: str, box: tuple[float, float, float, float]) -> Image.Image | None:
    """A crop of a source photo given as fractions of its size."""
    img = load(key)
    if img is None:
        return None
    w, h = img.size
    return img.crop((round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h)))


def save(img: Image.Image, path: str, quality: int = 92) -> None:
    """Write JPEG or PNG by file extension, creating the folder."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if path.endswith(".jpg"):
        img.save(path, "JPEG", quality=quality)
    else:
        img.save(path, "PNG", compress_level=4)


def jpeg_bytes(img: Image.Image, quality: int = 90) -> bytes:
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def text_fields(texts: Texts, mode: str) -> dict[str, Any]:
    """The caption or the one-turn conversation of a record, by mode: en, zh, qa_en or qa_zh."""
    if mode.startswith("qa"):
        question, answer = texts[mode]
        return {"conversations": [{"from": "human", "value": f"<image>\n{question}"}, {"from": "gpt", "value": answer}]}
    return {"caption": texts[mode]}


# ---------------------------------------------------------------- rendering helpers
@lru_cache(maxsize=64)
def font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The CJK font at a pixel size (Pillow's default font, ASCII only, when it is not installed)."""
    return ImageFont.truetype(FONT_PATH, px) if CJK else ImageFont.load_default(size=px)


def bi(pair: tuple[str, str]) -> str:
    """A (Chinese, English) label as rendered: both, or English alone without a CJK font."""
    return f"{pair[0]} {pair[1]}" if CJK else pair[1]


def named(pair: tuple[str, str]) -> str:
    """A (Chinese, English) name as an English caption quotes it."""
    return f"{pair[0]} ({pair[1]})" if CJK else pair[1]


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def yuan(amount: object) -> str:
    """A price as rendered and captioned (Pillow's fallback font has no ¥ sign)."""
    return f"¥{amount}" if CJK else f"RMB {amount}"


def header(img: Image.Image, title: str, subtitle: str, s: int, color: str = "#222222") -> ImageDraw.ImageDraw:
    draw = ImageDraw.Draw(img)
    draw.text((img.width / 2, s * 1.7), title, font=font(int(s * 1.5)), fill=color, anchor="mm")
    if subtitle:
        draw.text((img.width / 2, s * 3.2), subtitle, font=font(int(s * 0.9)), fill="#666666", anchor="mm")
    return draw


def two_line(draw: ImageDraw.ImageDraw, x: float, y: float, pair: tuple[str, str], s: int) -> None:
    """A label centred at x below y: Chinese over smaller English (English only without a CJK font)."""
    if CJK:
        draw.text((x, y), pair[0], font=font(s), fill="#333333", anchor="ma")
    draw.text((x, y + (s * 1.25 if CJK else 0)), pair[1], font=font(int(s * 0.8)), fill="#555555", anchor="ma")


def axes(draw: ImageDraw.ImageDraw, box: tuple[float, float, float, float], vmax: float, s: int) -> Callable:
    """Gridlines and y tick labels for values 0..vmax; returns value -> y pixel."""
    raw = vmax / 5
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    x0, y0, x1, y1 = box
    ticks = math.ceil(vmax / step)
    for k in range(ticks + 1):
        y = y1 - (y1 - y0) * k / ticks
        draw.line((x0, y, x1, y), fill="#444444" if k == 0 else "#e3e3e3", width=2 if k == 0 else 1)
        draw.text((x0 - s * 0.4, y), f"{step * k:g}", font=font(int(s * 0.8)), fill="#666666", anchor="rm")
    draw.line((x0, y0, x0, y1), fill="#444444", width=2)
    return lambda v: y1 - (y1 - y0) * v / (step * ticks)


def draw_table(draw: ImageDraw.ImageDraw, box: tuple[float, ...], rows: list[list[str]], s: int,
               colors: tuple[str, str, str, str, str]) -> None:
    """A table whose first row is the header: colors = header bg, header fg, row bg, alternate row bg, fg."""
    x0, y0, x1, y1 = box
    ncol, rh = len(rows[0]), (y1 - y0) / len(rows)
    cw = (x1 - x0) / ncol
    for r, row in enumerate(rows):
        bg = colors[0] if r == 0 else colors[2 + r % 2]
        draw.rectangle((x0, y0 + r * rh, x1, y0 + (r + 1) * rh), fill=bg)
        for c, cell in enumerate(row):
            fg = colors[1] if r == 0 else colors[4]
            draw.text((x0 + (c + 0.5) * cw, y0 + (r + 0.5) * rh), cell, font=font(s), fill=fg, anchor="mm")


def distinct_extremes(values: list[int]) -> bool:
    return values.count(max(values)) == 1 and values.count(min(values)) == 1


# ---------------------------------------------------------------- documents: (rng, size, variant) -> image, texts
BAR_THEMES = [
    ("季度销售额", "Quarterly Sales", "万元", "10,000 CNY", "季度", "quarter",
     [("第一季度", "Q1"), ("第二季度", "Q2"), ("第三季度", "Q3"), ("第四季度", "Q4")], 120, 480),
    ("各城市年降水量", "Annual Rainfall by City", "毫米", "mm", "城市", "city",
     [("北京", "Beijing"), ("上海", "Shanghai"), ("广州", "Guangzhou"), ("成都", "Chengdu"), ("哈尔滨", "Harbin")], 400, 1900),
    ("学生最喜欢的水果", "Students' Favourite Fruit", "人", "students", "水果", "fruit",
     [("苹果", "Apple"), ("香蕉", "Banana"), ("橙子", "Orange"), ("葡萄", "Grape"), ("西瓜", "Watermelon"),
      ("草莓", "Strawberry")], 5, 60),
]


def bar_chart(rng: random.Random, size: tuple[int, int], variant: int) -> Doc:
    tz, te, uz, ue, nz, ne, labels, lo, hi = BAR_THEMES[variant % len(BAR_THEMES)]
    cats = labels if len(labels) <= 4 else rng.sample(labels, rng.randint(3, len(labels)))
    vals = rng.sample(range(lo, hi + 1), len(cats))
    img, s = Image.new("RGB", size, "white"), max(12, int(min(size[0] / 34, size[1] / 22)))
    title = bi((tz, te))
    draw = header(img, title, f"单位 Unit: {uz} / {ue}" if CJK else f"Unit: {ue}", s)
    box = (s * 4.5, s * 4.8, size[0] - s * 1.5, size[1] - s * (3.4 if CJK else 2.2))
    y_of, slot = axes(draw, box, max(vals) * 1.12, s), (box[2] - box[0]) / len(cats)
    for i, (pair, v) in enumerate(zip(cats, vals, strict=True)):
        cx = box[0] + slot * (i + 0.5)
        draw.rectangle((cx - slot * 0.3, y_of(v), cx + slot * 0.3, box[3]), fill=PALETTE[i])
        draw.text((cx, y_of(v) - s * 0.3), str(v), font=font(int(s * 0.9)), fill="#222222", anchor="md")
        two_line(draw, cx, box[3] + s * 0.4, pair, int(s * 0.85))
    top, low = vals.index(max(vals)), vals.index(min(vals))
    en = (f'A bar chart titled "{title}" comparing {len(cats)} {ne} values in {ue}: '
          + "; ".join(f"{p[1]} {v}" for p, v in zip(cats, vals, strict=True))
          + f". The highest is {cats[top][1]} at {vals[top]} and the lowest is {cats[low][1]} at {vals[low]}.")
    zh = (f"柱状图“{title}”，比较了{len(cats)}个{nz}的数值（单位：{uz}）："
          + "，".join(f"{p[0]}{v}" for p, v in zip(cats, vals, strict=True))
          + f"。最高的是{cats[top][0]}（{vals[top]}），最低的是{cats[low][0]}（{vals[low]}）。")
    return img, {"en": en, "zh": zh,
                 "qa_en": (f"Which {ne} has the highest value in the chart, and what is it?",
                           f"{cats[top][1]}, with {vals[top]} ({ue})."),
                 "qa_zh": (f"图中哪个{nz}的数值最高？是多少？", f"{cats[top][0]}最高，为{vals[top]}{uz}。")}


LINE_THEMES = [("月平均气温", "Average Monthly Temperature", "°C", "°C", 4, 33),
               ("网站月访问量", "Monthly Website Visits", "千次", "thousand visits", 20, 240)]


def line_chart(rng: random.Random, size: tuple[int, int], variant: int) -> Doc:
    tz, te, uz, ue, lo, hi = LINE_THEMES[variant % len(LINE_THEMES)]
    n = rng.randint(6, 12)
    first = rng.randint(1, 13 - n)
    vals = [0, 0]
    while not distinct_extremes(vals):
        vals = [rng.randint(lo, hi)]
        for _ in range(n - 1):
            vals.append(min(hi, max(lo, vals[-1] + rng.randint(-(hi - lo) // 5, (hi - lo) // 5))))
    months = [(f"{m}月", MONTHS[m - 1]) for m in range(first, first + n)]
    img, s = Image.new("RGB", size, "#fcfcfc"), max(12, int(min(size[0] / 36, size[1] / 22)))
    title = bi((tz, te))
    draw = header(img, title, f"单位 Unit: {uz}" if CJK and uz != ue else f"Unit: {ue}", s)
    box = (s * 4.5, s * 4.8, size[0] - s * 1.5, size[1] - s * (3.4 if CJK else 2.2))
    y_of, slot = axes(draw, box, max(vals) * 1.15, s), (box[2] - box[0]) / n
    pts = [(box[0] + slot * (i + 0.5), y_of(v)) for i, v in enumerate(vals)]
    draw.line(pts, fill=PALETTE[variant % 4], width=max(2, s // 6), joint="curve")
    for (x, y), v, pair in zip(pts, vals, months, strict=True):
        r = max(3, s // 5)
        draw.ellipse((x - r, y - r, x + r, y + r), fill="white", outline=PALETTE[variant % 4], width=2)
        draw.text((x, y - s * 0.45), str(v), font=font(int(s * 0.75)), fill="#222222", anchor="md")
        two_line(draw, x, box[3] + s * 0.4, pair, int(s * 0.8))
    top, low = vals.index(max(vals)), vals.index(min(vals))
    en = (f'A line chart titled "{title}" showing {n} months from {months[0][1]} to {months[-1][1]} ({ue}): '
          + ", ".join(f"{m[1]} {v}" for m, v in zip(months, vals, strict=True))
          + f". The peak is in {months[top][1]} ({vals[top]}) and the lowest point in {months[low][1]} ({vals[low]}).")
    zh = (f"折线图“{title}”，展示了{months[0][0]}至{months[-1][0]}共{n}个月的数据（单位：{uz}）："
          + "，".join(f"{m[0]}{v}" for m, v in zip(months, vals, strict=True))
          + f"。最高点在{months[top][0]}（{vals[top]}），最低点在{months[low][0]}（{vals[low]}）。")
    return img, {"en": en, "zh": zh,
                 "qa_en": ("In which month is the value lowest, and what is it?", f"{months[low][1]}, at {vals[low]} {ue}."),
                 "qa_zh": ("图中哪个月的数值最高？", f"{months[top][0]}最高，为{vals[top]}{uz}。")}


PIE_THEMES = [
    ("员工通勤方式", "How Employees Commute",
     [("地铁", "Metro"), ("公交", "Bus"), ("自行车", "Bicycle"), ("步行", "Walking"), ("驾车", "Car")]),
    ("家庭月支出构成", "Monthly Household Spending",
     [("住房", "Housing"), ("食品", "Food"), ("交通", "Transport"), ("教育", "Education"), ("娱乐", "Leisure")]),
]


def pie_chart(rng: random.Random, size: tuple[int, int], variant: int) -> Doc:
    tz, te, labels = PIE_THEMES[variant % len(PIE_THEMES)]
    cats = rng.sample(labels, rng.randint(3, 5))
    shares = [0]
    while min(shares) < 5 or shares.count(max(shares)) > 1:
        cuts = sorted(rng.sample(range(1, 100), len(cats) - 1))
        shares = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
    img, s = Image.new("RGB", size, "white"), max(12, int(min(size[0] / 34, size[1] / 22)))
    title = bi((tz, te))
    draw = header(img, title, "", s)
    d = min(size[1] - s * 5, size[0] * 0.48)
    x0, y0, start = s * 1.5, (size[1] + s * 3 - d) / 2, -90.0
    for i, p in enumerate(shares):
        draw.pieslice((x0, y0, x0 + d, y0 + d), start, start + p * 3.6, fill=PALETTE[i], outline="white", width=2)
        start += p * 3.6
    lx = x0 + d + s * 1.5
    for i, (pair, p) in enumerate(zip(cats, shares, strict=True)):
        y = y0 + d / 2 + (i - len(cats) / 2) * s * 1.6
        draw.rectangle((lx, y, lx + s, y + s), fill=PALETTE[i])
        draw.text((lx + s * 1.5, y + s / 2), f"{bi(pair)}  {p}%", font=font(s), fill="#222222", anchor="lm")
    top, ask = shares.index(max(shares)), rng.randrange(len(cats))
    en = (f'A pie chart titled "{title}" with {len(cats)} slices: '
          + ", ".join(f"{p[1]} {v}%" for p, v in zip(cats, shares, strict=True))
          + f". The largest share is {cats[top][1]} ({shares[top]}%).")
    zh = (f"饼图“{title}”，共{len(cats)}个部分：" + "，".join(f"{p[0]}{v}%" for p, v in zip(cats, shares, strict=True))
          + f"。占比最大的是{cats[top][0]}（{shares[top]}%）。")
    return img, {"en": en, "zh": zh, "qa_en": (f"What percentage is {cats[ask][1]}?", f"{cats[ask][1]} is {shares[ask]}%."),
                 "qa_zh": ("图中占比最大的是哪一项？", f"{cats[top][0]}，占{shares[top]}%。")}


GROCERIES = [("牛奶", "milk", 650), ("全麦面包", "wholemeal bread", 1280), ("鸡蛋10枚", "10 eggs", 1590),
             ("苹果", "apples", 960), ("矿泉水", "mineral water", 200), ("原味酸奶", "plain yogurt", 450),
             ("大米5kg", "5 kg rice", 3990), ("生抽酱油", "soy sauce", 1350), ("香蕉", "bananas", 720),
             ("绿茶饮料", "green tea drink", 350)]
STORES = [("鲜果便利店", "FreshMart"), ("邻家超市", "Neighbour Supermarket"), ("好日子百货", "Good Day Store")]


def receipt(rng: random.Random, size: tuple[int, int], variant: int) -> Doc:
    store, items = rng.choice(STORES), rng.sample(GROCERIES, rng.randint(4, 7))
    qty = [rng.randint(1, 3) for _ in items]
    amounts = [q * it[2] for q, it in zip(qty, items, strict=True)]
    total, m, d = sum(amounts), rng.randint(1, 12), rng.randint(1, 28)
    date = f"2024-{m:02d}-{d:02d} {rng.randint(8, 21):02d}:{rng.randint(0, 59):02d}"
    (w, h), s = size, max(12, size[0] // 20)
    img, top = Image.new("RGB", size, "#e9e6df"), max(s / 2, (h - s * (13.6 + 1.9 * len(items))) / 2)
    draw, m = ImageDraw.Draw(img), w * 0.08
    draw.rectangle((m, top, w - m, top + s * (13.6 + 1.9 * len(items))), fill="#fffdf7", outline="#cccccc")
    draw.text((w / 2, top + s * 1.6), store[0] if CJK else store[1], font=font(int(s * 1.5)), fill="#111", anchor="mm")
    if CJK:
        draw.text((w / 2, top + s * 3.1), store[1], font=font(s), fill="#444", anchor="mm")
    draw.text((w / 2, top + s * 4.4), date, font=font(int(s * 0.9)), fill="#444", anchor="mm")
    y, left, right = top + s * 5.5, m + s, w - m - s
    names = [it[0] if CJK else it[1] for it in items]
    for line in [None, *range(len(items)), None]:
        if line is None:
            draw.line((left, y, right, y), fill="#999999", width=2)
            y += s * 0.8
            continue
        draw.text((left, y), names[line], font=font(s), fill="#111")
        draw.text((w * 0.66, y), f"{qty[line]} x {money(items[line][2])}", font=font(int(s * 0.85)), fill="#333", anchor="ra")
        draw.text((right, y), money(amounts[line]), font=font(s), fill="#111", anchor="ra")
        y += s * 1.9
    draw.text((left, y + s * 0.5), bi(("合计", "TOTAL")), font=font(int(s * 1.3)), fill="#111")
    draw.text((right, y + s * 0.5), f"{yuan(money(total))}", font=font(int(s * 1.3)), fill="#111", anchor="ra")
    draw.text((w / 2, y + s * 3.6), bi(("谢谢惠顾", "Thank you!")), font=font(int(s * 0.9)), fill="#666", anchor="mm")
    lines_en = "; ".join(f"{n}{f' ({it[1]})' if CJK else ''} x{q} {yuan(money(a))}"
                         for n, it, q, a in zip(names, items, qty, amounts, strict=True))
    en = (f"A shop receipt from {named(store)} dated {date}, listing {len(items)} items: {lines_en}. "
          f"The total is {yuan(money(total))}.")
    zh = (f"一张{store[0] if CJK else store[1]}的购物小票，时间为{date}，共{len(items)}项商品："
          + "；".join(f"{n}×{q}，{yuan(money(a))}" for n, q, a in zip(names, qty, amounts, strict=True))
          + f"。合计{yuan(money(total))}。")
    return img, {"en": en, "zh": zh,
                 "qa_en": ("What is the total on this receipt?", f"The total is {yuan(money(total))} for {len(items)} items."),
                 "qa_zh": ("这张小票的合计金额是多少？", f"合计{yuan(money(total))}，共{len(items)}项商品。")}


STATIONS = [("人民广场", "People's Square"), ("南京东路", "East Nanjing Road"), ("陆家嘴", "Lujiazui"),
            ("静安寺", "Jing'an Temple"), ("徐家汇", "Xujiahui"), ("世纪大道", "Century Avenue"),
            ("中山公园", "Zhongshan Park"), ("虹桥火车站", "Hongqiao Railway Station")]


def metro_sign(rng: random.Random, size: tuple[int, int], variant: int) -> Doc:
    line, (here, nxt), exit_no = rng.randint(1, 12), rng.sample(STATIONS, 2), rng.randint(1, 8)
    (w, h), color, s = size, PALETTE[line % len(PALETTE)], size[1] // 10
    bg, fg, sub = ("#1e2833", "white", "#d0d8e0") if variant % 2 == 0 else ("#f4f6f8", "#111111", "#445566")
    img = Image.new("RGB", size, bg)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, h - s * 1.8, w, h), fill=color)
    draw.rounded_rectangle((s, s, s * 4.2, s * 4.2), radius=s * 0.5, fill=color)
    draw.text((s * 2.6, s * 2.6), str(line), font=font(int(s * 2.2)), fill="white", anchor="mm")
    draw.text((s * 2.6, s * 5.6), f"{line}号线" if CJK else f"Line {line}", font=font(int(s * 0.8)), fill=fg, anchor="mm")
    if CJK:
        draw.text((s * 6, s * 2.9), here[0], font=font(int(s * 2.4)), fill=fg, anchor="lm")
    draw.text((s * 6, s * (5.2 if CJK else 3.6)), here[1], font=font(int(s * (1.0 if CJK else 1.2))), fill=sub, anchor="lm")
    draw.text((w - s, s * 1.5), bi(("下一站", "Next stop")), font=font(int(s * 0.75)), fill=sub, anchor="rm")
    draw.text((w - s, s * 3.0), nxt[0] if CJK else nxt[1], font=font(int(s * 1.3)), fill=fg, anchor="rm")
    if CJK:
        draw.text((w - s, s * 4.4), nxt[1], font=font(int(s * 0.75)), fill=sub, anchor="rm")
    ax = w - s * 1.2 - max(draw.textlength(nxt[0] if CJK else nxt[1], font=font(int(s * 1.3))), s * 4)
    draw.polygon([(ax - s * 2.2, s * 2.7), (ax - s * 1.2, s * 2.7), (ax - s * 1.2, s * 2.3), (ax - s * 0.4, s * 3.0),
                  (ax - s * 1.2, s * 3.7), (ax - s * 1.2, s * 3.3), (ax - s * 2.2, s * 3.3)], fill=color)
    draw.rectangle((s, h - s * 1.5, s * 6.5, h - s * 0.3), fill="#ffd200")
    draw.text((s * 3.75, h - s * 0.9), f"{bi(('出口', 'Exit'))} {exit_no}", font=font(int(s * 0.8)), fill="black",
              anchor="mm")
    en = (f"A metro station sign for Line {line}: the current station is {named(here)}, the next stop is "
          f"{named(nxt)}, and a yellow sign at the bottom points to Exit {exit_no}.")
    zh = f"地铁{line}号线站牌：本站为{here[0]}（{here[1]}），下一站是{nxt[0]}（{nxt[1]}），底部的黄色标志指向{exit_no}号出口。"
    return img, {"en": en, "zh": zh, "qa_en": ("What is the next stop shown on this sign?", f"The next stop is {named(nxt)}."),
                 "qa_zh": ("这是地铁几号线？下一站是哪里？", f"{line}号线，下一站是{nxt[0]}。")}


PLACES = [("火车站", "Railway Station"), ("博物馆", "Museum"), ("人民医院", "People's Hospital"), ("图书馆", "Library"),
          ("体育中心", "Sports Centre"), ("机场", "Airport"), ("市政府", "City Hall")]
DIRECTIONS = [("向左", "to the left", 180), ("直行", "straight ahead", -90), ("向右", "to the right", 0)]


def street_sign(rng: random.Random, size: tuple[int, int], variant: int) -> Doc:
    places, dirs = rng.sample(PLACES, 3), rng.sample(DIRECTIONS, 3)
    dists = [f"{rng.randint(2, 19) * 50} m" if rng.random() < 0.5 else f"{rng.randint(11, 60) / 10:.1f} km"
             for _ in places]
    (w, h), s = size, min(size) // 16
    img = Image.new("RGB", size, "#f4f4f4")
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((s * 0.5, s * 0.5, w - s * 0.5, h - s * 0.5), radius=s, fill="#1d4f91")
    draw.rounded_rectangle((s, s, w - s, h - s), radius=s * 0.8, outline="white", width=max(2, s // 4))
    for i, (place, (_, _, angle), dist) in enumerate(zip(places, dirs, dists, strict=True)):
        cy, cx, r = h * (0.2 + 0.3 * i), s * 3, s * 1.1
        pts = [(-1, -0.3), (0, -0.3), (0, -0.8), (1, 0), (0, 0.8), (0, 0.3), (-1, 0.3)]
        c, sn = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        draw.polygon([(cx + r * (x * c - y * sn), cy + r * (x * sn + y * c)) for x, y in pts], fill="white")
        if CJK:
            draw.text((s * 5, cy - s * 0.5), place[0], font=font(int(s * 1.5)), fill="white", anchor="lm")
        draw.text((s * 5, cy + s * (0.9 if CJK else 0)), place[1], font=font(int(s * (0.85 if CJK else 1.2))),
                  fill="#dfe8f5", anchor="lm")
        draw.text((w - s * 1.8, cy - s * 0.5), dist, font=font(int(s * 1.0)), fill="white", anchor="rm")
    en = "A blue bilingual direction sign with three destinations: " + "; ".join(
        f"{named(p)} {dist} {d[1]}" for p, d, dist in zip(places, dirs, dists, strict=True)) + "."
    zh = "一块蓝色双语指路牌，标有三个目的地：" + "；".join(
        f"{p[0]}{d[0]}{dist}" for p, d, dist in zip(places, dirs, dists, strict=True)) + "。"
    k = rng.randrange(3)
    return img, {"en": en, "zh": zh,
                 "qa_en": (f"How far is the {places[k][1]} according to the sign, and which way?", f"{dists[k]}, {dirs[k][1]}."),
                 "qa_zh": (f"去{places[k][0]}应该往哪个方向走？有多远？", f"{dirs[k][0]}，{dists[k]}。")}


CITIES = [("北京", "Beijing"), ("上海", "Shanghai"), ("广州", "Guangzhou"), ("深圳", "Shenzhen"), ("成都", "Chengdu"),
          ("西安", "Xi'an"), ("哈尔滨", "Harbin"), ("昆明", "Kunming")]
WEATHER = [("晴", "sunny"), ("多云", "cloudy"), ("小雨", "light rain"), ("阴", "overcast"), ("雷阵雨", "thunderstorms")]


def weather_table(rng: random.Random, size: tuple[int, int], variant: int) -> Doc:
    n = rng.randint(4, 6)
    cities, highs, lows = rng.sample(CITIES, n), rng.sample(range(12, 36), n), [0, 0]
    while not distinct_extremes(lows):
        lows = [hi - rng.randint(4, 12) for hi in highs]
    skies, date = [rng.choice(WEATHER) for _ in cities], f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    img, s = Image.new("RGB", size, "white"), max(12, int(min(size[0] / 46, size[1] / ((n + 1) * 2.2 + 5))))
    title = bi(("城市天气预报", "City Weather Forecast"))
    draw = header(img, title, date, s)
    rows = [[bi(("城市", "City")), bi(("天气", "Weather")), bi(("最高气温", "High")), bi(("最低气温", "Low"))]]
    rows += [[bi(c), bi(wx), f"{hi}°C", f"{lo}°C"] for c, wx, hi, lo in zip(cities, skies, highs, lows, strict=True)]
    draw_table(draw, (s, s * 4.6, size[0] - s, size[1] - s), rows, s, ("#2f6690", "white", "#f3f7fa", "#dfe9f1", "#222"))
    hot, cold = highs.index(max(highs)), lows.index(min(lows))
    en = (f'A weather table titled "{title}" for {date} with {n} cities: '
          + "; ".join(f"{c[1]} {wx[1]}, high {hi}°C, low {lo}°C"
                      for c, wx, hi, lo in zip(cities, skies, highs, lows, strict=True))
          + f". {cities[hot][1]} is the hottest ({highs[hot]}°C) and {cities[cold][1]} has the lowest low ({lows[cold]}°C).")
    zh = (f"一张“{title}”表格，日期{date}，共{n}个城市："
          + "；".join(f"{c[0]}{wx[0]}，最高{hi}°C，最低{lo}°C" for c, wx, hi, lo in zip(cities, skies, highs, lows, strict=True))
          + f"。最高气温最高的是{cities[hot][0]}（{highs[hot]}°C），最低气温最低的是{cities[cold][0]}（{lows[cold]}°C）。")
    return img, {"en": en, "zh": zh,
                 "qa_en": ("Which city has the highest temperature in the table?",
                           f"{cities[hot][1]}, with a high of {highs[hot]}°C."),
                 "qa_zh": ("表中哪个城市的最低气温最低？", f"{cities[cold][0]}，最低气温为{lows[cold]}°C。")}


OUTAGES = [("停水通知", "Water Outage Notice", "供水管道维修", "water pipe repairs", "停水", "water"),
           ("停电通知", "Power Outage Notice", "电力线路检修", "power line maintenance", "停电", "power")]


def notice(rng: random.Random, size: tuple[int, int], variant: int) -> Doc:
    tz, te, rz, ren, sz, sen = OUTAGES[variant % len(OUTAGES)]
    b, m, d = rng.randint(1, 12), rng.randint(3, 11), rng.randint(3, 26)
    t1, t2 = rng.choice(["08:00", "08:30", "09:00"]), rng.choice(["12:00", "15:00", "17:30"])
    if CJK:
        body = ["尊敬的各位业主：", f"因{rz}，{b}号楼将于", f"{m}月{d}日{t1}至{t2}{sz}。", "请各位业主提前做好准备，",
                "给您带来不便，敬请谅解。"]
        sign, title = ["物业服务中心", f"{m}月{d - 2}日"], tz
    else:
        body = ["Dear residents,", f"Due to {ren},", f"Building {b} will have no {sen}",
                f"on {MONTHS[m - 1]} {d}, {t1} to {t2}.", "Sorry for the inconvenience."]
        sign, title = ["Property Management Office", f"{MONTHS[m - 1]} {d - 2}"], te
    (w, h), s = size, size[0] // 20
    img = Image.new("RGB", size, "#fffef6")
    draw = ImageDraw.Draw(img)
    draw.text((w / 2, s * 2.5), title, font=font(int(s * 2)), fill="#c62828", anchor="mm")
    draw.line((s * 1.5, s * 4.3, w - s * 1.5, s * 4.3), fill="#c62828", width=max(2, s // 8))
    for i, text in enumerate(body):
        draw.text((s * 1.5 + (0 if i == 0 else s * 1.2), s * (6 + i * 2.2)), text, font=font(int(s * (1.15 if CJK else 0.95))), fill="#222")
    y = s * (8 + len(body) * 2.2)
    for i, text in enumerate(sign):
        draw.text((w - s * 2, y + i * s * 1.8), text, font=font(int(s * 1.05)), fill="#222", anchor="ra")
    half = draw.textlength(sign[0], font=font(int(s * 1.05))) / 2
    cx, r = w - s * 2 - half, max(half + s * 0.3, s * 2.4)
    if CJK:  # a red seal over the signature
        draw.ellipse((cx - r, y + s * 1.2 - r, cx + r, y + s * 1.2 + r), outline="#d32f2f", width=max(3, s // 7))
    when_en = f"on {MONTHS[m - 1]} {d} from {t1} to {t2}"
    en = (f'A notice in Chinese titled "{tz}" ({te}) from the property management office (物业服务中心): because of '
          f"{ren}, Building {b} will have no {sen} {when_en}; residents are asked to prepare. It is dated {m}月{d - 2}日."
          if CJK else f'A notice titled "{te}" from the Property Management Office: because of {ren}, Building {b} '
          f"will have no {sen} {when_en}. It is dated {MONTHS[m - 1]} {d - 2}.")
    zh = f"一张“{title}”：因{rz}，{b}号楼将于{m}月{d}日{t1}至{t2}{sz}，请业主提前做好准备；落款为物业服务中心，日期为{m}月{d - 2}日。"
    return img, {"en": en, "zh": zh,
                 "qa_en": (f"When will the {sen} outage in this notice happen, and where?", f"In Building {b}, {when_en}."),
                 "qa_zh": (f"通知里说哪栋楼什么时候{sz}？", f"{b}号楼，{m}月{d}日{t1}至{t2}。")}


SHOPS = [("兰州牛肉面馆", "Lanzhou Beef Noodle House"), ("老街小吃店", "Old Street Snack Bar")]
DISHES = [("牛肉拉面", "beef hand-pulled noodles"), ("红烧牛腩饭", "braised beef brisket with rice"),
          ("酸辣粉", "hot and sour glass noodles"), ("葱油拌面", "scallion oil noodles"), ("鸡蛋炒饭", "egg fried rice"),
          ("凉拌黄瓜", "smashed cucumber salad"), ("酸梅汤", "sour plum drink"), ("煎饺", "pan-fried dumplings")]


def menu(rng: random.Random, size: tuple[int, int], variant: int) -> Doc:
    shop, n = SHOPS[variant % len(SHOPS)], rng.randint(5, 7)
    dishes, prices = rng.sample(DISHES, n), rng.sample(range(6, 49), n)
    (w, h), s = size, size[0] // 18
    gap = min(s * 3.2, (h - s * 6.5) / n)
    img = Image.new("RGB", size, "#fbf3e4")
    draw = header(img, shop[0] if CJK else shop[1], shop[1] if CJK else "Menu", s, color="#8b1e1e")
    draw.line((s, s * 4.4, w - s, s * 4.4), fill="#8b1e1e", width=2)
    for i, (dish, p) in enumerate(zip(dishes, prices, strict=True)):
        y, label = s * 5.5 + i * gap, dish[0] if CJK else dish[1].capitalize()
        draw.text((s * 1.5, y), label, font=font(int(s * 1.1)), fill="#222")
        if CJK:
            draw.text((s * 1.5, y + s * 1.35), dish[1], font=font(int(s * 0.7)), fill="#777")
        end = s * 1.5 + draw.textlength(label, font=font(int(s * 1.1)))
        price = f"{yuan(p)}"
        start = w - s * 1.5 - draw.textlength(price, font=font(int(s * 1.1)))
        for x in np.arange(end + s * 0.6, start - s * 0.4, s * 0.45):
            draw.ellipse((x - 1.5, y + s * 0.8 - 1.5, x + 1.5, y + s * 0.8 + 1.5), fill="#b8a88a")
        draw.text((w - s * 1.5, y), price, font=font(int(s * 1.1)), fill="#8b1e1e", anchor="ra")
    top, low, k = prices.index(max(prices)), prices.index(min(prices)), rng.randrange(n)
    en = (f"A menu from {named(shop)} listing {n} dishes: " + "; ".join(
        f"{named(d)} {yuan(p)}" for d, p in zip(dishes, prices, strict=True))
          + f". The most expensive is {dishes[top][1]} at {yuan(prices[top])} and the cheapest is {dishes[low][1]} at {yuan(prices[low])}.")
    zh = (f"{shop[0]}的菜单，共{n}道菜品：" + "，".join(f"{d[0]}{yuan(p)}" for d, p in zip(dishes, prices, strict=True))
          + f"。最贵的是{dishes[top][0]}（{yuan(prices[top])}），最便宜的是{dishes[low][0]}（{yuan(prices[low])}）。")
    return img, {"en": en, "zh": zh, "qa_en": (f"How much does the {dishes[k][1]} cost?", f"{yuan(prices[k])}."),
                 "qa_zh": ("菜单上最贵的是哪道菜？多少钱？", f"{dishes[top][0]}，{yuan(prices[top])}。")}


DESTINATIONS = [("杭州东", "Hangzhou East"), ("南京南", "Nanjing South"), ("苏州", "Suzhou"), ("北京南", "Beijing South"),
                ("合肥南", "Hefei South"), ("宁波", "Ningbo"), ("武汉", "Wuhan"), ("厦门北", "Xiamen North")]


def timetable(rng: random.Random, size: tuple[int, int], variant: int) -> Doc:
    n = rng.randint(4, 6)
    dests, codes = rng.sample(DESTINATIONS, n), [f"{rng.choice('GD')}{x}" for x in rng.sample(range(100, 3000), n)]
    minute, times = rng.randint(360, 540), []
    for _ in range(n):
        minute += rng.randint(8, 45)
        times.append(f"{minute // 60:02d}:{minute % 60:02d}")
    plats = [rng.randint(1, 12) for _ in range(n)]
    img, s = Image.new("RGB", size, "#101820"), max(12, int(min(size[0] / 46, size[1] / ((n + 1) * 2.0 + 5))))
    title = bi(("列车时刻表", "Train Departures"))
    draw = header(img, title, "", s, color="#ffcc33")
    rows = [[bi(("车次", "Train")), bi(("终点站", "Destination")), bi(("发车时间", "Departs")), bi(("站台", "Platform"))]]
    rows += [[c, bi(d), t, str(p)] for c, d, t, p in zip(codes, dests, times, plats, strict=True)]
    draw_table(draw, (s, s * 3.6, size[0] - s, size[1] - s), rows, s, ("#1f5fa8", "white", "#16222e", "#1d2c3b", "#ffcc33"))
    k = rng.randrange(n)
    en = f'A train departure board titled "{title}" listing {n} trains: ' + "; ".join(
        f"{c} to {named(d)} at {t}, platform {p}" for c, d, t, p in zip(codes, dests, times, plats, strict=True)) + "."
    zh = f"列车时刻表“{title}”，共{n}趟列车：" + "；".join(
        f"{c}次开往{d[0]}，{t}发车，{p}号站台" for c, d, t, p in zip(codes, dests, times, plats, strict=True)) + "。"
    return img, {"en": en, "zh": zh,
                 "qa_en": (f"When does train {codes[k]} depart, and from which platform?",
                           f"{codes[k]} to {dests[k][1]} departs at {times[k]} from platform {plats[k]}."),
                 "qa_zh": (f"开往{dests[k][0]}的是哪趟列车？几点从几号站台发车？", f"{codes[k]}次，{times[k]}从{plats[k]}号站台发车。")}


RENDERERS: dict[str, tuple[Callable[[random.Random, tuple[int, int], int], Doc], list[tuple[int, int]]]] = {
    "bar": (bar_chart, [(640, 480), (1050, 600), (1920, 1080)]),
    "line": (line_chart, [(800, 600), (1050, 600)]),
    "pie": (pie_chart, [(640, 480), (800, 600)]),
    "receipt": (receipt, [(600, 1000), (800, 1300)]),
    "metro": (metro_sign, [(1200, 400), (900, 300)]),
    "sign": (street_sign, [(448, 448), (600, 600)]),
    "weather": (weather_table, [(640, 480), (1050, 600)]),
    "notice": (notice, [(800, 1100), (600, 820)]),
    "menu": (menu, [(640, 880), (480, 700)]),
    "timetable": (timetable, [(1200, 700), (960, 560)]),
}
DOC_SLOTS = [  # renderer, size, variant, text mode
    ("bar", (1920, 1080), 0, "qa_zh"), ("bar", (640, 480), 1, "en"), ("bar", (1050, 600), 2, "zh"),
    ("line", (1050, 600), 0, "en"), ("line", (800, 600), 1, "qa_en"), ("pie", (640, 480), 0, "zh"),
    ("pie", (800, 600), 1, "qa_en"), ("receipt", (800, 1300), 0, "qa_zh"), ("receipt", (600, 1000), 1, "en"),
    ("metro", (1200, 400), 0, "zh"), ("sign", (448, 448), 0, "en"), ("weather", (1050, 600), 0, "qa_zh"),
    ("notice", (800, 1100), 0, "zh"), ("menu", (640, 880), 0, "en"), ("timetable", (1200, 700), 0, "qa_en"),
    ("metro", (900, 300), 1, "en"),
]


# ---------------------------------------------------------------- defects
DEFECTS: dict[str, tuple[str, str]] = {  # id -> (what is wrong, reject reason expected from pipelines/demo.yaml)
    "truncated-jpeg": ("the first 60% of a real JPEG's bytes", "decode_error"),
    "empty-file": ("zero-byte defects/empty.jpg", "empty_file"),
    "not-an-image": ("a text file named defects/not_image.jpg", "not_an_image"),
    "duplicate-exact": ("the same bytes and the same caption as a photo, under another file name", "duplicate_exact"),
    "duplicate-near": ("a photo resized to 90% and re-encoded at JPEG quality 70, same caption", "duplicate_near"),
    "lang-french": ("a French caption on a real-photo crop", "language_not_allowed"),
    "lang-german": ("a German caption on a real-photo crop", "language_not_allowed"),
    "lang-spanish": ("a Spanish caption on a real-photo crop", "language_not_allowed"),
    "too-small": ("a 16x16 image", "too_small"),
    "extreme-aspect": ("a 2000x40 image", "extreme_aspect_ratio"),
    "path-outside-root": ("image path ../../../etc/passwd", "path_outside_root"),
    "missing-file": ("image photos/does_not_exist.jpg does not exist", "missing_file"),
    "decompression-bomb": ("a PNG whose header says 40000x40000, a few hundred bytes on disk", "too_many_pixels"),
    "boilerplate": ('caption "Click here to enlarge"', "boilerplate"),
    "caption-too-short": ('caption "ok"', "caption_too_short"),
    "url-email-only": ("a caption that is only a URL and an e-mail address", "caption_too_short"),
    "html-caption": ("HTML tags and entities in the caption (cleaned, then accepted)", "accepted"),
    "invisible-chars": ("zero-width and control characters in the caption (cleaned, then accepted)", "accepted"),
    "broken": ("a JSON line cut off mid-object", "invalid_json"),
    "invalid-utf8": ("raw bytes \\xff\\xfe inside the caption", "invalid_utf8"),
    "missing-text": ("neither caption nor conversations", "missing_text"),
    "cmyk-jpeg": ("a CMYK JPEG", "accepted"),
    "palette-transparent": ("a palette PNG with a transparent colour", "accepted"),
    "gray16-png": ("a 16-bit grayscale PNG (mode I;16)", "accepted"),
    "animated-gif": ("an animated GIF with 3 frames (the first frame is used)", "accepted"),
    "exif-rotated": ("a JPEG stored sideways with EXIF orientation 6", "accepted"),
    "rgba-png": ("an RGBA PNG with transparent corners", "accepted"),
}
FOREIGN = [
    ("lang-french", "china", (0.45, 0.3, 1.0, 0.75), "Vue d'un grand lac parsemé de petits bateaux depuis une colline, avec le coin d'un pavillon chinois à gauche et des arbres à droite."),  # noqa: E501
    ("lang-german", "motorcycle", (0.0, 0.2, 0.5, 0.8), "Das Hinterrad und die schwarze Sitzbank eines roten Motorrads, das in einer Garage vor einer alten Holzbank steht."),  # noqa: E501
    ("lang-spanish", "coffee", (0.2, 0.1, 0.7, 0.6), "Una taza blanca y roja llena de café espresso con una capa de crema, vista desde arriba sobre una mesa de madera."),  # noqa: E501
]


def bomb_png(width: int = 40000, height: int = 40000, rows: int = 4) -> bytes:
    """A valid-looking 8-bit grayscale PNG header of width x height with only a few rows of pixel data."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(bytes((width + 1) * rows), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def lighthouse(np_rng: np.random.Generator) -> Image.Image:
    """A red-and-white lighthouse on dark rocks by a blue sea, with textured water."""
    w, h, horizon = 480, 360, 220
    sky = np.linspace([105, 165, 225], [200, 225, 245], horizon)[:, None, :].repeat(w, 1)
    sea = np.linspace([45, 105, 165], [20, 60, 115], h - horizon)[:, None, :].repeat(w, 1)
    sea = sea + np_rng.normal(0, 9, (h - horizon, w, 1))
    img = Image.fromarray(np.clip(np.concatenate([sky, sea]), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    draw.polygon([(200, 360), (230, 290), (280, 270), (360, 265), (420, 300), (470, 360)], fill="#4a4a48")
    draw.polygon([(250, 360), (300, 300), (380, 310), (430, 360)], fill="#343432")
    for k in range(6):  # tower in six bands, tapering upwards
        y0, y1 = 280 - k * 30, 250 - k * 30
        draw.polygon([(300 + k * 3, y0), (350 - k * 3, y0), (347 - k * 3, y1), (303 + k * 3, y1)],
                     fill="#c8102e" if k % 2 == 0 else "#f5f5f5")
    draw.rectangle((310, 80, 340, 100), fill="#ffe680", outline="#222222", width=3)
    draw.rectangle((302, 100, 348, 106), fill="#222222")
    draw.polygon([(306, 80), (344, 80), (325, 60)], fill="#7a0c1c")
    return img


def star_badge() -> Image.Image:
    """A palette image: yellow star in a blue disc with a dark rim, palette index 0 transparent."""
    img = Image.new("P", (300, 300), 0)
    img.putpalette([255, 255, 255, 20, 50, 120, 250, 200, 30, 40, 110, 200])
    draw = ImageDraw.Draw(img)
    draw.ellipse((20, 20, 280, 280), fill=1)
    draw.ellipse((38, 38, 262, 262), fill=3)
    pts = [(150 + r * math.cos(math.radians(-90 + 36 * k)), 152 + r * math.sin(math.radians(-90 + 36 * k)))
           for k, r in enumerate([105, 42] * 5)]
    draw.polygon(pts, fill=2)
    return img


def bouncing_ball() -> list[Image.Image]:
    """Three frames of a red ball bouncing across a grey-and-white checkered floor."""
    frames = []
    for k, y in enumerate((55, 100, 136)):
        img = Image.new("RGB", (320, 240), "#bfe3f7")
        draw = ImageDraw.Draw(img)
        for i in range(16):
            for j in range(4):
                draw.rectangle((i * 20, 160 + j * 20, i * 20 + 19, 179 + j * 20), fill="#8d8d8d" if (i + j) % 2 else "#f2f2f2")
        x = 80 + 80 * k
        draw.ellipse((x - 20, 164, x + 20, 172), fill="#555555")
        draw.ellipse((x - 24, y - 24, x + 24, y + 24), fill="#d62828", outline="#7a1010", width=2)
        frames.append(img)
    return frames


def write_defects(images: str, photos: list[dict[str, Any]], np_rng: np.random.Generator) -> list[bytes]:
    """Write the defect images and return defects.jsonl lines (two of them deliberately unparsable)."""
    lines: list[bytes] = []

    def put(name: str, data: bytes) -> str:
        os.makedirs(os.path.dirname(os.path.join(images, name)), exist_ok=True)
        with open(os.path.join(images, name), "wb") as f:
            f.write(data)
        return name

    def add(rid: str, image: str | None, caption: str | None) -> None:
        rec = {"id": rid, "image": image} if caption is None else {"id": rid, "image": image, "caption": caption}
        lines.append(json.dumps(rec, ensure_ascii=False).encode())

    def add_crop(rid: str, key: str, box: tuple[float, ...], name: str, caption: str, **kw: Any) -> None:
        img = crop(key, box)
        if img is not None:
            img = kw.pop("convert")(img) if "convert" in kw else img
            os.makedirs(os.path.join(images, "defects"), exist_ok=True)
            img.save(os.path.join(images, name), **kw)
            add(rid, name, caption)

    jpgs = [r for r in photos if r["image"].endswith(".jpg") and "caption" in r]
    if jpgs:
        exact = next((r for r in jpgs if r["id"] == "photo-rocket"), jpgs[0])
        near = next((r for r in jpgs if r["id"] == "photo-grace_hopper"), jpgs[-1])
        with open(os.path.join(images, exact["image"]), "rb") as f:
            data = f.read()
        add("truncated-jpeg", put("defects/truncated.jpg", data[: len(data) * 6 // 10]), exact["caption"])
        add("duplicate-exact", put(f"defects/copy_of_{os.path.basename(exact['image'])}", data), exact["caption"])
        img = Image.open(os.path.join(images, near["image"]))
        small = img.resize((img.width * 9 // 10, img.height * 9 // 10), Image.Resampling.LANCZOS)
        add("duplicate-near", put("defects/near_duplicate.jpg", jpeg_bytes(small, 70)), near["caption"])
    add("empty-file", put("defects/empty.jpg", b""), "An empty file that claims to be a JPEG photo.")
    add("not-an-image", put("defects/not_image.jpg", b"This is a plain text file, not a JPEG image.\n"),
        "A text file saved with a .jpg extension instead of a photo.")
    for rid, key, box, caption in FOREIGN:
        add_crop(rid, key, box, f"defects/{rid}.jpg", caption, quality=92)
    add_crop("too-small", "chelsea", (0, 0, 1, 1), "defects/tiny_16x16.jpg", "A tiny thumbnail of a tabby cat's face.",
             convert=lambda im: im.resize((16, 16), Image.Resampling.LANCZOS), quality=92)
    add_crop("extreme-aspect", "china", (0, 0.45, 1, 0.55), "defects/strip_2000x40.jpg",
             "A thin strip cut across a photo of a Chinese pavilion, a lake and trees.",
             convert=lambda im: im.resize((2000, 40), Image.Resampling.LANCZOS), quality=92)
    add("path-outside-root", "../../../etc/passwd", "A record whose image path points outside the dataset root.")
    add("missing-file", "photos/does_not_exist.jpg", "A record whose image file does not exist on disk.")
    add("decompression-bomb", put("defects/bomb_40000x40000.png", bomb_png()), "A PNG that claims to be 40000 pixels square.")
    add_crop("boilerplate", "hubble", (0, 0, 0.5, 0.5), "defects/click_here.jpg", "Click here to enlarge", quality=92)
    add_crop("caption-too-short", "retina", (0.5, 0.3, 1, 0.8), "defects/caption_ok.jpg", "ok", quality=92)
    add_crop("url-email-only", "rocket", (0, 0, 0.35, 1), "defects/url_caption.jpg",
             "https://example.com/gallery/launch-tower-0417.jpg photos@example.com", quality=92)
    add("html-caption", put("defects/lighthouse.png", _png(lighthouse(np_rng))),
        "<p>A <b>red</b> &amp; white lighthouse&nbsp;on dark rocks beside a calm blue sea, under a clear sky.</p>")
    add_crop("invisible-chars", "astronaut", (0.65, 0, 1, 0.55), "defects/shuttle_model.jpg",
             "A model\u200b of the space shuttle\u00ad with its orange external tank\u0007 and two white rocket boosters,"
             "\u200d in front of a grey backdrop.\ufeff", quality=92)
    lines.append(b'{"id": "broken", "image": "photos/x.jpg", "caption": ')
    lines.append(b'{"id": "invalid-utf8", "image": "defects/click_here.jpg", "caption": "A caption with \xff\xfe bytes."}')
    add("missing-text", "defects/click_here.jpg", None)
    add_crop("cmyk-jpeg", "motorcycle", (0.55, 0.3, 1, 0.95), "defects/cmyk.jpg",
             "The front wheel, red mudguard and chrome fork of a motorcycle parked in a garage in front of shelves with boxes.",
             convert=lambda im: im.convert("CMYK"), quality=92)
    star = put("defects/palette_transparent.png", _png(star_badge(), transparency=0))
    add("palette-transparent", star, "A yellow five-pointed star inside a blue circle with a dark blue rim, on a transparent background.")
    add_crop("gray16-png", "cell", (0, 0, 1, 1), "defects/gray16.png",
             "Quantitative phase image of a single cell floating in saline: a bright round spot on a grainy grey background.",
             convert=lambda im: Image.fromarray(np.asarray(im.convert("L"), dtype=np.uint16) * 257))
    frames, buf = bouncing_ball(), io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)
    add("animated-gif", put("defects/animated.gif", buf.getvalue()),
        "A red ball bouncing over a grey-and-white checkered floor under a light blue sky.")
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise, so store the picture turned counter-clockwise
    add_crop("exif-rotated", "grace_hopper", (0, 0.5, 1, 1), "defects/exif_rotated.jpg",
             "A navy dress uniform jacket with a name tag, rows of service ribbons, a white shirt and a black tie, "
             "in front of an American flag.", convert=lambda im: im.transpose(Image.Transpose.ROTATE_90),
             quality=92, exif=exif)
    add_crop("rgba-png", "chelsea", (0.45, 0.45, 1, 1), "defects/rgba.png",
             "Close-up of a tabby cat's pink nose, whiskers and striped cheek, fading to transparent at the corners.",
             convert=_vignette)
    return lines


def _png(img: Image.Image, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **kw)
    return buf.getvalue()


def _vignette(img: Image.Image) -> Image.Image:
    """RGBA copy whose alpha fades to zero towards the corners."""
    w, h = img.size
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot((xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2))
    rgba = img.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.clip((1.25 - r) * 600, 0, 255).astype(np.uint8)))
    return rgba


# ---------------------------------------------------------------- web formats and scaled samples
def resized(img: Image.Image, long_side: int) -> Image.Image:
    scale = long_side / max(img.size)
    return img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.LANCZOS)


def write_web(root: str, rng: random.Random) -> tuple[int, int]:
    """web.parquet (id, image bytes, caption) and shards/web-000000.tar; returns their record counts."""
    rows: dict[str, list[Any]] = {"id": [], "image": [], "caption": []}
    for i, (key, box, caption) in enumerate(WEB_CROPS):
        img = crop(key, box)
        if img is not None:
            rows["id"].append(f"web-{i:04d}")
            rows["image"].append(jpeg_bytes(resized(img, rng.randint(320, 640))))
            rows["caption"].append(caption)
    schema = pa.schema([("id", pa.string()), ("image", pa.binary()), ("caption", pa.string())])
    pq.write_table(pa.table(rows, schema=schema), os.path.join(root, "web.parquet"))
    os.makedirs(os.path.join(root, "shards"))
    keys = 0
    with tarfile.open(os.path.join(root, "shards", "web-000000.tar"), "w", format=tarfile.USTAR_FORMAT) as tar:

        def member(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tar.addfile(info, io.BytesIO(data))

        for i, (key, box, caption, as_json) in enumerate(TAR_CROPS):
            img = crop(key, box)
            if img is None:
                continue
            member(f"{i:06d}.jpg", jpeg_bytes(resized(img, rng.randint(320, 640))))
            text = json.dumps({"caption": caption}, ensure_ascii=False) if as_json else caption
            member(f"{i:06d}.{'json' if as_json else 'txt'}", text.encode())
            keys += 1
        member(f"{len(TAR_CROPS):06d}.txt", b"A caption whose image is missing from the shard.")
    return len(rows["id"]), keys + 1


SCALED_PHOTOS = ["chelsea", "coffee", "rocket", "motorcycle", "hubble", "camera", "moon", "text", "brick", "grass",
                 "gravel", "ihc", "china", "grace_hopper"]  # captions that still hold for a crop around the centre
NO_FLIP = {"motorcycle", "text"}  # mirrored lettering


def scaled_one(job: tuple[str, int, int]) -> dict[str, Any]:
    """One scaled sample (an augmented photo or a freshly rendered document) written under images/scaled."""
    images, seed, i = job
    rng = random.Random(f"{seed}:scaled:{i}")
    lang = "zh" if rng.random() < 0.15 else "en"
    keys = [k for k in SCALED_PHOTOS if source_path(k)]
    if keys and rng.random() < 0.6:
        key = rng.choice(keys)
        img = load(key)
        w, h = img.size
        area, ratio = rng.uniform(0.4, 0.8), rng.uniform(0.8, 1.25)
        cw, ch = min(w, round(w * math.sqrt(area * ratio))), min(h, round(h * math.sqrt(area / ratio)))
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        img = resized(img.crop((x, y, x + cw, y + ch)), rng.randint(320, 1024))
        if key not in NO_FLIP and rng.random() < 0.5:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        for enhance in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            img = enhance(img).enhance(rng.uniform(0.88, 1.12))
        name, text = f"scaled/{i:06d}.jpg", next(en if lang == "en" else zh for k, _, _, en, zh in PHOTOS if k == key)
        save(img, os.path.join(images, name), quality=rng.randint(85, 92))
    else:
        render, sizes = RENDERERS[rng.choice(sorted(RENDERERS))]
        img, texts = render(rng, rng.choice(sizes), rng.randrange(1000))
        name, text = f"scaled/{i:06d}.png", texts[lang]
        save(img, os.path.join(images, name))
    return {"id": f"scaled-{i:06d}", "image": name, "caption": text}


# ---------------------------------------------------------------- build
def build(target: str, scale: int = 0, seed: int = 0) -> dict[str, int]:
    """Write the sample dataset into `target` atomically (temp sibling, then rename); returns record counts."""
    target = os.path.abspath(target)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = f"{target}.tmp-{secrets.token_hex(4)}"
    try:
        counts = _write(tmp, scale, seed)
        if os.path.exists(target):
            old = f"{target}.old-{secrets.token_hex(4)}"
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return counts


def _write(root: str, scale: int, seed: int) -> dict[str, int]:
    rng, np_rng = random.Random(seed), np.random.default_rng(seed)
    images = os.path.join(root, "images")
    photos = []
    for key, _, _, en, zh in PHOTOS:
        img = load(key)
        if img is None:
            continue
        name = f"photos/{key}.{'png' if img.mode == 'L' else 'jpg'}"
        save(img, os.path.join(images, name))
        mode = "qa_en" if key in PHOTO_QA else ("zh" if key in ZH_PHOTOS else "en")
        photos.append({"id": f"photo-{key}", "image": name, **text_fields({"en": en, "zh": zh, "qa_en": PHOTO_QA.get(key)}, mode)})
    documents = []
    for i, (kind, size, variant, mode) in enumerate(DOC_SLOTS, 1):
        img, texts = RENDERERS[kind][0](rng, size, variant)
        name = f"docs/{kind}_{i:02d}.png"
        save(img, os.path.join(images, name))
        documents.append({"id": f"doc-{i:02d}-{kind}", "image": name, **text_fields(texts, mode)})
    defects = write_defects(images, photos, np_rng)
    web_rows, tar_keys = write_web(root, rng)
    jobs = [(images, seed, i) for i in range(scale)]
    if scale >= 200:
        with ProcessPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
            scaled = list(pool.map(scaled_one, jobs, chunksize=32))
    else:
        scaled = [scaled_one(job) for job in jobs]
    sets = {"photos": photos, "documents": documents, "defects": defects, **({"scaled": scaled} if scale else {})}
    meta = {}
    for name, recs in sets.items():
        with open(os.path.join(root, f"{name}.jsonl"), "wb") as f:
            for rec in recs:
                f.write((rec if isinstance(rec, bytes) else json.dumps(rec, ensure_ascii=False).encode()) + b"\n")
        meta[name] = {"root": "images", "annotation": f"{name}.jsonl", "data_augment": False, "repeat_time": 1,
                      "length": len(recs)}
    with open(os.path.join(root, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False, indent=2)
    counts = {"records": sum(len(r) for r in sets.values()) + web_rows + tar_keys,
              **{k: len(v) for k, v in sets.items()}, "web_parquet": web_rows, "web_tar": tar_keys, "scaled": scale}
    written = {json.loads(line)["id"] if line.endswith(b"}") else "broken" for line in defects if b"\xff" not in line}
    _readme(root, counts, seed, written | {"invalid-utf8"})
    with open(os.path.join(root, ".complete"), "w", encoding="utf-8") as f:
        json.dump(counts, f)
    return counts


def _readme(root: str, counts: dict[str, int], seed: int, written: set[str]) -> None:
    table = "\n".join(f"| `{rid}` | {what} | `{reason}` |" for rid, (what, reason) in DEFECTS.items() if rid in written)
    text = f"""# Sample dataset (built by `dataengine.sample_data`, seed {seed})

Offline demo input for `pipelines/demo.yaml`: real photos shipped inside scikit-image, scikit-learn and
matplotlib, bilingual (Chinese/English) charts and documents rendered with Pillow, and deliberate defects.

Counts: {json.dumps(counts)}

| path | contents |
|---|---|
| `meta.json` | InternVL meta JSON naming the JSONL annotations below (image root `images/`) |
| `photos.jsonl` | real photos with English or Chinese captions, three as question/answer conversations |
| `documents.jsonl` | rendered charts, receipts, signs, tables, a notice, a menu and a timetable; captions and answers state the rendered values |
| `defects.jsonl` | one record per deliberate defect, listed below |
| `scaled.jsonl` | (only with scale > 0) augmented photo crops and freshly rendered documents |
| `web.parquet` | image bytes + caption rows (img2dataset layout), all valid |
| `shards/web-000000.tar` | WebDataset shard: `.jpg` + `.txt` or `.json` per key; the last key has only a `.txt` -> `missing_image` |

## Defects and the reject reason expected for each (`accepted` = must pass, after cleaning where noted)

| id | defect | expected |
|---|---|---|
{table}

The demo deduplicates on image+text, so the two duplicates repeat their original photo's caption word for word.
For `duplicate-exact` the pipeline keeps one of the identical pair (same size: the smaller sample id), so the
`duplicate_exact` reject may land on the photo rather than on the copy; the near duplicate is smaller than its
original and is always the one rejected.
"""
    with open(os.path.join(root, "README.md"), "w", encoding="utf-8") as f:
        f.write(text)


def ensure(target: str, scale: int = 0, rebuild: bool = False, console: Console | None = None) -> str:
    """Build the sample dataset unless `target/.complete` exists (or rebuild is set); returns target."""
    say = (lambda msg: console.print(msg, markup=False, highlight=False)) if console else print
    if not rebuild and os.path.exists(os.path.join(target, ".complete")):
        say(f"sample data: {target} is already built (rebuild to replace it)")
        return target
    start = time.perf_counter()
    counts = build(target, scale=scale)
    say(f"sample data: built {target} in {time.perf_counter() - start:.1f}s: "
        + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return target
