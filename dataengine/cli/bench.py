"""Benchmark and evaluation commands: `bench clean`, `bench dedup`, `bench near-check`, `bench tiling`,
`bench translate`, `bench scorer`, `bench stages`, `bench cluster` and `eval translation` (their code is in
dataengine.bench)."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import click
from rich.table import Table

from dataengine.cli.base import bench, console, eval_group, set_option
from dataengine.cli.scorer import print_metrics, shapes_run
from dataengine.cli.translate import translator_for
from dataengine.core.storage import join


@bench.command("clean")
@click.option("--scale", default=5000, type=int, help="scaled sample dataset size to build and use")
@click.option("--data", default=None, help="use this dataset instead of the scaled sample")
@click.option("--num-cpus", default=None, type=int, help="CPUs for the local Ray (default: all)")
@set_option("override a key of pipelines/clean.yaml, e.g. ray.object_store_budget_mb=512")
@click.pass_context
def bench_clean_cmd(
    ctx: click.Context, scale: int, data: str | None, num_cpus: int | None, sets: tuple[str, ...]
) -> None:
    """Samples/s and peak memory of pipelines/clean.yaml on the scaled sample dataset."""
    from dataengine import sample_data
    from dataengine.bench.clean import bench_clean

    if data is None:
        data = sample_data.ensure(join(ctx.obj["storage"], "datasets", f"demo-x{scale}"), scale=scale, console=console)
    result = bench_clean(data, ctx.obj["storage"], num_cpus, sets)
    table = Table("metric", "value", title="bench clean")
    for key, value in result.items():
        table.add_row(key, str(value))
    console.print(table)


@bench.command("split-read")
@click.option("--size-mb", default=2048, type=int, help="size of the JSONL file to build and read (MiB)")
@click.option("--split-mb", default=4, type=int, help="input.split_bytes, in MiB")
@click.option("--num-cpus", default=None, type=int, help="CPUs for the local Ray (default: all)")
@click.pass_context
def bench_split_read_cmd(ctx: click.Context, size_mb: int, split_mb: int, num_cpus: int | None) -> None:
    """A large JSONL file read by one task and by split pieces: piece count, same rows and locations, walls."""
    from dataengine.bench.split_read import bench_split_read

    result = bench_split_read(ctx.obj["storage"], size_mb, num_cpus, split_mb)
    table = Table("metric", "value", title="bench split-read")
    for key, value in result.items():
        table.add_row(key, str(value))
    console.print(table)


@bench.command("dedup")
@click.option("--n", "n", default=1_000_000, type=int, help="synthetic signatures")
@click.option("--threshold", default=4, type=int, help="pHash Hamming threshold")
@click.option("--num-cpus", default=None, type=int, help="CPUs for the local Ray (default: all)")
@click.option("--partitions", default=None, type=int, help="hash partitions of every shuffle (default: by rows)")
@click.option("--local-edges", default=None, type=int, help="search links up to which components run in one task")
def bench_dedup_cmd(
    n: int, threshold: int, num_cpus: int | None, partitions: int | None, local_edges: int | None
) -> None:
    """Dedup's decision on synthetic signatures with planted duplicates: wall, peak memory, candidate pairs,
    recall and precision against brute force on a sample."""
    from dataengine.bench.dedup import bench_dedup

    try:
        result = bench_dedup(n, threshold, num_cpus, partitions, local_edges=local_edges)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    table = Table("metric", "value", title="bench dedup")
    for key, value in result.items():
        table.add_row(key, str(value))
    console.print(table)


@bench.command("near-check")
@click.option("--data", required=True, help="a scaled sample dataset (`dataengine sample-data --scale N`)")
@click.option("--docs", default=800, type=int, help="rendered documents of its scaled set to pair up")
@click.option("--copies", default=12, type=int, help="near copies made from each sample photo")
@click.option("--crop", default=0.02, type=float, help="most of each side a near copy crops away")
@click.option("--threshold", default=4, type=int, help="pHash Hamming threshold")
def bench_near_check_cmd(data: str, docs: int, copies: int, crop: float, threshold: int) -> None:
    """Second signatures for pHash's candidate pairs: same-template documents kept apart at full near-copy recall."""
    from dataengine.bench.near_check import bench_near_check

    try:
        result = bench_near_check(data, docs, copies, crop, threshold)
    except FileNotFoundError as exc:
        raise click.UsageError(str(exc)) from None
    checks = result.pop("checks")
    table = Table("metric", "value", title="bench near-check")
    for key, value in result.items():
        table.add_row(key, str(value))
    console.print(table)
    per = Table("second check", "bytes", "threshold (near-copy recall 1.0)", "document pairs kept apart")
    for name, found in checks.items():
        per.add_row(name, str(found["bytes"]), str(found["threshold_for_recall_1"]),
                    str(found["document_pairs_kept_apart"]))  # fmt: skip
    console.print(per)


