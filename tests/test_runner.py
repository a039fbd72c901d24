"""End-to-end runs on local Ray: schemas, atomic export, manifest, accounting, and a hostile-input suite."""

from __future__ import annotations

import io
import json
import os
import tarfile

import polars as pl
import pyarrow.parquet as pq
import pytest
from conftest import bomb_png, encode, textured, write_jsonl

from dataengine import accounting, manifest, pipeline, runner, shards
from dataengine.core import schema
from dataengine.core.ids import run_token
from dataengine.core.storage import write_parquet_atomic

GOOD = [
    "A textured abstract pattern in warm colours, number {i}.",
    "抽象的彩色纹理图案，编号{i}。",
]


def spec(**over):
    raw = {
        "name": "t",
        "ray": {"progress": False},
        "stages": [
            {"op": "resolve"},
            {"op": "image"},
            {"op": "text"},
            {"op": "language"},
            {"op": "dedup"},
            {"op": "export", "batch_size": 4},
        ],
    }
    raw.update(over)
    return pipeline.parse(raw)


def make_dataset(root, n_good=6):
    (root / "img").mkdir(parents=True)
    recs = []
    for i in range(n_good):
        (root / "img" / f"{i}.jpg").write_bytes(encode(textured(100 + i, (320, 240))))
        recs.append({"id": f"g{i}", "image": f"img/{i}.jpg", "caption": GOOD[i % 2].format(i=i)})
    return recs


def run(tmp_path, recs, sp=None):
    write_jsonl(tmp_path / "data" / "ann.jsonl", recs)
    return runner.run(sp or spec(), input_uri=str(tmp_path / "data"), storage=str(tmp_path / "storage"))


def outputs(record):
    s = pl.read_parquet(record["files"]["samples"]) if record["files"]["samples"] else pl.DataFrame()
    r = pl.read_parquet(record["files"]["rejects"]) if record["files"]["rejects"] else pl.DataFrame()
    return s, r


def test_clean_run_writes_schemas_manifest_and_balances(ray_local, tmp_path):
    recs = make_dataset(tmp_path / "data")
    recs.append({"image": "img/0.jpg", "caption": GOOD[0].format(i=0)})  # exact duplicate record
    record = run(tmp_path, recs)
    assert record["status"] == "complete" and record["accounting"]["ok"]
    assert record["accounting"]["inputs"] == 7
    for f in record["files"]["samples"]:
        assert pq.read_schema(f) == schema.load("samples", 4)
    for f in record["files"]["rejects"]:
        assert pq.read_schema(f) == schema.load("rejects")
    samples, rejects = outputs(record)
    assert samples.height == 6 and rejects.height == 1
    assert rejects.row(0, named=True)["reason"] == "duplicate_exact"
    assert set(samples["language"]) == {"en", "zh"}
    out = record["output"]
    assert out.startswith(str(tmp_path / "storage" / "runs"))
    assert not [f for _, _, fs in os.walk(out) for f in fs if f.endswith(".tmp")]
    assert not os.path.exists(os.path.join(out, "_work"))
    assert manifest.load(record["run_id"], str(tmp_path / "storage"))["status"] == "complete"
    # throughput per stage, from Ray Data's stats of the operators named after our stages
    stats = {s["stage"]: s for s in record["stage_stats"]}
    first = next(s for s in stats if s.startswith("read"))
    assert "image" in first.split("+") and stats[first]["rows"] == 7
    last = next(s for s in stats if "export" in s.split("+"))  # fused with dedup's marking here
    assert stats[last]["rows"] == 7 and stats[last]["wall_s"] > 0


def test_each_read_task_runs_as_its_own_ray_task(ray_local, tmp_path):
    """The read is fused with the row stages after it, and Ray bundles a fused operator's input by the chain's
    largest integer batch size, counted in read tasks: stages give Ray whole blocks (`StageConfig.ray_args`), so
    four input files are four Ray tasks, not one task holding the whole run."""
    recs = make_dataset(tmp_path / "data", 8)
    for k in range(4):
        write_jsonl(tmp_path / "data" / f"part-{k}.jsonl", recs[2 * k : 2 * k + 2])
    stages = [{"op": "resolve", "batch_size": 500}, {"op": "image", "batch_size": 500}, {"op": "export"}]
    record = runner.run(spec(stages=stages), input_uri=str(tmp_path / "data"), storage=str(tmp_path / "storage"))
    assert record["accounting"]["ok"] and record["accounting"]["inputs"] == 8
    (first,) = [s for s in record["stage_stats"] if s["stage"].startswith("read")]
    assert first["stage"] == "read+resolve+image+export" and first["tasks"] == 4, record["stage_stats"]


