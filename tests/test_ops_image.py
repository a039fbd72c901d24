"""Image validation and normalisation: one test per reject reason, and every odd mode ends as RGB."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import bomb_png, encode, row, textured
from PIL import Image

from dataengine.ops.image import ImageCheck, ImageConfig


def check(data: bytes, **cfg):
    return ImageCheck(ImageConfig(**cfg)).apply(row(image=data))


def decoded(out) -> Image.Image:
    img = Image.open(io.BytesIO(out["image_out"]))
    img.load()
    return img


def test_valid_jpeg_gets_hashes_and_jpeg_output():
    out = check(encode(textured(1, (300, 200))))
    assert out["reason"] is None
    assert (out["width"], out["height"], out["image_format"]) == (300, 200, "JPEG")
    assert len(out["pixel_hash"]) == 32 and len(out["phash"]) == 16
    assert decoded(out).mode == "RGB"


def test_lossless_sources_stay_lossless_and_hash_is_pixel_exact():
    img = textured(2, (200, 100))
    png, bmp = check(encode(img, "PNG")), check(encode(img, "BMP"))
    assert png["image_format"] == "PNG" and png["pixel_hash"] == bmp["pixel_hash"]
    assert np.array_equal(np.asarray(decoded(png)), np.asarray(img))


def test_empty_bytes():
    assert check(b"")["reason"] == "empty_file"


def test_not_an_image():
    out = check(b"this is a text file named .jpg\n" * 10)
    assert (out["stage"], out["reason"]) == ("image", "not_an_image")


def test_decompression_bomb_rejected_before_decoding():
    out = check(bomb_png(40000, 40000))
    assert out["reason"] == "too_many_pixels"
    assert check(bomb_png(3000, 3000), max_pixels=1_000_000)["reason"] == "too_many_pixels"


def test_truncated_jpeg():
    data = encode(textured(3, (640, 480)))
    assert check(data[: len(data) // 2])["reason"] == "decode_error"


def test_corrupt_png_body():
    data = bytearray(encode(textured(4, (100, 100)), "PNG"))
    data[60:120] = b"\x00" * 60
    assert check(bytes(data))["reason"] == "decode_error"


def test_format_not_allowed():
    assert check(encode(textured(5), "GIF"), formats=["JPEG", "PNG"])["reason"] == "format_not_allowed"


def test_too_small():
    out = check(encode(textured(6, (16, 16)), "PNG"))
    assert out["reason"] == "too_small" and "16x16" in out["detail"]


def test_extreme_aspect_ratio():
    assert check(encode(textured(7, (2000, 40)), "PNG"))["reason"] == "extreme_aspect_ratio"


@pytest.mark.parametrize(
    "make",
    [
        lambda: encode(textured(8).convert("CMYK"), "JPEG"),
        lambda: encode(textured(9).convert("P", palette=Image.Palette.ADAPTIVE), "PNG", transparency=0),
        lambda: encode(textured(10).convert("RGBA"), "PNG"),
        lambda: encode(textured(11).convert("LA"), "PNG"),
        lambda: encode(textured(12).convert("L"), "JPEG"),
        lambda: encode(Image.fromarray((np.arange(200 * 100, dtype=np.uint16) * 3).reshape(100, 200)), "PNG"),
        lambda: encode(textured(13).convert("1"), "PNG"),
        lambda: encode(textured(14), "WEBP"),
        lambda: encode(textured(15), "TIFF"),
    ],
    ids=["cmyk", "palette-transparency", "rgba", "la", "gray", "16bit", "1bit", "webp", "tiff"],
)
def test_modes_are_normalised_to_rgb(make):
    out = check(make())
    assert out["reason"] is None, out["detail"]
    assert decoded(out).mode == "RGB"


def test_16bit_is_scaled_not_clipped():
    arr = np.full((64, 64), 65535, dtype=np.uint16)
    arr[:32] = 0
    out = check(encode(Image.fromarray(arr), "PNG"))
    px = np.asarray(decoded(out))
    assert px[0, 0].tolist() == [0, 0, 0] and px[-1, -1].tolist() == [255, 255, 255]


def test_transparency_composited_on_white():
    img = Image.new("RGBA", (64, 64), (255, 0, 0, 0))
    px = np.asarray(decoded(check(encode(img, "PNG"))))
    assert px[5, 5].tolist() == [255, 255, 255]


def test_animated_gif_uses_first_frame():
    frames = [textured(s, (80, 60)).convert("P") for s in (20, 21, 22)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    out = check(buf.getvalue())
    assert out["reason"] is None and (out["width"], out["height"]) == (80, 60)


def test_exif_orientation_is_applied():
    img = textured(23, (300, 200))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    out = check(encode(img, "JPEG", exif=exif))
    assert (out["width"], out["height"]) == (200, 300)
    assert 0x0112 not in decoded(out).getexif()
