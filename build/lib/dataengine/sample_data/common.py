"""Shared pieces of the sample dataset: source photos and their captions, file helpers, drawing helpers."""

from __future__ import annotations

import importlib.util
import io
import math
import os
from collections.abc import Callable
from functools import cache
from typing import Any

from PIL import Image, ImageDraw, ImageFont

FONT_PATH = "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
CJK = os.path.exists(FONT_PATH)  # without it, documents are rendered in English only
PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
Pair = tuple[str, str]  # (Chinese, English)
Texts = dict[str, Any]  # {"en": caption, "zh": caption, "qa_en": (question, answer), "qa_zh": (question, answer)}
Doc = tuple[Image.Image, Texts]
Box = tuple[float, float, float, float]

# key, package, file inside the package, English caption, Chinese caption
PHOTOS: list[tuple[str, str, str, str, str]] = [
    (
        "astronaut",
        "skimage",
        "data/astronaut.png",
        "Official portrait of NASA astronaut Eileen Collins, smiling, in an orange launch-and-entry suit, with a US flag on the left, a space shuttle model behind her and her helmet beside her.",
        "美国宇航员艾琳·柯林斯的官方肖像：她身穿橙色发射服，面带微笑，左侧是美国国旗，身后有航天飞机模型，身旁放着头盔。",
    ),
    (
        "chelsea",
        "skimage",
        "data/chelsea.png",
        "Close-up of a brown tabby cat's face with yellow-green eyes, a pink nose and long white whiskers.",
        "一只棕色虎斑猫的面部特写，黄绿色的眼睛，粉色的鼻子，白色的长胡须清晰可见。",
    ),
    (
        "coffee",
        "skimage",
        "data/coffee.png",
        "A cup of espresso with golden crema in a red-and-white cup on a red saucer, with a metal spoon, on a wooden table.",
        "木桌上的红色茶碟里放着一杯意式浓缩咖啡，杯子外红内白，咖啡表面有一层金色油脂，旁边有一把金属小勺。",
    ),
    (
        "rocket",
        "skimage",
        "data/rocket.jpg",
        "A SpaceX Falcon 9 rocket carrying the DSCOVR satellite stands on its launch pad at dusk between tall lattice towers, with floodlights glowing along the horizon.",
        "黄昏时分，一枚搭载DSCOVR卫星的SpaceX猎鹰9号火箭矗立在发射台上，两侧是高大的铁塔，地平线上灯光闪耀。",
    ),
    (
        "motorcycle",
        "skimage",
        "data/motorcycle_left.png",
        "A red Yamaha motorcycle parked in a garage in front of shelves stacked with boxes and an old wooden bench.",
        "一辆红色雅马哈摩托车停在车库里，身后是堆满纸箱的货架和一条旧木长椅。",
    ),
    (
        "horse",
        "skimage",
        "data/horse.png",
        "Black silhouette of a horse standing in profile, facing right, on a white background.",
        "白色背景上一匹黑色马的侧面剪影，马头朝右。",
    ),
    (
        "hubble",
        "skimage",
        "data/hubble_deep_field.jpg",
        "The Hubble eXtreme Deep Field: thousands of distant galaxies of many shapes and colours scattered across black space.",
        "哈勃极深空场图像：漆黑的太空中散布着成千上万个形状和颜色各异的遥远星系。",
    ),
    (
        "camera",
        "skimage",
        "data/camera.png",
        "Black-and-white photo of a man in a dark coat looking through a camera on a tripod in a grassy field, with buildings in the distance.",
        "一张黑白照片：一名身穿深色大衣的男子在草地上通过三脚架上的相机取景，远处可见建筑物。",
    ),
    (
        "coins",
        "skimage",
        "data/coins.png",
        "Grayscale photo of 24 ancient Greek coins from Pompeii laid out in four rows of six on a dark background.",
        "一张灰度照片：深色背景上整齐排列着来自庞贝的二十四枚古希腊硬币，共四排，每排六枚。",
    ),
    (
        "moon",
        "skimage",
        "data/moon.png",
        "Low-contrast grayscale image of the surface of the Moon with a few small craters.",
        "一张低对比度的月球表面灰度图像，可以看到几个小陨石坑。",
    ),
    (
        "page",
        "skimage",
        "data/page.png",
        'A scanned book page headed "Region-based segmentation", with a paragraph about marking the coins and the background, followed by a line of Python code.',
        "一页扫描的英文书页，标题为“Region-based segmentation”，正文讲的是如何标记硬币和背景，最后是一行Python代码。",
    ),
    (
        "text",
        "skimage",
        "data/text.png",
        "Grayscale close-up, taken at a low angle, of handwritten mathematical formulas on lined paper.",
        "从很低的角度拍摄的灰度特写：横格纸上写着手写的数学公式。",
    ),
    (
        "brick",
        "skimage",
        "data/brick.png",
        "Grayscale texture of a brick wall with long, narrow bricks laid in a staggered pattern, seen at a slight angle.",
        "灰度的砖墙纹理：细长的砖块错缝排列，略带透视角度。",
    ),
    (
        "grass",
        "skimage",
        "data/grass.png",
        "Grayscale close-up texture of grass with thin blades and a few small leaves.",
        "灰度的草地特写纹理，满是细长的草叶和几片小叶子。",
    ),
    (
        "gravel",
        "skimage",
        "data/gravel.png",
        "Grayscale texture of a bed of small, angular gravel stones.",
        "灰度的碎石纹理，铺满了棱角分明的小石子。",
    ),
    (
        "retina",
        "skimage",
        "data/retina.jpg",
        "Colour fundus photograph of a human retina: the bright optic disc on the left, with blood vessels branching across the orange-red background.",
        "人眼视网膜的彩色眼底照片：明亮的视盘位于左侧，血管在橙红色的背景上向四周分支。",
    ),
    (
        "ihc",
        "skimage",
        "data/ihc.png",
        "Microscope image of colon tissue stained by immunohistochemistry: glands outlined in brown stain, with blue-stained nuclei in the tissue around them.",
        "免疫组织化学染色的结肠组织显微图像：腺体呈棕色染色，周围组织中散布着蓝色的细胞核。",
    ),
    (
        "china",
        "sklearn",
        "datasets/images/china.jpg",
        "The Tower of Buddhist Incense at the Summer Palace in Beijing: a multi-storey Chinese pavilion with red columns and orange glazed-tile roofs, overlooking a lake and trees under a hazy sky.",
        "北京颐和园的佛香阁：一座多层的中国传统楼阁，红色立柱，橙色琉璃瓦屋顶，俯瞰着湖面和绿树，天空略带薄雾。",
    ),
    (
        "flower",
        "sklearn",
        "datasets/images/flower.jpg",
        "Close-up of a peach-orange pompon dahlia with tightly layered petals against a dark green blurred background, with a second bloom at the bottom edge.",
        "一朵桃橙色绒球大丽花的特写，花瓣层层紧密排列，背景是模糊的深绿色，画面底部还露出另一朵花。",
    ),
    (
        "grace_hopper",
        "matplotlib",
        "mpl-data/sample_data/grace_hopper.jpg",
        "Portrait of Rear Admiral Grace Hopper wearing glasses and a US Navy dress uniform and cap, with an American flag behind her.",
        "美国海军少将格蕾丝·霍珀的肖像：她戴着眼镜，身穿海军制服、头戴军帽，身后是美国国旗。",
    ),
]
EXTRA_SOURCES = {"cell": ("skimage", "data/cell.png")}
ZH_PHOTOS = {"chelsea", "coffee", "china", "moon"}
PHOTO_QA = {
    "astronaut": (
        "What is the person in this portrait wearing?",
        "An orange NASA launch-and-entry pressure suit with mission patches; her white helmet sits beside her.",
    ),
    "coins": (
        "How many coins are in the picture, and how are they arranged?",
        "There are 24 coins, laid out in four rows of six.",
    ),
    "hubble": (
        "What does this image show?",
        "A Hubble deep-field view: thousands of faint, distant galaxies of many colours and shapes against black space.",
    ),
}
# source photo, crop box (fractions of its size), caption: crops distinct from the full photos
WEB_CROPS = [
    (
        "astronaut",
        (0.1, 0.0, 0.65, 0.45),
        "Head-and-shoulders crop of a smiling woman with short light-brown hair, wearing the neck ring of an orange pressure suit.",
    ),
    (
        "astronaut",
        (0.55, 0.6, 1.0, 1.0),
        "A white space helmet with a dark reflective visor next to the orange sleeve of a flight suit with a name patch.",
    ),
    (
        "rocket",
        (0.35, 0.25, 0.65, 1.0),
        "A tall white rocket on its launch pad against a deep blue evening sky, lit by floodlights at its base.",
    ),
    ("coffee", (0.4, 0.5, 0.8, 1.0), "红色茶碟上放着一把不锈钢小勺，旁边是红色咖啡杯的杯底，背景是木质桌面。"),
    (
        "china",
        (0.1, 0.0, 0.55, 0.5),
        "一座多层的中国传统楼阁，屋顶铺着橙色琉璃瓦，檐下是红色立柱和彩绘，背景是淡蓝色的天空。",
    ),
    (
        "hubble",
        (0.5, 0.5, 1.0, 1.0),
        "A crop of a deep-space image with hundreds of small galaxies, some spiral and some reddish, on a black background.",
    ),
    (
        "motorcycle",
        (0.3, 0.35, 0.7, 0.85),
        "Close-up of a motorcycle's chrome engine with a Yamaha badge, below a red fuel tank and a black seat.",
    ),
    ("chelsea", (0.25, 0.15, 0.75, 0.6), "Extreme close-up of a tabby cat's two yellow-green eyes and striped fur."),
]
TAR_CROPS = [  # (source, box, caption, written as .json instead of .txt)
    (
        "grace_hopper",
        (0.2, 0.05, 0.8, 0.6),
        "Close-up of an elderly woman wearing glasses and a navy officer's cap with a gold emblem, in front of an American flag.",
        False,
    ),
    (
        "retina",
        (0.0, 0.2, 0.45, 0.65),
        "Close-up of a retinal photograph: the bright optic disc with red blood vessels branching out from it.",
        False,
    ),
    (
        "flower",
        (0.3, 0.0, 0.75, 0.7),
        "A peach-orange pompon dahlia in full bloom against a dark green blurred background.",
        True,
    ),
    (
        "coins",
        (0.0, 0.0, 1.0, 0.5),
        "Two rows of six ancient coins, twelve in all, photographed in black and white on a dark background.",
        False,
    ),
    (
        "camera",
        (0.2, 0.1, 0.9, 1.0),
        "Black-and-white photo of a man in a dark coat looking through a camera mounted on a tripod on a lawn.",
        True,
    ),
    (
        "page",
        (0.0, 0.0, 1.0, 0.4),
        'The printed heading "Region-based segmentation" above the first lines of a paragraph about markers of the coins.',
        False,
    ),
    (
        "ihc",
        (0.4, 0.4, 1.0, 1.0),
        "Microscope view of stained colon tissue: glands outlined in brown among pale tissue with small blue nuclei.",
        False,
    ),
]


