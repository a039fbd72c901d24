"""Tiny scorers for tests: a randomly initialised InternVL built from the `tiny` config, saved like a trained one."""

from __future__ import annotations

import io
import os
import random

from dataengine.sample_data.shapes import random_scene, render

CAPTIONS_EN = ["a red circle", "two blue squares", "a green star to the left of a yellow triangle"]
CAPTIONS_ZH = ["一个红色圆形", "两个蓝色正方形", "一个绿色星形在一个黄色三角形的左边"]


def shapes_png(seed: int) -> tuple[bytes, str, str]:
    rng = random.Random(seed)
    scene = random_scene(rng)
    buf = io.BytesIO()
    render(scene, rng).save(buf, "PNG")
    return buf.getvalue(), scene.caption_en(), scene.caption_zh()


def save_tiny_scorer(storage: str, name: str = "tiny-test", version: str = "v1", tiles: str = "all") -> str:
    """Build and save an untrained tiny scorer under `<storage>/models/<name>/<version>/model`."""
    from dataengine.scorer.model import ScorerMeta, ScorerModel, build_tiny

    path = os.path.join(storage, "models", name, version, "model")
    if not os.path.exists(os.path.join(path, "scorer.json")):
        texts = CAPTIONS_EN + CAPTIONS_ZH + [t for s in range(40) for t in shapes_png(s)[1:]]
        model, tok = build_tiny(texts)
        ScorerModel(model, tok, ScorerMeta(name=name, version=version, tiles=tiles, max_tiles=4)).save(path)
    return path
