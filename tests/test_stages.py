"""The stage contract: every registered stage declares a kind and a config, the wrapper gives row and batch
stages the same reject pass-through and per-row isolation, and a stage added as one file plus one registry line
(the `blocklist` example of docs/stages.md) runs in a pipeline."""

from __future__ import annotations

import polars as pl
import pytest
from conftest import encode, row, textured, write_jsonl

from dataengine import pipeline, runner
from dataengine.core.rows import Reject, to_table
from dataengine.ops import REGISTRY, BatchStage, DatasetStage, RowStage, RunContext
from dataengine.ops.base import Worker


def test_every_registered_stage_has_a_kind_and_its_own_config():
    for op, stage in REGISTRY.items():
        assert stage.name == op and stage.kind in ("row", "batch", "dataset")
        assert issubclass(stage, (RowStage, BatchStage, DatasetStage))
        assert stage.Config.model_fields["op"].default == op


class Flaky(BatchStage):
    """A batch stage that breaks on one row: the whole batch raises, the wrapper finds the row."""

    name = "text"  # borrows the text stage's config for the test
    Config = REGISTRY["text"].Config

    def setup(self) -> None:
        self.calls = 0

    def process_batch(self, rows):
        self.calls += 1
        if any(r["caption"] == "boom" for r in rows):
            raise RuntimeError("boom")
        if any(r["caption"] == "refuse" for r in rows):
            raise Reject("refused", "a batch stage may reject by raising too, when alone")
        return [{**r, "text_key": "seen"} for r in rows]


def test_the_wrapper_isolates_rows_and_passes_rejects_through():
    ctx = RunContext("r", "p", "/tmp/unused", "/tmp/unused", metrics=False)
    worker = Worker(Flaky, {"op": "text"}, ctx)
    rows = [row(id="a", caption="fine"), row(id="b", caption="boom"), row(id="c", caption="fine too")]
    rows.append(row(id="e", caption="refuse"))
    rows.append({**row(id="d", caption="earlier"), "stage": "image", "reason": "too_small", "detail": "x"})
    out = {r["id"]: r for r in worker.table(to_table(rows)).to_pylist()}
    assert out["a"]["text_key"] == "seen" and out["c"]["text_key"] == "seen"
    assert (out["b"]["stage"], out["b"]["reason"]) == ("text", "internal_error") and "boom" in out["b"]["detail"]
    assert (out["d"]["stage"], out["d"]["reason"], out["d"]["text_key"]) == ("image", "too_small", None)
    assert (out["e"]["stage"], out["e"]["reason"]) == ("text", "refused")


def test_a_stage_added_as_one_file_runs_in_a_pipeline(ray_local, tmp_path):
    data = tmp_path / "data"
    (data / "img").mkdir(parents=True)
    captions = ["A lake at dawn with mist over the water.", "A mountain photo with a WATERMARK across it.",
                "一张带有水印的风景照片。", "Watermarks are not named here, only watermarking art."]  # fmt: skip
    recs = []
    for i, caption in enumerate(captions):
        (data / "img" / f"{i}.png").write_bytes(encode(textured(700 + i), "PNG"))
        recs.append({"image": f"img/{i}.png", "caption": caption})
    write_jsonl(data / "a.jsonl", recs)
    spec = pipeline.parse(
        {
            "name": "blocked",
            "ray": {"progress": False},
            "stages": [
                {"op": "resolve"},
                {"op": "image"},
                {"op": "text"},
                {"op": "blocklist", "terms": ["watermark", "水印"]},
                {"op": "export"},
            ],
        }
    )
    record = runner.run(spec, input_uri=str(data), storage=str(tmp_path / "st"))
    rejects = pl.read_parquet(record["files"]["rejects"]).sort("location")
    assert rejects.select("stage", "reason").rows() == [("blocklist", "blocked_term")] * 2
    assert "WATERMARK" in rejects["detail"][0] and "水印" in rejects["detail"][1]
    assert record["accounting"]["accepted"] == 2  # whole words only: "Watermarks", "watermarking" pass


def test_the_spec_refuses_a_stage_before_what_it_needs():
    with pytest.raises(pipeline.PipelineError, match=r"blocklist\) needs \['text'\]"):
        pipeline.parse({"name": "x", "stages": [{"op": "blocklist", "terms": ["a"]}, {"op": "export"}]})