# ---------------------------------------------------------------- source photos and image files
@cache
def source_path(key: str) -> str | None:
    """Path of a named photo inside its installed package, or None when the package or file is missing."""
    package, rel = EXTRA_SOURCES.get(key) or next((p, r) for k, p, r, _, _ in PHOTOS if k == key)
    spec = importlib.util.find_spec(package)  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], rel)
    return path if os.path.exists(path) else None


@cache
def load(key: str) -> Image.Image | None:
    """A source photo as RGB, or L for grayscale and line art, with transparency flattened onto white."""
    path = source_path(key)
    if path is None:
        return None
    img = Image.open(path)
    if img.mode in ("RGBA", "LA", "P"):
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba).convert("RGB")
        r, g, b = img.split()
        return img.convert("L") if r.tobytes() == g.tobytes() == b.tobytes() else img
    return img.convert("L" if img.mode in ("L", "I;16", "I") else "RGB")


def crop(key: str, box: Box, then: Callable[[Image.Image], Image.Image] | None = None) -> Image.Image | None:
    """A crop of a source photo (box in fractions of its size), optionally transformed; None if it is missing."""
    img = load(key)
    if img is None:
        return None
    w, h = img.size
    img = img.crop((round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h)))
    return then(img) if then else img


def resized(img: Image.Image, long_side: int) -> Image.Image:
    scale = long_side / max(img.size)
    return img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.LANCZOS)


