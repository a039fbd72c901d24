"""Shared fixtures: a local 2-CPU Ray for the session and helpers that make textured, distinct images."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("RAY_DEDUP_LOGS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def ray_local():
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    yield ray
    ray.shutdown()


def textured(seed: int, size: tuple[int, int] = (320, 240), mode: str = "RGB") -> Image.Image:
    """A smooth random pattern: distinct seeds give images with distinct perceptual hashes."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), "RGB")
    img = small.resize(size, Image.Resampling.BICUBIC)
    return img.convert(mode) if mode != "RGB" else img


def encode(img: Image.Image, fmt: str = "JPEG", **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def write_jsonl(path: Path, records: list[Any]) -> Path:
    """Records are dicts (dumped as JSON) or raw bytes (written as-is, for broken lines)."""
    with open(path, "wb") as f:
        for rec in records:
            line = rec if isinstance(rec, bytes) else json.dumps(rec, ensure_ascii=False).encode()
            f.write(line + b"\n")
    return path


def bomb_png(width: int = 40000, height: int = 40000) -> bytes:
    """A valid PNG header claiming width x height pixels, a few hundred bytes on disk."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def row(**values: Any) -> dict[str, Any]:
    from dataengine.core.rows import new_row

    base = {"id": "x", "source": "t", "source_key": "t:1", "location": "t:1"}
    base.update(values)
    return new_row(**base)