@bench.command("tiling")
@click.option("--images", "images_dir", default=None, help="a folder of images instead of the built photo sets")
@click.option("--n-web", default=60, type=int, help="web-sized photos (320-1600 px) to build")
@click.option("--n-camera", default=12, type=int, help="camera-sized photos (3000-4000 px) to build")
@click.option("--ray/--no-ray", "with_ray", default=False, help="also time the tile stage through Ray")
@click.option("--ray-repeat", default=10, type=int, help="passes over the camera set in the Ray run")
@click.option("--num-cpus", default=2, type=int)
@click.option("--object-store-mb", default=200, type=int, help="object store of the Ray run (kept small)")
def bench_tiling_cmd(
    images_dir: str | None,
    n_web: int,
    n_camera: int,
    with_ray: bool,
    ray_repeat: int,
    num_cpus: int,
    object_store_mb: int,
) -> None:
    """Reference (PIL) vs fast tiling, one process, one core: images/s, tiles/s, ratio, PSNR; optionally Ray."""
    import numpy as np

    from dataengine.bench import tiling as bt

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    sets = (
        {"images": bt.load_dir(images_dir)}
        if images_dir
        else {"web": bt.photo_set("web", n_web, seed=1), "camera": bt.photo_set("camera", n_camera, seed=2)}
    )
    table = Table(
        "set",
        "images",
        "tiles",
        "ref img/s",
        "fast img/s",
        "ref tiles/s",
        "fast tiles/s",
        "speedup",
        "grids",
        "PSNR median",
        "PSNR min",
        title="bench tiling (1 process, 1 core)",
    )
    scores = []
    for name, images in sets.items():
        r = bt.compare(images)
        scores += r.pop("psnr_values")
        table.add_row(
            name,
            str(r["images"]),
            str(r["tiles"]),
            str(r["reference_images_per_s"]),
            str(r["fast_images_per_s"]),
            str(r["reference_tiles_per_s"]),
            str(r["fast_tiles_per_s"]),
            f"{r['speedup']}x",
            "identical" if r["grids_identical"] else "DIFFER",
            f"{r['psnr_median_db']} dB",
            f"{r['psnr_min_db']} dB",
        )
    console.print(table)
    if len(sets) > 1:
        console.print(
            f"all sets: {len(scores)} tiles, PSNR median {np.median(scores):.2f} dB, min {np.min(scores):.2f} dB"
        )
    if with_ray:
        images = sets.get("camera") or next(iter(sets.values()))
        res = bt.bench_ray(images, ray_repeat, num_cpus, object_store_mb)
        ray_table = Table("metric", "value", title="tile stage through Ray")
        for key, value in res.items():
            ray_table.add_row(key, str(value))
        console.print(ray_table)


