"""Every reader: records, stable ids, and a reject (never a crash) for every malformed input."""

from __future__ import annotations

import io
import json
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import encode, textured, write_jsonl

from dataengine.core.rows import to_table
from dataengine.readers import plan_tasks, read_task


def read_all(input_uri, fmt="auto", max_record_bytes=1 << 20):
    rows = []
    for task in plan_tasks(str(input_uri), fmt):
        rows.extend(read_task(task, max_record_bytes=max_record_bytes))
    return rows


def test_jsonl_captions_conversations_and_stable_ids(tmp_path):
    write_jsonl(
        tmp_path / "a.jsonl",
        [
            {"id": "orig-1", "image": "img/1.jpg", "caption": "a cat"},
            {
                "image": "img/2.jpg",
                "conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": "A dog."}],
            },
        ],
    )
    rows = read_all(tmp_path / "a.jsonl")
    assert [r["reason"] for r in rows] == [None, None]
    assert rows[0]["source_key"] == "orig-1" and rows[0]["location"] == "a.jsonl:1"
    assert rows[1]["source_key"] == "a.jsonl:2" and rows[1]["conversations"][1]["value"] == "A dog."
    assert rows[0]["image_root"] == str(tmp_path) and rows[0]["image_path"] == "img/1.jpg"
    assert [r["id"] for r in read_all(tmp_path / "a.jsonl")] == [r["id"] for r in rows]
    assert len({r["id"] for r in rows}) == 2


def test_jsonl_duplicate_original_ids_still_get_distinct_ids(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"id": 7, "image": "a.jpg", "caption": "x"}] * 3)
    rows = read_all(tmp_path / "a.jsonl")
    assert len({r["id"] for r in rows}) == 3 and {r["source_key"] for r in rows} == {"7"}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"image": "a.jpg", "caption": ', "invalid_json"),
        (b'{"image": "a.jpg", "caption": "caf\xff\xfe"}', "invalid_utf8"),
        (b'["not", "an", "object"]', "invalid_record"),
        (b'{"caption": "no image"}', "missing_image"),
        (b'{"image": ["a.jpg", "b.jpg"], "caption": "two"}', "multi_image_unsupported"),
        (b'{"image": "a.jpg"}', "missing_text"),
        (b'{"image": "a.jpg", "caption": 42}', "invalid_caption"),
        (b'{"image": "a.jpg", "conversations": [{"from": "human"}]}', "invalid_conversation"),
        (b'{"image": "a.jpg", "conversations": "not json"}', "invalid_conversation"),
        (b'{"image": "a.jpg", "caption": "x", "conversations": []}', "ambiguous_text"),
        (b"[" * 200_000, "invalid_json"),  # nested too deeply for Python's parser: a reject, not a crash
        (b'{"image": "a.jpg", "caption": "x\\ud800y"}', "invalid_json"),  # a lone surrogate no Parquet holds
        (b'{"image": "a.jpg", "conversations": "' + b"[" * 200_000 + b'"}', "invalid_conversation"),
    ],
)
def test_jsonl_bad_lines_are_rejected_with_reason(tmp_path, line, reason):
    write_jsonl(tmp_path / "a.jsonl", [line])
    (row,) = read_all(tmp_path / "a.jsonl")
    assert (row["stage"], row["reason"]) == ("ingest", reason)
    assert row["record"]  # the original line is kept for the rejects table


def test_jsonl_oversized_line_and_blank_lines(tmp_path):
    big = json.dumps({"image": "a.jpg", "caption": "x" * 5000}).encode()
    write_jsonl(tmp_path / "a.jsonl", [b"", big, b"   ", {"image": "a.jpg", "caption": "ok"}])
    rows = read_all(tmp_path / "a.jsonl", max_record_bytes=1000)
    assert [r["reason"] for r in rows] == ["record_too_large", None]
    assert [r["location"] for r in rows] == ["a.jsonl:2", "a.jsonl:4"]


def test_jsonl_without_trailing_newline_and_crlf(tmp_path):
    (tmp_path / "a.jsonl").write_bytes(b'{"image": "a.jpg", "caption": "one"}\r\n{"image": "b.jpg", "caption": "two"}')
    rows = read_all(tmp_path / "a.jsonl")
    assert [r["caption"] for r in rows] == ["one", "two"]


