"""Global dedup: exact and near duplicates across blocks, deterministic survivors, image+text keying."""

from __future__ import annotations

from functools import partial

import imagehash
import numpy as np
import pyarrow as pa
from conftest import encode, row, textured

from dataengine.core.rows import to_table
from dataengine.ops.base import RunContext
from dataengine.ops.dedup import Dedup, DedupConfig, group_links
from dataengine.ops.image import ImageCheck, ImageConfig
from dataengine.similarity import components, hamming


def checked(sid, data, caption="a caption", text_key="t"):
    r = ImageCheck(ImageConfig()).apply(row(id=sid, image=data, caption=caption))
    r["text_key"] = text_key
    return r


def run_dedup(ray_local, tmp_path, rows, **cfg):
    """One block per row, so every duplicate pair spans blocks; the stage as the runner attaches it (the rows
    spilled to the run's _work/, decided from signatures, marked block by block). A small run's shuffles are one
    task each unless `num_partitions` asks for hash shuffles (seconds each: only where a test is about them)."""
    ds = ray_local.data.from_arrow([to_table([r]) for r in rows])
    ctx = RunContext("dedup-test", "t", str(tmp_path), str(tmp_path), metrics=False)
    out = Dedup.attach(ds, DedupConfig(**cfg), ctx).take_all()
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
    out = run_dedup(ray_local, tmp_path, rows, num_partitions=3)  # hash-sharded shuffles
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


def links(members, threshold):
    """Members {id: (hash, area, prior)} -> link rows joining every pair within the threshold (each pair's first
    id linked to its second, which links to itself), as the search emits them."""
    ids = sorted(members)
    h = np.array([members[i][0] for i in ids], dtype=np.uint64)
    rows = []
    for a, b in sorted(hamming.brute_force_pairs(h, threshold)):
        for sid, root in ((ids[a], ids[b]), (ids[b], ids[b])):
            hv, area, prior = members[sid]
            rows.append(dict(id=sid, h=int(np.uint64(hv).view(np.int64)), area=area, prior=prior, text_key="",
                             root=root, pairs=0))  # fmt: skip
    return pa.Table.from_pylist(rows, schema=components.LINK)


def survivors_of(members, threshold=4):
    table = components._local(links(members, threshold), partial(components.survivors, threshold=threshold))
    return {r["id"]: (r["dup_of"], r["dist"]) for r in table.to_pylist()}


def test_a_chain_keeps_members_far_from_every_survivor():
    # 0 ~ 0xF ~ 0xFF ~ 0xFFF ~ 0xFFFF at threshold 4: the ends are 16 bits apart, so both survive
    hashes = [0, 0xF, 0xFF, 0xFFF, 0xFFFF]
    h = np.array(hashes, dtype=np.uint64)
    assert hamming.all_pairs(h, 4) == {(0, 1), (1, 2), (2, 3), (3, 4)}
    members = {f"c{i}": (v, 10, False) for i, v in enumerate(hashes)}
    assert survivors_of(members) == {"c1": ("c0", 4), "c3": ("c2", 4)}


def test_a_rejected_member_names_the_best_survivor_within_the_threshold():
    # b is within reach of both survivors a and c; a ranks first (larger image); d is near b and c, but b is out
    members = {"a": (0, 50, False), "b": (0b111, 10, False), "c": (0b1111, 20, False), "d": (0b111111, 5, False)}
    got = survivors_of(members, threshold=3)
    assert got == {"b": ("a", 3), "d": ("c", 2)}


def test_a_committed_sample_survives_against_a_larger_new_image():
    assert survivors_of({"z": (0, 1, True), "a": (1, 99, False)}) == {"a": ("z", 1)}


def test_committed_samples_all_survive_and_reject_new_copies_of_either():
    # p1 and p2 were both exported (3 bits apart); a new sample 2 bits from p2 (5 from p1) is p2's near duplicate
    members = {"p1": (0, 50, True), "p2": (0b111, 40, True), "n": (0b11111, 99, False)}
    assert survivors_of(members) == {"n": ("p2", 2)}


