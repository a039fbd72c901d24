"""Training the scorer with Ray Train (2 CPU workers, gloo) on a small shapes world: it beats chance clearly,
checkpoints and metrics land under storage/models, a killed run resumes from its last checkpoint, and a plain
InternVL checkpoint is fine-tuned with LoRA and saved merged."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch
from scorer_helpers import save_tiny_scorer

from dataengine import pipeline, runner, sample_data
from dataengine.scorer.model import load
from dataengine.scorer.train import STATE, TrainConfig, prepare, train


@pytest.fixture(scope="module")
def shapes_output(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("shapes")
    data = sample_data.ensure_shapes(str(root / "data"), 480, seed=3)
    spec = pipeline.load("shapes", ["ray.progress=false"])
    record = runner.run(spec, input_uri=data, storage=str(root / "storage"))
    assert record["accounting"]["ok"] and record["accounting"]["accepted"] == 480
    return root / "storage", record["output"]


def test_tiny_scorer_learns_to_tell_matched_from_hard_negative_captions(shapes_output):
    storage, output = shapes_output
    cfg = TrainConfig(name="t", version="v1", steps=360, generative_steps=240, eval_every=120, checkpoint_every=120)
    metrics = train(output, cfg, str(storage))
    final = metrics["final"]
    assert metrics["workers"] == 2 and metrics["heldout_examples"] > 60
    # caption likelihood separates matched captions from one-word-changed ones, in both languages
    assert final["auc_loglik_en"] >= 0.8 and final["auc_loglik_zh"] >= 0.8, final
    assert [h["step"] for h in metrics["history"]] == [120, 240, 360]
    assert metrics["history"][-1]["match_loss"] > 0 and metrics["history"][0]["match_loss"] == 0
    version = storage / "models" / "t" / "v1"
    assert json.loads((version / "metrics.json").read_text())["final"] == final
    assert (version / "model" / "model.safetensors").exists()
    scorer = load(str(version / "model"), device="cpu")
    assert scorer.meta.label == "t:v1" and scorer.meta.tiles == "thumbnail"
    with pytest.raises(FileExistsError):
        train(output, cfg, str(storage))


def test_killed_training_resumes_from_its_last_checkpoint(shapes_output):
    storage, output = shapes_output
    cfg = TrainConfig(name="r", version="v1", steps=20, generative_steps=10, eval_every=10, checkpoint_every=10)
    first = train(output, cfg, str(storage))
    version = storage / "models" / "r" / "v1"
    last = max((p for p in (version / "checkpoints").glob("checkpoint_*") if p.is_dir()), key=os.path.getmtime)
    state = torch.load(last / STATE, weights_only=True)
    assert state["step"] == 20 and len(state["optimizer"]["param_groups"]) == 1
    # as if killed after its last checkpoint: no exported model yet
    shutil.rmtree(version / "model")
    os.remove(version / "metrics.json")
    metrics = train(output, cfg.model_copy(update={"steps": 30}), str(storage))
    assert [h["step"] for h in metrics["history"]] == [10, 20, 30]
    assert metrics["history"][:2] == first["history"]  # steps 1-20 not redone: their records (and timings) kept
    assert isinstance(metrics["final"]["visual_position_r2"], float)  # the position metric is still recorded


def test_lora_fine_tune_of_a_plain_checkpoint(shapes_output, tmp_path):
    storage, output = shapes_output
    tiny = load(save_tiny_scorer(str(tmp_path)), device="cpu")
    plain = tmp_path / "internvl-plain-hf"
    tiny.model.save_pretrained(plain)
    tiny.tokenizer.save_pretrained(plain)
    cfg = TrainConfig(name="lora", base=str(plain), workers=1, steps=6, generative_steps=3, eval_every=6,
                      checkpoint_every=3, lr=5e-2, lora_r=4)  # fmt: skip
    trainable = [n for n, p in prepare(cfg, None, "cpu").model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)  # what trains is what is saved and merged
    metrics = train(output, cfg, str(storage))
    merged_dir = storage / "models" / "lora" / "v1" / "model"
    assert not (merged_dir / "adapter_config.json").exists()
    merged = load(str(merged_dir), device="cpu")
    assert merged.meta.base == str(plain) and "auc_match_en" in metrics["final"]
    names = dict(merged.model.named_parameters())
    assert not any("lora" in n for n in names)
    base_params = dict(tiny.model.named_parameters())
    q = next(n for n in names if n.endswith("q_proj.weight") and "language_model" in n)
    v = next(n for n in names if n.endswith("embed_tokens.weight"))
    assert not torch.equal(names[q], base_params[q])  # the adapter was merged into the attention weights
    assert torch.equal(names[v], base_params[v])  # and nothing outside LoRA's targets changed
