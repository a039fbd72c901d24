"""Pipeline specs: shipped specs validate; errors name the bad key; --set overrides; stage order rules."""

from __future__ import annotations

import pytest
import yaml

from dataengine import pipeline
from dataengine.core.config import Resources
from dataengine.pipeline import PipelineError, apply_override, parse

BASE = {"name": "t", "stages": [{"op": "resolve"}, {"op": "image"}, {"op": "export"}]}


@pytest.mark.parametrize("path", sorted(pipeline.PIPELINE_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_pipelines_validate(path):
    spec = pipeline.load(str(path))
    assert spec.stages[-1].op == "export"


def test_load_by_name_and_unknown_name():
    assert pipeline.load("clean").name == "clean"
    with pytest.raises(PipelineError, match="available: .*clean"):
        pipeline.load("nope")


def test_unknown_key_is_named():
    raw = {**BASE, "stages": [{"op": "resolve"}, {"op": "image", "min_sid": 3}, {"op": "export"}]}
    with pytest.raises(PipelineError, match=r"stages\.1\.image\.min_sid: Extra inputs are not permitted"):
        parse(raw)


def test_bad_value_is_named():
    raw = {**BASE, "stages": [{"op": "resolve"}, {"op": "image", "min_side": "big"}, {"op": "export"}]}
    with pytest.raises(PipelineError, match=r"stages\.1\.image\.min_side"):
        parse(raw)


def test_unknown_op_and_top_level_key():
    with pytest.raises(PipelineError, match="stages.0"):
        parse({**BASE, "stages": [{"op": "teleport"}, {"op": "export"}]})
    with pytest.raises(PipelineError, match="inptu"):
        parse({**BASE, "inptu": {}})


@pytest.mark.parametrize(
    ("ops", "msg"),
    [
        (["resolve", "image"], "export"),
        (["export", "resolve"], "export"),
        (["image", "export"], "needs \\['resolve'\\]"),
        (["resolve", "dedup", "image", "export"], "needs \\['image'\\]"),
        (["resolve", "image", "image", "export"], "more than once"),
        (["resolve", "image", "text", "language", "translate", "dedup", "export"], "'translate' must come after"),
        (["resolve", "image", "tile", "dedup", "export"], "'tile' must come after"),
        (["resolve", "image", "translate", "export"], "needs \\['language'\\]"),
    ],
)
def test_stage_order_rules(ops, msg):
    with pytest.raises(PipelineError, match=msg):
        parse({"name": "t", "stages": [{"op": o} for o in ops]})


def test_quality_before_translate_only_when_it_rates_no_translation():
    ops = ["resolve", "image", "text", "language", "quality", "dedup", "translate", "export"]
    stages = [{"op": o} for o in ops]
    stages[4].update(compute={"kind": "actors"})
    with pytest.raises(PipelineError, match="'translate' must come before 'quality'"):
        parse({"name": "t", "stages": stages})
    stages[4].update(translation_qe=False)
    assert [s.op for s in parse({"name": "t", "stages": stages}).stages] == ops  # before dedup too


def test_resources_and_compute_map_to_ray_args():
    spec = parse(
        {
            "name": "t",
            "stages": [
                {"op": "resolve"},
                {
                    "op": "image",
                    "batch_size": 8,
                    "resources": {"num_cpus": 2, "memory": 1000},
                    "compute": {"kind": "actors", "size": 3},
                },
                {"op": "export"},
            ],
        }
    )
    args = spec.stage("image").ray_args()
    assert args["num_cpus"] == 2 and args["memory"] == 1000
    assert args["batch_size"] is None  # Ray passes whole blocks; the stage cuts them into its 8 rows (ops.base)
    assert type(args["compute"]).__name__ == "ActorPoolStrategy"
    gpu = spec.stage("image").model_copy(update={"resources": Resources(num_gpus=1)}).ray_args()
    assert gpu["batch_size"] == 8 and gpu["num_gpus"] == 1  # Ray needs an integer batch size with GPUs


def test_set_overrides_by_op_name_index_and_yaml_values():
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    apply_override(raw, "stages.image.min_side=64")
    apply_override(raw, "stages.0.max_bytes=1000")
    apply_override(raw, "input.uri=/data/x")
    apply_override(raw, "stages.image.formats=[JPEG, PNG]")
    spec = parse(raw)
    assert spec.stage("image").min_side == 64 and spec.stage("resolve").max_bytes == 1000
    assert spec.input.uri == "/data/x" and spec.stage("image").formats == ["JPEG", "PNG"]


@pytest.mark.parametrize("bad", ["novalue", "stages.teleport.x=1", "stages=1=2x", "stages.image=3"])
def test_bad_overrides(bad):
    raw = yaml.safe_load(yaml.safe_dump(BASE))
    with pytest.raises(PipelineError):
        apply_override(raw, bad)
        parse(raw)


def test_yaml_is_safe_loaded(tmp_path):
    p = tmp_path / "evil.yaml"
    p.write_text("name: !!python/object/apply:os.system ['echo pwned']\nstages: []\n")
    with pytest.raises(PipelineError, match="not valid YAML"):
        pipeline.load(str(p))


def test_bilingual_pipeline_is_the_gpu_production_setup():
    spec = pipeline.load("bilingual")
    ops = [s.op for s in spec.stages]
    assert ops.index("translate") < ops.index("tile") < ops.index("score") < ops.index("filter") < ops.index("export")
    translate, score, filt = spec.stage("translate"), spec.stage("score"), spec.stage("filter")
    assert translate.engine == "vllm" and translate.resources.num_gpus == 1
    assert score.device == "cuda" and 0 < score.resources.num_gpus < 1 and score.compute.kind == "actors"
    assert filt.keep_top_fraction == 0.7 and filt.max_drift == 0.3
