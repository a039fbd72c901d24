"""Image validation and normalisation: one test per reject reason, and every odd mode ends as RGB."""

from __future__ import annotations

import io
import struct
import zlib

import imagehash
import numpy as np
import pytest
from conftest import bomb_png, encode, row, textured
from PIL import Image, ImageCms, PngImagePlugin

from dataengine.core.ids import content_hash
from dataengine.core.images import plain_jpeg, plain_png
from dataengine.ops.image import ImageCheck, ImageConfig

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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


# Keeping the source bytes: a baseline RGB JPEG or an 8-bit RGB PNG that needs no orientation or colour change is
# kept, less its metadata; everything else is re-encoded as before. Kept bytes decode to exactly the hashed pixels.


def png_chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_chunks(data: bytes) -> list[bytes]:
    kinds, pos = [], 8
    while pos < len(data):
        kinds.append(data[pos + 4 : pos + 8])
        pos += 12 + int.from_bytes(data[pos : pos + 4], "big")
    return kinds


def jpeg_markers(data: bytes) -> list[int]:
    """The markers before the first scan, SOS included."""
    markers, pos = [], 2
    while True:
        markers.append(data[pos + 1])
        if data[pos + 1] == 0xDA:
            return markers
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")


def assert_pixel_exact(out, source: bytes):
    """The output decodes to the source's pixels, and those hash to the row's pixel_hash as before."""
    got, want = decoded(out), Image.open(io.BytesIO(source)).convert("RGB")
    assert got.mode == "RGB" and np.array_equal(np.asarray(got), np.asarray(want))
    assert out["pixel_hash"] == content_hash(f"{got.width}x{got.height}:".encode() + got.tobytes())
    assert out["phash"] == str(imagehash.phash(got))


def test_baseline_rgb_jpeg_is_kept_as_it_is():
    data = encode(textured(30, (300, 200)), quality=80)
    out = check(data)
    assert out["image_out"] == data and out["image_format"] == "JPEG"
    assert_pixel_exact(out, data)


def test_kept_jpeg_loses_its_metadata_and_trailing_bytes_as_a_re_encode_would():
    img = textured(31, (300, 200))
    exif = img.getexif()
    exif[0x0112] = 1  # orientation 1: nothing to turn
    exif[0x010F] = "Camera maker"
    data = encode(img, quality=85, exif=exif, icc_profile=b"\x00" * 500, comment=b"a comment") + b"trailing junk"
    out = check(data)
    assert out["image_out"] != data and len(out["image_out"]) < len(data) - 500
    assert_pixel_exact(out, data)
    kept = decoded(out)
    assert not kept.getexif() and "icc_profile" not in kept.info and "comment" not in kept.info
    assert jpeg_markers(out["image_out"]) == [m for m in jpeg_markers(data) if m in (0xE0, 0xDB, 0xC0, 0xC4, 0xDA)]
    assert out["image_out"].endswith(b"\xff\xd9")
    # Adobe APP14 says how the components are coded: it stays
    adobe = b"\xff\xee" + struct.pack(">H", 14) + b"Adobe\x00\x64\x00\x00\x00\x00\x01"
    data = data[:2] + adobe + data[2:]
    assert 0xEE in jpeg_markers(check(data)["image_out"])


@pytest.mark.parametrize(
    "make",
    [
        lambda: encode(textured(32, (300, 200)), progressive=True),
        lambda: encode(textured(33, (300, 200)).convert("L")),
        lambda: encode(textured(34, (300, 200)).convert("CMYK")),
    ],
    ids=["progressive", "grey", "cmyk"],
)
def test_other_jpegs_are_re_encoded(make):
    data = make()
    out = check(data)
    assert out["reason"] is None and out["image_out"] != data
    assert 0xC0 in jpeg_markers(out["image_out"]) and decoded(out).mode == "RGB"  # baseline RGB q95 as before


