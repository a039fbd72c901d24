"""Image helpers several layers share."""

from __future__ import annotations

import re
import zlib

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


# Source bytes that can stand for the normalised image as they are: no pixel they decode to differs from the
# decoded, normalised image, and nothing the re-encode would have dropped (EXIF, XMP, comments, other metadata)
# survives. Each returns the bytes to keep (the source itself where nothing is dropped, else a copy without the
# dropped segments or chunks and without trailing bytes) or None: re-encode.

_SOS, _EOI, _SOF0 = 0xDA, 0xD9, 0xC0
_JPEG_TABLES = {0xDB, 0xC4, 0xDD}  # DQT, DHT, DRI
# the first marker after a scan's entropy-coded data (FF 00 is a stuffed byte, FF D0-D7 a restart marker, FF FF
# a fill byte)
_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def plain_jpeg(data: bytes) -> bytes | None:
    """A baseline (SOF0), 8-bit, three-component JPEG read in one interleaved scan, without its APP1-APP13,
    APP15 (EXIF, XMP, ICC profile, Photoshop), comment and non-JFIF APP0 segments, up to its EOI marker. Kept:
    JFIF APP0, Adobe APP14 (it says whether the components are YCbCr or RGB), quantisation and Huffman tables,
    restart interval. None for anything else: progressive, extended, lossless or arithmetic-coded frames,
    greyscale, CMYK, several scans, markers this does not know, a missing EOI."""
    n = len(data)
    if data[:2] != b"\xff\xd8":
        return None
    spans, pos, sof, dropped = [(0, 2)], 2, False, False
    while True:
        if pos + 4 > n or data[pos] != 0xFF or data[pos + 1] == 0xFF:  # fill bytes before a marker: re-encode
            return None
        marker, end = data[pos + 1], pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if end > n or end < pos + 4:
            return None
        if marker == _SOS:
            break
        if marker == _SOF0:
            if sof or end - pos != 19 or data[pos + 4] != 8 or data[pos + 9] != 3:
                return None
            sof = True
        elif not (
            marker in _JPEG_TABLES
            or (marker == 0xE0 and data[pos + 4 : pos + 9] == b"JFIF\x00")
            or (marker == 0xEE and data[pos + 4 : pos + 9] == b"Adobe")
        ):
            if not (0xE0 <= marker <= 0xEF or marker == 0xFE):  # another frame type, DAC, DNL, ...
                return None
            dropped = True
            pos = end
            continue
        spans.append((pos, end))
        pos = end
    if not sof or end - pos != 14 or data[pos + 4] != 3:  # one scan of all three components
        return None
    found = _MARKER.search(data, end)
    if found is None or found.group()[1] != _EOI:
        return None
    eoi = found.end()
    if not dropped and eoi == n:
        return data
    spans.append((pos, eoi))
    return b"".join(data[a:b] for a, b in spans)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_KEPT = {b"IHDR", b"IDAT", b"IEND"}
_PNG_REFUSED = {b"tRNS", b"acTL", b"fcTL", b"fdAT"}  # transparency, animation: re-encode


def plain_png(data: bytes, icc: bool) -> bytes | None:
    """An 8-bit RGB PNG (colour type 2, no tRNS, not animated) whose kept chunks' CRCs hold, with only IHDR, IDAT,
    IEND and, when `icc` (the re-encode writes the ICC profile Pillow read), iCCP, up to IEND. Other ancillary
    chunks (text, EXIF, gamma, sRGB, physical size, suggested palette) are dropped, as the re-encode drops them.
    None for anything else: other colour types or bit depths, unknown critical chunks, a bad CRC, no IEND."""
    n = len(data)
    if not data.startswith(_PNG_SIGNATURE):
        return None
    view = memoryview(data)
    spans, pos, dropped = [(0, 8)], 8, False
    while True:
        if pos + 12 > n:
            return None
        kind, end = data[pos + 4 : pos + 8], pos + 12 + int.from_bytes(data[pos : pos + 4], "big")
        if end > n:
            return None
        if kind in _PNG_KEPT or (kind == b"iCCP" and icc):
            if zlib.crc32(view[pos + 4 : end - 4]) != int.from_bytes(data[end - 4 : end], "big"):
                return None
            if kind == b"IHDR" and (pos != 8 or end - pos != 25 or data[pos + 16 : pos + 18] != b"\x08\x02"):
                return None  # bit depth 8, colour type 2 (truecolour)
            spans.append((pos, end))
            if kind == b"IEND":
                break
        elif kind in _PNG_REFUSED or (not kind[0] & 0x20 and kind != b"PLTE"):  # PLTE: a suggestion for RGB
            return None
        else:
            dropped = True
        pos = end
    if not dropped and end == n:
        return data
    return b"".join(view[a:b] for a, b in spans)
