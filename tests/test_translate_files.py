"""`dataengine translate IN.jsonl OUT.jsonl` against a real local OpenAI-compatible server: order kept, English
alongside, provenance, and OUT + rejects = IN."""

from __future__ import annotations

import json
import sys

from click.testing import CliRunner
from conftest import write_jsonl
from llm_helpers import ScriptedLLM

from dataengine.cli import main
from dataengine.readers.annotations import parse_annotation


def test_translate_annotation_file(tmp_path):
    src = write_jsonl(
        tmp_path / "in.jsonl",
        [
            {"id": "a", "image": "a.jpg", "caption": "A red car parked on the street."},
            {
                "id": "b",
                "image": "b.jpg",
                "conversations": [
                    {"from": "human", "value": "<image>\nWhat is in the picture?"},
                    {"from": "gpt", "value": "A cat sleeping on a sofa."},
                ],
            },
            b"{broken json",
            {"id": "c", "image": "c.jpg", "caption": "Say hello"},
            {"id": "d", "image": "d.jpg"},
            {"id": "e", "image": "e.jpg", "caption": "A dog runs on the grass with 2 balls."},
            {"id": "f", "image": "f.jpg", "conversations": [{"value": "A turn with no speaker."}]},
        ],
    )
    dst = tmp_path / "out.jsonl"
    with ScriptedLLM() as server:
        args = [
            "--storage",
            str(tmp_path / "st"),
            "translate",
            str(src),
            str(dst),
            "--engine",
            "openai",
            "--model",
            "scripted",
            "--base-url",
            server.base_url,
        ]
        res = CliRunner().invoke(main, args, catch_exceptions=False)
        assert res.exit_code == 0, res.output
        first_calls = server.requests
        again = CliRunner().invoke(main, args, catch_exceptions=False)
        assert server.requests - first_calls == 2 and "cache hits 4" in again.output  # only "Say hello" retried
    out = [json.loads(x) for x in dst.read_text(encoding="utf-8").splitlines()]
    rejects = [json.loads(x) for x in (tmp_path / "out.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in out] == ["a", "b", "e"]
    assert (
        out[0]["caption"] == "一辆红色的汽车停在街上。" and out[0]["caption_en"] == "A red car parked on the street."
    )
    assert out[1]["conversations"][0] == {
        "from": "human",
        "value": "<image>\n图片里有什么？",
        "value_en": "<image>\nWhat is in the picture?",
    }
    assert out[0]["translation"]["status"] == "ok" and out[0]["translation"]["engine"] == "openai"
    assert sorted((r["line"], r["reason"]) for r in rejects) == [
        (3, "invalid_json"),
        (4, "translation_preamble_or_echo"),
        (5, "missing_text"),
        (7, "invalid_conversation"),  # a turn without "from": a reject, not a crash of the command
    ]
    assert len(out) + len(rejects) == 7


def test_text_is_read_by_the_pipelines_rule(tmp_path):
    """A record with both a caption and conversations is refused as the pipeline's readers refuse it, instead of
    having its caption translated and its conversations left English; a `text` caption is translated in place."""
    both = {
        "id": "both",
        "image": "b.jpg",
        "caption": "A red car parked on the street.",
        "conversations": [
            {"from": "human", "value": "<image>\nWhat is in the picture?"},
            {"from": "gpt", "value": "A cat sleeping on a sofa."},
        ],
    }
    text = {"id": "t", "image": "t.jpg", "text": "A red car parked on the street."}
    src, dst = write_jsonl(tmp_path / "in.jsonl", [both, text]), tmp_path / "out.jsonl"
    with ScriptedLLM() as server:
        args = ["--storage", str(tmp_path / "st"), "translate", str(src), str(dst), "--engine", "openai"]
        res = CliRunner().invoke(main, [*args, "--model", "scripted", "--base-url", server.base_url])
    assert res.exit_code == 0, res.output
    (out,) = [json.loads(x) for x in dst.read_text(encoding="utf-8").splitlines()]
    assert (out["id"], out["text"], out["text_en"]) == ("t", "一辆红色的汽车停在街上。", text["text"])
    (rej,) = [json.loads(x) for x in (tmp_path / "out.rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert (rej["line"], rej["reason"]) == (1, "ambiguous_text")
    row = parse_annotation(json.dumps(both).encode(), source="s", location="in.jsonl:1", root=str(tmp_path))
    assert row["reason"] == rej["reason"]  # the pipeline's readers say the same


def test_missing_input_is_one_clear_line(tmp_path):
    missing = tmp_path / "missing.jsonl"
    args = ["--storage", str(tmp_path), "translate", str(missing), str(tmp_path / "o.jsonl"), "--engine", "openai"]
    res = CliRunner().invoke(main, [*args, "--base-url", "http://127.0.0.1:9/v1"])  # checked before any request
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit)  # a ClickException, not a traceback
    assert res.output == f"Error: input file {missing} not found\n"
    assert not (tmp_path / "o.jsonl").exists()


def test_gguf_model_without_the_gguf_package_names_the_extra(tmp_path, monkeypatch):
    """`--model demo-translator` (a registered .gguf) when the gguf package is not installed: the engine says
    which extra to install before transformers starts loading."""
    folder = tmp_path / "models" / "demo-translator"
    folder.mkdir(parents=True)
    (folder / "demo.gguf").write_bytes(b"GGUF" + bytes(12))
    record = {"name": "demo-translator", "file": "demo.gguf", "size": 16, "format": "gguf"}
    (folder / "model.json").write_text(json.dumps(record))
    src = write_jsonl(tmp_path / "in.jsonl", [{"image": "a.jpg", "caption": "A red car parked on the street."}])
    monkeypatch.setitem(sys.modules, "gguf", None)  # `import gguf` raises ImportError, as when not installed
    args = ["--storage", str(tmp_path), "translate", str(src), str(tmp_path / "o.jsonl"), "--model", "demo-translator"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.exception
    assert res.output.count("\n") == 1 and res.output.startswith("Error: ")
    assert "gguf package" in res.output and "pip install 'dataengine[demo]'" in res.output
