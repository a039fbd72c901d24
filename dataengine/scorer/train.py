"""`dataengine train scorer`: fine-tune an InternVL scorer on a run's accepted pairs with Ray Train.

A `TorchTrainer` runs the same loop on N workers (gloo on CPU, NCCL on GPU). The loop trains generatively
first (teacher-forced captions after the image, as InternVL's staged training does; a yes/no objective from
scratch stays at chance, see docs/scoring.md), then adds the yes/no matching objective on matched,
hard-negative and shuffled-caption examples in both languages. The tiny preset is trained in full; a real
checkpoint gets LoRA adapters (peft) merged at the end. Checkpoints, metrics (loss, held-out ROC-AUC) and the
final model go to `storage/models/<name>/<version>/`; a re-run resumes from the last checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import tempfile
import time
from typing import Any, Literal

from pydantic import Field

from dataengine.core.config import Strict
from dataengine.core.storage import join
from dataengine.scorer import examples as ex
from dataengine.scorer.model import ScorerMeta, build_tiny, load

STATE = "train_state.pt"
HISTORY = "history.json"


class TrainConfig(Strict):
    name: str = Field("scorer", pattern=r"^[A-Za-z0-9_.-]+$")
    version: str = Field("v1", pattern=r"^[A-Za-z0-9_.-]+$")
    base: str = Field("tiny", description="'tiny' (built from a config) or a local InternVL -hf checkpoint folder")
    workers: int = Field(2, ge=1)
    use_gpu: bool = False
    threads_per_worker: int = Field(1, ge=1, description="torch threads (and Ray CPUs) per worker")
    steps: int = Field(1600, ge=1, description="optimizer steps in all")
    generative_steps: int = Field(400, ge=0, description="steps of caption likelihood alone before yes/no joins")
    batch_size: int = Field(16, ge=2, description="samples per worker per step")
    lr: float = Field(1e-3, gt=0, description="peak learning rate: linear warm-up, then cosine decay to 10%")
    warmup_steps: int = Field(50, ge=0)
    holdout: float = Field(0.1, gt=0, lt=1, description="fraction of samples (by id) held out for ROC-AUC")
    eval_every: int = Field(400, ge=1)
    checkpoint_every: int = Field(200, ge=1)
    tiles: Literal["thumbnail", "all"] = "thumbnail"
    max_tiles: int = Field(6, ge=1)
    projector_lr_scale: float = Field(
        1.0, ge=0, description="the vision-to-text projector's learning rate as a fraction of lr; 0 freezes it"
    )
    lora_r: int = Field(16, ge=1)
    trust_remote_code: bool = False
    seed: int = 0


def _objective(scorer: Any) -> Any:
    """The loss as an nn.Module, so DDP's forward hooks see it: caption NLL (+ yes/no NLL after warm-up)."""
    import torch

    class Objective(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = scorer.model

        def forward(self, pixel: list[Any], caps: list[str], langs: list[str], match: tuple | None) -> Any:
            counts = [len(p) for p in pixel]  # one vision forward for the whole batch, split per sample
            feats = list(scorer.image_features(torch.cat([torch.as_tensor(p) for p in pixel])).split(counts))
            lm = -scorer.caption_logprob(feats, caps, langs).mean()
            if match is None:
                return lm, lm.detach(), torch.zeros(())
            idx, texts, mlangs, labels = match
            yes, no = scorer.yes_logprobs([feats[i] for i in idx], texts, mlangs)
            target = torch.tensor(labels, dtype=torch.bool, device=yes.device)
            m = -torch.where(target, yes, no).mean()
            return lm + m, lm.detach(), m.detach()

    return Objective()


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up to `lr`, then cosine decay to a tenth of it at the last step (a function of the step, so
    a resumed run continues on the same curve)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _param_groups(scorer: Any, cfg: TrainConfig) -> list[dict[str, Any]]:
    """Optimizer groups, each with its lr `scale`. At scale 1 one group of every trainable parameter in model
    order, as checkpoints before this option hold; otherwise the projector gets a group of its own (none when
    frozen at 0)."""
    trainable = [p for p in scorer.model.parameters() if p.requires_grad]
    if cfg.projector_lr_scale == 1:
        return [{"params": trainable, "scale": 1.0}]
    own = {id(p) for p in scorer.model.model.multi_modal_projector.parameters()}
    groups = [{"params": [p for p in trainable if id(p) not in own], "scale": 1.0}]
    if cfg.projector_lr_scale > 0 and (mine := [p for p in trainable if id(p) in own]):
        groups.append({"params": mine, "scale": cfg.projector_lr_scale})
    return groups


def _lora_wrapped(scorer: Any) -> bool:
    return hasattr(scorer.model.model.language_model, "peft_config")


def prepare(cfg: TrainConfig, source: str | None, device: str) -> Any:
    """The scorer to train: the tiny preset's full weights (from init or a checkpoint), or a real checkpoint
    with LoRA adapters on its language model (new, or restored from a checkpoint's adapter/), all else frozen."""
    import torch

    if cfg.base == "tiny":  # trained in full: float32 on GPU too (bf16 weights would round small updates away)
        return load(source, device=device, dtype=torch.float32)
    from peft import LoraConfig, PeftModel, get_peft_model

    meta = ScorerMeta(name=cfg.name, version=cfg.version, base=cfg.base, tiles=cfg.tiles, max_tiles=cfg.max_tiles)
    scorer = load(cfg.base, device=device, trust_remote_code=cfg.trust_remote_code, meta=meta)
    lm = scorer.model.model.language_model
    adapter = os.path.join(source, "adapter") if source else None
    if adapter and os.path.isdir(adapter):
        lm = PeftModel.from_pretrained(lm, adapter, is_trainable=True)
    else:
        targets = ["q_proj", "k_proj", "v_proj", "o_proj"]
        lm = get_peft_model(lm, LoraConfig(r=cfg.lora_r, lora_alpha=2 * cfg.lora_r, target_modules=targets))
    scorer.model.model.language_model = lm
    # only the adapters train (not the vision tower, projector or an untied lm_head): they alone are checkpointed
    # and merged, so the held-out AUC is the exported model's
    for pname, param in scorer.model.named_parameters():
        param.requires_grad_("lora_" in pname)
    return scorer


def _save(scorer: Any, optimizer: Any, step: int, history: list[dict[str, Any]], path: str) -> None:
    """A checkpoint: full weights (tiny) or the LoRA adapter alone, plus optimizer state and metric history."""
    import torch

    if _lora_wrapped(scorer):
        scorer.model.model.language_model.save_pretrained(os.path.join(path, "adapter"))
        scorer.tokenizer.save_pretrained(path)
        with open(os.path.join(path, "scorer.json"), "w", encoding="utf-8") as f:
            json.dump(scorer.meta.__dict__, f, indent=2)
    else:
        scorer.save(path)
    torch.save({"optimizer": optimizer.state_dict(), "step": step}, os.path.join(path, STATE))
    with open(os.path.join(path, HISTORY), "w", encoding="utf-8") as f:
        json.dump(history, f)


def export_model(cfg: TrainConfig, checkpoint_dir: str, target: str) -> None:
    """The servable model from the last checkpoint, LoRA merged in, written to `target` atomically."""
    tmp = f"{target}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    if cfg.base == "tiny":
        shutil.copytree(checkpoint_dir, tmp, ignore=shutil.ignore_patterns(STATE, HISTORY))
    else:
        scorer = prepare(cfg, checkpoint_dir, "cpu")
        scorer.model.model.language_model = scorer.model.model.language_model.merge_and_unload()
        scorer.save(tmp)
    if os.path.exists(target):
        shutil.rmtree(target)
    os.replace(tmp, target)


def train_loop(config: dict[str, Any]) -> None:
    """Per-worker loop (Ray Train): resume or start, train, evaluate and checkpoint on rank 0."""
    import numpy as np
    import ray.train
    import ray.train.torch
    import torch

    from dataengine.scorer.metrics import heldout_auc, position_r2
    from dataengine.shards import pixel_values

    cfg = TrainConfig.model_validate(config["train"])
    torch.set_num_threads(cfg.threads_per_worker)
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    device = str(ray.train.torch.get_device())
    checkpoint = ray.train.get_checkpoint() or (ray.train.Checkpoint(config["resume"]) if config["resume"] else None)
    start, history = 0, []
    ckpt_dir = checkpoint.to_directory() if checkpoint is not None else None
    scorer = prepare(cfg, ckpt_dir or config["init"], device)
    scorer.model.train()
    if cfg.projector_lr_scale == 0:  # before DDP wraps the model: frozen parameters take no part in its buckets
        scorer.model.model.multi_modal_projector.requires_grad_(False)
    objective = ray.train.torch.prepare_model(_objective(scorer))
    optimizer = torch.optim.AdamW(_param_groups(scorer, cfg), lr=cfg.lr)
    if ckpt_dir is not None:
        state = torch.load(os.path.join(ckpt_dir, STATE), weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
        start = state["step"]
        with open(os.path.join(ckpt_dir, HISTORY), encoding="utf-8") as f:
            history = json.load(f)
    held = ray.get(config["heldout"]) if rank == 0 else None
    rng = random.Random(cfg.seed * 1000 + rank * 7919 + start)
    shard = ray.train.get_dataset_shard("train")
    step, t0 = start, time.time()
    losses: list[tuple[float, float]] = []
    while step < cfg.steps:
        batches = shard.iter_batches(
            batch_size=cfg.batch_size,
            batch_format="pyarrow",
            drop_last=True,
            local_shuffle_buffer_size=256,
            local_shuffle_seed=rng.randrange(2**31),
        )
        for batch in batches:
            if step >= cfg.steps:
                break
            rows = batch.to_pylist()
            pixel = [pixel_values(scorer.select_tiles(r["tiles"])) for r in rows]
            langs = [rng.choice([lang for lang in ("en", "zh") if r[lang]]) for r in rows]
            caps = [r[lang] for r, lang in zip(rows, langs, strict=True)]
            match = ex.matching_batch(rows, rng) if step >= cfg.generative_steps else None
            loss, lm, m = objective(pixel, caps, langs, match)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(cfg, step) * group.get("scale", 1.0)  # older checkpoints: no scale
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            losses.append((float(lm), float(m)))
            record: dict[str, Any] = {}
            if step % cfg.eval_every == 0 or step == cfg.steps:
                record = {"step": step, "seconds": round(time.time() - t0, 1)}
                record["lm_loss"] = round(float(np.mean([a for a, _ in losses])), 4)
                record["match_loss"] = round(float(np.mean([b for _, b in losses])), 4)
                losses = []
                if rank == 0:
                    scorer.model.eval()
                    record.update(heldout_auc(scorer, held["tiles"], held["examples"]))
                    record["visual_position_r2"] = round(position_r2(scorer, held["tiles"]), 3)
                    scorer.model.train()
                    history.append(record)
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                with tempfile.TemporaryDirectory() as tmp:
                    ckpt = None
                    if rank == 0:
                        _save(scorer, optimizer, step, history, tmp)
                        ckpt = ray.train.Checkpoint.from_directory(tmp)
                    ray.train.report({"step": step, **record, "world": world}, checkpoint=ckpt)


def _latest_checkpoint(run_dir: str) -> str | None:
    """The newest checkpoint a previous (killed) training run left, if any."""
    if not os.path.isdir(run_dir):
        return None
    found = []
    for name in os.listdir(run_dir):
        path = os.path.join(run_dir, name)
        if name.startswith("checkpoint_") and os.path.exists(os.path.join(path, STATE)):
            found.append(path)
    return max(found, key=os.path.getmtime) if found else None


def train(data: str, cfg: TrainConfig, storage: str, *, ray_address: str | None = None) -> dict[str, Any]:
    """Train (or resume training) a scorer; returns the metrics written to `<version>/metrics.json`."""
    import ray
    import ray.train
    from ray.train.torch import TorchTrainer

    output = ex.resolve_run(data, storage)
    ray.data.DataContext.get_current().enable_progress_bars = False
    pairs = ex.load_pairs(output, tiles=cfg.tiles)
    ids = pairs.column("id").to_pylist()
    held_mask = [ex.is_heldout(i, cfg.holdout) for i in ids]
    train_rows = pairs.filter([not h for h in held_mask])
    held_rows = pairs.filter(held_mask).to_pylist()
    if len(train_rows) < cfg.batch_size * cfg.workers or len(held_rows) < 4:
        raise ValueError(f"{len(pairs)} pairs with tiles in {output}: too few to train and hold out")
    version_dir = join(storage, "models", cfg.name, cfg.version)
    if os.path.exists(os.path.join(version_dir, "model", "scorer.json")):
        raise FileExistsError(f"{version_dir} already holds a trained model; choose another --version")
    init = os.path.join(version_dir, "init")
    if cfg.base == "tiny" and not os.path.exists(os.path.join(init, "scorer.json")):
        texts = [t for r in train_rows.to_pylist() for t in (r["en"], r["zh"]) if t]
        model, tokenizer = build_tiny(texts, seed=cfg.seed)
        from dataengine.scorer.model import ScorerModel

        meta = ScorerMeta(name=cfg.name, version=cfg.version, base="tiny", tiles=cfg.tiles, max_tiles=cfg.max_tiles)
        tmp = f"{init}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        ScorerModel(model, tokenizer, meta).save(tmp)
        os.replace(tmp, init)
    elif cfg.base != "tiny":
        init = None  # workers load the base checkpoint and add fresh adapters
    if not ray.is_initialized():
        ray.init(address=ray_address) if ray_address else ray.init(num_cpus=max(os.cpu_count() or 1, cfg.workers))
    heldout = {"tiles": [r["tiles"] for r in held_rows], "examples": ex.eval_examples(held_rows, seed=cfg.seed + 1)}
    run_dir = os.path.join(version_dir, "checkpoints")
    started = time.time()
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={
            "train": cfg.model_dump(),
            "init": init,
            "heldout": ray.put(heldout),
            "resume": _latest_checkpoint(run_dir),  # a killed run's last checkpoint, if any
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=cfg.workers, use_gpu=cfg.use_gpu, resources_per_worker={"CPU": cfg.threads_per_worker}
        ),
        run_config=ray.train.RunConfig(
            name="checkpoints",
            storage_path=version_dir,
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
        ),
        datasets={"train": ray.data.from_arrow(train_rows)},
    )
    result = trainer.fit()
    final = result.checkpoint.to_directory()
    with open(os.path.join(final, HISTORY), encoding="utf-8") as f:
        history = json.load(f)
    export_model(cfg, final, os.path.join(version_dir, "model"))
    metrics = {
        "name": cfg.name,
        "version": cfg.version,
        "data": output,
        "train_pairs": len(train_rows),
        "heldout_pairs": len(held_rows),
        "heldout_examples": len(heldout["examples"]),
        "workers": cfg.workers,
        "seconds": round(time.time() - started, 1),
        "config": cfg.model_dump(),
        "final": history[-1] if history else {},
        "history": history,
    }
    with open(os.path.join(version_dir, "metrics.json.tmp"), "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2)
    os.replace(os.path.join(version_dir, "metrics.json.tmp"), os.path.join(version_dir, "metrics.json"))
    return metrics