def test_a_dense_group_is_linked_in_chunks_not_pairs():
    """A search task holding a dense group (every member within the threshold of every other) emits one link a
    member, whatever chunk of pairs it merges at a time, and counts every pair."""
    rng = np.random.default_rng(3)
    base = int(rng.integers(0, 2**63))
    h = np.array([base ^ (1 << int(b)) for b in range(64)], dtype=np.uint64)  # 2 bits apart pairwise
    cut = hamming.bands_for(4, 5)
    idx, grp, val = hamming.group_keys(h, cut)
    block = pa.table({"g": grp, "v": val, "text_key": [""] * len(idx), "id": [f"d{i:02d}" for i in idx],
                      "h": h.view(np.int64)[idx], "area": [10] * len(idx), "prior": [False] * len(idx)})  # fmt: skip
    for chunk in (7, 1 << 20):
        out = group_links(block, cut, max_pairs=chunk)
        assert sum(out.column("pairs").to_pylist()) == 64 * 63 // 2
        assert set(out.column("id").to_pylist()) == {f"d{i:02d}" for i in range(64)}
        assert len(out) <= len(block) and len(set(out.column("root").to_pylist())) <= cut.groups_per_hash


def test_multi_index_search_has_exact_recall_on_dense_clusters_and_chains():
    rng = np.random.default_rng(7)
    base = rng.integers(0, 2**63, 400, dtype=np.uint64)
    dense = np.array([int(base[0]) ^ (1 << int(b)) for b in range(64)] + [int(base[0])] * 3, dtype=np.uint64)
    chain = np.array([int(base[1]) ^ ((1 << k) - 1) for k in range(0, 40, 3)], dtype=np.uint64)
    h = np.concatenate([base, dense, chain, base[:30] ^ np.uint64(0b1011)])
    for threshold in (0, 2, 4, 6):
        for m in range(1, threshold + 2):
            if hamming.bands_for(threshold, m).r > 3:
                continue  # one wide band with many flips: correct, but slow for a test
            cut = hamming.bands_for(threshold, m)
            assert hamming.all_pairs(h, threshold, cut) == hamming.brute_force_pairs(h, threshold), (threshold, m)


def test_band_count_falls_as_the_run_grows():
    sizes = [len(hamming.choose_bands(n, 4).bands) for n in (10**3, 10**6, 10**7, 10**9)]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == 5 and sizes[-1] <= 2


def test_components_by_label_propagation_match_union_find(ray_local):
    members = {f"c{i}": ((1 << (4 * i)) - 1, 10, False) for i in range(4)}  # a chain
    members |= {"d0": (0xF0, 10, False), "d1": (0xF1, 10, False), "d2": (0xF3, 10, False)}
    members |= {"x1": (0xF00, 50, False), "x2": (0xF01, 60, False)}
    ds = ray_local.data.from_arrow(links(members, 4)).materialize()
    far = {r["id"]: (r["dup_of"], r["dist"]) for r in components.near_duplicates(ds, 4, 1, local_edges=0).take_all()}
    near = {
        r["id"]: (r["dup_of"], r["dist"]) for r in components.near_duplicates(ds, 4, 3, local_edges=100).take_all()
    }
    assert far == near == survivors_of(members)
    assert far["c1"] == ("c0", 4) and "c2" not in far and far["x1"] == ("x2", 1)


def test_one_task_and_sharded_passes_decide_alike(ray_local):
    """Synthetic signatures with planted duplicates (`bench dedup`'s): the small-run path (each shuffle one
    block in one task, every band in one pass) and the sharded one (hash shuffles, one pass a band) reject the
    same samples, naming the same survivors, and find every planted pair; `bench stages`' in-process decision
    (what it times as dedup's unit cost) decides alike too."""
    from dataengine.bench.dedup import Plant, check, signatures
    from dataengine.bench.stages import decide_in_process
    from dataengine.ops.dedup import collect, duplicates

    plant = Plant(3000, 4, dense=200)
    sigs = ray_local.data.range(3000, override_num_blocks=4).map_batches(
        signatures, fn_kwargs={"plant": plant}, batch_format="numpy"
    )
    answers = []
    for cfg in (DedupConfig(), DedupConfig(num_partitions=3, search_rows=1)):
        trace: dict = {}
        dups = collect(duplicates(sigs, cfg, trace=trace))
        found = check(plant, dups, trace, sample=500)
        assert found["planted_recall"] == 1.0 and found["rejections_within_threshold"] == 1.0, found
        assert found["sample_recall"] == found["sample_pairs_decided"] == 1.0 and found["dense_cluster_kept"] == 1
        answers.append(sorted(zip(dups.column("id").to_pylist(), dups.column("dup_of").to_pylist(), strict=True)))
    assert answers[0] == answers[1] and len(answers[0]) > 2 * plant.exact
    one = decide_in_process(signatures({"id": np.arange(3000)}, plant), DedupConfig())
    assert sorted(zip(one.column("id").to_pylist(), one.column("dup_of").to_pylist(), strict=True)) == answers[0]