def save(img: Image.Image, path: str, **kw: Any) -> None:
    """Write an image (format from the extension; JPEG quality 92 unless given), creating the folder."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if path.endswith(".jpg"):
        kw.setdefault("quality", 92)
    img.save(path, **kw)


def encoded(img: Image.Image, fmt: str = "JPEG", **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def text_fields(texts: Texts, mode: str) -> dict[str, Any]:
    """The caption, or the one-turn conversation, of a record for a mode: en, zh, qa_en or qa_zh."""
    if not mode.startswith("qa"):
        return {"caption": texts[mode]}
    question, answer = texts[mode]
    return {"conversations": [{"from": "human", "value": f"<image>\n{question}"}, {"from": "gpt", "value": answer}]}


# ---------------------------------------------------------------- rendering helpers
@cache
def font(px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The CJK font at a pixel size (Pillow's default font, ASCII only, when it is not installed)."""
    return ImageFont.truetype(FONT_PATH, px) if CJK else ImageFont.load_default(size=px)


def bi(pair: Pair) -> str:
    """A label as rendered: Chinese and English, or English alone without a CJK font."""
    return f"{pair[0]} {pair[1]}" if CJK else pair[1]


def named(pair: Pair) -> str:
    """A name as an English caption quotes it: the rendered Chinese with its English in brackets."""
    return f"{pair[0]} ({pair[1]})" if CJK else pair[1]