def test_meta_json_entries_roots_and_errors(tmp_path):
    (tmp_path / "ann").mkdir()
    write_jsonl(tmp_path / "ann" / "a.jsonl", [{"image": "x.jpg", "caption": "hello"}])
    meta = {
        "set_a": {"root": "imgs", "annotation": "ann/a.jsonl", "repeat_time": 1},
        "set_missing": {"root": "imgs", "annotation": "ann/nope.jsonl"},
        "set_bad": {"root": "imgs"},
    }
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    rows = read_all(tmp_path)  # directory: ann/a.jsonl is read once, through the meta
    by_source = {r["source"]: r for r in rows}
    assert len(rows) == 3
    assert by_source["set_a"]["reason"] is None and by_source["set_a"]["image_root"] == str(tmp_path / "imgs")
    assert by_source["set_missing"]["reason"] == "missing_annotation"
    assert by_source["set_bad"]["reason"] == "invalid_meta"


def test_meta_entry_with_a_non_path_root_is_rejected(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"image": "x.jpg", "caption": "hello"}])
    (tmp_path / "meta.json").write_text(json.dumps({"odd": {"annotation": "a.jsonl", "root": 5}}))
    (row,) = read_all(tmp_path / "meta.json")
    assert row["reason"] == "invalid_meta" and "root" in row["detail"]


def test_broken_meta_json_is_one_reject(tmp_path):
    (tmp_path / "meta.json").write_text("{not json")
    (row,) = read_all(tmp_path / "meta.json")
    assert row["reason"] == "invalid_meta"


def test_parquet_bytes_and_hf_struct_images(tmp_path):
    img = encode(textured(1))
    table = pa.table(
        {
            "id": ["p0", "p1", "p2"],
            "image": [{"bytes": img, "path": "x.jpg"}, {"bytes": img, "path": None}, {"bytes": None, "path": "y"}],
            "caption": ["first", "second", "third"],
        }
    )
    pq.write_table(table, tmp_path / "d.parquet")
    rows = read_all(tmp_path / "d.parquet")
    assert [r["reason"] for r in rows] == [None, None, "missing_image"]
    assert rows[0]["image"] == img and rows[0]["image_inline"] and rows[0]["source_key"] == "p0"
    assert rows[1]["location"] == "d.parquet:1"
    assert "image" not in json.loads(rows[0]["record"])
    capped = read_all(tmp_path / "d.parquet", max_record_bytes=len(img) - 1)  # the cap a JSONL line has
    assert [r["reason"] for r in capped] == ["record_too_large", "record_too_large", "missing_image"]


