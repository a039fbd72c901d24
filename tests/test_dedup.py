"""Global dedup: exact and near duplicates across blocks, deterministic survivors, image+text keying."""

from __future__ import annotations

import imagehash
import pyarrow as pa
from conftest import encode, row, textured

from dataengine.core.rows import to_table
from dataengine.ops.base import RunContext
from dataengine.ops.dedup import Dedup, DedupConfig, bucket_edges, near_survivors
from dataengine.ops.image import ImageCheck, ImageConfig


def checked(sid, data, caption="a caption", text_key="t"):
    r = ImageCheck(ImageConfig()).apply(row(id=sid, image=data, caption=caption))
    r["text_key"] = text_key
    return r


def run_dedup(ray_local, tmp_path, rows, **cfg):
    """One block per row, so every duplicate pair spans blocks; the stage as the runner attaches it (the rows
    spilled to the run's _work/, decided from signatures, marked block by block)."""
    ds = ray_local.data.from_arrow([to_table([r]) for r in rows])
    ctx = RunContext("dedup-test", "t", str(tmp_path), str(tmp_path), metrics=False)
    out = Dedup.attach(ds, DedupConfig(num_partitions=3, **cfg), ctx).take_all()
    return {r["id"]: r for r in out}


def near_copy(img):
    from PIL import Image

    small = img.resize((int(img.width * 0.9), int(img.height * 0.9)), Image.Resampling.LANCZOS)
    return encode(small, "JPEG", quality=70)


def test_test_images_are_what_they_claim():
    a, b = textured(1, (400, 300)), textured(2, (400, 300))
    from io import BytesIO

    from PIL import Image

    near = Image.open(BytesIO(near_copy(a)))
    assert imagehash.phash(a) - imagehash.phash(near) <= 4
    assert imagehash.phash(a) - imagehash.phash(b) > 10


def test_exact_and_near_duplicates_across_blocks(ray_local, tmp_path):
    a = textured(1, (400, 300))
    rows = [
        checked("id-b", encode(a, "PNG")),  # same pixels as id-a
        checked("id-a", encode(a, "PNG")),
        checked("id-c", near_copy(a)),  # smaller near copy
        checked("id-d", encode(textured(2, (400, 300)), "PNG")),
        checked("id-e", encode(textured(3, (500, 300)), "PNG")),
    ]
    rows.append(row(id="id-rej", reason="invalid_json", stage="ingest"))
    out = run_dedup(ray_local, tmp_path, rows)
    assert len(out) == 6
    assert out["id-a"]["reason"] is None  # same size: smallest id survives
    assert (out["id-b"]["reason"], out["id-b"]["duplicate_of"], out["id-b"]["stage"]) == (
        "duplicate_exact",
        "id-a",
        "dedup",
    )
    assert (out["id-c"]["reason"], out["id-c"]["duplicate_of"]) == ("duplicate_near", "id-a")
    assert out["id-d"]["reason"] is None and out["id-e"]["reason"] is None
    assert out["id-rej"]["reason"] == "invalid_json"  # earlier rejects pass through untouched


def test_survivor_is_largest_image_then_smallest_id(ray_local, tmp_path):
    a = textured(4, (400, 300))
    rows = [checked("id-1", near_copy(a)), checked("id-9", encode(a, "JPEG", quality=95))]
    out = run_dedup(ray_local, tmp_path, rows)
    assert out["id-9"]["reason"] is None and out["id-1"]["duplicate_of"] == "id-9"


def test_image_plus_text_keeps_different_questions(ray_local, tmp_path):
    data = encode(textured(5), "PNG")
    rows = [checked("q1", data, text_key="k1"), checked("q2", data, text_key="k2"), checked("q3", data, text_key="k1")]
    out = run_dedup(ray_local, tmp_path, rows, key="image+text")
    assert out["q1"]["reason"] is None and out["q2"]["reason"] is None
    assert out["q3"]["reason"] == "duplicate_exact" and out["q3"]["duplicate_of"] == "q1"
    image_only = run_dedup(ray_local, tmp_path, rows, key="image")
    assert sum(r["reason"] is None for r in image_only.values()) == 1


def test_near_can_be_disabled(ray_local, tmp_path):
    a = textured(6, (400, 300))
    out = run_dedup(ray_local, tmp_path, [checked("x1", encode(a, "PNG")), checked("x2", near_copy(a))], near=False)
    assert all(r["reason"] is None for r in out.values())


def test_bucket_edges_threshold():
    group = pa.table(
        {
            "band": ["0:1:"] * 3,
            "id": ["a", "b", "c"],
            "phash": ["ffff000000000000", "ffff000000000007", "0000ffffffffffff"],
            "area": [1, 1, 1],
            "prior": [False] * 3,
        }
    )
    edges = bucket_edges(group, threshold=4).to_pylist()
    assert [(e["a"], e["b"]) for e in edges] == [("a", "b")]


def test_union_find_chains_pick_one_survivor():
    new = {"a_prior": False, "b_prior": False}
    edges = [
        {"a": "b", "b": "c", "a_phash": "0" * 16, "b_phash": "0" * 15 + "1", "a_area": 10, "b_area": 10, **new},
        {"a": "a", "b": "b", "a_phash": "0" * 15 + "3", "b_phash": "0" * 16, "a_area": 10, "b_area": 10, **new},
    ]
    assert near_survivors(edges) == {"b": ("a", 2), "c": ("a", 1)}
    # a sample an earlier run committed survives even against a larger new image
    committed = {"a": "z", "b": "a", "a_phash": "0" * 16, "b_phash": "0" * 15 + "1", "a_area": 1, "b_area": 99}
    assert near_survivors([{**committed, "a_prior": True, "b_prior": False}]) == {"a": ("z", 1)}