@bench.command("translate")
@click.option("--model", default="demo-translator")
@click.option("--n", default=20, type=int, help="captions (the sample set has 20; more repeat them)")
@click.option("--batch-size", default=16, type=int)
@click.option("--max-new-tokens", default=128, type=int)
@click.option(
    "--ablation/--no-ablation",
    default=True,
    help="also run with one optimisation off at a time: finished rows kept, prefix cache off, oneDNN off",
)
@click.option("--repeats", default=1, type=int, help="run batched / one at a time this many times in turn")
@click.pass_context
def bench_translate_cmd(
    ctx: click.Context, model: str, n: int, batch_size: int, max_new_tokens: int, ablation: bool, repeats: int
) -> None:
    """Transformers engine on this machine: batched vs one at a time, and a cached re-run."""
    from dataengine.bench.translate import run

    console.print_json(json.dumps(run(model, ctx.obj["storage"], n, batch_size, max_new_tokens, ablation, repeats)))


@bench.command("scorer")
@click.option("--n", default=2400, type=int, help="shapes-world samples to build")
@click.option("--workers", default=2, type=int)
@click.option("--steps", default=None, type=int)
@click.option("--version", "version", default=None, help="model version (default: bench-<timestamp>)")
@click.pass_context
def bench_scorer(ctx: click.Context, n: int, workers: int, steps: int | None, version: str | None) -> None:
    """Train the tiny scorer on the shapes world with Ray Train; report time and held-out ROC-AUC."""
    from dataengine.scorer.train import TrainConfig, train

    storage = ctx.obj["storage"]
    t0 = time.perf_counter()
    output = shapes_run(storage, n)
    prep = time.perf_counter() - t0
    fields: dict[str, Any] = {"name": "shapes-scorer", "version": version or time.strftime("bench-%Y%m%d-%H%M%S")}
    fields["workers"] = workers
    if steps:
        fields["steps"] = steps
    metrics = train(output, TrainConfig(**fields), storage)
    print_metrics(metrics)
    summary = {
        "pipeline_s": round(prep, 1),
        "train_s": metrics["seconds"],
        "cpus": os.cpu_count(),
        **metrics["final"],
    }
    console.print(json.dumps(summary))


@bench.command("stages")
@click.option("--scale", default=2000, type=int, help="scaled sample dataset to build and measure on")
@click.option("--data", default=None, help="measure on this dataset instead of the scaled sample")
@click.option("--sample", default=600, type=int, help="rows timed in one process (every k-th row of the dataset)")
@click.option("--cpus", default=2, type=int, help="CPUs of the local Ray the calibration runs use")
@click.option("--calibrate/--no-calibrate", default=True, help="fit Ray's efficiency from two clean.yaml runs")
@click.option("--out", default=None, help="where to write the costs JSON (default: <storage>/bench/unit_costs.json)")
@click.pass_context
def bench_stages_cmd(
    ctx: click.Context, scale: int, data: str | None, sample: int, cpus: int, calibrate: bool, out: str | None
) -> None:
    """Per-stage unit costs for `plan capacity` / `plan wall`: CPU stages timed in one process on a sample of the
    dataset, GPU stages estimated, Ray's parallel efficiency fitted from two local runs; written as JSON."""
    from dataengine import plan, sample_data
    from dataengine.bench.stages import bench_stages

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # as Ray gives a 1-CPU task
    storage = ctx.obj["storage"]
    command = "dataengine bench stages " + (f"--data {data}" if data else f"--scale {scale}")
    if data is None:
        data = sample_data.ensure(join(storage, "datasets", f"demo-x{scale}"), scale=scale, console=console)
    tiny = sample_data.ensure(join(storage, "datasets", "demo"), console=console) if calibrate else None
    costs = bench_stages(data, storage, sample, cpus, tiny, command)
    target = out or plan.costs_path(storage)
    os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
    with open(target, "w", encoding="utf-8") as f:
        json.dump(costs, f, indent=2)
        f.write("\n")
    table = Table("stage", "unit", "core-s a unit", "GPU-s a unit", "basis", title="bench stages")
    for name, entry in costs["stages"].items():
        gpu = entry.get("gpu_s")
        table.add_row(
            name, entry["unit"], str(entry.get("core_s", "")),
            "" if gpu is None else f"{gpu}{' (estimate)' if entry.get('estimate') else ''}", entry["basis"][:60],
        )  # fmt: skip
    console.print(table)
    console.print(f"flow: {json.dumps(costs['flow'])}")
    console.print(f"ray: {json.dumps(costs['ray'])}")
    for run in costs.get("calibration_runs", []):
        console.print(f"calibration run: {json.dumps(run)}")
    console.print(f"wrote {target} ({costs['measured']['seconds']} s)")


