"""Incremental datasets (runs skip input shards already committed with the same config) and resumable runs:
a driver or a worker killed at any point, then a re-run, gives the same final export as a run never killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import psutil
import pytest
import yaml
from click.testing import CliRunner
from conftest import encode, textured, write_jsonl
from ray_head import start_head

from dataengine import ledger, pipeline, runner
from dataengine.cli import main

SPEC = {
    "name": "inc",
    "ray": {"progress": False},
    "output": {"incremental": True},
    "stages": [
        {"op": "resolve"},
        {"op": "image", "batch_size": 4},
        {"op": "text"},
        {"op": "language", "keep": ["en"]},
        {"op": "dedup"},
        {"op": "tile", "max_tiles": 6, "batch_size": 4, "shard_target_bytes": 300_000},
        {"op": "export", "batch_size": 8},
    ],
}
# bookkeeping a re-run may legitimately change: which run wrote a row, and which tile shard (named by the ids it
# holds, which depends on how Ray batched the rows) holds its tiles; the tiles themselves are compared by content
RUN_COLUMNS = ["run_id", "tile_shard"]


def make_shards(root: Path, names: list[str], per_shard: int = 6, seed: int = 0) -> None:
    """One JSONL shard per name, each with `per_shard` images (one missing, so every shard has a reject)."""
    (root / "img").mkdir(parents=True, exist_ok=True)
    for s, name in enumerate(names):
        recs = []
        for i in range(per_shard):
            k = seed + 100 * s + i
            (root / "img" / f"{k}.jpg").write_bytes(encode(textured(k, (900 + 40 * i, 600))))
            recs.append({"image": f"img/{k}.jpg", "caption": f"An abstract smooth texture, picture number {k}."})
        recs.append({"image": f"img/none-{name}.jpg", "caption": "This picture file does not exist anywhere."})
        write_jsonl(root / f"{name}.jsonl", recs)


def committed(dataset: Path, table: str = "samples") -> pl.DataFrame:
    """The dataset's committed rows, sorted by id, without run bookkeeping; samples get their tiles' bytes."""
    files = ledger.files(str(dataset), table)
    frame = pl.read_parquet(files) if files else pl.DataFrame()
    if table == "samples" and len(frame):
        shards = {dataset / "runs" / r / t for r, t in frame.select("run_id", "tile_shard").unique().iter_rows()}
        tiles = pl.concat([pl.read_parquet(f, columns=["id", "tiles"]) for f in sorted(shards)])
        frame = frame.join(tiles, on="id", how="left")
    return frame.drop([c for c in RUN_COLUMNS if c in frame.columns]).sort("id")


def test_runs_append_only_new_shards_and_match_a_one_shot_run(ray_local, tmp_path):
    data = tmp_path / "data"
    make_shards(data, ["a", "b"])
    spec = pipeline.parse(SPEC)
    ds, st = tmp_path / "ds", str(tmp_path / "st")
    first = runner.run(spec, input_uri=str(data), output_uri=str(ds), storage=st)
    assert first["incremental"]["shards_skipped"] == 0 and first["accounting"]["inputs"] == 14
    make_shards(data, ["c"], seed=50)
    second = runner.run(spec, input_uri=str(data), output_uri=str(ds), storage=st)
    inc = second["incremental"]
    assert (inc["shards_total"], inc["shards_skipped"], inc["commit"]) == (3, 2, 2)
    assert second["accounting"]["inputs"] == 7  # shard c only
    third = runner.run(spec, input_uri=str(data), output_uri=str(ds), storage=st)
    assert third["accounting"]["inputs"] == 0 and "commit" not in third["incremental"]
    (tmp_path / "inc.yaml").write_text(yaml.safe_dump(SPEC))
    cli = CliRunner().invoke(main, ["--storage", st, "run", str(tmp_path / "inc.yaml"), "--input", str(data),
                                    "--output", str(ds)])  # fmt: skip
    assert cli.exit_code == 0 and "3 of 3 input shards already committed" in " ".join(cli.output.split())
    assert len(ledger.commits(str(ds))) == 2

    one_shot = tmp_path / "one"
    runner.run(spec, input_uri=str(data), output_uri=str(one_shot), storage=st)
    for table in ("samples", "rejects"):
        assert committed(ds, table).equals(committed(one_shot, table)), table
    head = ledger.write_head(str(ds))
    assert head["commits"] == 2 and len(head["files"]["samples"]) == len(ledger.files(str(ds)))

    # an edited shard is a new shard: its records are processed again (same ids, so a new dataset is needed to
    # keep ids unique) – here: a different config is refused, and overwrite rebuilds
    other = pipeline.parse(
        {**SPEC, "stages": [*SPEC["stages"][:1], {"op": "image", "min_side": 64}, *SPEC["stages"][2:]]}
    )
    with pytest.raises(ValueError, match="another pipeline config"):
        runner.run(other, input_uri=str(data), output_uri=str(ds), storage=st)
    rebuilt = pipeline.parse({**SPEC, "output": {"incremental": True, "overwrite": True}})
    again = runner.run(rebuilt, input_uri=str(data), output_uri=str(ds), storage=st)
    assert again["accounting"]["inputs"] == 21 and len(ledger.commits(str(ds))) == 1


def test_duplicates_of_committed_samples_are_rejected_by_later_runs(ray_local, tmp_path):
    data = tmp_path / "data"
    make_shards(data, ["a"], per_shard=3)
    spec = pipeline.parse(SPEC)
    ds, st = tmp_path / "ds", str(tmp_path / "st")
    first = runner.run(spec, input_uri=str(data), output_uri=str(ds), storage=st)
    kept = committed(ds).select("id", "location").rows()
    # a later shard: the same file again (exact), the same picture re-encoded smaller (near), and a new one
    original = textured(0, (900, 600))
    (data / "img" / "copy.jpg").write_bytes((data / "img" / "0.jpg").read_bytes())
    (data / "img" / "near.jpg").write_bytes(encode(original.resize((600, 400)), quality=70))
    (data / "img" / "new.jpg").write_bytes(encode(textured(777, (900, 600))))
    cap = "An abstract smooth texture seen again in a later shard, number {}."
    write_jsonl(
        data / "b.jsonl", [{"image": f"img/{n}.jpg", "caption": cap.format(n)} for n in ("copy", "near", "new")]
    )
    second = runner.run(spec, input_uri=str(data), output_uri=str(ds), storage=st)
    assert first["accounting"]["accepted"] == 3 and second["accounting"]["inputs"] == 3
    rejects = pl.read_parquet(second["files"]["rejects"]).sort("reason")
    first_id = next(i for i, loc in kept if loc.endswith(":1"))
    assert rejects.select("reason", "duplicate_of").rows() == [
        ("duplicate_exact", first_id),
        ("duplicate_near", first_id),
    ]
    assert second["accounting"]["accepted"] == 1 and len(committed(ds)) == 4  # the committed sample stays


def _head_ids(ds: Path) -> dict[str, list[str]]:
    out = {t: pl.read_parquet(ledger.files(str(ds), t))["id"].to_list() for t in ("samples", "rejects")}
    out["tile_index"] = pl.read_parquet(ledger.files(str(ds), "tile_index"))["id"].to_list()
    return out


def test_edited_and_appended_inputs_supersede_their_earlier_rows(ray_local, tmp_path):
    """A committed input file that grows or changes is processed again and its earlier rows leave HEAD: after each
    run the dataset equals a one-shot run over the inputs as they are now, every id in it once."""
    data = tmp_path / "data"
    make_shards(data, ["a", "b"], per_shard=3)
    spec = pipeline.parse(SPEC)
    ds, st = tmp_path / "ds", str(tmp_path / "st")
    runner.run(spec, input_uri=str(data), output_uri=str(ds), storage=st)

    (data / "img" / "900.jpg").write_bytes(encode(textured(900, (900, 600))))
    with open(data / "a.jsonl", "a") as f:  # appended: a fourth picture
        f.write(json.dumps({"image": "img/900.jpg", "caption": "An abstract smooth texture, appended later."}) + "\n")
    appended = runner.run(spec, input_uri=str(data), output_uri=str(ds), storage=st)
    assert appended["incremental"]["shards_superseded"] == 1 and appended["accounting"]["inputs"] == 5

    appended_bytes, appended_stat = (data / "a.jsonl").read_bytes(), (data / "a.jsonl").stat()
    lines = (data / "a.jsonl").read_text().splitlines()
    lines[1] = json.dumps({"image": "img/1.jpg", "caption": "The same texture, its caption edited in place."})
    (data / "a.jsonl").write_text("\n".join(lines) + "\n")
    edited = runner.run(spec, input_uri=str(data), output_uri=str(ds), storage=st)
    assert edited["incremental"]["commit"] == 3

    ids = _head_ids(ds)
    assert len(ids["samples"]) == len(set(ids["samples"])) == 7 and len(ids["rejects"]) == 2
    assert not set(ids["samples"]) & set(ids["rejects"])
    assert sorted(ids["tile_index"]) == sorted(ids["samples"])  # the tile index follows
    assert "its caption edited in place" in " ".join(committed(ds)["caption"].to_list())
    one_shot = tmp_path / "one"
    runner.run(spec, input_uri=str(data), output_uri=str(one_shot), storage=st)
    for table in ("samples", "rejects"):
        assert committed(ds, table).equals(committed(one_shot, table)), table

    # the appended version restored with its size and mtime (cp -p, rsync -a): read again, not skipped
    (data / "a.jsonl").write_bytes(appended_bytes)
    os.utime(data / "a.jsonl", ns=(appended_stat.st_atime_ns, appended_stat.st_mtime_ns))
    restored = runner.run(spec, input_uri=str(data), output_uri=str(ds), storage=st)
    assert restored["incremental"]["shards_superseded"] == 1
    again = tmp_path / "again"
    runner.run(spec, input_uri=str(data), output_uri=str(again), storage=st)
    for table in ("samples", "rejects"):
        assert committed(ds, table).equals(committed(again, table)), table


def test_a_fixed_meta_entry_replaces_its_rejects(ray_local, tmp_path):
    """A meta entry with an unusable root rejects every line of its file; once fixed, the next run reads the file
    and its samples replace those rejects: each id once in HEAD."""
    data = tmp_path / "data"
    make_shards(data, ["a"], per_shard=2)
    (data / "a.jsonl").rename(data / "ann.jsonl")
    meta = {"set": {"root": 5, "annotation": "ann.jsonl"}}
    (data / "meta.json").write_text(json.dumps(meta))
    spec = pipeline.parse(SPEC)
    ds, st = tmp_path / "ds", str(tmp_path / "st")
    first = runner.run(spec, input_uri=str(data), output_uri=str(ds), storage=st)
    assert first["accounting"]["rejected"] == 3 and first["accounting"]["accepted"] == 0
    (data / "meta.json").write_text(json.dumps({"set": {"root": ".", "annotation": "ann.jsonl"}}))
    fixed = runner.run(spec, input_uri=str(data), output_uri=str(ds), storage=st)
    assert fixed["incremental"]["shards_superseded"] == 1
    ids = _head_ids(ds)
    assert len(ids["samples"]) == 2 and len(ids["rejects"]) == 1 and not set(ids["samples"]) & set(ids["rejects"])


def test_a_failed_rebuild_leaves_the_dataset_readable(ray_local, tmp_path, monkeypatch):
    """output.overwrite on an incremental dataset: the rebuild commits as one replacing commit; until then (and
    when it fails) the committed dataset is untouched; after it, the replaced runs' folders and commits go."""
    data = tmp_path / "data"
    make_shards(data, ["a"], per_shard=2)
    ds, st = tmp_path / "ds", str(tmp_path / "st")
    first = runner.run(pipeline.parse(SPEC), input_uri=str(data), output_uri=str(ds), storage=st)
    before = committed(ds)
    rebuild = pipeline.parse({**SPEC, "output": {"incremental": True, "overwrite": True}})

    def cluster_gone(*args, **kwargs):
        raise ConnectionError("cluster unreachable")

    with monkeypatch.context() as m:
        m.setattr(runner, "read", cluster_gone)
        with pytest.raises(ConnectionError):
            runner.run(rebuild, input_uri=str(data), output_uri=str(ds), storage=st)
    assert committed(ds).equals(before) and [c["run_id"] for c in ledger.commits(str(ds))] == [first["run_id"]]

    again = runner.run(rebuild, input_uri=str(data), output_uri=str(ds), storage=st)
    assert again["incremental"]["rebuild"] and again["accounting"]["inputs"] == 3
    assert [c["run_id"] for c in ledger.commits(str(ds))] == [again["run_id"]]
    assert sorted(p.name for p in (ds / "runs").iterdir()) == [again["run_id"]]
    assert {p.name for p in (ds / "_ledger").iterdir()} == {ledger.HEAD, f"000002-{again['run_id']}.json"}
    assert committed(ds).equals(before)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = start_head(tmp_path_factory.mktemp("killhead"), num_cpus=2)
    yield c
    c.stop()


