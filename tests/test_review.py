"""`dataengine review` and the review sample: deterministic per-group sampling by hashed id, the review Parquet
(schema review.v1, empty verdicts), verdicts read back by `inspect` as precision, one-line errors, the report's
review tables. Runs are Parquet files written here in the run schemas (no Ray), plus one real run on Ray."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import encode, textured, write_jsonl
from PIL import Image

from dataengine import manifest, pipeline, runner
from dataengine.cli import main
from dataengine.core import schema
from dataengine.core.ids import run_token, sample_id
from dataengine.report import render, review

RUN = "t-20250101-000000-abcd"
XSS = "<script>alert(1)</script> tiny"
REASONS = {("image", "too_small"): 12, ("text", "caption_too_short"): 3, ("image", "internal_error"): 1,
           ("translate", "internal_error"): 2}  # fmt: skip


def invoke(storage, *args):
    return CliRunner().invoke(main, ["--storage", str(storage), *args], catch_exceptions=False)


def one_line_error(res, *words: str) -> None:
    """A user's mistake: exit 1, a single `Error:` line naming it, no traceback."""
    assert res.exit_code == 1 and "Traceback" not in res.output, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output
    for word in words:
        assert word in res.output, res.output


def write_parts(folder, table: pa.Table, parts: int) -> list[str]:
    """The table split over `parts` Parquet files (as export writes one per batch), paths returned."""
    folder.mkdir(parents=True, exist_ok=True)
    step = -(-len(table) // parts)
    out = []
    for i in range(parts):
        path = folder / f"part-test-{i}.parquet"
        pq.write_table(table.slice(i * step, step), path, row_group_size=4)  # several row groups per file
        out.append(str(path))
    return out


def fake_run(tmp_path, run_id: str = RUN, accepted: int = 30, reasons=None, parts: int = 3) -> dict:
    """A committed run written directly in the samples/rejects schemas: inline and path-based images, an English
    and a Chinese sample, rejects whose records name source images, one raw record that is not JSON."""
    reasons = REASONS if reasons is None else reasons
    data, storage = tmp_path / "data", tmp_path / "storage"
    (data / "img").mkdir(parents=True)
    output = storage / "runs" / run_id
    samples = []
    for i in range(accepted):
        path_based = i % 2 == 0
        if path_based:
            (data / "img" / f"s{i}.jpg").write_bytes(encode(textured(i, (96, 64))))
        zh = i == 1
        samples.append(
            {
                "id": sample_id("a.jsonl", f"a.jsonl:{i + 1}"),
                "source": "a.jsonl",
                "source_key": f"a.jsonl:{i + 1}",
                "location": f"a.jsonl:{i + 1}",
                "run_id": run_id,
                "image": None if path_based else encode(textured(i, (96, 64))),
                "image_format": "JPEG",
                "image_path": f"img/s{i}.jpg" if path_based else None,
                "image_root": str(data) if path_based else None,
                "width": 96,
                "height": 64,
                "pixel_hash": f"{i:032x}",
                "phash": f"{i:016x}",
                "caption": "一张彩色抽象纹理的图片" if zh else f"An abstract texture, number {i}. {XSS}",
                "caption_zh": None if zh else f"一张抽象纹理图片，第 {i} 号",
                "language": "zh" if zh else "en",
                "match_en": 0.5 + i / 100,
            }
        )
    rejects = []
    n = 0
    for (stage, reason), count in reasons.items():
        for _ in range(count):
            n += 1
            (data / "img" / f"r{n}.jpg").write_bytes(encode(textured(1000 + n, (80, 80))))
            rec = json.dumps({"image": f"img/r{n}.jpg", "caption": f"Rejected caption {n} {XSS}"})
            rejects.append(
                {
                    "id": sample_id("a.jsonl", f"a.jsonl:{1000 + n}"),
                    "source": "a.jsonl",
                    "source_key": f"a.jsonl:{1000 + n}",
                    "location": f"a.jsonl:{1000 + n}",
                    "run_id": run_id,
                    "stage": stage,
                    "reason": reason,
                    "detail": f"detail of {n}",
                    "record": rec if n != 2 else '{"image": "img/r2.jpg", "caption": ',
                }
            )
    files = []
    for name, rows in (("samples", samples), ("rejects", rejects)):
        if rows:
            table = schema.conform(pa.Table.from_pylist(rows), schema.load(name))
            files += [{"table": name, "file": f} for f in write_parts(output / name, table, parts)]
    stages = [{"op": "resolve"}, {"op": "image"}, {"op": "text"}, {"op": "export"}]
    record = manifest.started(run_id, "t", {"stages": stages}, str(data), str(output), 1.7e9)
    check = {"ok": True, "inputs": accepted + n, "accepted": accepted, "rejected": n, "missing": 0,
             "ids_in_both_or_twice": 0}  # fmt: skip
    record = manifest.finished(record, files, check, 1.0, "test")
    manifest.commit(str(output), str(output), record)
    return record


@pytest.fixture
def run(tmp_path):
    return fake_run(tmp_path)


def groups_of(table: pa.Table) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for g, i in zip(table.column("group").to_pylist(), table.column("id").to_pylist(), strict=True):
        out.setdefault(g, []).append(i)
    return out


def test_sample_is_deterministic_capped_and_covers_every_reason(run):
    table = review.build(run, per_reason=5)
    assert table.equals(review.build(run, per_reason=5))  # same run, same sample, same order
    groups = groups_of(table)
    expected = {review.group_of(s, r) for s, r in REASONS}
    assert set(groups) == {"accepted"} | expected  # internal_error at two stages: two groups
    assert list(groups)[0] == "accepted"
    sizes = {"accepted": 30} | {review.group_of(s, r): n for (s, r), n in REASONS.items()}
    for group, ids in groups.items():
        assert len(ids) == min(5, sizes[group]) and len(set(ids)) == len(ids)
    assert dict(zip(table.column("group").to_pylist(), table.column("group_rows").to_pylist(), strict=True)) == sizes
    # the lowest keys of each group (checked against every id of the run), in rank order
    salt = review._salt(RUN)
    all_ids = {g: [] for g in sizes}
    for name, files in run["files"].items():
        for t in map(pq.read_table, files):
            col = ["accepted"] * len(t) if name == "samples" else [
                review.group_of(s, r) for s, r in zip(t["stage"].to_pylist(), t["reason"].to_pylist(), strict=True)
            ]  # fmt: skip
            for g, i in zip(col, t["id"].to_pylist(), strict=True):
                all_ids[g].append(i)
    for group, ids in groups.items():
        assert ids == sorted(all_ids[group], key=lambda i: int(review.keys(salt, [i])[0]))[:5]
    ranks = table.column("rank").to_pylist()
    assert ranks[:5] == [0, 1, 2, 3, 4]
    # a larger sample starts with the smaller one; another run id draws another sample
    bigger = groups_of(review.build(run, per_reason=8))
    assert all(bigger[g][: len(ids)] == ids for g, ids in groups.items())
    other = groups_of(review.build({**run, "run_id": "t-other"}, per_reason=5))
    assert other["accepted"] != groups["accepted"]


def test_choosing_reads_only_ids_and_fetching_only_the_row_groups_of_chosen_rows(run, monkeypatch):
    seen = []
    real = review._batches

    def spy(file, columns, batch_size, row_groups=None):
        seen.append((file, tuple(columns), row_groups))
        return real(file, columns, batch_size, row_groups)

    monkeypatch.setattr(review, "_batches", spy)
    review.build(run, per_reason=2)
    with_images = [s for s in seen if "image" in s[1]]
    assert with_images and all(s[2] is not None and len(s[2]) == 1 for s in with_images)
    choosing = [s for s in seen if "image" not in s[1]]
    assert {s[1] for s in choosing} == {("id",), ("id", "stage", "reason")}
    total_groups = sum(pq.ParquetFile(f).num_row_groups for fs in run["files"].values() for f in fs)
    assert len(with_images) < total_groups  # not every row group: only those holding a chosen row


def test_review_file_schema_texts_and_thumbnails(run, tmp_path):
    res = invoke(tmp_path / "storage", "review", RUN, "--per-reason", "4")
    assert res.exit_code == 0, res.output
    path = review.path_for(run)
    assert path.endswith(f"/review/review-{run_token(RUN)}.parquet") and path.startswith(run["output"])
    assert path in res.output.replace("\n", "") and "dataengine inspect" in res.output
    table = pq.read_table(path)
    assert table.schema.equals(schema.load("review"), check_metadata=False)
    assert table.schema.metadata[b"dataengine.schema"] == b"review.v1"
    assert table.column("verdict").null_count == len(table)
    assert table.column("run_id").to_pylist() == [RUN] * len(table)
    rows = table.to_pylist()
    accepted = [r for r in rows if r["group"] == "accepted"]
    assert len(accepted) == 4 and all(r["stage"] is None and r["record"] is None for r in accepted)
    for r in accepted:  # English caption and its translation; a Chinese source sits in text_zh
        assert (r["text_en"] is None and r["text_zh"] == "一张彩色抽象纹理的图片") or (
            r["text_en"].startswith("An abstract texture") and r["text_zh"].startswith("一张抽象纹理图片")
        )
        assert (r["image_ref"] is None) == (r["location"] in [f"a.jsonl:{i + 1}" for i in range(1, 30, 2)])
    rejected = [r for r in rows if r["group"] != "accepted"]
    assert all(r["group"] == f"{r['stage']}/{r['reason']}" and r["detail"] and r["record"] for r in rejected)
    broken = [r for r in rejected if not r["record"].endswith("}")]  # the record that is not JSON: no text, no image
    assert all(r["text_en"] is None and r["image_ref"] is None and r["thumbnail"] is None for r in broken)
    parsed = [r for r in rejected if r not in broken]
    assert parsed and all(r["text_en"].startswith("Rejected caption") for r in parsed)
    assert all(r["image_ref"].endswith(".jpg") and r["image_ref"].startswith(run["input"]) for r in parsed)
    for r in accepted + parsed:  # every image is readable (inline, or from a path inside the input root)
        thumb = Image.open(io.BytesIO(r["thumbnail"]))
        assert thumb.format == "JPEG" and max(thumb.size) <= review.THUMB_SIDE


def fill(path: str, verdicts: dict[str, list[str | None]]) -> None:
    """Write verdicts into a review file by group, as a person would with pyarrow."""
    table = pq.read_table(path)
    groups = table.column("group").to_pylist()
    seen: dict[str, int] = {}
    values = []
    for g in groups:
        i = seen.get(g, 0)
        seen[g] = i + 1
        given = verdicts.get(g, [])
        values.append(given[i] if i < len(given) else None)
    table = table.set_column(table.schema.get_field_index("verdict"), "verdict", pa.array(values, pa.string()))
    pq.write_table(table, path)


def test_verdicts_read_back_as_precision(run, tmp_path):
    storage = tmp_path / "storage"
    assert invoke(storage, "review", RUN, "--per-reason", "5").exit_code == 0
    path = review.path_for(run)
    shown = invoke(storage, "inspect", RUN, "--no-config")
    assert shown.exit_code == 0 and f"review    {path}: 0 of " in shown.output.replace("\n", "")
    assert "precision" not in shown.output
    fill(path, {"accepted": ["correct", "Correct ", "wrong", "", None], "image/too_small": ["correct"] * 4,
                "text/caption_too_short": ["wrong", "WRONG"]})  # fmt: skip
    groups = {g["group"]: g for g in review.precision(review.load(path), path, RUN)}
    acc = groups["accepted"]
    assert (acc["sampled"], acc["judged"], acc["correct"], acc["wrong"], acc["unjudged"]) == (5, 3, 2, 1, 2)
    assert acc["precision"] == pytest.approx(2 / 3) and acc["rows"] == 30
    lo, hi = acc["interval"]
    assert 0.2 < lo < 2 / 3 < hi < 0.95
    assert groups["image/too_small"]["precision"] == 1.0 and groups["text/caption_too_short"]["precision"] == 0.0
    assert groups["image/internal_error"]["precision"] is None and groups["image/internal_error"]["judged"] == 0
    shown = invoke(storage, "inspect", RUN, "--no-config")
    assert shown.exit_code == 0, shown.output
    cells = [[c.strip() for c in line.split("│")] for line in shown.output.splitlines() if line.count("│") == 5]
    table = {c[0]: c[1:] for c in cells}  # group: sampled/in run, judged, correct, precision, interval
    assert table["accepted"][:4] == ["5/30", "3", "2", "0.667"] and re.fullmatch(
        r"0\.\d\d-0\.\d\d", table["accepted"][4]
    )
    assert table["image/too_small"][1:4] == ["4", "4", "1.000"] and table["text/caption_too_short"][3] == "0.000"
    assert table["image/internal_error"] == ["1/1", "0", "0", "-", "-"]
    assert "9 of " in shown.output
    # the report shows the verdicts and each group's precision
    html = render.render(run, gallery_size=2, per_reason=3)
    assert "precision 0.67 (2 correct of 3 judged" in html and 'class="verdict-wrong"' in html


def test_verdicts_filled_with_polars_as_the_docs_show(run, tmp_path):
    import polars as pl

    storage = tmp_path / "storage"
    assert invoke(storage, "review", RUN, "--per-reason", "3").exit_code == 0
    path = review.path_for(run)
    df = pl.read_parquet(path)
    judged = dict.fromkeys(df.filter(pl.col("group") == "accepted")["id"].to_list(), "correct")
    df.with_columns(pl.col("id").replace_strict(judged, default=None).alias("verdict")).write_parquet(path)
    groups = {g["group"]: g for g in review.precision(review.load(path), path, RUN)}
    assert groups["accepted"]["judged"] == 3 and groups["accepted"]["precision"] == 1.0
    assert invoke(storage, "inspect", RUN, "--no-config").exit_code == 0


def test_bad_verdicts_and_missing_files_are_one_line(run, tmp_path):
    storage = tmp_path / "storage"
    assert invoke(storage, "review", RUN).exit_code == 0
    path = review.path_for(run)
    fill(path, {"accepted": ["correct", "yes", "yes", "maybe"]})
    one_line_error(invoke(storage, "inspect", RUN), "'yes' (2 rows)", "'maybe' (1 row)", "correct or wrong")
    one_line_error(invoke(storage, "review", RUN), "already holds verdicts", "--overwrite")
    assert "invalid verdict" in render.render(run, per_reason=2)  # the report still renders, naming the problem
    res = invoke(storage, "review", RUN, "--overwrite", "--per-reason", "2")
    assert res.exit_code == 0 and pq.read_table(path).column("verdict").null_count == pq.read_table(path).num_rows
    one_line_error(invoke(storage, "inspect", "nope-run"), "no run 'nope-run'")
    one_line_error(invoke(storage, "review", "nope-run"), "no run 'nope-run'")
    one_line_error(invoke(storage, "inspect", RUN, "--review", str(tmp_path / "none.parquet")), "no review file")
    pq.write_table(pa.table({"id": ["a"]}), tmp_path / "other.parquet")
    one_line_error(invoke(storage, "inspect", RUN, "--review", str(tmp_path / "other.parquet")), "no column")
    other = fake_run(tmp_path / "o", run_id="t-other", accepted=3, reasons={})
    out = tmp_path / "elsewhere.parquet"
    res = invoke(tmp_path / "o" / "storage", "review", "t-other", "--out", str(out))
    assert res.exit_code == 0 and f"--review {out}" in res.output.replace("\n", "")
    one_line_error(invoke(storage, "inspect", RUN, "--review", str(out)), "review of run t-other, not " + RUN)
    assert other["files"]["rejects"] == []
    assert set(groups_of(pq.read_table(out))) == {"accepted"}


def test_runs_without_rows_or_files_are_one_line(tmp_path):
    empty = fake_run(tmp_path, accepted=0, reasons={})
    one_line_error(invoke(tmp_path / "storage", "review", empty["run_id"]), "no samples or rejects to review")
    run = fake_run(tmp_path / "gone")
    for f in run["files"]["samples"]:
        Path(f).unlink()
    one_line_error(invoke(tmp_path / "gone" / "storage", "review", RUN), "file(s) that are gone")
    started = manifest.started("t-incomplete", "t", {"stages": []}, "x", str(tmp_path / "inc"), 1.7e9)
    manifest.write(str(tmp_path / "storage" / "runs" / "t-incomplete"), started, name=manifest.STARTED)
    one_line_error(invoke(tmp_path / "storage", "review", "t-incomplete"), "incomplete")


def test_report_shows_the_review_sample_escaped(run):
    html = render.render(run, gallery_size=2, per_reason=3)
    section = html[html.index('<section id="review">') : html.index("</section>", html.index('id="review"'))]
    for s, r in REASONS:
        assert f"{s}/{r}" in section
    assert section.count("<tr>") == 5 + 3 + 3 + 3 + 1 + 2  # a header per group, then up to 3 rows each
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section and "<script" not in html.lower()
    broken = "img/r2.jpg" in section  # the reject whose record is not JSON: shown raw, without an image
    assert ('<pre class="raw">' in section) == broken
    assert section.count('<img class="mini" src="data:image/jpeg;base64,') == 12 - broken
    assert "not sampled" in render.render(run, per_reason=0)


def test_real_run_review_and_inspect(ray_local, tmp_path):
    """A real clean run on Ray: every reason in its rejects table gets a group, the file follows the schema."""
    data = tmp_path / "data"
    (data / "img").mkdir(parents=True)
    recs = []
    for i in range(6):
        (data / "img" / f"{i}.png").write_bytes(encode(textured(500 + i), "PNG"))
        recs.append({"image": f"img/{i}.png", "caption": f"An abstract colourful texture, sample number {i}."})
    (data / "img" / "tiny.jpg").write_bytes(encode(textured(9, (16, 16))))
    recs += [
        {"image": "img/tiny.jpg", "caption": "A texture far too small to keep at all."},
        {"image": "img/missing.png", "caption": "A caption for a file that is not there."},
        {"image": "img/0.png", "caption": "ok"},
        b'{"image": "img/0.png", "caption": ',
    ]
    write_jsonl(data / "a.jsonl", recs)
    storage = tmp_path / "storage"
    spec = pipeline.load("clean", ["ray.progress=false"])
    record = runner.run(spec, input_uri=str(data), storage=str(storage))
    assert record["accounting"]["ok"]
    res = invoke(storage, "review", record["run_id"], "--per-reason", "3")
    assert res.exit_code == 0, res.output
    table = pq.read_table(review.path_for(record))
    assert table.schema.equals(schema.load("review"), check_metadata=False)
    rejects = pq.read_table(record["files"]["rejects"]).select(["stage", "reason"]).to_pylist()
    want = {"accepted"} | {review.group_of(r["stage"], r["reason"]) for r in rejects}
    got = groups_of(table)
    assert set(got) == want and {"resolve/missing_file", "image/too_small", "ingest/invalid_json"} <= want
    assert len(got["accepted"]) == 3 and table.column("thumbnail").null_count <= 2  # missing file, broken JSON
    assert table.equals(review.build(manifest.load(record["run_id"], str(storage)), per_reason=3))
    fill(review.path_for(record), {g: ["correct"] for g in got})
    shown = invoke(storage, "inspect", record["run_id"], "--no-config")
    assert shown.exit_code == 0 and f"{len(got)} of {len(table)} sampled rows judged" in shown.output.replace("\n", "")
