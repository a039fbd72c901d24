"""Quality commands: `assess` (an annotation file), `eval quality` (the labelled set) and `bench quality`
(what the LLM signals cost on this machine); their code is in dataengine.quality and dataengine.bench."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import click
from rich.table import Table

from dataengine.cli.base import bench, console, eval_group, main


def judge_for_cli(storage: str, model: str, engine: str, base_url: str, batch_size: int, scoring: str):
    from dataengine.ops.quality import judge_for
    from dataengine.translate.engines import EngineError

    cfg = SimpleNamespace(model=model, engine=engine, base_url=base_url, scoring=scoring, batch_size=batch_size)
    try:
        return judge_for(cfg, storage)
    except (EngineError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None


def engine_options(f):
    f = click.option("--scoring", type=click.Choice(["auto", "logits", "text"]), default="auto")(f)
    f = click.option("--batch-size", default=16, type=int)(f)
    f = click.option("--base-url", default="http://127.0.0.1:8000/v1", help="openai engine: server base URL")(f)
    f = click.option("--engine", type=click.Choice(["transformers", "openai"]), default="transformers")(f)
    return click.option(
        "--model", default="demo-translator", help="registered name, HF folder or .gguf (served name for openai)"
    )(f)


@main.command("assess")
@click.argument("src", metavar="IN.jsonl")
@click.argument("dst", metavar="OUT.jsonl")
@engine_options
@click.pass_context
def assess_cmd(
    ctx: click.Context, src: str, dst: str, model: str, engine: str, base_url: str, batch_size: int, scoring: str
) -> None:
    """Rate an InternVL/LLaVA annotation file: quality_en/zh, translation_qe, repetition, rule_reasons per record
    (rejects beside OUT)."""
    from dataengine.core.storage import exists
    from dataengine.quality.files import assess_file
    from dataengine.translate.engines import EngineError

    if not exists(src):  # before the model loads, which takes minutes
        raise click.ClickException(f"input file {src} not found")
    judge = judge_for_cli(ctx.obj["storage"], model, engine, base_url, batch_size, scoring)
    try:
        counts = assess_file(src, dst, judge)
    except (EngineError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    console.print(
        f"assessed {counts['assessed']}, rejected {counts['rejected']} -> {dst} (rejects: {counts['rejects_file']}); "
        f"LLM calls {judge.llm_calls}, cache hits {judge.cache.hits if judge.cache else 0}"
    )


@eval_group.command("quality")
@engine_options
@click.option("--limit", default=None, type=int, help="about this many items a part, spread over the set")
@click.option("--back-translation/--no-back-translation", default=False, help="also the back-translation chrF")
@click.option("--rules-only", is_flag=True, default=False, help="no model: the rule signals alone")
@click.option(
    "--part", "parts", type=click.Choice(["captions", "translations"]), multiple=True, help="only this part (repeat)"
)
@click.option("--json-out", default=None, help="write the full result here")
@click.option("--cost-n", default=0, type=int, help="then also `bench quality --n N` with the loaded model")
@click.pass_context
def eval_quality(
    ctx: click.Context,
    model: str,
    engine: str,
    base_url: str,
    batch_size: int,
    scoring: str,
    limit: int | None,
    back_translation: bool,
    rules_only: bool,
    parts: tuple[str, ...],
    json_out: str | None,
    cost_n: int,
) -> None:
    """ROC-AUC of each quality signal on the shipped labelled set: good against junk captions (EN, ZH) and good
    against corrupted translations, per kind."""
    from dataengine.bench.eval_quality import PARTS, evaluate

    judge = None if rules_only else judge_for_cli(ctx.obj["storage"], model, engine, base_url, batch_size, scoring)
    t0 = time.perf_counter()
    result = evaluate(judge, limit, back_translation, parts or PARTS)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    for part in parts or PARTS:
        r = result[part]
        names = list(r["overall"])
        table = Table("kind", "n", *names, title=f"{part}: {r['items']} items, {r['good']} good (ROC-AUC)")
        table.add_row("all", str(r["items"] - r["good"]), *[_fmt(r["overall"][n]) for n in names])
        for lang, aucs in r.get("by_language", {}).items():
            table.add_row(f"({lang})", "", *[_fmt(aucs[n]) for n in names])
        for kind, row in r["by_kind"].items():
            table.add_row(kind, str(row["n"]), *[_fmt(row[n]) for n in names])
        console.print(table)
    console.print(f"{result['seconds']} s; LLM calls {result.get('llm_calls', 0)}")
    if cost_n and judge is not None:
        from dataengine.bench.eval_quality import cost

        result["cost"] = cost(judge, cost_n, batch_size)
        console.print_json(json.dumps(result["cost"]))
    if json_out:
        with open(json_out, "w") as f:
            json.dump(result, f, indent=1, ensure_ascii=False)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


@bench.command("quality")
@engine_options
@click.option("--n", default=32, type=int, help="captions (the labelled set's good pairs, cycled)")
@click.pass_context
def bench_quality(
    ctx: click.Context, model: str, engine: str, base_url: str, batch_size: int, scoring: str, n: int
) -> None:
    """Seconds per 1,000 captions for quality and translation_qe, batched vs one at a time (no cache)."""
    from dataengine.bench.eval_quality import cost

    judge = judge_for_cli(ctx.obj["storage"], model, engine, base_url, batch_size, scoring)
    console.print_json(json.dumps(cost(judge, n, batch_size)))
