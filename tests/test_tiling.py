"""Tiling conformance: the grid rule against a transcription written here, the notes' table, reference pixels
against a PIL-BICUBIC path written here, and the fast path's grids, order and fidelity."""

from __future__ import annotations

import io

import numpy as np
import pytest
from conftest import encode, textured
from PIL import Image

from dataengine.tiling import plan_grid, tile_encoded, tile_image, to_pixel_values


def transcribed_grid(w, h, lo, hi, size=448):
    """The rule as the InternVL 1.5 notes state it, transcribed independently of dataengine.tiling."""
    ratios = set()
    for n in range(lo, hi + 1):
        for i in range(1, n + 1):
            for j in range(1, n + 1):
                if lo <= i * j <= hi:
                    ratios.add((i, j))
    ordered = sorted(ratios, key=lambda r: r[0] * r[1])
    best_diff, best = float("inf"), (1, 1)
    for r in ordered:
        d = abs(w / h - r[0] / r[1])
        if d < best_diff:
            best_diff, best = d, r
        elif d == best_diff and w * h > 0.5 * size * size * r[0] * r[1]:
            best = r
    return best


def transcribed_grids_all(n, lo, hi, size=448):
    """The same rule evaluated for every (w, h) in 1..n at once, with the same float operations."""
    ratios = sorted(
        {(i, j) for k in range(lo, hi + 1) for i in range(1, k + 1) for j in range(1, k + 1) if lo <= i * j <= hi},
        key=lambda r: r[0] * r[1],
    )
    w, h = np.meshgrid(np.arange(1, n + 1, dtype=np.float64), np.arange(1, n + 1, dtype=np.float64), indexing="ij")
    aspect = w / h
    best_diff = np.full(w.shape, np.inf)
    cols, rows = np.ones(w.shape, np.int64), np.ones(w.shape, np.int64)
    for c, r in ratios:
        d = np.abs(aspect - c / r)
        win = (d < best_diff) | ((d == best_diff) & (w * h > 0.5 * size * size * c * r))
        best_diff = np.where(d < best_diff, d, best_diff)
        cols, rows = np.where(win, c, cols), np.where(win, r, rows)
    return cols, rows


@pytest.mark.parametrize("max_tiles", [6, 12])
def test_every_size_up_to_1500_matches_the_rule(max_tiles):
    n = 1500
    cols, rows = transcribed_grids_all(n, 1, max_tiles)
    for w, h in [(1, 1), (640, 480), (1050, 600), (100, 1500), (1500, 7)]:  # scalar and vector transcriptions agree
        assert transcribed_grid(w, h, 1, max_tiles) == (cols[w - 1, h - 1], rows[w - 1, h - 1])
    mismatches = [
        (w, h)
        for w in range(1, n + 1)
        for h in range(1, n + 1)
        if plan_grid(w, h, max_tiles=max_tiles) != (cols[w - 1, h - 1], rows[w - 1, h - 1])
    ]
    assert mismatches == []


@pytest.mark.parametrize(
    ("size", "grid12", "total12", "grid6", "total6"),
    [
        ((800, 1300), (2, 3), 7, (2, 3), 7),
        ((448, 448), (1, 1), 1, (1, 1), 1),
        ((1920, 1080), (4, 2), 9, (2, 1), 3),
        ((100, 3000), (1, 12), 13, (1, 6), 7),
        ((640, 480), (4, 3), 13, (3, 2), 7),
        ((1050, 600), (3, 2), 7, (3, 2), 7),
    ],
)
def test_notes_table(size, grid12, total12, grid6, total6):
    img = Image.new("RGB", size)
    assert plan_grid(*size) == grid12 and len(tile_image(img)) == total12
    assert plan_grid(*size, max_tiles=6) == grid6 and len(tile_image(img, max_tiles=6)) == total6


def reference_tiles(img, cols, rows, size=448):
    big = img.resize((size * cols, size * rows), Image.BICUBIC)
    tiles = [big.crop((c * size, r * size, (c + 1) * size, (r + 1) * size)) for r in range(rows) for c in range(cols)]
    return tiles + ([img.resize((size, size), Image.BICUBIC)] if len(tiles) > 1 else [])


@pytest.mark.parametrize("size", [(1000, 700), (300, 900), (448, 448), (2000, 500)])
def test_tile_pixels_match_pil_bicubic_reference(size):
    img = textured(3, size)
    cols, rows = plan_grid(*size)
    got, want = tile_image(img), reference_tiles(img, cols, rows)
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.size == (448, 448) and np.array_equal(np.asarray(a), np.asarray(b))


def test_no_thumbnail_when_disabled_or_single_tile():
    assert (
        len(tile_image(textured(1, (1000, 700)), thumbnail=False)) == plan_grid(1000, 700)[0] * plan_grid(1000, 700)[1]
    )
    assert len(tile_image(textured(1, (448, 448)))) == 1


def test_pixel_values_are_imagenet_normalised():
    tiles = [Image.new("RGB", (448, 448), (255, 0, 128))]
    pv = to_pixel_values(tiles)
    assert pv.shape == (1, 3, 448, 448) and pv.dtype == np.float32
    expected = (np.array([1.0, 0.0, 128 / 255]) - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    assert np.allclose(pv[0, :, 10, 10], expected, atol=1e-5)


def psnr(a, b):
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return 99.0 if mse == 0 else 10 * np.log10(255**2 / mse)


@pytest.mark.parametrize("size", [(640, 480), (1920, 1080), (300, 1200), (2600, 1800), (448, 448)])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_fast_path_same_grid_order_and_faithful(size, fmt):
    img = textured(9, size)
    data = encode(img, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    src = Image.open(io.BytesIO(data)).convert("RGB")
    ref = tile_image(src)
    out = tile_encoded(data)
    assert out.grid == plan_grid(*size) and out.size == size and len(out.tiles) == len(ref)
    for r, t in zip(ref, out.tiles, strict=True):
        dec = Image.open(io.BytesIO(t))
        assert dec.format == "JPEG" and dec.size == (448, 448)
        assert psnr(r, dec.convert("RGB")) > 35


def test_fast_path_applies_exif_orientation():
    img = textured(4, (900, 400))
    exif = img.getexif()
    exif[0x0112] = 6
    out = tile_encoded(encode(img, "JPEG", exif=exif))
    assert out.size == (400, 900) and out.grid == plan_grid(400, 900)


def test_fast_path_odd_modes():
    for mode in ("L", "RGBA", "P", "CMYK"):
        img = textured(5, (700, 500)).convert(mode)
        fmt = "JPEG" if mode in ("L", "CMYK") else "PNG"
        out = tile_encoded(encode(img, fmt))
        assert out.grid == plan_grid(700, 500) and all(t[:2] == b"\xff\xd8" for t in out.tiles)


def test_bench_compare_runs_and_reports_identical_grids():
    from dataengine.bench import tiling as bench_tiling

    images = [encode(textured(40 + i, size), "JPEG", quality=90) for i, size in enumerate([(800, 600), (1300, 700)])]
    result = bench_tiling.compare(images)
    assert result["grids_identical"] and result["images"] == 2 and result["psnr_median_db"] > 35
    assert result["speedup"] > 0 and len(result["psnr_values"]) == result["tiles"]
