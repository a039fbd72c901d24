"""Split reads: a large JSONL file read in byte ranges, a large Parquet file by row groups, give exactly the rows,
locations and ids of a one-task read, at every split size."""

from __future__ import annotations

import json
import os

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from conftest import encode, textured

from dataengine import pipeline, runner
from dataengine.readers import plan_tasks, read_task, split_tasks
from dataengine.readers.split import MIN_PIECE, piece_count, scan_range

MAX = 100  # max_record_bytes in these tests: the oversized line below is over it

ROWS = [
    "\ufeff" + json.dumps({"image": "a.jpg", "caption": "一只猫坐在窗台上"}, ensure_ascii=False) + "\r\n",
    "\n",  # blank lines are skipped but counted
    "  \r\n",
    json.dumps({"image": "b.jpg", "caption": "汉字跨越边界的一行"}, ensure_ascii=False) + "\r\n",
    json.dumps({"image": "c.jpg", "caption": "长" * 40}, ensure_ascii=False) + "\n",  # over MAX bytes
    '{"image": "d.jpg", "caption": \n',  # invalid JSON
    "\ufeff" + json.dumps({"image": "e.jpg", "caption": "a concatenated part"}) + "\n",
    json.dumps({"image": "f.jpg", "caption": "最后一行没有换行"}, ensure_ascii=False),  # no final newline
]
DATA = "".join(ROWS).encode("utf-8")


def local_scan(jobs):
    """The newline count in this process (the runner runs it as Ray tasks)."""
    return [scan_range(*job) for job in jobs]


def rows_of(tasks):
    return [row for task in tasks for row in read_task(task, max_record_bytes=MAX)]


def line_starts(data: bytes) -> list[int]:
    return [0] + [i + 1 for i, b in enumerate(data) if b == 0x0A and i + 1 < len(data)]