def money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def yuan(amount: object) -> str:
    """A price as rendered and captioned (Pillow's fallback font has no ¥ sign)."""
    return f"¥{amount}" if CJK else f"RMB {amount}"


def unique_extremes(values: list[int]) -> bool:
    return values.count(max(values)) == 1 and values.count(min(values)) == 1


def header(img: Image.Image, title: str, subtitle: str, s: int, color: str = "#222222") -> ImageDraw.ImageDraw:
    draw = ImageDraw.Draw(img)
    draw.text((img.width / 2, s * 1.7), title, font=font(int(s * 1.5)), fill=color, anchor="mm")
    if subtitle:
        draw.text((img.width / 2, s * 3.2), subtitle, font=font(int(s * 0.9)), fill="#666666", anchor="mm")
    return draw


def two_line(draw: ImageDraw.ImageDraw, x: float, y: float, pair: Pair, s: int) -> None:
    """An axis label centred at x below y: Chinese over smaller English (English only without a CJK font)."""
    if CJK:
        draw.text((x, y), pair[0], font=font(s), fill="#333333", anchor="ma")
    draw.text((x, y + (s * 1.25 if CJK else 0)), pair[1], font=font(int(s * 0.8)), fill="#555555", anchor="ma")


def axes(draw: ImageDraw.ImageDraw, box: Box, vmax: float, s: int) -> Callable[[float], float]:
    """Gridlines and y tick labels (1/2/2.5/5 x 10^k steps) from 0 to past vmax; returns value -> y pixel."""
    mag = 10 ** math.floor(math.log10(vmax / 5))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= vmax / 5)
    ticks, (x0, y0, x1, y1) = math.ceil(vmax / step), box
    for k in range(ticks + 1):
        y = y1 - (y1 - y0) * k / ticks
        draw.line((x0, y, x1, y), fill="#444444" if k == 0 else "#e3e3e3", width=2 if k == 0 else 1)
        draw.text((x0 - s * 0.4, y), f"{step * k:g}", font=font(int(s * 0.8)), fill="#666666", anchor="rm")
    draw.line((x0, y0, x0, y1), fill="#444444", width=2)
    return lambda v: y1 - (y1 - y0) * v / (step * ticks)


def draw_table(draw: ImageDraw.ImageDraw, box: Box, rows: list[list[str]], s: int, colors: tuple[str, ...]) -> None:
    """Equal-width table, first row the header; colors: header bg, header text, row bg, alternate row bg, text."""
    x0, y0, x1, y1 = box
    rh, cw = (y1 - y0) / len(rows), (x1 - x0) / len(rows[0])
    for r, row in enumerate(rows):
        draw.rectangle((x0, y0 + r * rh, x1, y0 + (r + 1) * rh), fill=colors[0] if r == 0 else colors[2 + r % 2])
        for c, cell in enumerate(row):
            draw.text(
                (x0 + (c + 0.5) * cw, y0 + (r + 0.5) * rh),
                cell,
                font=font(s),
                fill=colors[1] if r == 0 else colors[4],
                anchor="mm",
            )
