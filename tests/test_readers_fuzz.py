"""Fuzzing the readers: mutated JSONL, meta JSON, tar and Parquet inputs end, record by record, in exactly one of
samples and rejects (with a documented reason), and never raise. Seeded, so a failure replays; each format stops
after MAX_CASES cases or BUDGET_S seconds, whichever comes first."""

from __future__ import annotations

import io
import itertools
import json
import random
import re
import tarfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from conftest import encode, textured

from dataengine.core.rows import to_table
from dataengine.readers import plan_tasks, read_task

SEED = 16
MAX_CASES = 500
BUDGET_S = 6.0
MIN_CASES = 10  # a machine too slow for this many cases tests nothing worth a pass
MAX_ROWS = 10_000  # far above any case's records: more rows means a reader invents records
BOM = b"\xef\xbb\xbf"
STAGES_DOC = Path(__file__).resolve().parent.parent / "docs" / "stages.md"


def ingest_reasons() -> set[str]:
    """The ingest reject reasons docs/stages.md documents (its `(ingest)` table row)."""
    line = next(ln for ln in STAGES_DOC.read_text().splitlines() if ln.startswith("| (ingest)"))
    return set(re.findall(r"`([a-z0-9_]+)`", line))


REASONS = ingest_reasons()


def read_rows(input_uri: Path, max_record_bytes: int = 1 << 20) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for task in plan_tasks(str(input_uri)):
        json.dumps(task)  # tasks travel to Ray workers as JSON
        rows.extend(itertools.islice(read_task(task, max_record_bytes=max_record_bytes), MAX_ROWS + 1))
    assert len(rows) <= MAX_ROWS
    return rows


def check_rows(rows: list[dict[str, Any]]) -> None:
    """Each row has its own id and is either a sample (image and text, no reason) or a reject with a reason."""
    to_table(rows)  # every row fits the working schema (valid UTF-8 strings, right types)
    ids = [r["id"] for r in rows]
    assert all(isinstance(i, str) and i for i in ids)
    assert len(set(ids)) == len(ids), "duplicate ids"
    for r in rows:
        if r["reason"] is None:
            assert r["stage"] is None and r["detail"] is None
            assert r["image_path"] or r["image"] is not None, r
            assert r["caption"] is not None or r["conversations"], r
        else:
            assert r["stage"] == "ingest" and r["reason"] in REASONS, (r["reason"], r["detail"])


def nonblank_lines(data: bytes) -> list[int]:
    """1-based numbers of the lines a JSONL reader must account for: all but blank ones (a BOM counts as blank)."""
    return [i for i, line in enumerate(data.split(b"\n"), 1) if line.removeprefix(BOM).strip()]


# ---- mutations -------------------------------------------------------------------------------------------------


def _truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def _cut_short(rng: random.Random, data: bytes) -> bytes:
    """Only the first few bytes: a magic number or a compression header cut short."""
    return data[: rng.randrange(32)]


def _flip(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        if out:
            out[rng.randrange(len(out))] = rng.randrange(256)
    return bytes(out)


def _insert(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data) + 1)
    piece = rng.choice([BOM, b"\r\n", b"\x00", b"\n\n", b"\xff\xfe", b"{", b'"', bytes(rng.randbytes(16))])
    return data[:at] + piece + data[at:]


