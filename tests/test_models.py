"""Registered models: a file that no longer matches its registration is refused, not loaded."""

from __future__ import annotations

import json

import pytest

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