@bench.command("cluster")
@click.option("--data", default=None, help="dataset to run (default: the scaled sample of --scale)")
@click.option("--scale", default=5000, type=int, help="scaled sample dataset to build and use")
@click.option("--pipeline", "pipeline_name", default="clean", show_default=True)
@click.option("--nodes", default=3, type=int, show_default=True, help="nodes: a head and nodes - 1 workers")
@click.option("--head-cpus", default=0, type=int, show_default=True, help="CPUs of the head (ray_cluster.yaml: 0)")
@click.option("--worker-cpus", default=1, type=int, show_default=True, help="CPUs of each worker node")
@click.option("--costs", "costs_file", default=None, help="unit costs JSON (default: <storage>/bench/, else shipped)")
@click.pass_context
def bench_cluster_cmd(
    ctx: click.Context,
    data: str | None,
    scale: int,
    pipeline_name: str,
    nodes: int,
    head_cpus: int,
    worker_cpus: int,
    costs_file: str | None,
) -> None:
    """The capacity planner against a real run: predict the wall of PIPELINE on a local cluster of NODES nodes
    (`ray start` on 127.0.0.1), run it there, compare; the figures go to <storage>/bench/cluster-*.json."""
    from dataengine import plan, sample_data
    from dataengine.bench.cluster import bench_cluster

    storage = ctx.obj["storage"]
    try:
        costs, origin = plan.load_costs(costs_file, storage)
    except plan.PlanError as exc:
        raise click.ClickException(str(exc)) from None
    console.print(f"unit costs: {origin}")
    if data is None:
        data = sample_data.ensure(join(storage, "datasets", f"demo-x{scale}"), scale=scale, console=console)
    try:
        result = bench_cluster(data, storage, costs, pipeline_name, nodes, head_cpus, worker_cpus, log=console.print)
    except (ValueError, plan.PlanError) as exc:
        raise click.ClickException(str(exc)) from None
    result["costs"] = origin
    target = join(storage, "bench", time.strftime("cluster-%Y%m%d-%H%M%S.json"))
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    table = Table("metric", "value", title=f"bench cluster ({nodes} nodes)")
    for key, value in result.items():
        if key != "prediction":
            table.add_row(key, str(value))
    console.print(table)
    console.print(f"wrote {target}")


@eval_group.command("translation")
@click.option("--n", default=24, type=int, help="sentences (HSK levels 4-6)")
@click.option("--model", default="demo-translator")
@click.option("--engine", type=click.Choice(["transformers", "openai"]), default="transformers")
@click.option("--base-url", default="http://127.0.0.1:8000/v1")
@click.option("--batch-size", default=16, type=int)
@click.pass_context
def eval_translation(ctx: click.Context, n: int, model: str, engine: str, base_url: str, batch_size: int) -> None:
    """BLEU (zh tokenizer) and chrF of EN->ZH translation on the HSK sentence pairs (no cache)."""
    from dataengine.bench.eval_translation import evaluate, hsk_pairs

    translator, _ = translator_for(ctx.obj["storage"], model, engine, base_url, batch_size, False)
    t0 = time.perf_counter()
    result = evaluate(translator, hsk_pairs(n))
    console.print(
        f"{result['sentences']} sentences in {time.perf_counter() - t0:.1f} s: BLEU {result['bleu_zh']} "
        f"(zh tokenizer), chrF {result['chrf']}, passed validation {result['validated']}"
    )
    for ex in result["examples"]:
        console.print(f"  EN  {ex['en']}\n  REF {ex['ref']}\n  HYP {ex['hyp']}")
