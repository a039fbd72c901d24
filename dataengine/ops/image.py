"""Decode and validate an image, normalise it to RGB, re-encode it, and compute its exact and perceptual hashes.

The pixel-count guard reads only the header, so a decompression bomb is rejected before any pixel is decoded.
A source that is already what the re-encode would make of it, a baseline RGB JPEG or an 8-bit RGB PNG that needs
no orientation or colour change (`core.images.plain_jpeg`, `plain_png`), is kept as it is, less its metadata,
instead of being re-encoded: it decodes to exactly the pixels the hashes were computed from.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from typing import Any, Literal

import imagehash
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import Field

from dataengine.core.images import plain_jpeg, plain_png, to_rgb
from dataengine.core.rows import Reject
from dataengine.ops.base import RowStage, StageConfig

LOSSLESS = {"PNG", "GIF", "BMP", "TIFF"}
ORIENTATION = 0x0112
TRANSPOSED = frozenset(range(2, 9))  # EXIF orientations ImageOps.exif_transpose turns or flips


class ImageConfig(StageConfig):
    needs = frozenset({"resolve"})

    op: Literal["image"] = "image"
    min_side: int = Field(32, ge=1, description="reject images whose shorter side is smaller (pixels)")
    max_pixels: int = Field(50_000_000, ge=1, description="reject larger images from the header, before decoding")
    max_aspect_ratio: float = Field(20.0, ge=1, description="reject when long side / short side exceeds this")
    formats: list[str] = Field(default_factory=lambda: ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"])
    output: Literal["auto", "jpeg", "png"] = Field(
        "auto",
        description="auto: JPEG for lossy sources, PNG for lossless ones (documents keep sharp edges); a baseline RGB "
        "JPEG or 8-bit RGB PNG with no orientation to apply is kept as it is, less its metadata. jpeg or png: every "
        "image re-encoded",
    )
    jpeg_quality: int = Field(95, ge=1, le=100, description="quality of re-encoded JPEGs (kept ones keep theirs)")


class ImageCheck(RowStage):
    name = "image"
    Config = ImageConfig

    def process(self, row: dict[str, Any]) -> dict[str, Any]:
        cfg = self.config
        data = row["image"]
        if not data:
            raise Reject("empty_file", "0 bytes")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                img = Image.open(io.BytesIO(data))
            except UnidentifiedImageError:
                raise Reject("not_an_image", f"{len(data)} bytes not recognised as an image") from None
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise Reject("too_many_pixels", str(exc)[:200]) from None
            except Exception as exc:
                raise Reject("decode_error", f"{type(exc).__name__}: {exc}"[:300]) from None
        fmt = img.format or "UNKNOWN"
        if fmt not in cfg.formats:
            raise Reject("format_not_allowed", f"{fmt} not in {cfg.formats}")
        w, h = img.size
        if w * h > cfg.max_pixels:
            raise Reject("too_many_pixels", f"{w}x{h} = {w * h} > {cfg.max_pixels}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                img.seek(0)  # animated: first frame
                img.load()
                turned = img.getexif().get(ORIENTATION, 1) in TRANSPOSED
                if turned:
                    img = ImageOps.exif_transpose(img) or img
                rgb = to_rgb(img)
        except Exception as exc:  # truncated data, bad chunks, corrupt EXIF, broken palettes
            raise Reject("decode_error", f"{type(exc).__name__}: {exc}"[:300]) from None
        w, h = rgb.size
        if min(w, h) < cfg.min_side:
            raise Reject("too_small", f"{w}x{h}, min side {cfg.min_side}")
        if max(w, h) / min(w, h) > cfg.max_aspect_ratio:
            raise Reject("extreme_aspect_ratio", f"{w}x{h} exceeds {cfg.max_aspect_ratio}:1")
        out_fmt = cfg.output.upper() if cfg.output != "auto" else ("PNG" if fmt in LOSSLESS else "JPEG")
        out = None
        if cfg.output == "auto" and rgb is img and not turned:  # RGB as decoded, no orientation to apply
            if fmt == "JPEG":
                out = plain_jpeg(data)
            elif fmt == "PNG":
                out = plain_png(data, icc=bool(img.info.get("icc_profile")))
        if out is None:
            buf = io.BytesIO()
            if out_fmt == "JPEG":
                rgb.save(buf, "JPEG", quality=cfg.jpeg_quality)
            else:
                rgb.save(buf, "PNG", compress_level=3)
            out = buf.getvalue()
        # an L image's RGB copy converts back to exactly it (the luma weights sum to 1): the same pHash from it
        luma = img if img.mode == "L" and "transparency" not in img.info else rgb
        hasher = hashlib.blake2b(f"{w}x{h}:".encode(), digest_size=16)
        hasher.update(rgb.tobytes())
        row.update(
            image_out=out,
            image_format=out_fmt,
            width=w,
            height=h,
            pixel_hash=hasher.hexdigest(),  # = content_hash(b"<w>x<h>:" + RGB bytes), without copying them again
            phash=str(imagehash.phash(luma)),
        )
        if not row["image_inline"]:
            row["image"] = None  # the file stays at its path; only the normalised bytes travel on
        return row
