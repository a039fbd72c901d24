"""Small JPEG data-URI thumbnails for the report gallery, under the same limits as the image stage.

Bytes come from the export (or a reject's inline image) or from the source file, read only when it lies inside
the run's input root; pixel counts are checked from the header before anything is decoded.
"""

from __future__ import annotations

import base64
import io
import os
import warnings

import pyarrow.fs as pafs
from PIL import Image, ImageOps

from dataengine.core.images import to_rgb
from dataengine.core.rows import Reject
from dataengine.core.storage import is_remote, resolve
from dataengine.ops.image import ImageConfig
from dataengine.ops.resolve import Resolve, ResolveConfig

SIDE = 160
MAX_PIXELS = ImageConfig.model_fields["max_pixels"].default
MAX_BYTES = ResolveConfig.model_fields["max_bytes"].default


def data_uri(data: bytes | None, side: int = SIDE, max_pixels: int = MAX_PIXELS) -> str | None:
    """A `data:image/jpeg;base64,...` thumbnail of at most side x side, or None if the bytes are not a safe image."""
    thumb = jpeg(data, side, max_pixels)
    return jpeg_uri(thumb) if thumb else None


def jpeg_uri(thumb: bytes) -> str:
    """JPEG bytes as a data URI for an <img> (the report allows no other image source)."""
    return "data:image/jpeg;base64," + base64.b64encode(thumb).decode("ascii")


def jpeg(data: bytes | None, side: int = SIDE, max_pixels: int = MAX_PIXELS) -> bytes | None:
    """A JPEG thumbnail of at most side x side, or None if the bytes are not a safe image."""
    if not data:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.width * img.height > max_pixels:
                return None
            img.draft("RGB", (side * 2, side * 2))  # JPEG: decode at a reduced DCT scale
            img.seek(0)
            img.load()
            rgb = to_rgb(ImageOps.exif_transpose(img) or img)
        rgb.thumbnail((side, side), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        rgb.save(buf, "JPEG", quality=80, optimize=True)
    except Exception:  # not an image, truncated, a bomb, a broken palette: the gallery shows a placeholder
        return None
    return buf.getvalue()


def input_dir(input_uri: str) -> str:
    """The run's input root: the input itself when it is a directory, else the folder that holds it."""
    fs, path = resolve(input_uri)
    if fs.get_file_info(path).type == pafs.FileType.Directory:
        return input_uri
    return input_uri.rsplit("/", 1)[0] if is_remote(input_uri) else os.path.dirname(os.path.abspath(input_uri))


def _inside(root_uri: str, path: str) -> bool:
    _, root = resolve(root_uri)
    if is_remote(root_uri):
        return path.startswith(root.rstrip("/") + "/")
    root = os.path.realpath(root)
    return os.path.commonpath([root, path]) == root


def read_source(input_root: str, image_root: str, image_path: str, max_bytes: int = MAX_BYTES) -> bytes | None:
    """The bytes of image_path under image_root when that file lies inside input_root and is small enough."""
    try:
        fs, path = Resolve._confined(image_root, image_path)  # the resolve stage's own rule: no escapes
        if not _inside(input_root, path):
            return None
        info = fs.get_file_info(path)
        if info.type != pafs.FileType.File or (info.size or 0) > max_bytes:
            return None
        with fs.open_input_stream(path) as f:
            data = f.read(max_bytes + 1)
    except (Reject, OSError, ValueError):
        return None
    return data if len(data) <= max_bytes else None