def test_parquet_conversations_column(tmp_path):
    conv = [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": "A."}]
    pq.write_table(pa.table({"jpg": [encode(textured(2))], "conversations": [conv]}), tmp_path / "c.parquet")
    (row,) = read_all(tmp_path / "c.parquet")
    assert row["reason"] is None and row["conversations"] == conv


def test_corrupt_parquet_is_rejected_not_raised(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not parquet")
    (row,) = read_all(tmp_path / "bad.parquet")
    assert row["reason"] == "unreadable_file"


def _tar(path, members):
    with tarfile.open(path, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_webdataset_groups_members_by_key(tmp_path):
    img = encode(textured(3))
    _tar(
        tmp_path / "s.tar",
        [
            ("000.jpg", img),
            ("000.txt", b"a caption"),
            ("001.png", encode(textured(4), "PNG")),
            ("001.json", json.dumps({"caption": "json caption", "id": "k1"}).encode()),
            ("002.txt", b"text without image"),
            ("003.jpg", img),
            ("dir/004.webp", img),
            ("dir/004.txt", b"nested"),
            ("000.jpg", img),
            ("000.txt", b"repeated key"),
        ],
    )
    rows = read_all(tmp_path / "s.tar")
    assert [r["reason"] for r in rows] == [None, None, "missing_image", "missing_text", None, None]
    assert rows[1]["source_key"] == "k1" and rows[1]["caption"] == "json caption"
    assert rows[4]["location"] == "s.tar:dir/004"
    assert rows[5]["location"] == "s.tar:000#1"
    assert len({r["id"] for r in rows}) == 6


def test_webdataset_repeated_members_and_odd_names_are_separate_records(tmp_path):
    img = encode(textured(3))
    _tar(
        tmp_path / "s.tar",
        [("a.jpg", img), ("a.txt", b"first"), ("a.jpg", img), ("a.txt", b"second"), ("b\udcff.jpg", img),
         ("b\udcff.txt", b"latin-1 name")],
    )  # fmt: skip
    rows = read_all(tmp_path / "s.tar")
    assert [(r["reason"], r["caption"]) for r in rows] == [(None, "first"), (None, "second"), (None, "latin-1 name")]
    assert rows[1]["location"] == "s.tar:a#1" and rows[2]["location"] == "s.tar:b\\xff"
    assert len({r["id"] for r in rows}) == 3
    to_table(rows)  # every string is valid UTF-8


def test_truncated_tar_keeps_what_it_read_and_rejects_the_rest(tmp_path):
    img = encode(textured(5))
    _tar(tmp_path / "s.tar", [("a.jpg", img), ("a.txt", b"first"), ("b.jpg", img), ("b.txt", b"second")])
    data = (tmp_path / "s.tar").read_bytes()
    (tmp_path / "s.tar").write_bytes(data[: len(data) // 2 + 100])
    rows = read_all(tmp_path / "s.tar")
    assert rows[0]["reason"] is None
    assert rows[-1]["reason"] == "unreadable_shard"


def test_directory_discovery_mixes_formats(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"image": "x.jpg", "caption": "hello"}])
    pq.write_table(pa.table({"image": [encode(textured(6))], "caption": ["c"]}), tmp_path / "b.parquet")
    (tmp_path / "notes.txt").write_text("ignored")
    kinds = sorted(t["kind"] for t in plan_tasks(str(tmp_path)))
    assert kinds == ["jsonl", "parquet"]


def test_missing_input_raises_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="input not found"):
        plan_tasks(str(tmp_path / "nope"))


def test_underscore_named_inputs_are_read_and_hidden_files_skipped(tmp_path):
    """Roboflow names its annotations `_annotations.train.jsonl`: a `_` input is data; a dot-file (hidden, and
    the temp name of an atomic write) is not an input."""
    write_jsonl(tmp_path / "_annotations.train.jsonl", [{"image": "x.jpg", "caption": "hello"}])
    write_jsonl(tmp_path / ".a.jsonl.0123.tmp", [{"image": "x.jpg", "caption": "partial"}])
    (tmp_path / ".ipynb_checkpoints").mkdir()
    write_jsonl(tmp_path / ".ipynb_checkpoints" / "a-checkpoint.jsonl", [{"image": "x.jpg", "caption": "hidden"}])
    write_jsonl(tmp_path / ".hidden.jsonl", [{"image": "x.jpg", "caption": "hidden"}])
    (row,) = read_all(tmp_path)
    assert row["reason"] is None and row["location"] == "_annotations.train.jsonl:1"


def test_output_listings_still_skip_underscore_and_temp_files(tmp_path):
    from dataengine.core.storage import list_files

    for name in ("a.parquet", "_index.parquet", ".a.parquet.0123.tmp", "b.parquet.tmp"):
        (tmp_path / name).write_bytes(b"x")
    assert list_files(str(tmp_path), (".parquet",)) == [str(tmp_path / "a.parquet")]


def test_two_metas_naming_the_same_annotation_read_it_once(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"image": "x.jpg", "caption": "one"}, {"image": "y.jpg", "caption": "two"}])
    for meta in ("m1.json", "m2.json"):
        (tmp_path / meta).write_text(json.dumps({"set_a": {"root": "imgs", "annotation": "a.jsonl"}}))
    (tmp_path / "m3.json").write_text(json.dumps({"set_a": {"root": "imgs", "annotation": "./a.jsonl"}}))
    (tmp_path / "m4.json").write_text(json.dumps({"set_b": {"root": "imgs", "annotation": "a.jsonl"}}))
    rows = read_all(tmp_path)
    assert sorted((r["source"], r["location"]) for r in rows) == [
        ("set_a", "a.jsonl:1"), ("set_a", "a.jsonl:2"), ("set_b", "a.jsonl:1"), ("set_b", "a.jsonl:2")
    ]  # fmt: skip
    assert len({r["id"] for r in rows}) == 4