def test_a_run_applies_its_memory_bounds_even_when_ray_is_up(ray_local, tmp_path):
    """`ray.object_store_budget_mb` bounds the object store a run's streaming blocks may hold (Ray Data's
    resource limits on this driver) and `ray.block_mb` the blocks (16 MiB unless set); null restores Ray Data's
    defaults."""
    import ray

    limits = ray.data.DataContext.get_current().execution_options
    try:
        bounds = {"progress": False, "object_store_budget_mb": 256, "block_mb": 8}
        record = run(tmp_path, make_dataset(tmp_path / "data", 2), spec(ray=bounds))
        assert record["accounting"]["ok"]
        assert limits.resource_limits.object_store_memory == 256 * 2**20
        assert ray.data.DataContext.get_current().target_max_block_size == 8 * 2**20
    finally:
        runner.init_ray(spec(ray={"progress": False, "block_mb": None}), None)
    assert limits.resource_limits.object_store_memory == float("inf")
    assert ray.data.DataContext.get_current().target_max_block_size == 128 * 2**20
    runner.init_ray(spec(), None)
    assert ray.data.DataContext.get_current().target_max_block_size == 16 * 2**20  # the default bound


def test_same_input_same_ids_across_runs(ray_local, tmp_path):
    recs = make_dataset(tmp_path / "data", 3)
    first, second = run(tmp_path, recs), run(tmp_path, recs)
    ids = [sorted(outputs(r)[0]["id"]) for r in (first, second)]
    assert ids[0] == ids[1] and first["run_id"] != second["run_id"]


def test_output_uri_and_refusing_to_overwrite(ray_local, tmp_path):
    recs = make_dataset(tmp_path / "data", 2)
    write_jsonl(tmp_path / "data" / "ann.jsonl", recs)
    out = str(tmp_path / "export")
    sp = spec()
    record = runner.run(sp, input_uri=str(tmp_path / "data"), output_uri=out, storage=str(tmp_path / "s"))
    assert os.path.exists(os.path.join(out, "manifest.json")) and record["output"] == out
    with pytest.raises(FileExistsError):
        runner.run(sp, input_uri=str(tmp_path / "data"), output_uri=out, storage=str(tmp_path / "s"))
    sp2 = spec(output={"overwrite": True})
    assert runner.run(sp2, input_uri=str(tmp_path / "data"), output_uri=out, storage=str(tmp_path / "s"))[
        "accounting"
    ]["ok"]


def test_overwrite_keeps_the_committed_run_until_the_new_one_commits(ray_local, tmp_path, monkeypatch):
    """output.overwrite builds the new run beside the committed one: a rebuild that fails after planning leaves the
    old run whole and readable through its manifest; one that commits replaces it, and only then is it swept."""
    recs = make_dataset(tmp_path / "data", 3)
    write_jsonl(tmp_path / "data" / "ann.jsonl", recs)
    out, st = tmp_path / "export", str(tmp_path / "s")
    stages = [*spec().model_dump()["stages"][:-1], {"op": "tile", "max_tiles": 2}, {"op": "export", "batch_size": 4}]
    first = runner.run(spec(stages=stages), input_uri=str(tmp_path / "data"), output_uri=str(out), storage=st)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    rebuild = spec(stages=stages, output={"overwrite": True})

    def cluster_gone(*args, **kwargs):
        raise ConnectionError("cluster unreachable")

    with monkeypatch.context() as m:
        m.setattr(runner, "read", cluster_gone)
        with pytest.raises(ConnectionError):
            runner.run(rebuild, input_uri=str(tmp_path / "data"), output_uri=str(out), storage=st)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert json.loads((out / "manifest.json").read_text())["run_id"] == first["run_id"]
    assert len(outputs(first)[0]) == 3

    second = runner.run(rebuild, input_uri=str(tmp_path / "data"), output_uri=str(out), storage=st)
    assert json.loads((out / "manifest.json").read_text())["run_id"] == second["run_id"]
    listed = {os.path.basename(f) for t in ("samples", "rejects") for f in second["files"][t]}
    assert {p.name for p in out.glob("*/*.parquet") if p.parent.name != "tiles"} == listed
    token = run_token(second["run_id"])  # the replaced run's shards and index are gone too
    assert (
        all(token in p.name for p in (out / "tiles").iterdir())
        and (out / "tiles" / f"_index-{token}.parquet").exists()
    )
    assert shards.shard_files(str(out)) and all(token in f for f in shards.shard_files(str(out)))
    assert len(outputs(second)[0]) == 3


