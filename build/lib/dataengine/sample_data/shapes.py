"""The shapes world: 448x448 images of coloured shapes, digits and short words with exact EN and ZH captions.

Each image is drawn from a scene (one or two groups of objects, and where the first group sits relative to the
second), and both captions are rendered from the same scene, so they are exact. The scorer's proof trains on
it: a caption either describes the picture or is a hard negative (one colour, count, object or spatial word
changed, see `dataengine.scorer.lexicon`).
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

from dataengine.sample_data.common import font

SIZE = 448
WORLD_VERSION = 1  # bump when scenes or captions change: ensure_shapes then rebuilds an older world
COLOURS = {  # EN name -> (ZH name, RGB)
    "red": ("红色", (220, 40, 40)),
    "green": ("绿色", (40, 160, 60)),
    "blue": ("蓝色", (40, 80, 220)),
    "yellow": ("黄色", (235, 200, 30)),
}
SHAPES = {"circle": "圆形", "square": "正方形", "triangle": "三角形", "star": "星形"}
WORDS = ["sun", "cat", "map", "box", "red", "tea"]
EN_N = ["a", "two", "three"]
ZH_N = ["一", "两", "三"]
RELATIONS = {  # EN phrase, ZH suffix, axis the groups are split along, and whether group 1 comes first on it
    "left": ("to the left of", "的左边", "x", True),
    "right": ("to the right of", "的右边", "x", False),
    "above": ("above", "的上面", "y", True),
    "below": ("below", "的下面", "y", False),
}


@dataclass(frozen=True)
class Group:
    kind: str  # shape | digit | word
    name: str  # circle.. / "7" / "sun"
    colour: str
    count: int = 1

    def en(self) -> str:
        if self.kind == "shape":
            noun = self.name if self.count == 1 else f"{self.name}s"
            return f"{EN_N[self.count - 1]} {self.colour} {noun}"
        if self.kind == "digit":
            return f"a {self.colour} digit {self.name}"
        return f'the word "{self.name}" in {self.colour}'

    def zh(self) -> str:
        colour = COLOURS[self.colour][0]
        if self.kind == "shape":
            return f"{ZH_N[self.count - 1]}个{colour}{SHAPES[self.name]}"
        if self.kind == "digit":
            return f"一个{colour}数字{self.name}"
        return f"{colour}的单词“{self.name}”"


@dataclass(frozen=True)
class Scene:
    groups: tuple[Group, ...]
    relation: str | None = None  # where groups[0] is relative to groups[1]

    def caption_en(self) -> str:
        if len(self.groups) == 1:
            return self.groups[0].en()
        return f"{self.groups[0].en()} {RELATIONS[self.relation][0]} {self.groups[1].en()}"

    def caption_zh(self) -> str:
        if len(self.groups) == 1:
            return self.groups[0].zh()
        return f"{self.groups[0].zh()}在{self.groups[1].zh()}{RELATIONS[self.relation][1]}"


def random_group(rng: random.Random, exclude: Group | None = None) -> Group:
    while True:
        kind = rng.choices(["shape", "digit", "word"], weights=[8, 1, 1])[0]
        name = (
            rng.choice(list(SHAPES))
            if kind == "shape"
            else str(rng.randint(0, 9))
            if kind == "digit"
            else rng.choice(WORDS)
        )
        group = Group(kind, name, rng.choice(list(COLOURS)), rng.randint(1, 2) if kind == "shape" else 1)
        if exclude is None or (group.kind, group.name, group.colour) != (exclude.kind, exclude.name, exclude.colour):
            return group


def random_scene(rng: random.Random) -> Scene:
    first = random_group(rng)
    if rng.random() < 0.5:
        return Scene((first,))
    return Scene((first, random_group(rng, exclude=first)), rng.choice(list(RELATIONS)))


def _draw_object(draw: ImageDraw.ImageDraw, group: Group, box: tuple[int, int, int, int]) -> None:
    x0, y0, x1, y1 = box
    rgb = COLOURS[group.colour][1]
    if group.kind == "shape" and group.name == "circle":
        draw.ellipse(box, fill=rgb)
    elif group.kind == "shape" and group.name == "square":
        draw.rectangle(box, fill=rgb)
    elif group.kind == "shape" and group.name == "triangle":
        draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=rgb)
    elif group.kind == "shape":  # five-pointed star
        cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2
        pts = [
            (cx + (r if i % 2 == 0 else r * 0.45) * math.sin(i * math.pi / 5),
             cy - (r if i % 2 == 0 else r * 0.45) * math.cos(i * math.pi / 5))
            for i in range(10)
        ]  # fmt: skip
        draw.polygon(pts, fill=rgb)
    else:
        px = int((y1 - y0) * (0.95 if group.kind == "digit" else 0.55))
        draw.text(((x0 + x1) / 2, (y0 + y1) / 2), group.name, fill=rgb, font=font(px), anchor="mm")


def render(scene: Scene, rng: random.Random) -> Image.Image:
    """Draw a scene: one group anywhere; two groups in opposite halves as the relation says."""
    shade = rng.randint(225, 250)
    img = Image.new("RGB", (SIZE, SIZE), (shade, shade, rng.randint(215, 250)))
    draw = ImageDraw.Draw(img)
    if len(scene.groups) == 1:
        regions = [(0, 0, SIZE, SIZE)]
    else:
        _, _, axis, first_before = RELATIONS[scene.relation]
        half = SIZE // 2
        a, b = (
            ((0, 0, half, SIZE), (half, 0, SIZE, SIZE)) if axis == "x" else ((0, 0, SIZE, half), (0, half, SIZE, SIZE))
        )
        regions = [a, b] if first_before else [b, a]
    for group, (rx0, ry0, rx1, ry1) in zip(scene.groups, regions, strict=True):
        cols, rows = (2, 2) if (rx1 - rx0) == (ry1 - ry0) else ((1, 3) if rx1 - rx0 < ry1 - ry0 else (3, 1))
        cells = rng.sample([(c, r) for c in range(cols) for r in range(rows)], group.count)
        cw, ch = (rx1 - rx0) / cols, (ry1 - ry0) / rows
        for c, r in cells:
            side = int(min(cw, ch) * rng.uniform(0.55, 0.8))
            x = int(rx0 + c * cw + rng.uniform(0, cw - side))
            y = int(ry0 + r * ch + rng.uniform(0, ch - side))
            _draw_object(draw, group, (x, y, x + side, y + side))
    return img


def write_shapes(root: str, n: int, seed: int = 0) -> str:
    """Write `n` shapes-world samples under `root` (images/ + shapes.jsonl with caption and caption_zh)."""
    rng = random.Random(seed)
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    path = os.path.join(root, "shapes.jsonl")
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        for i in range(n):
            scene = random_scene(rng)
            name = f"images/shape-{i:05d}.png"
            render(scene, rng).save(os.path.join(root, name))
            record = {
                "id": f"shape-{i:05d}",
                "image": name,
                "caption": scene.caption_en(),
                "caption_zh": scene.caption_zh(),
            }
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(path + ".tmp", path)
    return path
