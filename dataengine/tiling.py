"""InternVL 1.5 dynamic high-resolution tiling: the exact reference rule and a fast path for the pipeline.

Reference (matches InternVL's `dynamic_preprocess`): choose the (cols, rows) grid whose aspect ratio is
closest to the image's, resize the whole image to (448*cols, 448*rows) with Pillow BICUBIC, cut tiles
row-major, and append a 448x448 thumbnail of the whole image when there is more than one tile.

Fast path (`tile_encoded`): the same grid, with pixels that differ slightly: JPEG decoded at a reduced DCT
scale when the image is far larger than its grid, OpenCV's SIMD resize, the thumbnail made from the
already-resized grid image, and tiles encoded with libjpeg-turbo via simplejpeg.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np
import simplejpeg
from PIL import Image, ImageOps

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# Shrinking by less than this, plain cubic (no antialiasing filter) stays faithful to Pillow's antialiased
# bicubic (measured: see BENCHMARKS.md); larger shrinks use Pillow itself.
MILD_SHRINK = 1.5
cv2.setNumThreads(1)  # one core per worker: Ray supplies the parallelism


@cache
def candidate_grids(min_tiles: int = 1, max_tiles: int = 12) -> tuple[tuple[int, int], ...]:
    """Every (cols, rows) with min <= cols*rows <= max, in InternVL's order: a set sorted by tile count
    (so grids with equal counts keep the set's iteration order, which the tie rule can depend on)."""
    grids = {
        (i, j)
        for n in range(min_tiles, max_tiles + 1)
        for i in range(1, n + 1)
        for j in range(1, n + 1)
        if min_tiles <= i * j <= max_tiles
    }
    return tuple(sorted(grids, key=lambda g: g[0] * g[1]))


def plan_grid(
    width: int, height: int, *, min_tiles: int = 1, max_tiles: int = 12, tile_size: int = 448
) -> tuple[int, int]:
    """(cols, rows) by InternVL's rule: strictly smaller aspect-ratio difference wins; on an exact tie the
    later (larger) grid wins only if the image has more than half the grid's pixels."""
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    aspect = width / height
    best_diff, best = float("inf"), (1, 1)
    for cols, rows in candidate_grids(min_tiles, max_tiles):
        diff = abs(aspect - cols / rows)
        if diff < best_diff:
            best_diff, best = diff, (cols, rows)
        elif diff == best_diff and width * height > 0.5 * tile_size * tile_size * cols * rows:
            best = (cols, rows)
    return best


def tile_image(
    image: Image.Image, *, min_tiles: int = 1, max_tiles: int = 12, tile_size: int = 448, thumbnail: bool = True
) -> list[Image.Image]:
    """Reference tiling with Pillow: tiles row-major, then the thumbnail (only when there are several tiles)."""
    cols, rows = plan_grid(*image.size, min_tiles=min_tiles, max_tiles=max_tiles, tile_size=tile_size)
    resized = image.resize((tile_size * cols, tile_size * rows), Image.Resampling.BICUBIC)
    tiles = [
        resized.crop((c * tile_size, r * tile_size, (c + 1) * tile_size, (r + 1) * tile_size))
        for r in range(rows)
        for c in range(cols)
    ]
    if thumbnail and len(tiles) > 1:
        tiles.append(image.resize((tile_size, tile_size), Image.Resampling.BICUBIC))
    return tiles


def to_pixel_values(tiles: list[Image.Image] | list[np.ndarray]) -> np.ndarray:
    """(N, 3, H, W) float32: RGB / 255, normalised with the ImageNet mean and std, as InternVL's transform."""
    arrays = [np.asarray(t.convert("RGB") if isinstance(t, Image.Image) else t, dtype=np.float32) for t in tiles]
    batch = (np.stack(arrays) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)


@dataclass(frozen=True)
class TiledImage:
    grid: tuple[int, int]  # (cols, rows)
    size: tuple[int, int]  # (width, height) after EXIF orientation
    tiles: list[bytes]  # JPEG bytes: tiles row-major, thumbnail last when present

    @property
    def thumbnail(self) -> bool:
        return len(self.tiles) > self.grid[0] * self.grid[1]


def _decode(data: bytes, target: tuple[int, int]) -> Image.Image:
    """RGB image, EXIF-oriented; a JPEG much larger than `target` is decoded at a reduced DCT scale
    (1/2, 1/4, 1/8), never below `target`."""
    img = Image.open(io.BytesIO(data))
    if img.format == "JPEG" and img.mode in ("RGB", "L", "YCbCr", "CMYK"):
        swap = img.getexif().get(0x0112, 1) >= 5
        img.draft("RGB", target[::-1] if swap else target)
    img.load()
    ImageOps.exif_transpose(img, in_place=True)  # no copy when there is nothing to rotate
    if img.mode != "RGB":
        from dataengine.core.images import to_rgb

        img = to_rgb(img)
    return img


def _resize(img: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Upscaling and mild shrinking: OpenCV's SIMD cubic. Larger shrinks: Pillow's antialiased bicubic, as the
    reference does, but from the (usually much smaller) DCT-reduced image."""
    if img.size == size:
        return np.asarray(img)
    if img.width <= size[0] * MILD_SHRINK and img.height <= size[1] * MILD_SHRINK:
        return cv2.resize(np.asarray(img), size, interpolation=cv2.INTER_CUBIC)
    return np.asarray(img.resize(size, Image.Resampling.BICUBIC))


def tile_encoded(
    data: bytes,
    *,
    min_tiles: int = 1,
    max_tiles: int = 12,
    tile_size: int = 448,
    thumbnail: bool = True,
    quality: int = 95,
    subsampling: str = "auto",
) -> TiledImage:
    """Fast tiling of encoded image bytes into JPEG tiles; same grid and order as `tile_image`.

    subsampling: "444", "420", or "auto" (4:2:0 when the image is upscaled to its grid, so the tiles hold no
    chroma detail to lose; 4:4:4 otherwise)."""
    with Image.open(io.BytesIO(data)) as probe:
        w, h = probe.size
        if probe.getexif().get(0x0112, 1) >= 5:
            w, h = h, w
    cols, rows = plan_grid(w, h, min_tiles=min_tiles, max_tiles=max_tiles, tile_size=tile_size)
    target = (tile_size * cols, tile_size * rows)
    grid_img = _resize(_decode(data, target), target)
    if subsampling == "auto":
        subsampling = "420" if w < target[0] and h < target[1] else "444"
    tiles = [
        np.ascontiguousarray(grid_img[r * tile_size : (r + 1) * tile_size, c * tile_size : (c + 1) * tile_size])
        for r in range(rows)
        for c in range(cols)
    ]
    if thumbnail and len(tiles) > 1:
        tiles.append(cv2.resize(grid_img, (tile_size, tile_size), interpolation=cv2.INTER_AREA))
    encoded = [
        simplejpeg.encode_jpeg(t, quality=quality, colorspace="RGB", colorsubsampling=subsampling) for t in tiles
    ]
    return TiledImage(grid=(cols, rows), size=(w, h), tiles=encoded)