def test_killed_run_debris_is_cleared_on_rerun(ray_local, tmp_path):
    recs = make_dataset(tmp_path / "data", 2)
    out = tmp_path / "export"
    (out / "samples").mkdir(parents=True)
    (out / "samples" / "part-stale.parquet").write_bytes(b"partial")
    (out / "samples" / ".part-x.parquet.123.tmp").write_bytes(b"partial")
    write_jsonl(tmp_path / "data" / "ann.jsonl", recs)
    record = runner.run(spec(), input_uri=str(tmp_path / "data"), output_uri=str(out), storage=str(tmp_path / "s"))
    assert sorted(os.listdir(out / "samples")) == sorted(os.path.basename(f) for f in record["files"]["samples"])


def test_atomic_write_leaves_nothing_on_failure(tmp_path, monkeypatch):
    import fsspec.implementations.local
    import pyarrow as pa
    import pyarrow.fs as pafs

    from dataengine.core import storage

    class FailingRename(fsspec.implementations.local.LocalFileSystem):
        def mv(self, *args, **kwargs):
            raise OSError("disk gone during rename")

    failing = pafs.PyFileSystem(pafs.FSSpecHandler(FailingRename()))
    monkeypatch.setattr(storage, "resolve", lambda uri: (failing, uri))
    with pytest.raises(OSError, match="disk gone"):
        write_parquet_atomic(str(tmp_path / "x.parquet"), pa.table({"a": [1]}))
    assert not (tmp_path / "x.parquet").exists()  # readers never see a partial file


def test_accounting_detects_missing_and_duplicates(tmp_path):
    import pyarrow as pa

    pq.write_table(pa.table({"id": ["a", "b", "c"]}), tmp_path / "in.parquet")
    (tmp_path / "in").mkdir()
    os.rename(tmp_path / "in.parquet", tmp_path / "in" / "p.parquet")
    pq.write_table(pa.table({"id": ["a", "b"]}), tmp_path / "s.parquet")
    pq.write_table(pa.table({"id": ["b"]}), tmp_path / "r.parquet")
    check = accounting.check(str(tmp_path / "in"), [str(tmp_path / "s.parquet")], [str(tmp_path / "r.parquet")])
    assert not check["ok"] and check["missing"] == 1 and check["ids_in_both_or_twice"] == 1