def test_invalid_meta_entry_rejects_every_line_of_its_annotation(tmp_path):
    """The entry's root is unusable, so its records cannot be read; each one is rejected, none vanishes."""
    write_jsonl(tmp_path / "a.jsonl", [{"image": f"{i}.jpg", "caption": f"c{i}"} for i in range(3)])
    (tmp_path / "meta.json").write_text(json.dumps({"odd": {"annotation": "a.jsonl", "root": 5}}))
    for rows in (read_all(tmp_path), read_all(tmp_path / "meta.json")):
        assert [(r["source"], r["location"], r["reason"]) for r in rows] == [
            ("odd", f"a.jsonl:{i}", "invalid_meta") for i in (1, 2, 3)
        ]
        assert all("root" in r["detail"] and r["record"] for r in rows)


def test_fixing_a_meta_entry_root_makes_its_file_a_new_shard(tmp_path):
    """An incremental run must read the file again once the root is fixed, not skip it as committed."""
    from dataengine.ledger import shard_key

    write_jsonl(tmp_path / "a.jsonl", [{"image": "x.jpg", "caption": "hello"}])
    keys = []
    for root in (5, "imgs"):
        (tmp_path / "meta.json").write_text(json.dumps({"odd": {"annotation": "a.jsonl", "root": root}}))
        (task,) = plan_tasks(str(tmp_path))
        keys.append(shard_key(task))
    assert keys[0] != keys[1]


def test_webdataset_directory_entries_are_skipped(tmp_path):
    img = encode(textured(3))
    with tarfile.open(tmp_path / "s.tar", "w") as tar:
        for name, data in [("d", None), ("d/000.jpg", img), ("d/000.txt", b"a caption"), ("d/sub", None)]:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    (row,) = read_all(tmp_path / "s.tar")
    assert row["reason"] is None and row["location"] == "s.tar:d/000"


def test_jsonl_that_cannot_be_opened_is_rejected_not_raised(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"image": "x.jpg", "caption": "hello"}])
    (task,) = plan_tasks(str(tmp_path))
    (tmp_path / "a.jsonl").unlink()  # gone between planning and reading
    (row,) = read_task(task, max_record_bytes=1 << 20)
    assert (row["stage"], row["reason"], row["location"]) == ("ingest", "unreadable_file", "a.jsonl:*")


def test_utf8_bom_is_accepted_in_jsonl_meta_and_tar_text(tmp_path):
    bom = b"\xef\xbb\xbf"
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "a.jsonl").write_bytes(bom + b'{"image": "x.jpg", "caption": "one"}\n')
    meta = {"set_a": {"root": "", "annotation": "ann/a.jsonl"}}
    (tmp_path / "meta.json").write_bytes(bom + json.dumps(meta).encode())
    (row,) = read_all(tmp_path)
    assert (row["source"], row["reason"], row["caption"], row["record"][0]) == ("set_a", None, "one", "{")
    (row,) = read_all(tmp_path / "ann" / "a.jsonl")
    assert row["reason"] is None
    img = encode(textured(3))
    _tar(tmp_path / "s.tar", [("a.jpg", img), ("a.txt", bom + b"caption"), ("b.jpg", img), ("b.json", bom + b"{}")])
    rows = read_all(tmp_path / "s.tar")
    assert [(r["reason"], r["caption"]) for r in rows] == [(None, "caption"), ("missing_text", None)]


@pytest.mark.parametrize("cut", [3, 10, 40])
def test_truncated_compressed_tar_is_rejected_not_raised(tmp_path, cut):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("a.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    (tmp_path / "s.tar").write_bytes(buf.getvalue()[:cut])  # 3 bytes: tarfile's gzip header parser raises TypeError
    (row,) = read_all(tmp_path / "s.tar")
    assert row["reason"] == "unreadable_shard"


def test_meta_annotation_path_no_file_system_takes_is_rejected(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [{"image": "x.jpg", "caption": "hello"}])
    meta = {"nul": {"annotation": "a\x00.jsonl"}, "long": {"annotation": "x" * 5000}, "ok": {"annotation": "a.jsonl"}}
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    rows = read_all(tmp_path)
    assert sorted((r["source"], r["reason"]) for r in rows) == [
        ("long", "invalid_meta"),
        ("nul", "invalid_meta"),
        ("ok", None),
    ]