def test_turned_jpeg_and_a_forced_output_format_are_re_encoded():
    img = textured(35, (300, 200))
    exif = img.getexif()
    exif[0x0112] = 3
    turned = encode(img, exif=exif)
    out = check(turned)
    upright = np.asarray(Image.open(io.BytesIO(turned)).rotate(180), dtype=np.int16)
    assert out["image_out"] != turned and np.abs(np.asarray(decoded(out), dtype=np.int16) - upright).mean() < 2
    plain = encode(img)
    assert check(plain, output="jpeg")["image_out"] != plain
    png = encode(img, "PNG")
    assert check(png, output="png")["image_out"] != png


def test_plain_rgb_png_is_kept_and_loses_its_ancillary_chunks():
    img = textured(36, (200, 100))
    data = encode(img, "PNG")
    out = check(data)
    assert out["image_out"] == data and out["image_format"] == "PNG"
    assert_pixel_exact(out, data)
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "hello")
    data = (
        encode(
            img,
            "PNG",
            pnginfo=info,
            dpi=(72, 72),
            icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
        )
        + b"junk"
    )
    out = check(data)
    assert_pixel_exact(out, data)
    assert png_chunks(out["image_out"]) == [b"IHDR", b"iCCP", b"IDAT", b"IEND"]  # the ICC profile, as a re-encode
    assert decoded(out).info["icc_profile"] == Image.open(io.BytesIO(data)).info["icc_profile"]


def raw_png(width: int, height: int, depth: int, colour: int, extra: bytes = b"", idat_crc: int | None = None):
    row_bytes = width * 3 * depth // 8
    raw = b"".join(b"\x00" + bytes((x * 7 + y) % 256 for x in range(row_bytes)) for y in range(height))
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
    idat = png_chunk(b"IDAT", zlib.compress(raw), idat_crc)
    return PNG_SIGNATURE + ihdr + extra + idat + png_chunk(b"IEND", b"")


def test_other_pngs_are_re_encoded():
    img = textured(37, (200, 100))
    frames = [img, textured(38, (200, 100))]
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:])
    cases = {
        "tRNS": encode(img, "PNG", transparency=(0, 0, 0)),
        "animated": buf.getvalue(),
        "16-bit": raw_png(64, 48, 16, 2),
        "palette": encode(img.convert("P"), "PNG"),
        "unknown critical chunk": raw_png(64, 48, 8, 2, extra=png_chunk(b"XXXX", b"?")),
    }
    for name, data in cases.items():
        out = check(data)
        assert out["reason"] is None and out["image_out"] != data, name
        assert png_chunks(out["image_out"])[0] == b"IHDR" and decoded(out).mode == "RGB", name
    assert plain_png(raw_png(64, 48, 8, 2), icc=False) is not None
    assert plain_png(raw_png(64, 48, 8, 2, idat_crc=0), icc=False) is None  # a bad CRC: never passed on


def test_plain_checks_never_raise_on_cut_or_damaged_bytes():
    jpeg = encode(textured(39, (64, 64)), exif=textured(39).getexif())
    png = encode(textured(40, (64, 64)), "PNG")
    for data in (jpeg, png):
        for cut in range(len(data)):
            plain_jpeg(data[:cut]), plain_png(data[:cut], icc=True)
        for at in range(0, len(data), 7):
            damaged = data[:at] + b"\xff" + data[at + 1 :]
            plain_jpeg(damaged), plain_png(damaged, icc=True)
    assert plain_jpeg(jpeg[:-2]) is None and plain_png(png[:-12], icc=False) is None  # no EOI, no IEND


def test_grey_sources_keep_their_phash_and_pixel_hash():
    grey = textured(41, (300, 200)).convert("L")
    out = check(encode(grey, "PNG"))
    rgb = grey.convert("RGB")
    assert out["phash"] == str(imagehash.phash(rgb)) == str(imagehash.phash(grey))
    assert out["pixel_hash"] == content_hash(b"300x200:" + rgb.tobytes())
