"""Deliberate defects: one record each, with the reject reason the demo pipeline should give it."""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from dataengine.sample_data.common import (
    crop,
    encoded,
    save,
)

# ---------------------------------------------------------------- deliberate defects
DEFECTS: dict[str, tuple[str, str]] = {  # id -> (what is wrong, reject reason expected from pipelines/demo.yaml)
    "truncated-jpeg": ("the first 60% of a real JPEG's bytes", "decode_error"),
    "duplicate-exact": ("the same bytes and the same caption as a photo, under another file name", "duplicate_exact"),
    "duplicate-near": ("a photo resized to 90% and re-encoded at JPEG quality 70, same caption", "duplicate_near"),
    "empty-file": ("zero-byte defects/empty.jpg", "empty_file"),
    "not-an-image": ("a text file named defects/not_image.jpg", "not_an_image"),
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


def bomb_png(width: int = 40000, height: int = 40000, rows: int = 4) -> bytes:
    """An 8-bit grayscale PNG whose header says width x height but whose data holds only a few rows."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(bytes((width + 1) * rows), 9)  # each row: filter byte + pixels
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def lighthouse(np_rng: np.random.Generator) -> Image.Image:
    """A red-and-white lighthouse on dark rocks by a blue sea with textured water."""
    w, h, horizon = 480, 360, 220
    sky = np.linspace([105, 165, 225], [200, 225, 245], horizon)[:, None, :].repeat(w, 1)
    sea = np.linspace([45, 105, 165], [20, 60, 115], h - horizon)[:, None, :].repeat(w, 1)
    sea += np_rng.normal(0, 9, (h - horizon, w, 1))
    img = Image.fromarray(np.clip(np.concatenate([sky, sea]), 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    draw.polygon([(200, 360), (230, 290), (280, 270), (360, 265), (420, 300), (470, 360)], fill="#4a4a48")
    draw.polygon([(250, 360), (300, 300), (380, 310), (430, 360)], fill="#343432")
    for k in range(6):  # the tower in six bands, tapering upwards
        y0, y1 = 280 - k * 30, 250 - k * 30
        draw.polygon(
            [(300 + k * 3, y0), (350 - k * 3, y0), (347 - k * 3, y1), (303 + k * 3, y1)],
            fill="#c8102e" if k % 2 == 0 else "#f5f5f5",
        )
    draw.rectangle((310, 80, 340, 100), fill="#ffe680", outline="#222222", width=3)
    draw.rectangle((302, 100, 348, 106), fill="#222222")
    draw.polygon([(306, 80), (344, 80), (325, 60)], fill="#7a0c1c")
    return img


def star_badge() -> Image.Image:
    """A palette image: a yellow star in a blue disc with a dark rim; palette index 0 is the background."""
    img = Image.new("P", (300, 300), 0)
    img.putpalette([255, 255, 255, 20, 50, 120, 250, 200, 30, 40, 110, 200])
    draw = ImageDraw.Draw(img)
    draw.ellipse((20, 20, 280, 280), fill=1)
    draw.ellipse((38, 38, 262, 262), fill=3)
    draw.polygon(
        [
            (150 + r * math.cos(math.radians(-90 + 36 * k)), 152 + r * math.sin(math.radians(-90 + 36 * k)))
            for k, r in enumerate([105, 42] * 5)
        ],
        fill=2,
    )
    return img


def bouncing_ball() -> list[Image.Image]:
    """Three frames of a red ball bouncing across a grey-and-white checkered floor."""
    frames = []
    for k, y in enumerate((55, 100, 136)):
        img = Image.new("RGB", (320, 240), "#bfe3f7")
        draw = ImageDraw.Draw(img)
        for i in range(64):
            col, row = i % 16, i // 16
            draw.rectangle(
                (col * 20, 160 + row * 20, col * 20 + 19, 179 + row * 20),
                fill="#8d8d8d" if (col + row) % 2 else "#f2f2f2",
            )
        x = 80 + 80 * k
        draw.ellipse((x - 20, 164, x + 20, 172), fill="#555555")
        draw.ellipse((x - 24, y - 24, x + 24, y + 24), fill="#d62828", outline="#7a1010", width=2)
        frames.append(img)
    return frames


def vignette(img: Image.Image) -> Image.Image:
    """An RGBA copy whose alpha fades to zero towards the corners."""
    w, h = img.size
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot((xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2))
    rgba = img.convert("RGBA")
    rgba.putalpha(Image.fromarray(np.clip((1.25 - r) * 600, 0, 255).astype(np.uint8)))
    return rgba


def write_defects(images: str, photos: list[dict[str, Any]], np_rng: np.random.Generator) -> list[bytes]:
    """Write the defect images; returns the defects.jsonl lines (two of them deliberately unparsable)."""
    lines: list[bytes] = []

    def record(rid: str, name: str, caption: str | None) -> None:
        text = {} if caption is None else {"caption": caption}
        lines.append(json.dumps({"id": rid, "image": name, **text}, ensure_ascii=False).encode())

    def add(rid: str, name: str, caption: str, content: bytes | Image.Image | None, **kw: Any) -> None:
        """Write content (bytes or an image) to images/name and its record; skipped when content is None."""
        if content is None:  # its source photo is not installed
            return
        path = os.path.join(images, name)
        if isinstance(content, Image.Image):
            save(content, path, **kw)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(content)
        record(rid, name, caption)

    jpgs = [r for r in photos if r["image"].endswith(".jpg") and "caption" in r]
    if jpgs:
        exact = next((r for r in jpgs if r["id"] == "photo-rocket"), jpgs[0])
        near = next((r for r in jpgs if r["id"] == "photo-grace_hopper"), jpgs[-1])
        with open(os.path.join(images, exact["image"]), "rb") as f:
            data = f.read()
        add("truncated-jpeg", "defects/truncated.jpg", exact["caption"], data[: len(data) * 6 // 10])
        add("duplicate-exact", f"defects/copy_of_{os.path.basename(exact['image'])}", exact["caption"], data)
        small = Image.open(os.path.join(images, near["image"]))
        small = small.resize((small.width * 9 // 10, small.height * 9 // 10), Image.Resampling.LANCZOS)
        add("duplicate-near", "defects/near_duplicate.jpg", near["caption"], encoded(small, quality=70))
    add("empty-file", "defects/empty.jpg", "An empty file that claims to be a JPEG photo.", b"")
    add(
        "not-an-image",
        "defects/not_image.jpg",
        "A text file saved with a .jpg extension instead of a photo.",
        b"This is a plain text file, not a JPEG image.\n",
    )
    add(
        "lang-french",
        "defects/lang-french.jpg",
        "Vue d'un grand lac parsemé de petits bateaux depuis une colline, "
        "avec le coin d'un pavillon chinois à gauche et des arbres à droite.",
        crop("china", (0.45, 0.3, 1, 0.75)),
    )
    add(
        "lang-german",
        "defects/lang-german.jpg",
        "Das Hinterrad und die schwarze Sitzbank eines roten Motorrads, das "
        "in einer Garage vor einer alten Holzbank steht.",
        crop("motorcycle", (0, 0.2, 0.5, 0.8)),
    )
    add(
        "lang-spanish",
        "defects/lang-spanish.jpg",
        "Una taza blanca y roja llena de café espresso con una capa de "
        "crema, vista desde arriba sobre una mesa de madera.",
        crop("coffee", (0.2, 0.1, 0.7, 0.6)),
    )
    add(
        "too-small",
        "defects/tiny_16x16.jpg",
        "A tiny thumbnail of a tabby cat's face.",
        crop("chelsea", (0, 0, 1, 1), lambda im: im.resize((16, 16), Image.Resampling.LANCZOS)),
    )
    add(
        "extreme-aspect",
        "defects/strip_2000x40.jpg",
        "A thin strip cut across a photo of a Chinese pavilion, a lake and trees.",
        crop("china", (0, 0.45, 1, 0.55), lambda im: im.resize((2000, 40), Image.Resampling.LANCZOS)),
    )
    record("path-outside-root", "../../../etc/passwd", "A record whose image path points outside the dataset root.")
    record("missing-file", "photos/does_not_exist.jpg", "A record whose image file does not exist on disk.")
    add("decompression-bomb", "defects/bomb_40000x40000.png", "A PNG claiming to be 40000 pixels square.", bomb_png())
    add("boilerplate", "defects/click_here.jpg", "Click here to enlarge", crop("hubble", (0, 0, 0.5, 0.5)))
    add("caption-too-short", "defects/caption_ok.jpg", "ok", crop("retina", (0.5, 0.3, 1, 0.8)))
    add(
        "url-email-only",
        "defects/url_caption.jpg",
        "https://example.com/gallery/launch-tower-0417.jpg photos@example.com",
        crop("rocket", (0, 0, 0.35, 1)),
    )
    add(
        "html-caption",
        "defects/lighthouse.png",
        "<p>A <b>red</b> &amp; white lighthouse&nbsp;on dark rocks beside a calm blue sea, under a clear sky.</p>",
        lighthouse(np_rng),
    )
    add(
        "invisible-chars",
        "defects/shuttle_model.jpg",
        "A model\u200b of the space shuttle\u00ad with its orange "
        "external tank\u0007 and two white rocket boosters,\u200d in front of a grey backdrop.\ufeff",
        crop("astronaut", (0.65, 0, 1, 0.55)),
    )
    lines.append(b'{"id": "broken", "image": "photos/x.jpg", "caption": ')
    lines.append(b'{"id": "invalid-utf8", "image": "defects/click_here.jpg", "caption": "Bytes \xff\xfe, not UTF-8."}')
    record("missing-text", "defects/click_here.jpg", None)
    cmyk = crop("motorcycle", (0.55, 0.3, 1, 0.95), lambda im: im.convert("CMYK"))
    add(
        "cmyk-jpeg",
        "defects/cmyk.jpg",
        "The front wheel, red mudguard and chrome fork of a motorcycle parked in a "
        "garage in front of shelves with boxes.",
        cmyk,
    )
    add(
        "palette-transparent",
        "defects/palette_transparent.png",
        "A yellow five-pointed star inside a blue circle with a dark blue rim, on a transparent background.",
        star_badge(),
        transparency=0,
    )
    add(
        "gray16-png",
        "defects/gray16.png",
        "Quantitative phase image of a single cell floating in saline: a bright "
        "round spot on a grainy grey background.",
        crop("cell", (0, 0, 1, 1), lambda im: Image.fromarray(np.asarray(im.convert("L"), dtype=np.uint16) * 257)),
    )
    frames = bouncing_ball()
    add(
        "animated-gif",
        "defects/animated.gif",
        "A red ball bouncing over a grey-and-white checkered floor under a light blue sky.",
        frames[0],
        save_all=True,
        append_images=frames[1:],
        duration=200,
        loop=0,
    )
    exif = Image.Exif()
    exif[0x0112] = 6  # viewers rotate it 90 degrees clockwise, so the pixels are stored turned counter-clockwise
    add(
        "exif-rotated",
        "defects/exif_rotated.jpg",
        "The lower half of a portrait: a navy dress uniform jacket with a "
        "name tag and rows of service ribbons, a white shirt and a black bow tie, in front of an American flag.",
        crop("grace_hopper", (0, 0.5, 1, 1), lambda im: im.transpose(Image.Transpose.ROTATE_90)),
        exif=exif,
    )
    add(
        "rgba-png",
        "defects/rgba.png",
        "Close-up of a tabby cat's pink nose, an eye, whiskers and striped fur, fading to transparent at the corners.",
        crop("chelsea", (0.45, 0.45, 1, 1), vignette),
    )
    return lines
