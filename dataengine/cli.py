"""The `dataengine` command line."""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from dataengine import manifest, pipeline
from dataengine.serving import api_key_option
from dataengine.storage import default_root, delete_dir, join

# Deprecation warnings Ray raises from its own code (Ray Data's context dump, Ray Train's execution options), which
# no setting of ours avoids: not shown to users.
RAY_INTERNAL_WARNINGS = (
    r".*`ExecutionOptions.exclude_resources` is deprecated",
    r"`use_push_based_shuffle` is deprecated",
    r"`use_polars` is deprecated",
    r"`use_arrow_tensor_v2` is deprecated",
)
console = Console(markup=False)  # paths and captions are printed as written, never read as rich markup


class _Commands(click.Group):
    """The command group: a mistake in what the user gave (a pipeline or --set, a model name, an input that does
    not balance) ends in one line naming it, never a traceback."""

    def invoke(self, ctx: click.Context) -> object:
        from dataengine.accounting import AccountingError
        from dataengine.ledger import LedgerConflict
        from dataengine.models import ModelError

        try:
            return super().invoke(ctx)
        except (pipeline.PipelineError, ModelError, AccountingError, LedgerConflict) as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Commands)
@click.option("--storage", envvar="DATAENGINE_STORAGE", default=None, help="data root (default: ./storage)")
@click.pass_context
def main(ctx: click.Context, storage: str | None) -> None:
    """Bilingual (English/Chinese) data engine for vision-language models, on Ray."""
    ctx.obj = {"storage": storage or default_root()}
    for message in RAY_INTERNAL_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


def _run(
    ctx: click.Context,
    name: str,
    input_uri: str | None,
    output: str | None,
    sets: tuple[str, ...],
    address: str | None,
    verbose: bool = False,
) -> None:
    from dataengine import runner
    from dataengine.inspect import print_summary

    try:
        spec = pipeline.load(name, sets)
    except pipeline.PipelineError as exc:
        raise click.ClickException(str(exc)) from None
    if not verbose:  # one progress view instead of Ray's bars and log lines
        spec = spec.model_copy(update={"ray": spec.ray.model_copy(update={"progress": False})})
    view = _ProgressView(["ingest", *(s.op for s in spec.stages)])
    try:
        with _live(view, verbose) as live:
            record = runner.run(
                spec,
                input_uri=input_uri,
                output_uri=output,
                address=address,
                storage=ctx.obj["storage"],
                progress=None if verbose else lambda counts: live.update(view.render(counts)),
                quiet=not verbose,
            )
    except (FileNotFoundError, FileExistsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    except ConnectionError as exc:
        where = f"the Ray cluster at {address} (check --address)" if address else "a service the run needs"
        raise click.ClickException(f"cannot reach {where}: {exc}") from None
    print_summary(record, console)


@contextmanager
def _live(view: _ProgressView, verbose: bool) -> Iterator[Live | None]:
    """The progress view while a run executes (nothing with --verbose), ended by a line break however it ends."""
    from rich.live import Live

    if verbose:
        yield None
        return
    try:
        with Live(view.render({}), console=console, refresh_per_second=4) as live:
            yield live
    finally:
        console.print()


class _ProgressView:
    """What a run shows while it executes: each stage's rows and rejects so far, and the time elapsed."""

    def __init__(self, stages: list[str]):
        self.stages = list(dict.fromkeys(stages))
        self.t0 = time.monotonic()

    def render(self, counts: dict[str, tuple[int, int]]) -> Table:
        table = Table("stage", "rows", "rejected", title=f"running: {time.monotonic() - self.t0:.0f} s elapsed")
        for stage in self.stages:
            rows, rejected = counts.get(stage, (0, 0))
            table.add_row(stage, f"{rows:,}" if stage in counts else "-", f"{rejected:,}" if stage in counts else "-")
        return table


@main.command()
@click.argument("pipeline_name", metavar="PIPELINE")
@click.option("--input", "input_uri", help="input file/directory or URI (overrides input.uri)")
@click.option("--output", help="output directory or URI (default: <storage>/runs/<run_id>)")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="override a spec value, e.g. stages.image.min_side=64 (repeatable)",
)
@click.option("--address", help="Ray cluster address; default: start a local Ray")
@click.option("--verbose", is_flag=True, help="show Ray's own progress bars and log lines instead of one view")
@click.pass_context
def run(
    ctx: click.Context,
    pipeline_name: str,
    input_uri: str | None,
    output: str | None,
    sets: tuple[str, ...],
    address: str | None,
    verbose: bool,
) -> None:
    """Run PIPELINE (a name in pipelines/ or a YAML path)."""
    _run(ctx, pipeline_name, input_uri, output, sets, address, verbose)


