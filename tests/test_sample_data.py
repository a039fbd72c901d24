"""The offline sample dataset: layout, parseable records, decodable images, documented defects, determinism."""

from __future__ import annotations

import io
import itertools
import json
import random
import struct
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image
from rich.console import Console

from dataengine import sample_data
from dataengine.core.rows import Reject, is_rejected, reject
from dataengine.ops import REGISTRY, RowStage
from dataengine.readers import plan_tasks, read_task
from dataengine.sample_data import DEFECTS, build_dataset, ensure

PIPELINE = Path(__file__).resolve().parents[1] / "pipelines" / "demo.yaml"
UNREADABLE = {"decode_error", "empty_file", "not_an_image", "missing_file", "path_outside_root", "too_many_pixels"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("sample") / "demo"
    return root, build_dataset(str(root))


def records(path: Path) -> list[dict]:
    """The parseable records of a JSONL file (the deliberately broken lines skipped)."""
    out = []
    for line in path.read_bytes().splitlines():
        try:
            out.append(json.loads(line.decode("utf-8")))
        except ValueError:  # includes UnicodeDecodeError
            continue
    return out


def test_meta_names_every_annotation_with_its_length(demo):
    root, counts = demo
    meta = json.loads((root / "meta.json").read_text())
    assert set(meta) == {"photos", "documents", "defects"}
    for name, entry in meta.items():
        assert entry["root"] == "images" and entry["repeat_time"] == 1 and entry["data_augment"] is False
        assert len((root / entry["annotation"]).read_bytes().splitlines()) == entry["length"] == counts[name]
    assert counts["photos"] >= 15 and counts["documents"] == 16 and counts["defects"] == len(DEFECTS)


def test_only_the_two_deliberately_broken_lines_fail_to_parse(demo):
    root, _ = demo
    bad = []
    for path in sorted(root.glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            try:
                rec = json.loads(line.decode("utf-8"))
            except ValueError:
                bad.append(line)
                continue
            assert rec["id"] and isinstance(rec["image"], str)
    assert len(bad) == 2
    assert bad[0].startswith(b'{"id": "broken"') and b"\xff\xfe" in bad[1]


def test_images_meant_to_be_valid_decode(demo):
    root, _ = demo
    checked = 0
    for path in sorted(root.glob("*.jsonl")):
        for rec in records(path):
            if DEFECTS.get(rec["id"], ("", "accepted"))[1] in UNREADABLE:
                continue
            with Image.open(root / "images" / rec["image"]) as img:
                img.load()
            checked += 1
    assert checked >= 50


def test_bomb_png_claims_40000_square_in_a_tiny_file(demo):
    path = demo[0] / "images" / "defects" / "bomb_40000x40000.png"
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (40000, 40000)
    assert len(data) < 64 * 1024
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)


def test_parquet_and_webdataset_shard(demo):
    root, counts = demo
    table = pq.read_table(root / "web.parquet")
    assert table.column_names == ["id", "image", "caption"] and table.num_rows == counts["web_parquet"] == 8
    for data in table.column("image").to_pylist():
        Image.open(io.BytesIO(data)).load()
    with tarfile.open(root / "shards" / "web-000000.tar") as tar:
        names = tar.getnames()
    keys = {name.split(".")[0] for name in names}
    assert len(keys) == counts["web_tar"] == 8
    assert sum(n.endswith(".jpg") for n in names) == 7 and sum(n.endswith(".json") for n in names) == 2
    assert [k for k in keys if f"{k}.jpg" not in names] == [max(keys)]


def test_complete_marker_readme_and_no_leftovers(demo):
    root, counts = demo
    assert json.loads((root / ".complete").read_text()) == counts
    readme = (root / "README.md").read_text()
    for rid, (_, reason) in DEFECTS.items():
        assert f"| `{rid}` |" in readme and f"`{reason}`" in readme
    assert [p.name for p in root.parent.iterdir()] == ["demo"]


def test_defects_get_the_documented_reasons_from_the_demo_stages(demo):
    """Run the demo pipeline's row stages in-process, then its image+text dedup rule, on the whole dataset."""
    root, _ = demo
    spec = yaml.safe_load(PIPELINE.read_text())
    row_stages = {op: stage for op, stage in REGISTRY.items() if issubclass(stage, RowStage)}
    ops = [row_stages[s["op"]](row_stages[s["op"]].Config(**s)) for s in spec["stages"] if s["op"] in row_stages]
    threshold = next(s.get("hamming_threshold", 4) for s in spec["stages"] if s["op"] == "dedup")
    rows = []
    for task in plan_tasks(str(root)):
        for row in read_task(task, max_record_bytes=1 << 20):
            for op in ops:
                if is_rejected(row):
                    break
                try:
                    row = op.process(row)
                except Reject as exc:
                    reject(row, op.name, exc.reason, exc.detail)
            rows.append(row)
    reasons = {r["source_key"]: r["reason"] for r in rows if r["source"] == "defects"}
    passes_row_stages = {"accepted", "duplicate_exact", "duplicate_near"}  # dedup is a later, global step
    for rid, (_, expected) in DEFECTS.items():
        if rid not in ("broken", "invalid-utf8"):  # no id can be read from those two lines
            assert reasons[rid] == (None if expected in passes_row_stages else expected), rid
    assert sorted(r for k, r in reasons.items() if k not in DEFECTS) == ["invalid_json", "invalid_utf8"]
    others = [r for r in rows if r["source"] != "defects"]
    assert [r["reason"] for r in others if r["reason"]] == ["missing_image"]  # the text-only shard key
    accepted = [r for r in rows if not is_rejected(r)]
    dups = set()
    for a, b in itertools.combinations(accepted, 2):
        distance = bin(int(a["phash"], 16) ^ int(b["phash"], 16)).count("1")
        if a["text_key"] == b["text_key"] and (a["pixel_hash"] == b["pixel_hash"] or distance <= threshold):
            dups.add(frozenset((a["source_key"], b["source_key"])))
    assert dups == {
        frozenset({"photo-rocket", "duplicate-exact"}),
        frozenset({"photo-grace_hopper", "duplicate-near"}),
    }


def test_same_seed_gives_identical_files_and_rebuild_replaces_in_place(demo, tmp_path):
    root, counts = demo
    again = tmp_path / "again"
    build_dataset(str(again), seed=1)
    assert build_dataset(str(again)) == counts
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        assert (again / path.relative_to(root)).read_bytes() == path.read_bytes(), path
    assert [p.name for p in tmp_path.iterdir()] == ["again"]


def test_ensure_builds_only_when_incomplete(demo, tmp_path, monkeypatch, capsys):
    root, _ = demo
    before = (root / ".complete").stat().st_mtime_ns

    def must_not_build(*args, **kwargs):
        raise AssertionError("ensure rebuilt a complete dataset")

    with monkeypatch.context() as patch:
        patch.setattr(sample_data, "build_dataset", must_not_build)
        assert ensure(str(root)) == str(root)
    assert "already built" in capsys.readouterr().out
    assert (root / ".complete").stat().st_mtime_ns == before
    out = io.StringIO()
    target = str(tmp_path / "fresh")
    assert ensure(target, console=Console(file=out, width=300)) == target
    assert (tmp_path / "fresh" / ".complete").exists() and "built" in out.getvalue()


def test_scaled_samples(tmp_path):
    root = tmp_path / "scaled"
    counts = build_dataset(str(root), scale=20)
    meta = json.loads((root / "meta.json").read_text())
    assert counts["scaled"] == meta["scaled"]["length"] == 20
    recs = records(root / "scaled.jsonl")
    assert [r["id"] for r in recs] == [f"scaled-{i:06d}" for i in range(20)]
    for rec in recs:
        assert rec["caption"] and rec["image"].startswith("scaled/")
        with Image.open(root / "images" / rec["image"]) as img:
            img.load()
            assert min(img.size) >= 32


def test_without_the_cjk_font_documents_and_english_captions_are_english_only(monkeypatch):
    from dataengine.sample_data import charts, common, documents

    for module in (common, charts, documents):  # each imported the flag by value
        monkeypatch.setattr(module, "CJK", False)
    common.font.cache_clear()
    try:
        for name, (render, sizes) in documents.RENDERERS.items():
            img, texts = render(random.Random(7), sizes[0], 0)
            assert img.size == sizes[0]
            assert not any("\u4e00" <= c <= "\u9fff" or c == "¥" for c in texts["en"] + texts["qa_en"][1]), name
    finally:
        common.font.cache_clear()
