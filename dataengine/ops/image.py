"""Decode and validate an image, normalise it to RGB, re-encode it, and compute its exact and perceptual hashes.

The pixel-count guard reads only the header, so a decompression bomb is rejected before any pixel is decoded.
"""

from __future__ import annotations

import io
import warnings
from typing import Any, Literal

import imagehash
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import Field

from dataengine.core.ids import content_hash
from dataengine.core.images import to_rgb
from dataengine.core.rows import Reject
from dataengine.ops.base import RowStage, StageConfig

LOSSLESS = {"PNG", "GIF", "BMP", "TIFF"}


class ImageConfig(StageConfig):
    needs = frozenset({"resolve"})

    op: Literal["image"] = "image"
    min_side: int = Field(32, ge=1, description="reject images whose shorter side is smaller (pixels)")
    max_pixels: int = Field(50_000_000, ge=1, description="reject larger images from the header, before decoding")
    max_aspect_ratio: float = Field(20.0, ge=1, description="reject when long side / short side exceeds this")
    formats: list[str] = Field(default_factory=lambda: ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO"])
    output: Literal["auto", "jpeg", "png"] = Field(
        "auto", description="auto: JPEG for lossy sources, PNG for lossless ones (documents keep sharp edges)"
    )
    jpeg_quality: int = Field(95, ge=1, le=100)


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
        buf = io.BytesIO()
        if out_fmt == "JPEG":
            rgb.save(buf, "JPEG", quality=cfg.jpeg_quality)
        else:
            rgb.save(buf, "PNG", compress_level=3)
        row.update(
            image_out=buf.getvalue(),
            image_format=out_fmt,
            width=w,
            height=h,
            pixel_hash=content_hash(f"{w}x{h}:".encode() + rgb.tobytes()),
            phash=str(imagehash.phash(rgb)),
        )
        if not row["image_inline"]:
            row["image"] = None  # the file stays at its path; only the normalised bytes travel on
        return row