@main.command()
@click.option("--rebuild", is_flag=True, help="rebuild the sample dataset even if present")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE")
@click.option("--verbose", is_flag=True, help="show Ray's own progress bars and log lines instead of one view")
@click.pass_context
def demo(ctx: click.Context, rebuild: bool, sets: tuple[str, ...], verbose: bool) -> None:
    """Build the offline sample dataset (if missing) and run pipelines/demo.yaml on it."""
    from dataengine import sample_data
    from dataengine.models import pull

    target = join(ctx.obj["storage"], "datasets", "demo")
    sample_data.ensure(target, rebuild=rebuild, console=console)
    spec = pipeline.load("demo", sets)
    needed = {s.model for s in spec.stages if s.op == "translate" and s.engine == "transformers"}
    for name in sorted(needed & {"demo-translator"}):
        pull(name, ctx.obj["storage"], log=console.print)  # no-op once registered
    if "demo-scorer" in {s.model for s in spec.stages if s.op == "score"}:
        from dataengine.scorer.cli import ensure_demo_scorer

        ensure_demo_scorer(ctx.obj["storage"])  # no-op once trained
    _run(ctx, "demo", target, None, sets, None, verbose)


@main.command("sample-data")
@click.option("--out", default=None, help="target directory (default: <storage>/datasets/demo)")
@click.option("--scale", default=0, type=int, help="add this many augmented photo/document samples")
@click.option("--rebuild", is_flag=True)
@click.option("--shapes", default=0, type=int, help="build the shapes world with this many samples instead")
@click.pass_context
def sample_data_cmd(ctx: click.Context, out: str | None, scale: int, rebuild: bool, shapes: int) -> None:
    """Build the sample dataset (real photos, rendered bilingual documents, deliberate defects)."""
    from dataengine import sample_data

    if shapes:
        target = out or join(ctx.obj["storage"], "datasets", f"shapes-{shapes}")
        if rebuild:
            delete_dir(target)
        sample_data.ensure_shapes(target, shapes, console=console)
        return
    target = out or join(ctx.obj["storage"], "datasets", "demo" if not scale else f"demo-x{scale}")
    sample_data.ensure(target, scale=scale, rebuild=rebuild, console=console)


@main.group()
def bench() -> None:
    """Benchmarks (figures go to BENCHMARKS.md)."""


@bench.command("clean")
@click.option("--scale", default=5000, type=int, help="scaled sample dataset size to build and use")
@click.option("--data", default=None, help="use this dataset instead of the scaled sample")
@click.option("--num-cpus", default=None, type=int, help="CPUs for the local Ray (default: all)")
@click.pass_context
def bench_clean_cmd(ctx: click.Context, scale: int, data: str | None, num_cpus: int | None) -> None:
    """Samples/s and peak memory of pipelines/clean.yaml on the scaled sample dataset."""
    from dataengine import sample_data
    from dataengine.bench import bench_clean

    if data is None:
        data = sample_data.ensure(join(ctx.obj["storage"], "datasets", f"demo-x{scale}"), scale=scale, console=console)
    result = bench_clean(data, ctx.obj["storage"], num_cpus)
    table = Table("metric", "value", title="bench clean")
    for key, value in result.items():
        table.add_row(key, str(value))
    console.print(table)


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

    from dataengine import bench_tiling as bt

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