def test_hostile_inputs_never_crash_and_every_record_is_accounted(ray_local, tmp_path):
    data = tmp_path / "data"
    recs = make_dataset(data, 2)
    img = data / "img"
    jpeg = encode(textured(7, (640, 480)))
    (img / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (img / "zero.jpg").write_bytes(b"")
    (img / "text.jpg").write_bytes(b"<html>not an image</html>")
    (img / "bomb.png").write_bytes(bomb_png())
    (img / "random.png").write_bytes(os.urandom(4096))
    (img / "pngsig.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    cap = "A perfectly reasonable English caption for this picture."
    expected = {
        "truncated": ("image", "decode_error"),
        "zero": ("resolve", "empty_file"),
        "text": ("image", "not_an_image"),
        "bomb": ("image", "too_many_pixels"),
        "random": ("image", "not_an_image"),
        "pngsig": ("image", "not_an_image"),
        "traversal": ("resolve", "path_outside_root"),
        "absolute": ("resolve", "path_outside_root"),
        "missing": ("resolve", "missing_file"),
        "dir": ("resolve", "not_a_file"),
        "huge": ("text", "caption_too_long"),
        "nontext": ("ingest", "invalid_caption"),
        "weird_id": ("ingest", "missing_image"),
    }
    recs += [
        {"id": "truncated", "image": "img/truncated.jpg", "caption": cap},
        {"id": "zero", "image": "img/zero.jpg", "caption": cap},
        {"id": "text", "image": "img/text.jpg", "caption": cap},
        {"id": "bomb", "image": "img/bomb.png", "caption": cap},
        {"id": "random", "image": "img/random.png", "caption": cap},
        {"id": "pngsig", "image": "img/pngsig.png", "caption": cap},
        {"id": "traversal", "image": "../../../../etc/passwd", "caption": cap},
        {"id": "absolute", "image": "/etc/hostname", "caption": cap},
        {"id": "missing", "image": "img/nope.jpg", "caption": cap},
        {"id": "dir", "image": "img", "caption": cap},
        {"id": "huge", "image": "img/0.jpg", "caption": "long " * 200_000},
        {"id": "nontext", "image": "img/0.jpg", "caption": {"nested": True}},
        {"id": "weird_id", "image": None, "caption": cap},
        b'{"id": "broken", "image": "img/0.jpg", "caption": "unterminated',
        b'{"id": "latin1", "image": "img/0.jpg", "caption": "caf\xe9 cr\xe8me"}',
        b"\x00\x01\x02 binary junk \xff",
        json.dumps({"id": "toolong", "image": "img/0.jpg", "caption": "x" * 3_000_000}).encode(),
    ]
    sp = spec(input={"max_record_bytes": 2_000_000})
    record = run(tmp_path, recs, sp)
    acc = record["accounting"]
    assert acc["ok"] and acc["inputs"] == len(recs) == acc["accepted"] + acc["rejected"]
    samples, rejects = outputs(record)
    assert samples.height == 2
    got = {r["source_key"]: (r["stage"], r["reason"]) for r in rejects.iter_rows(named=True)}
    for key, want in expected.items():
        assert got[key] == want, key
    reasons = rejects["reason"].to_list()
    assert reasons.count("invalid_json") == 1 and reasons.count("invalid_utf8") == 2 and "record_too_large" in reasons
    assert rejects.filter(pl.col("reason") == "invalid_utf8")["record"][0].startswith('{"id": "latin1"')


def test_only_a_complete_run_is_protected_from_reuse(tmp_path):
    """A run whose accounting failed is recorded (manifest status failed_accounting) for inspection, but its
    output is not a committed run: the next run may reuse the folder without overwrite."""
    out = tmp_path / "out"
    (out / "samples").mkdir(parents=True)
    (out / manifest.FILENAME).write_text(json.dumps({"status": "failed_accounting"}))
    runner.prepare_output(str(out), overwrite=False, run_id="r1")
    assert not (out / manifest.FILENAME).exists() and not (out / "samples").exists()
    (out / manifest.FILENAME).write_text(json.dumps({"status": "complete"}))
    with pytest.raises(FileExistsError, match="committed run"):
        runner.prepare_output(str(out), overwrite=False, run_id="r2")


def test_a_run_does_not_write_beside_a_live_one(tmp_path):
    """Two plain runs into one output would sweep each other's files: the second refuses while the first's claim
    is alive, and takes over once its process is gone."""
    import subprocess
    import sys

    from dataengine import ledger

    out = tmp_path / "out"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        runner.prepare_output(str(out), overwrite=False, run_id="first")
        owner = out / "_work" / run_token("first") / ledger.OWNER
        owner.write_text(json.dumps({**json.loads(owner.read_text()), "pid": live.pid}))
        with pytest.raises(FileExistsError, match=f"another run \\(pid {live.pid}"):
            runner.prepare_output(str(out), overwrite=True, run_id="second")
    finally:
        live.kill()
        live.wait()
    runner.prepare_output(str(out), overwrite=True, run_id="second")
    assert [p.name for p in (out / "_work").iterdir()] == [run_token("second")]


def test_hostile_input_layouts_are_read_once_and_accounted(ray_local, tmp_path):
    """Through the real pipeline: a `_`-named JSONL with a BOM, two metas naming one annotation file, a meta
    entry with an unusable root (its file's lines rejected), and a tar with a directory entry."""
    data = tmp_path / "data"
    recs = make_dataset(data, 4)
    lines = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in recs[:2])
    (data / "_annotations.train.jsonl").write_bytes(b"\xef\xbb\xbf" + lines)
    (data / "ann").mkdir()
    write_jsonl(data / "ann" / "a.jsonl", recs[2:])
    write_jsonl(data / "ann" / "b.jsonl", recs[:3])
    for meta in ("m1.json", "m2.json"):
        (data / meta).write_text(json.dumps({"set_a": {"root": ".", "annotation": "ann/a.jsonl"}}))
    (data / "m3.json").write_text(json.dumps({"odd": {"root": 5, "annotation": "ann/b.jsonl"}}))
    with tarfile.open(data / "s.tar", "w") as tar:
        folder = tarfile.TarInfo("d")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, blob in (("d/k.jpg", encode(textured(200))), ("d/k.txt", GOOD[0].format(i=9).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    record = runner.run(spec(), input_uri=str(data), storage=str(tmp_path / "storage"))
    acc = record["accounting"]
    assert acc["ok"] and acc["inputs"] == 8 and acc["accepted"] == 5 and acc["rejected"] == 3
    samples, rejects = outputs(record)
    assert sorted(samples["source"]) == ["_annotations.train.jsonl"] * 2 + ["s.tar"] + ["set_a"] * 2
    assert set(rejects["reason"]) == {"invalid_meta"} and set(rejects["source"]) == {"odd"}