def test_jsonl_ranges_read_what_one_task_reads_at_every_split_size(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(DATA)
    tasks = plan_tasks(str(tmp_path))
    whole = rows_of(tasks)
    assert [r["location"] for r in whole] == [
        "a.jsonl:1",
        "a.jsonl:4",
        "a.jsonl:5",
        "a.jsonl:6",
        "a.jsonl:7",
        "a.jsonl:8",
    ]
    assert [r["reason"] for r in whole] == [None, None, "record_too_large", "invalid_json", None, None]
    assert whole[0]["caption"] == "一只猫坐在窗台上" and whole[-1]["caption"] == "最后一行没有换行"
    for split_bytes in range(1, len(DATA) + 2):  # spans cut everywhere: in "\r\n", a character, a long line
        pieces = split_tasks(tasks, split_bytes, cpus=1, scan=local_scan)
        if split_bytes >= len(DATA):
            assert pieces == tasks  # not over split_bytes: one task, as before
        assert rows_of(pieces) == whole, split_bytes
        starts = [p.get("range", [0])[0] for p in pieces]
        assert set(starts) <= set(line_starts(DATA)) and starts == sorted(set(starts))
    # one-byte spans: one piece per line, each numbered as in the file
    pieces = split_tasks(tasks, 1, cpus=1, scan=local_scan)
    assert [p["range"][0] for p in pieces] == line_starts(DATA)
    assert [p["first_line"] for p in pieces] == list(range(1, len(ROWS) + 1))
    assert pieces[-1]["range"][1] is None  # the last piece reads to the end of the file, as a one-task read


def test_a_line_longer_than_the_pieces_is_read_by_the_piece_it_starts_in(tmp_path):
    long = json.dumps({"image": "x.jpg", "caption": "字" * 300}, ensure_ascii=False).encode()
    first = json.dumps({"image": "a.jpg", "caption": "one " * 20}).encode()  # over one 50-byte piece too
    data = first + b"\n" + long + b"\n" + b'{"image": "b.jpg", "caption": "two"}\n'
    (tmp_path / "a.jsonl").write_bytes(data)
    tasks = plan_tasks(str(tmp_path))
    pieces = split_tasks(tasks, 50, cpus=1, scan=local_scan)
    assert len(pieces) == 3 and [p["first_line"] for p in pieces] == [1, 2, 3]
    whole = [row for task in tasks for row in read_task(task, max_record_bytes=1 << 20)]
    assert [row for task in pieces for row in read_task(task, max_record_bytes=1 << 20)] == whole
    (tmp_path / "b.jsonl").write_bytes(long)  # one line: nothing to split
    (task,) = plan_tasks(str(tmp_path / "b.jsonl"))
    assert split_tasks([task], 50, cpus=1, scan=local_scan) == [task]


def test_a_file_that_vanishes_after_splitting_is_one_reject_per_piece(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(DATA)
    tasks = plan_tasks(str(tmp_path))
    pieces = split_tasks(tasks, 60, cpus=1, scan=local_scan)
    assert len(pieces) > 2
    (tmp_path / "a.jsonl").unlink()
    rows = rows_of(pieces)
    assert [r["reason"] for r in rows] == ["unreadable_file"] * len(pieces)
    assert [r["location"] for r in rows] == ["a.jsonl:*"] + [
        f"a.jsonl:after:{p['first_line'] - 1}" for p in pieces[1:]
    ]
    assert len({r["id"] for r in rows}) == len(pieces)
    # a file that cannot be stat'ed or scanned is not split: its one task rejects it
    assert split_tasks(tasks, 60, cpus=1, scan=local_scan) == tasks


def test_split_meta_entry_with_a_bad_root_still_rejects_every_line_once(tmp_path):
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "a.jsonl").write_bytes(DATA)
    (tmp_path / "meta.json").write_text(json.dumps({"set_a": {"root": 5, "annotation": "ann/a.jsonl"}}))
    tasks = plan_tasks(str(tmp_path))
    assert tasks[0].get("reason") == "invalid_meta"
    whole = rows_of(tasks)
    assert len(whole) == 6 and {r["reason"] for r in whole} == {"invalid_meta"}
    for split_bytes in (1, 7, 64, 200):
        pieces = split_tasks(tasks, split_bytes, cpus=1, scan=local_scan)
        assert len(pieces) > 1 and rows_of(pieces) == whole


def test_pieces_per_file_follow_split_bytes_and_cpus():
    gb2, mib64 = 2 * 10**9, 64 << 20
    for cpus in (1, 2, 8, 30, 31, 64, 96, 1000):  # a lone 2 GB file: at least one task per CPU
        assert piece_count(gb2, gb2, mib64, cpus) == max(30, cpus)
    assert piece_count(gb2, 10 * gb2, mib64, 64) == 30  # ten such files already make 300 tasks
    assert piece_count(100, 100, 1, 4) == 100 and piece_count(5, 5, 1, 64) == 5  # at most one per byte


def test_files_under_split_bytes_are_cut_for_the_cpus_in_pieces_of_at_least_min_piece():
    kib = 1 << 10
    assert piece_count(1200 * kib, 1500 * kib, 4 << 20, 2) == 2  # the scaled 5k set: its JSONL is most of the run
    assert piece_count(300 * kib, 1500 * kib, 4 << 20, 2) == 1
    assert piece_count(200 * kib, 200 * kib, 4 << 20, 8) == 3  # 64 KiB pieces at least: 3, not 8
    assert piece_count(60 * kib, 60 * kib, 4 << 20, 8) == 1
    assert piece_count(200 * kib, 200 * kib, 100 * kib, 1) == 2  # split_bytes alone still cuts finer
    assert piece_count(200 * kib, 200 * kib, 4 << 20, 8, min_piece=1) == 8


def test_cpu_floor_split_reads_what_one_task_reads(tmp_path):
    lines = [
        json.dumps({"image": f"{i}.jpg", "caption": f"第{i}张图片的说明文字，" + "x" * (i % 50)}, ensure_ascii=False)
        for i in range(3000)
    ]
    lines[1234] = '{"image": "broken.jpg", "caption": '
    data = ("\r\n".join(lines) + "\n\n").encode()
    assert MIN_PIECE * 2 < len(data) < 4 << 20
    (tmp_path / "a.jsonl").write_bytes(data)
    tasks = plan_tasks(str(tmp_path))
    whole = rows_of(tasks)
    assert len(whole) == 3000 and whole[1234]["reason"] == "invalid_json"
    for cpus, n in ((1, 1), (2, 2), (64, len(data) // MIN_PIECE)):
        pieces = split_tasks(tasks, 4 << 20, cpus=cpus, scan=local_scan)
        assert len(pieces) == n, cpus
        assert rows_of(pieces) == whole, cpus  # the same rows, locations (line numbers) and ids
    write_parquet(tmp_path / "x.parquet", n=400, group=20)  # 20 row groups, about 150 KB: two 64 KiB pieces fit
    (tmp_path / "a.jsonl").unlink()
    tasks = plan_tasks(str(tmp_path))
    pieces = split_tasks(tasks, 4 << 20, cpus=2)
    assert len(pieces) == 2 and rows_of(pieces) == rows_of(tasks)
    assert [p["first_row"] for p in pieces] == [0, pieces[0]["rows"]]


def write_parquet(path, n=10, group=2):
    images = [os.urandom(300) for _ in range(n)]  # incompressible: row groups of about 600 bytes
    table = pa.table({"image": images, "caption": [f"caption {i}" for i in range(n)]})
    pq.write_table(table, path, row_group_size=group)


def test_parquet_pieces_are_runs_of_row_groups_with_exact_row_indexes(tmp_path):
    write_parquet(tmp_path / "x.parquet")
    tasks = plan_tasks(str(tmp_path))
    whole = rows_of(tasks)
    assert [r["location"] for r in whole] == [f"x.parquet:{i}" for i in range(10)]
    size = os.path.getsize(tmp_path / "x.parquet")
    counts = set()
    for split_bytes in (1, 500, 1000, 2000, size - 1, size):
        pieces = split_tasks(tasks, split_bytes, cpus=1)
        counts.add(len(pieces))
        assert rows_of(pieces) == whole, split_bytes
    assert max(counts) == 5 and 1 in counts and len(counts) > 2
    pieces = split_tasks(tasks, 1, cpus=1)
    assert [(p["row_groups"], p["first_row"], p["rows"]) for p in pieces] == [([g], 2 * g, 2) for g in range(5)]
    # a file that turns unreadable after splitting: each piece rejects its own rows, every row once
    (tmp_path / "x.parquet").write_bytes(b"not parquet any more")
    rows = rows_of(pieces)
    assert [r["location"] for r in rows] == [f"x.parquet:{i}" for i in range(10)]
    assert {r["reason"] for r in rows} == {"unreadable_row"}


def test_newline_count_runs_as_ray_tasks(ray_local, tmp_path):
    (tmp_path / "a.jsonl").write_bytes(DATA)
    tasks = plan_tasks(str(tmp_path))
    assert split_tasks(tasks, 40, cpus=2) == split_tasks(tasks, 40, cpus=2, scan=local_scan)


def spec(**over):
    raw = {
        "name": "t",
        "ray": {"progress": False},
        "stages": [{"op": "resolve"}, {"op": "image"}, {"op": "text"}, {"op": "export", "batch_size": 4}],
    }
    raw.update(over)
    return pipeline.parse(raw)


def test_split_run_has_the_ids_locations_and_reasons_of_an_unsplit_one(ray_local, tmp_path):
    data = tmp_path / "data"
    (data / "img").mkdir(parents=True)
    lines = []
    for i in range(6):
        (data / "img" / f"{i}.jpg").write_bytes(encode(textured(200 + i, (96, 64))))
        lines.append(
            json.dumps({"image": f"img/{i}.jpg", "caption": f"一张有纹理的图片，编号{i}。"}, ensure_ascii=False)
        )
    lines[2] = '{"image": "img/2.jpg", "caption": '  # invalid JSON
    lines.insert(4, "")
    lines.append(json.dumps({"image": "img/nope.jpg", "caption": "a missing picture"}))
    (data / "ann.jsonl").write_bytes(("\ufeff" + "\r\n".join(lines)).encode())
    images = [encode(textured(300 + i, (96, 64))) for i in range(6)]
    table = pa.table({"image": images, "caption": [f"A textured picture, number {i}." for i in range(6)]})
    pq.write_table(table, data / "pics.parquet", row_group_size=2)
    storage = str(tmp_path / "storage")

    one = runner.run(spec(), input_uri=str(data), storage=storage)
    split = runner.run(
        spec(input={"split_bytes": 150}, output={"incremental": True}), input_uri=str(data), storage=storage
    )
    assert one["read_tasks"] == 2 and split["read_tasks"] > 6
    assert split["incremental"]["shards_total"] == 2  # the ledger still sees whole files
    for record in (one, split):
        assert record["accounting"]["ok"] and record["accounting"]["inputs"] == 13

    def table_of(record, kind):
        cols = ["id", "source", "location", "stage", "reason"] if kind == "rejects" else ["id", "source", "location"]
        return pl.read_parquet(record["files"][kind]).select(cols).sort("id")

    for kind in ("samples", "rejects"):
        assert table_of(one, kind).equals(table_of(split, kind)), kind
    assert table_of(one, "samples").height == 11
    assert sorted(table_of(one, "rejects")["reason"]) == ["invalid_json", "missing_file"]
