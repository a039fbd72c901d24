"""Registered models: pulling chunked wheels, the converted float32 folder, and a file that no longer matches
its registration (refused, not loaded)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zipfile

import pytest

from dataengine import models
from dataengine.models import ModelError, resolve_model


def test_a_truncated_registered_file_is_refused(tmp_path):
    folder = tmp_path / "models" / "demo-translator"
    folder.mkdir(parents=True)
    (folder / "m.gguf").write_bytes(b"x" * 100)
    record = {"name": "demo-translator", "file": "m.gguf", "format": "gguf", "size": 100, "sha256": "-"}
    (folder / "model.json").write_text(json.dumps(record))
    assert resolve_model("demo-translator", str(tmp_path)).gguf_file == "m.gguf"
    (folder / "m.gguf").write_bytes(b"x" * 60)  # a disk filled up, a copy cut short
    with pytest.raises(ModelError, match="not 100 bytes as registered"):
        resolve_model("demo-translator", str(tmp_path))


def _registered_gguf(root, size=100):
    folder = root / "models" / "demo-translator"
    folder.mkdir(parents=True)
    (folder / "m.gguf").write_bytes(b"x" * size)
    record = {"name": "demo-translator", "file": "m.gguf", "format": "gguf", "size": size, "sha256": "-"}
    (folder / "model.json").write_text(json.dumps(record))
    return folder, record


def test_a_converted_folder_is_loaded_instead_of_the_gguf_once_complete(tmp_path):
    """After conversion the registry points at the float32 folder; its identity (the engines' `server`, part of
    the cache keys) stays the GGUF's path, since the weights are the same. A folder missing a shard its index
    names is not used."""
    folder, record = _registered_gguf(tmp_path)
    hf = folder / "hf"
    hf.mkdir()
    for name in ("config.json", "tokenizer_config.json", "model-00001-of-00002.safetensors"):
        (hf / name).write_text("{}")
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (hf / "model.safetensors.index.json").write_text(json.dumps(index))
    (folder / "model.json").write_text(json.dumps({**record, "converted": "hf"}))
    partial = resolve_model("demo-translator", str(tmp_path))
    assert partial.path == str(folder) and partial.gguf_file == "m.gguf"  # a shard missing: the GGUF is used
    (hf / "model-00002-of-00002.safetensors").write_text("{}")
    local = resolve_model("demo-translator", str(tmp_path))
    assert local.path == str(hf) and local.gguf_file is None
    assert local.origin == str(folder / "m.gguf") == os.path.join(partial.path, partial.gguf_file)


def _wheel(folder, package, member, data):
    """A minimal wheel holding one data member, as the demo model's chunk packages do."""
    dist = f"{package.replace('-', '_')}-0.2.0"
    path = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, data)
        zf.writestr(f"{dist}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.2.0\n")
        zf.writestr(
            f"{dist}.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr(f"{dist}.dist-info/RECORD", "")
    return path


def _pullable(tmp_path, monkeypatch, name, data, parts=6, **info):
    """Register a PullSpec for `data` cut into `parts` chunk wheels, served by a local index (pip --no-index)."""
    index = tmp_path / f"index-{name}"
    index.mkdir()
    size = -(-len(data) // parts)
    packages = []
    for i in range(parts):
        package, member = f"{name}-part{i}", f"{name.replace('-', '_')}_part{i}/data/part{i:02d}.bin"
        _wheel(index, package, member, data[i * size : (i + 1) * size])
        packages.append((f"{package}==0.2.0", member))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", " ".join(filter(None, [os.environ.get("PIP_FIND_LINKS"), str(index)])))
    spec = models.PullSpec(name, "m.bin", len(data), hashlib.sha256(data).hexdigest(), packages, info)
    monkeypatch.setitem(models.PULLABLE, name, spec)
    return spec


def test_pull_assembles_chunks_in_order_from_pip_downloads(tmp_path, monkeypatch):
    """`pull` downloads the chunk wheels with pip a few at a time (a local index here), concatenates their data
    members in order, checks size and sha256 and registers the file; a wrong checksum registers nothing."""
    whole = b"".join(bytes([i]) * (1000 + i) for i in range(6))
    _pullable(tmp_path, monkeypatch, "test-model", whole)
    lines = []
    target = models.pull("test-model", str(tmp_path / "st"), log=lines.append)
    assert (tmp_path / "st" / "models" / "test-model" / "m.bin").read_bytes() == whole
    assert lines[:2] == ["test-model: 4/6 chunks", "test-model: 6/6 chunks"]  # four wheels per pip call
    assert resolve_model("test-model", str(tmp_path / "st")).path == target
    models.pull("test-model", str(tmp_path / "st"), log=lines.append)
    assert lines[-1].startswith("test-model: already registered")
    spec = _pullable(tmp_path, monkeypatch, "bad-model", whole)
    monkeypatch.setitem(models.PULLABLE, "bad-model", dataclasses.replace(spec, sha256="0" * 64))
    with pytest.raises(ModelError, match="nothing registered"):
        models.pull("bad-model", str(tmp_path / "st"), log=lines.append)
    assert not (tmp_path / "st" / "models" / "bad-model" / "model.json").exists()


def test_a_gguf_that_cannot_be_converted_stays_in_use_with_a_one_line_reason(tmp_path, monkeypatch):
    """The float32 copy only saves load time: when transformers cannot read the GGUF (or the disk is full) the
    pull still registers it, says why in one line, and leaves no partial folder behind."""
    _pullable(tmp_path, monkeypatch, "odd-model", b"GGUF" + bytes(4000), parts=2, format="gguf")
    lines = []
    target = tmp_path / "st" / "models" / "odd-model"
    models.pull("odd-model", str(tmp_path / "st"), log=lines.append)
    assert "cannot keep the float32 copy" in lines[-1] and "loads read the GGUF instead" in lines[-1]
    assert "\n" not in lines[-1]
    assert "converted" not in json.loads((target / "model.json").read_text())
    assert sorted(p.name for p in target.iterdir()) == [".pull.lock", "m.bin", "model.json"]
    assert resolve_model("odd-model", str(tmp_path / "st")).gguf_file == "m.bin"


def test_pull_keeps_a_float32_copy_of_a_gguf_with_the_same_outputs(tmp_path, monkeypatch):
    """`pull` writes the de-quantised weights and the tokenizer as a Hugging Face folder beside the GGUF; the
    engine then loads the folder, tokenizes and scores exactly as from the GGUF, and keeps the GGUF's identity for
    the caches. `--no-convert` (convert=False) is remembered by later pulls (the demo's) until asked again."""
    import torch
    from llm_helpers import build_tiny_gguf

    from dataengine.translate import prompt
    from dataengine.translate.engines.hf import TransformersEngine

    data = build_tiny_gguf(tmp_path / "build").read_bytes()
    _pullable(tmp_path, monkeypatch, "tiny-gguf", data, parts=3, format="gguf")
    storage, lines = str(tmp_path / "st"), []
    folder = tmp_path / "st" / "models" / "tiny-gguf"
    models.pull("tiny-gguf", storage, log=lines.append, convert=False)
    models.pull("tiny-gguf", storage, log=lines.append)  # as the demo pulls: the recorded choice holds
    assert json.loads((folder / "model.json").read_text())["converted"] is False and not (folder / "hf").exists()
    from_gguf = TransformersEngine("tiny-gguf", storage=storage)
    assert from_gguf.server == str(folder / "m.bin")

    models.pull("tiny-gguf", storage, log=lines.append, convert=True)
    assert json.loads((folder / "model.json").read_text())["converted"] == "hf"
    assert resolve_model("tiny-gguf", storage).path == str(folder / "hf")
    assert lines[-1].endswith(f"float32 copy kept in {folder / 'hf'}")
    models.pull("tiny-gguf", storage, log=lines.append)
    assert lines[-1].startswith("tiny-gguf: already registered")  # the copy is complete: nothing redone

    from_folder = TransformersEngine("tiny-gguf", storage=storage)
    assert from_folder.server == from_gguf.server  # same weights, same cache keys
    text = ["A red car ⟦0⟧ 一辆红色的汽车"]
    ids = from_gguf.tokenizer(text)["input_ids"]
    assert from_folder.tokenizer(text)["input_ids"] == ids
    with torch.inference_mode():
        assert torch.equal(
            from_gguf.lm(input_ids=torch.tensor(ids)).logits, from_folder.lm(input_ids=torch.tensor(ids)).logits
        )
    msgs = [prompt.messages(t) for t in ["A red car parked on the street.", "a dog ⟦0⟧ 12"]]
    greedy = {"max_new_tokens": 6, "temperature": 0.0}
    assert [c.text for c in from_folder.generate(msgs, **greedy)] == [
        c.text for c in from_gguf.generate(msgs, **greedy)
    ]

    models.pull("tiny-gguf", storage, log=lines.append, convert=False)  # asked to drop it: disk given back
    assert not (folder / "hf").exists() and resolve_model("tiny-gguf", storage).gguf_file == "m.bin"