@main.group("export")
def export_group() -> None:
    """Export a run in other formats."""


@export_group.command("internvl")
@click.argument("run_id")
@click.argument("out")
@click.pass_context
def export_internvl_cmd(ctx: click.Context, run_id: str, out: str) -> None:
    """Write RUN_ID as InternVL fine-tuning data (meta JSON + JSONL + images) into OUT, for --meta_path."""
    from dataengine.export_internvl import export_internvl

    try:
        meta = export_internvl(run_id, out, ctx.obj["storage"])
    except (FileNotFoundError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    for name, entry in meta.items():
        console.print(f"{name}: {entry['length']} samples -> {entry['annotation']}")
    console.print(f"meta: {join(out, 'meta.json')}  (InternVL: --meta_path {join(out, 'meta.json')})")


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
    import json

    from dataengine.translate.bench import run

    console.print_json(json.dumps(run(model, ctx.obj["storage"], n, batch_size, max_new_tokens, ablation, repeats)))


@main.group()
def models() -> None:
    """Local models under <storage>/models/."""


@models.command("pull")
@click.argument("name")
@click.pass_context
def models_pull(ctx: click.Context, name: str) -> None:
    """Assemble, verify (sha256) and register a model, e.g. demo-translator."""
    from dataengine.models import ModelError, pull

    try:
        pull(name, ctx.obj["storage"], log=console.print)
    except ModelError as exc:
        raise click.ClickException(str(exc)) from None


def _translator(storage: str, model: str, engine: str, base_url: str, batch_size: int, use_cache: bool):
    from dataengine.translate.cache import TranslationCache
    from dataengine.translate.engines import EngineError, build
    from dataengine.translate.prompt import PROMPT_VERSION
    from dataengine.translate.translator import Translator

    options = {"model": model}
    options.update({"base_url": base_url} if engine == "openai" else {"storage": storage})
    try:
        eng = build(engine, **options)
    except EngineError as exc:
        raise click.ClickException(str(exc)) from None
    cache = TranslationCache(storage, eng, PROMPT_VERSION, "none") if use_cache else None
    return Translator(eng, cache, batch_size=batch_size), PROMPT_VERSION


@main.command("translate")
@click.argument("src", metavar="IN.jsonl")
@click.argument("dst", metavar="OUT.jsonl")
@click.option(
    "--model", default="demo-translator", help="registered name, HF folder or .gguf (served name for openai)"
)
@click.option("--engine", type=click.Choice(["transformers", "openai"]), default="transformers")
@click.option("--base-url", default="http://127.0.0.1:8000/v1", help="openai engine: server base URL")
@click.option("--batch-size", default=16, type=int)
@click.pass_context
def translate_cmd(
    ctx: click.Context, src: str, dst: str, model: str, engine: str, base_url: str, batch_size: int
) -> None:
    """Translate an InternVL/LLaVA annotation file to Chinese (English kept alongside; rejects beside OUT)."""
    from dataengine.storage import exists
    from dataengine.translate.engines import EngineError
    from dataengine.translate.files import translate_file

    if not exists(src):  # before the model loads, which takes minutes
        raise click.ClickException(f"input file {src} not found")
    translator, version = _translator(ctx.obj["storage"], model, engine, base_url, batch_size, True)
    try:
        counts = translate_file(src, dst, translator, version)
    except (EngineError, OSError) as exc:  # e.g. IN is a folder, OUT's folder is missing
        raise click.ClickException(str(exc)) from None
    console.print(
        f"translated {counts['translated']}, rejected {counts['rejected']} -> {dst} "
        f"(rejects: {counts['rejects_file']}); LLM calls {translator.llm_calls}, "
        f"cache hits {translator.cache.hits if translator.cache else 0}"
    )


@main.group("eval")
def eval_group() -> None:
    """Quality evaluations."""


@eval_group.command("translation")
@click.option("--n", default=24, type=int, help="sentences (HSK levels 4-6)")
@click.option("--model", default="demo-translator")
@click.option("--engine", type=click.Choice(["transformers", "openai"]), default="transformers")
@click.option("--base-url", default="http://127.0.0.1:8000/v1")
@click.option("--batch-size", default=16, type=int)
@click.pass_context
def eval_translation(ctx: click.Context, n: int, model: str, engine: str, base_url: str, batch_size: int) -> None:
    """BLEU (zh tokenizer) and chrF of EN->ZH translation on the HSK sentence pairs (no cache)."""
    from dataengine.translate.evaluate import evaluate, hsk_pairs

    translator, _ = _translator(ctx.obj["storage"], model, engine, base_url, batch_size, False)
    t0 = time.perf_counter()
    result = evaluate(translator, hsk_pairs(n))
    console.print(
        f"{result['sentences']} sentences in {time.perf_counter() - t0:.1f} s: BLEU {result['bleu_zh']} "
        f"(zh tokenizer), chrF {result['chrf']}, passed validation {result['validated']}"
    )
    for ex in result["examples"]:
        console.print(f"  EN  {ex['en']}\n  REF {ex['ref']}\n  HYP {ex['hyp']}")


@main.group()
def serve() -> None:
    """Long-running services on Ray Serve."""


@serve.command("translator")
@click.option("--model", default="demo-translator", help="registered name, local HF folder or .gguf file")
@click.option("--host", default="127.0.0.1", help="bind address (default loopback only)")
@click.option("--port", default=8000, type=int)
@click.option("--trust-remote-code", is_flag=True, default=False)
@api_key_option
@click.pass_context
def serve_translator(
    ctx: click.Context, model: str, host: str, port: int, trust_remote_code: bool, api_key: str | None
) -> None:
    """OpenAI-compatible /v1/chat/completions and /v1/models backed by the transformers engine."""
    from dataengine.models import ModelError, resolve_model
    from dataengine.serving import check_exposure

    try:  # refused here, in one line, before Ray starts
        check_exposure(host, api_key)
        resolve_model(model, ctx.obj["storage"])
    except (ValueError, ModelError) as exc:
        raise click.ClickException(str(exc)) from None
    import ray

    from dataengine.translate import serve as translator_serve

    ray.init(include_dashboard=False)
    base = translator_serve.start(model, ctx.obj["storage"], host, port, trust_remote_code, api_key)
    console.print(f"serving {model} at {base} (Ctrl-C to stop)")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


@main.command()
@click.pass_context
def runs(ctx: click.Context) -> None:
    """List runs, newest first."""
    table = Table("run id", "pipeline", "status", "wall s", "output")
    for rec in manifest.list_runs(ctx.obj["storage"]):
        table.add_row(rec["run_id"], rec["pipeline"], rec["status"], str(rec.get("wall_s", "")), rec["output"])
    console.print(table)


@main.command()
@click.argument("run_id")
@click.option("--config/--no-config", default=True, help="print the run's pipeline config")
@click.pass_context
def inspect(ctx: click.Context, run_id: str, config: bool) -> None:
    """Show a run's config, stage counts and reject reasons (computed from its Parquet)."""
    from dataengine.inspect import print_summary

    try:
        record = manifest.load(run_id, ctx.obj["storage"])
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    print_summary(record, console, show_config=config)


def _register() -> None:
    from dataengine.cli_jobs import register as register_jobs
    from dataengine.cli_scheduler import register as register_scheduler
    from dataengine.report.cli import register as register_report
    from dataengine.scorer.cli import register as register_scorer

    register_scorer(main, serve, bench)
    register_jobs(main)
    register_scheduler(main)
    register_report(main)


_register()

if __name__ == "__main__":
    sys.exit(main())