def _delete(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    return data[:at] + data[at + rng.randint(1, 64) :]


def _duplicate(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    return data[:at] + data[at : at + rng.randint(1, 512)] + data[at:]


def _append(rng: random.Random, data: bytes) -> bytes:
    return data + rng.randbytes(rng.randint(1, 1024))


def _flip_tail(rng: random.Random, data: bytes) -> bytes:
    """Byte flips in the last 512 bytes: a Parquet footer, a tar's last members and end blocks."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if out:
            out[len(out) - 1 - rng.randrange(min(512, len(out)))] = rng.randrange(256)
    return bytes(out)


BYTE_MUTATIONS: list[Callable[[random.Random, bytes], bytes]] = [
    _truncate,
    _flip,
    _insert,
    _delete,
    _duplicate,
    _append,
]


def mutate_bytes(rng: random.Random, data: bytes, extra: list[Callable[[random.Random, bytes], bytes]] = ()) -> bytes:
    for _ in range(rng.randint(1, 3)):
        data = rng.choice(BYTE_MUTATIONS + list(extra))(rng, data)
    return data


def _line_edit(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    i = rng.randrange(len(lines))
    edit = rng.randrange(6)
    if edit == 0:
        del lines[i]
    elif edit == 1:
        lines.insert(i, lines[i])
    elif edit == 2:
        lines[i] = BOM + lines[i]
    elif edit == 3:
        lines = [ln + b"\r" for ln in lines]
    elif edit == 4:
        lines.insert(i, rng.choice([b"", b"   ", b"\t\r", b"null", b"[]", b"\x00\x00", b'{"image": 5}']))
    else:
        rng.shuffle(lines)
    return b"\n".join(lines)


def run_cases(make_case: Callable[[random.Random, Path], None], tmp_path: Path) -> int:
    """Run seeded cases until MAX_CASES or BUDGET_S; return how many ran."""
    rng, start, n = random.Random(SEED), time.monotonic(), 0
    while n < MAX_CASES and time.monotonic() - start < BUDGET_S:
        case_dir = tmp_path / f"case{n}"
        case_dir.mkdir()
        try:
            make_case(rng, case_dir)
        except AssertionError as exc:
            raise AssertionError(f"case {n} (seed {SEED}) in {case_dir}: {exc}") from exc
        n += 1
    assert n >= MIN_CASES
    return n


# ---- inputs ----------------------------------------------------------------------------------------------------

RECORDS: list[dict[str, Any]] = [
    {"id": "a", "image": "img/a.jpg", "caption": "a cat on a mat"},
    {"id": 2, "image": ["img/b.jpg"], "caption": "一只猫", "caption_zh": "一只猫"},
    {
        "image": "img/c.jpg",
        "conversations": [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": "A"}],
    },
    {"image": "img/d.jpg", "text": "plain text field"},
    {"image": "img/e.jpg", "conversations": json.dumps([{"from": "human", "value": "hi"}])},
]


def jsonl_bytes(rng: random.Random) -> bytes:
    recs = [rng.choice(RECORDS) for _ in range(rng.randint(1, 8))]
    return b"".join(json.dumps(r, ensure_ascii=rng.random() < 0.5).encode() + b"\n" for r in recs)


def test_fuzz_jsonl(tmp_path: Path) -> None:
    def case(rng: random.Random, d: Path) -> None:
        data = mutate_bytes(rng, jsonl_bytes(rng), [_line_edit, _line_edit])
        (d / "a.jsonl").write_bytes(data)
        rows = read_rows(d / "a.jsonl")
        check_rows(rows)
        assert [r["location"] for r in rows] == [f"a.jsonl:{i}" for i in nonblank_lines(data)]

    run_cases(case, tmp_path)


def test_fuzz_meta(tmp_path: Path) -> None:
    """Directories of meta JSONs and annotation files: every non-blank line of every JSONL file is accounted
    for (read through a meta, read on its own, or rejected), whatever the metas say."""

    def entry(rng: random.Random) -> Any:
        good = {"root": rng.choice(["img", "", "/abs/img"]), "annotation": rng.choice(["ann/a.jsonl", "ann/b.jsonl"])}
        odd = rng.choice(
            [
                {"root": 5},
                {"root": ["x"]},
                {"annotation": 7},
                {"annotation": ""},
                {"annotation": "ann"},
                {"annotation": "./ann/../ann/a.jsonl"},
                {"annotation": "nope.jsonl"},
                {"annotation": "c.jsonl"},
                {"annotation": "meta.json"},
                {"annotation": "a\x00.jsonl"},
                {"annotation": "x" * 5000},
            ]
        )
        return rng.choice([good, good, {**good, **odd}, None, [], "ann/a.jsonl"])

    def case(rng: random.Random, d: Path) -> None:
        (d / "ann").mkdir()
        files = {"ann/a.jsonl": jsonl_bytes(rng), "ann/b.jsonl": jsonl_bytes(rng), "_c.jsonl": jsonl_bytes(rng)}
        for name in ("meta.json", "m2.json")[: rng.randint(1, 2)]:
            meta = {rng.choice(["set_a", "set_b", "set_c"]): entry(rng) for _ in range(rng.randint(1, 4))}
            raw = json.dumps(meta, ensure_ascii=False).encode()
            files[name] = mutate_bytes(rng, raw) if rng.random() < 0.5 else raw
        for name in list(files):
            if name.endswith(".jsonl") and rng.random() < 0.3:
                files[name] = mutate_bytes(rng, files[name], [_line_edit])
        for name, data in files.items():
            (d / name).write_bytes(data)
        rows = read_rows(d)
        check_rows(rows)
        seen = {r["location"] for r in rows}
        for name, data in files.items():
            if name.endswith(".jsonl"):
                missing = [i for i in nonblank_lines(data) if f"{name}:{i}" not in seen]
                assert not missing, f"{name} lines {missing} vanished"

    run_cases(case, tmp_path)


def tar_bytes(rng: random.Random, img: bytes) -> bytes:
    buf = io.BytesIO()
    mode = rng.choice(["w", "w", "w:gz", "w:bz2", "w:xz"])
    fmt = rng.choice([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
    with tarfile.open(fileobj=buf, mode=mode, format=fmt) as tar:

        def add(name: str, data: bytes | None, kind: bytes = tarfile.REGTYPE) -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            if data is None:
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

        for i in range(rng.randint(1, 6)):
            key = rng.choice([f"{i:03d}", f"dir/{i:03d}", f"odd.{i}", f"dé{i}", f"{'long' * 30}/{i}"])
            if rng.random() < 0.2:
                add(key.rsplit("/", 1)[0] if "/" in key else "dir", None, tarfile.DIRTYPE)
            add(f"{key}.jpg", img)
            text = rng.choice([b"a caption", BOM + b"caption", json.dumps(RECORDS[0]).encode(), b"\xff\xfe", b"[]"])
            add(f"{key}.{rng.choice(['txt', 'json'])}", text)
            if rng.random() < 0.1:
                add(f"{key}.lnk", None, tarfile.SYMTYPE)
            if rng.random() < 0.1:
                add(f"garbage{i}", rng.randbytes(rng.randint(0, 2048)))
    return buf.getvalue()


def test_fuzz_webdataset(tmp_path: Path) -> None:
    img = encode(textured(1, (32, 24)))

    def case(rng: random.Random, d: Path) -> None:
        data = tar_bytes(rng, img)
        if rng.random() < 0.8:
            data = mutate_bytes(rng, data)
        (d / "s.tar").write_bytes(data)
        check_rows(read_rows(d / "s.tar", max_record_bytes=rng.choice([1 << 20, 512])))

    run_cases(case, tmp_path)


def test_fuzz_parquet(tmp_path: Path) -> None:
    img = encode(textured(2, (32, 24)))
    conv = [{"from": "human", "value": "<image>\nQ?"}, {"from": "gpt", "value": "A."}]

    def case(rng: random.Random, d: Path) -> None:
        n = rng.randint(1, 12)
        columns: dict[str, Any] = {
            "id": [f"p{i}" for i in range(n)],
            "image": [rng.choice([img, b"", None]) for _ in range(n)],
            "caption": [rng.choice(["a caption", "中文说明", None]) for _ in range(n)],
        }
        if rng.random() < 0.3:
            columns["conversations"] = [rng.choice([conv, None]) for _ in range(n)]
        buf = io.BytesIO()
        pq.write_table(
            pa.table(columns), buf, row_group_size=rng.randint(1, 4), compression=rng.choice(["none", "zstd"])
        )
        data = mutate_bytes(rng, buf.getvalue())
        (d / "d.parquet").write_bytes(data)
        rows = read_rows(d / "d.parquet")
        check_rows(rows)
        if [r["reason"] for r in rows] != ["unreadable_file"]:
            assert [r["location"] for r in rows] == [f"d.parquet:{i}" for i in range(len(rows))]

    run_cases(case, tmp_path)
