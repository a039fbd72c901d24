"""Image helpers several layers share."""

from __future__ import annotations

import numpy as np
from PIL import Image

WIDE_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB: 16-bit/float scaled to 8-bit, transparency composited on white, CMYK converted."""
    if img.mode == "RGB":
        return img
    if img.mode in WIDE_MODES:
        arr = np.asarray(img).astype(np.float64)
        top = 65535.0 if img.mode.startswith("I;16") else max(float(arr.max(initial=0.0)), 255.0)
        img = Image.fromarray(np.clip(arr * (255.0 / top), 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "L" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img.convert("RGB")
