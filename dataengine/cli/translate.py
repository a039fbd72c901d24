"""Translation commands: `translate` (an annotation file), `serve translator`, and `models pull` (the local model
registry the translators load from)."""

from __future__ import annotations

import time

import click

from dataengine.cli.base import console, main, models, serve
from dataengine.serving import api_key_option


@models.command("pull")
@click.argument("name")
@click.option(
    "--no-convert", is_flag=True, help="keep only the GGUF: saves 7 GB of disk, each load takes about 2 minutes"
)
@click.pass_context
def models_pull(ctx: click.Context, name: str, no_convert: bool) -> None:
    """Assemble, verify (sha256) and register a model, e.g. demo-translator, and keep a float32 copy of a GGUF
    model's weights that later loads read in about 20 s."""
    from dataengine.models import ModelError, pull

    try:
        pull(name, ctx.obj["storage"], log=console.print, convert=not no_convert)
    except ModelError as exc:
        raise click.ClickException(str(exc)) from None


def translator_for(storage: str, model: str, engine: str, base_url: str, batch_size: int, use_cache: bool):
    from dataengine.translate.cache import TranslationCache
    from dataengine.translate.engines import EngineError, build_engine
    from dataengine.translate.prompt import PROMPT_VERSION
    from dataengine.translate.translator import Translator

    options = {"model": model}
    options.update({"base_url": base_url} if engine == "openai" else {"storage": storage})
    try:
        eng = build_engine(engine, **options)
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
    from dataengine.core.storage import exists
    from dataengine.translate.engines import EngineError
    from dataengine.translate.files import translate_file

    if not exists(src):  # before the model loads, which takes minutes
        raise click.ClickException(f"input file {src} not found")
    translator, version = translator_for(ctx.obj["storage"], model, engine, base_url, batch_size, True)
    try:
        counts = translate_file(src, dst, translator, version)
    except (EngineError, OSError) as exc:  # e.g. IN is a folder, OUT's folder is missing
        raise click.ClickException(str(exc)) from None
    console.print(
        f"translated {counts['translated']}, rejected {counts['rejected']} -> {dst} "
        f"(rejects: {counts['rejects_file']}); LLM calls {translator.llm_calls}, "
        f"cache hits {translator.cache.hits if translator.cache else 0}"
    )


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