@pytest.fixture(scope="module")
def killable(tmp_path_factory, cluster):
    """A dataset big enough for a run to be killed part-way, and the export of a run never killed."""
    root = tmp_path_factory.mktemp("killable")
    make_shards(root / "data", [f"s{i}" for i in range(8)], per_shard=5)
    spec_file = root / "inc.yaml"
    spec_file.write_text(yaml.safe_dump(SPEC))
    proc = _start(root / "ref", spec_file, root / "data", root / "st", cluster)
    assert proc.wait(300) == 0, proc.stdout.read().decode()[-3000:]
    return root, spec_file, committed(root / "ref"), committed(root / "ref", "rejects")


def _start(dataset: Path, spec_file: Path, data: Path, storage: Path, cluster) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "dataengine.cli", "--storage", str(storage), "run", str(spec_file),
           "--input", str(data), "--output", str(dataset), "--address", cluster.gcs]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _wait_for(check, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return
        assert proc.poll() is None, f"run ended before the kill point: {proc.stdout.read().decode()[-3000:]}"
        time.sleep(0.05)
    raise TimeoutError("kill point never reached")


def _run_dirs(dataset: Path) -> list[Path]:
    return list((dataset / "runs").glob("*")) if (dataset / "runs").exists() else []


def _descends_from(proc: psutil.Process, ancestor: int) -> bool:
    try:
        return any(parent.pid == ancestor for parent in proc.parents())
    except psutil.Error:
        return False


KILL_POINTS = {
    # as soon as the run has a folder: reading/cleaning in flight
    "reading": lambda ds: bool(_run_dirs(ds)),
    # inputs materialised, dedup/tile in flight
    "tiling": lambda ds: any((d / "tiles").exists() for d in _run_dirs(ds)),
    # export writing Parquet parts, before the commit
    "exporting": lambda ds: any((d / "samples").exists() for d in _run_dirs(ds)),
}


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_driver_killed_then_rerun_gives_the_same_export(killable, cluster, point):
    root, spec_file, ref_samples, ref_rejects = killable
    dataset = root / f"killed-{point}"
    proc = _start(dataset, spec_file, root / "data", root / "st", cluster)
    _wait_for(lambda: KILL_POINTS[point](dataset), proc)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and anything it started, with no chance to clean up
    proc.wait(30)
    assert not ledger.commits(str(dataset)) or point == "exporting"
    rerun = _start(dataset, spec_file, root / "data", root / "st", cluster)
    assert rerun.wait(300) == 0, rerun.stdout.read().decode()[-3000:]
    assert committed(dataset).equals(ref_samples)
    assert committed(dataset, "rejects").equals(ref_rejects)
    runs = {c["run_id"] for c in ledger.commits(str(dataset))}
    assert {d.name for d in _run_dirs(dataset)} == runs  # the killed run's debris is gone


def test_worker_killed_mid_run_is_retried_to_the_same_export(killable, cluster):
    root, spec_file, ref_samples, ref_rejects = killable
    dataset = root / "worker-killed"
    proc = _start(dataset, spec_file, root / "data", root / "st", cluster)
    killed = []

    def kill_a_worker() -> bool:
        for p in psutil.process_iter(["cmdline"]):
            cmd = " ".join(p.info["cmdline"] or [])
            mine = _descends_from(p, cluster.procs[0].pid)  # this cluster's worker, not another test's
            if mine and cmd.startswith("ray::") and ("Map" in cmd or "ReadTasks" in cmd or "_read" in cmd):
                try:
                    p.kill()
                    killed.append(cmd)
                    return True
                except psutil.NoSuchProcess:
                    continue
        return False

    _wait_for(kill_a_worker, proc)
    assert proc.wait(300) == 0, proc.stdout.read().decode()[-3000:]
    assert killed
    assert committed(dataset).equals(ref_samples)
    assert committed(dataset, "rejects").equals(ref_rejects)


def test_a_run_beside_a_live_one_leaves_its_folder_alone(tmp_path):
    """Debris is what killed runs leave: a folder claimed by a live process on this host (or, on another host,
    claimed recently) is kept; once its process is gone, or the claim is old, the next run deletes it."""
    import json
    import socket

    dataset = str(tmp_path / "ds")
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ledger.claim(dataset, "live")
        owner_file = tmp_path / "ds" / "runs" / "live" / ledger.OWNER
        owner_file.write_text(json.dumps({**json.loads(owner_file.read_text()), "pid": live.pid}))
        far = tmp_path / "ds" / "runs" / "elsewhere"
        far.mkdir()
        (far / ledger.OWNER).write_text(json.dumps({"host": "other-" + socket.gethostname(), "pid": 1,
                                                    "started": time.time()}))  # fmt: skip
        old = tmp_path / "ds" / "runs" / "old-elsewhere"
        old.mkdir()
        (old / ledger.OWNER).write_text(json.dumps({"host": "other", "pid": 1, "started": time.time() - 2e5}))
        (tmp_path / "ds" / "runs" / "unclaimed" / "samples").mkdir(parents=True)
        assert sorted(ledger.remove_debris(dataset, [], keep="me")) == ["old-elsewhere", "unclaimed"]
    finally:
        live.kill()
        live.wait()
    assert ledger.remove_debris(dataset, [], keep="me") == ["live"]  # its process is gone now
    assert sorted(p.name for p in (tmp_path / "ds" / "runs").iterdir()) == ["elsewhere"]
