"""`dataengine bench stages`: per-stage unit costs for the capacity planner (`dataengine.plan`), measured on this
machine, written as a versioned JSON file.

CPU stages are timed in one process, on a systematic sample of the rows of a dataset (every k-th row, so every
input file is represented), exactly as a Ray worker runs them (`ops.base.Worker`: Arrow -> rows -> the stage ->
Arrow, a batch of the stage's size at a time), with the settings of pipelines/clean.yaml (the tile stage with
pipelines/bilingual.yaml's). Units: read, resolve, image, text, blocklist, language: a row entering alive (read:
every input row); dedup: a signature (a live row entering it: its spill, the decision in one process, the marking);
filter: a row (the spill and the marking, as for dedup); tile: an image; export: a row (accepted or rejected).
The sample also gives the flow: each stage's pass fraction and the share of English rows.

GPU stages (translate on vLLM, score with InternVL3-1B) cannot be measured here: their figures are estimates
from the hardware's spec sheet (`estimate: true`, with the arithmetic in `basis`).

With calibration (the default), Ray's parallel efficiency and fixed seconds a run are fitted from two real runs of
pipelines/clean.yaml on a local Ray of `cpus` CPUs: the 79-row sample dataset (twice: cold workers, then warm) and
the measured dataset; wall = fixed + core seconds / (cpus x efficiency) through both warm runs.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from functools import partial
from typing import Any

import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from dataengine import pipeline, plan
from dataengine.core.rows import WORK_SCHEMA
from dataengine.ops import RunContext
from dataengine.ops.base import Worker, spill_block
from dataengine.ops.blocklist import Blocklist, BlocklistConfig
from dataengine.ops.dedup import (
    DUP_SCHEMA,
    Dedup,
    exact_rows,
    final_rows,
    group_links,
    group_rows,
    keys_of,
    mark_duplicates,
    pick_exact,
)
from dataengine.ops.export import write_parts
from dataengine.ops.image import ImageCheck
from dataengine.ops.language import LanguageRoute
from dataengine.ops.resolve import Resolve
from dataengine.ops.text import TextClean
from dataengine.ops.tile import Tile
from dataengine.readers import ReadTasks, plan_tasks
from dataengine.similarity import components, hamming

ROW_OPS = {"resolve": Resolve, "image": ImageCheck, "text": TextClean, "language": LanguageRoute}
CALIBRATION_SPLIT = 131072  # input.split_bytes of the calibration runs: the work splits over every CPU
BLOCKLIST_TERMS = ["lorem", "ipsum", "casino", "viagra", "xxx", "porn", "hentai", "gambling", "loan", "bitcoin"]

# GPU estimates (spec-sheet arithmetic; replace with `bench stages` on a GPU node when one is measured).
L40S = {"bf16_tflops": 362.0, "hbm_gb_s": 864.0}
TRANSLATE_MODEL = {"params_b": 7.6, "prompt_own": 35, "generated": 25, "concurrent": 64, "bw_util": 0.5, "mfu": 0.5}
SCORE_MODEL = {"vit_params_b": 0.3, "vit_tokens": 1025, "llm_params_b": 0.5, "llm_tokens": 256, "captions": 2}
# Translation volume and its CPU cost: BENCHMARKS.md, "Headline, two full batches of 16" (2026-11-21): the demo
# translator made 789 tokens from 3,928 prompt tokens for 32 captions in 77.3 s (median) on 2 cores.
TOKENS_PER_TRANSLATION = round((3928 + 789) / 32, 1)
TRANSLATE_CPU_CORE_S_PER_1K = round(77.3 * 2 / ((3928 + 789) / 1000), 2)


def translate_gpu_estimate() -> tuple[float, str]:
    """GPU seconds per 1k tokens (prompt + generated) of Qwen2.5-7B on one L40S under vLLM, from bandwidth and
    FLOPs: decode steps read the bf16 weights once per step for `concurrent` sequences; prefill of the caption's
    own prompt tokens (the system prompt is prefix-cached) is compute-bound."""
    m = TRANSLATE_MODEL
    weights_gb = m["params_b"] * 2
    steps_s = L40S["hbm_gb_s"] * m["bw_util"] / weights_gb
    decode_tok_s = steps_s * m["concurrent"]
    prefill_tok_s = L40S["bf16_tflops"] * 1e12 * m["mfu"] / (2 * m["params_b"] * 1e9)
    per_translation = m["prompt_own"] / prefill_tok_s + m["generated"] / decode_tok_s
    per_1k = per_translation / TOKENS_PER_TRANSLATION * 1000
    basis = (
        f"estimate, Qwen2.5-7B bf16 ({weights_gb:.1f} GB) on one L40S ({L40S['hbm_gb_s']:.0f} GB/s, "
        f"{L40S['bf16_tflops']:.0f} TFLOPS bf16): decode {decode_tok_s:.0f} tokens/s ({m['bw_util']:.0%} of "
        f"bandwidth, {m['concurrent']} sequences), prefill {prefill_tok_s:.0f} tokens/s ({m['mfu']:.0%} MFU); "
        f"{m['prompt_own']} uncached prompt + {m['generated']} generated tokens per translation of "
        f"{TOKENS_PER_TRANSLATION} counted"
    )
    return round(per_1k, 4), basis


def score_gpu_estimate() -> tuple[float, str]:
    """GPU seconds per tile of InternVL3-1B (InternViT-300M + Qwen2.5-0.5B) scoring two captions, at 40% MFU."""
    m, mfu = SCORE_MODEL, 0.4
    vit = 2 * m["vit_params_b"] * 1e9 * m["vit_tokens"]
    llm = 2 * m["llm_params_b"] * 1e9 * m["llm_tokens"] * m["captions"]
    seconds = (vit + llm) / (L40S["bf16_tflops"] * 1e12 * mfu)
    basis = (
        f"estimate, InternVL3-1B on one L40S at {mfu:.0%} MFU: {(vit + llm) / 1e12:.2f} TFLOP a tile (vision "
        f"{m['vit_tokens']} tokens x {m['vit_params_b']}B, language {m['llm_tokens']} visual tokens x "
        f"{m['llm_params_b']}B x {m['captions']} captions)"
    )
    return round(seconds, 5), basis


def read_sample(data: str, sample: int) -> tuple[pa.Table, float, int]:
    """Every input row of `data` read as the runner reads it (timed), then every k-th of them: (the sample,
    seconds a row read, rows read)."""
    tasks = plan_tasks(data)
    reader = ReadTasks(pipeline.InputSpec().max_record_bytes)
    started = time.perf_counter()
    tables = list(reader(pa.table({"task": [json.dumps(t) for t in tasks]})))
    seconds = time.perf_counter() - started
    rows = pa.concat_tables(tables).cast(WORK_SCHEMA) if tables else WORK_SCHEMA.empty_table()
    step = max(1, len(rows) // max(sample, 1))
    return rows.take(pa.array(range(0, len(rows), step))[:sample]), seconds / max(len(rows), 1), len(rows)


def live(table: pa.Table) -> int:
    """Rows not rejected so far."""
    return table.column("reason").null_count if len(table) else 0


def run_worker(stage: type, config: Any, table: pa.Table, ctx: RunContext) -> tuple[pa.Table, float]:
    """`table` through one stage as a Ray worker runs it, a batch of the stage's size at a time: (out, seconds).
    A few rows go through first, untimed: what a worker process loads once (language profiles, codecs) is a
    per-worker cost, not a per-row one."""
    worker = Worker(stage, config.model_dump(), ctx)
    worker.table(table.slice(0, 8))
    size, parts = config.batch_size, []
    started = time.perf_counter()
    for lo in range(0, len(table), size):
        parts.append(worker.table(table.slice(lo, size)))
    seconds = time.perf_counter() - started
    return (pa.concat_tables(parts) if parts else table), seconds


def dedup_in_process(table: pa.Table, cfg: Any, folder: str) -> tuple[pa.Table, dict[str, float]]:
    """Dedup as its Ray tasks do it (`ops.dedup.duplicates`), in one process: spill a file a block, read the
    signature columns back, decide (exact groups, the near search's link rows, components and survivors picked
    from the members' hashes), mark each spilled file. The search is one pass over every band, its groups one
    block: the same links and verdicts as the pipeline's sharded passes. Returns (rows, seconds by part)."""
    t0 = time.perf_counter()
    files = []
    for lo in range(0, len(table), 256):
        files += spill_block(table.slice(lo, 256), folder).column("file").to_pylist()
    t1 = time.perf_counter()
    sig = pa.concat_tables([pq.read_table(f, columns=list(Dedup.signature)) for f in files])
    dups = decide_in_process(sig, cfg)
    t2 = time.perf_counter()
    out = [mark_duplicates(pq.read_table(f), dups) if len(dups) else pq.read_table(f) for f in files]
    t3 = time.perf_counter()
    return pa.concat_tables(out).cast(WORK_SCHEMA), {"spill_s": t1 - t0, "decide_s": t2 - t1, "apply_s": t3 - t2}


def decide_in_process(sig: pa.Table, cfg: Any) -> pa.Table:
    """Signature rows -> the duplicates (`DUP_SCHEMA`), by the steps of `ops.dedup.duplicates` on whole tables:
    exact groups (`pick_exact`), search group rows of the exact survivors (`group_rows`) -> link rows
    (`group_links`) -> components and survivors in one task (`components._local` with `components.survivors`),
    then the final rows (an exact duplicate of a near duplicate names that one's survivor)."""
    if not (cfg.exact or cfg.near):
        return DUP_SCHEMA.empty_table()
    keys = keys_of(sig, cfg.key)
    if cfg.exact:
        exact = pick_exact(keys)
    else:
        exact = keys.drop_columns(["exact_key"]).append_column("exact_of", pa.nulls(len(keys), pa.string()))
    exact_dups = exact_rows(exact)
    links = components.LINK.empty_table()
    if cfg.near and len(exact) > len(exact_dups):
        cut = hamming.choose_bands(len(exact) - len(exact_dups), cfg.hamming_threshold)
        links = group_links(group_rows(exact, cut), cut)
    if len(links) == 0:
        return final_rows(exact_dups).cast(DUP_SCHEMA)
    near = components._local(links, partial(components.survivors, threshold=cfg.hamming_threshold))
    if len(exact_dups) == 0:
        return final_rows(near).cast(DUP_SCHEMA)
    survivor_of = near.select(["id", "dup_of"]).rename_columns(["exact_of", "dup_of"])
    via = exact_dups.join(survivor_of, keys="exact_of", join_type="left outer")
    return pa.concat_tables([final_rows(via), final_rows(near)]).cast(DUP_SCHEMA)


def measure_costs(data: str, sample: int, work: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The in-process part: (stages, flow) of a costs file, from a sample of `data`; `work` is a scratch folder."""
    clean = pipeline.load("clean")
    bilingual = pipeline.load("bilingual")
    ctx = RunContext("bench-stages", "bench", work, work, metrics=False)
    table, read_s, total = read_sample(data, sample)
    n = len(table)
    stages: dict[str, Any] = {
        "read": {"unit": "input row", "core_s": read_s, "basis": f"measured, all {total} rows of the dataset"}
    }
    passed: dict[str, float] = {}
    for op, cls in ROW_OPS.items():
        before = live(table)
        out, seconds = run_worker(cls, clean.stage(op), table, ctx)
        stages[op] = {"unit": "row", "core_s": seconds / max(before, 1), "basis": f"measured, {before} rows"}
        passed[op] = live(out) / max(before, 1)
        if op == "text":  # blocklist reads the cleaned text; timed here, its output not kept
            cfg = BlocklistConfig(terms=BLOCKLIST_TERMS)
            _, bl_s = run_worker(Blocklist, cfg, out, ctx)
            stages["blocklist"] = {
                "unit": "row",
                "core_s": bl_s / max(live(out), 1),
                "basis": f"measured, {live(out)} rows, {len(BLOCKLIST_TERMS)} terms",
            }
        table = out
    english = pc.sum(pc.and_(pc.is_null(table.column("reason")), pc.equal(table.column("language"), "en"))).as_py()
    signatures = live(table)
    deduped, parts = dedup_in_process(table, clean.stage("dedup"), os.path.join(work, "spill"))
    dedup_s = sum(parts.values())
    stages["dedup"] = {
        "unit": "signature",
        "core_s": dedup_s / max(signatures, 1),
        "basis": f"measured, {signatures} signatures in one process: "
        + ", ".join(f"{k} {v:.2f}" for k, v in parts.items()),
    }
    stages["filter"] = {
        "unit": "row",
        "core_s": (parts["spill_s"] + parts["apply_s"]) / max(signatures, 1),
        "basis": "dedup's spill and marking per signature (the filter's decision is one cutoff)",
    }
    passed["dedup"] = live(deduped) / max(signatures, 1)
    survivors = deduped.filter(pc.is_null(deduped.column("reason")))
    tiled, tile_s = run_worker(Tile, bilingual.stage("tile"), survivors, ctx)
    images = live(survivors)
    tiles = pc.sum(tiled.column("num_tiles")).as_py() or 0
    stages["tile"] = {
        "unit": "image",
        "core_s": tile_s / max(images, 1),
        "basis": f"measured, {images} images, bilingual.yaml's tile settings (shards + WebDataset tars)",
    }
    export_cfg = clean.stage("export")
    started = time.perf_counter()
    for lo in range(0, len(deduped), export_cfg.batch_size):
        write_parts(deduped.slice(lo, export_cfg.batch_size), os.path.join(work, "export"), "bench-stages", "embed")
    stages["export"] = {
        "unit": "row",
        "core_s": (time.perf_counter() - started) / max(len(deduped), 1),
        "basis": f"measured, {len(deduped)} rows (samples embed their images)",
    }
    gpu_t, basis_t = translate_gpu_estimate()
    stages["translate"] = {
        "unit": "1k tokens",
        "gpu_s": gpu_t,
        "estimate": True,
        "basis": basis_t,
        "core_s": TRANSLATE_CPU_CORE_S_PER_1K,
        "core_s_basis": "measured on CPU: BENCHMARKS.md translation headline (demo translator, 2 cores), "
        "used when the stage asks for no GPU",
    }
    gpu_s, basis_s = score_gpu_estimate()
    stages["score"] = {"unit": "tile", "gpu_s": gpu_s, "estimate": True, "basis": basis_s}
    flow = {
        "pass": {k: round(v, 4) for k, v in passed.items()},
        "english": round(english / max(signatures, 1), 4),
        "tiles_per_image": round(tiles / max(images, 1), 3),
        "scored_tiles_per_sample": 1.0,
        "tokens_per_translation": TOKENS_PER_TRANSLATION,
        "basis": f"pass fractions, English share and tiles per image (max_tiles 12 + thumbnail) measured on the "
        f"{n}-row sample (its dedup share is the sample's, not the whole dataset's); scored tiles: 1, the thumbnail, "
        "as `train scorer` trains by default (tiles: thumbnail; with tiles: all a scorer sees up to its max_tiles); "
        "tokens per translation: BENCHMARKS.md's 32 captions",
    }
    for entry in stages.values():
        for key in ("core_s", "gpu_s"):
            if key in entry:
                entry[key] = round(entry[key], 6)
    return stages, flow


def calibrate(
    costs: dict[str, Any], tiny: str, data: str, storage: str, cpus: int, work: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Ray's efficiency and fixed seconds a run, fitted from runs of pipelines/clean.yaml on a local Ray of `cpus`
    CPUs: `tiny` cold, `tiny` warm, `data` warm (see the module's doc). Returns (the `ray` entry, the runs)."""
    import logging

    import ray

    from dataengine import runner

    spec = pipeline.load("clean", ["ray.progress=false", f"input.split_bytes={CALIBRATION_SPLIT}"])
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = ctx.print_on_execution_start = False
    runs = []
    try:
        for i, (name, source) in enumerate([("cold", tiny), ("warm", tiny), ("data", data)]):
            started = time.perf_counter()
            record = runner.run(spec, input_uri=source, output_uri=os.path.join(work, f"run{i}"), storage=storage)
            wall = time.perf_counter() - started
            inputs = record["accounting"]["inputs"]
            core_s = sum(s.core_s for s in plan.stage_loads(spec, costs, inputs))
            runs.append({"run": name, "run_id": record["run_id"], "inputs": inputs, "wall_s": wall, "core_s": core_s})
    finally:
        ray.shutdown()
    cold, warm, big = runs
    slope = (big["wall_s"] - warm["wall_s"]) / max(big["core_s"] - warm["core_s"], 1e-9)  # = 1 / (cpus x eff)
    efficiency = 1.0 / (cpus * slope) if slope > 0 else 1.0
    fixed = warm["wall_s"] - warm["core_s"] * slope
    entry = {
        "efficiency": round(min(efficiency, 1.0), 3),
        "fitted_efficiency": round(efficiency, 3),
        "fixed_s": round(fixed, 2),
        "cold_start_s": round(max(cold["wall_s"] - warm["wall_s"], 0.0), 2),
        "cpus": cpus,
        "gpu_busy": 0.8,
        "gpu_busy_basis": "assumed, not measured: share of the window GPU actors are fed",
        "basis": f"fitted from pipelines/clean.yaml on a local Ray of {cpus} CPUs, {warm['inputs']} and "
        f"{big['inputs']} inputs (input.split_bytes={CALIBRATION_SPLIT})",
    }
    return entry, [{k: round(v, 2) if isinstance(v, float) else v for k, v in r.items()} for r in runs]


def machine() -> str:
    return (
        f"{platform.machine()} {platform.processor() or ''}".strip()
        + f", {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM"
    )


def bench_stages(
    data: str, storage: str, sample: int = 600, cpus: int = 2, tiny: str | None = None, command: str = ""
) -> dict[str, Any]:
    """The whole measurement: a costs file (dict) for `plan.load_costs`. With `tiny` (the 79-row sample
    dataset), Ray is calibrated too; without it the `ray` entry says efficiency 1 and is marked uncalibrated."""
    started = time.perf_counter()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as work:
        stages, flow = measure_costs(data, sample, work)
        costs: dict[str, Any] = {
            "version": plan.COSTS_VERSION,
            "measured": {
                "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "machine": machine(),
                "command": command,
                "dataset": os.path.abspath(data),
                "sample_rows": sample,
                "load_average_before": [round(x, 2) for x in load_before],
            },
            "stages": stages,
            "flow": flow,
            "ray": {"efficiency": 1.0, "fixed_s": 0.0, "cold_start_s": 0.0, "gpu_busy": 0.8, "basis": "uncalibrated"},
        }
        if tiny is not None:
            costs["ray"], costs["calibration_runs"] = calibrate(costs, tiny, data, storage, cpus, work)
    costs["measured"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    costs["measured"]["seconds"] = round(time.perf_counter() - started, 1)
    plan.check_costs(costs, "bench stages")
    return costs
