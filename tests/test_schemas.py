"""Every schema file parses into Arrow, has descriptions, and the latest version is what `load` returns."""

from __future__ import annotations

import json

import pytest

from dataengine.core import schema


@pytest.mark.parametrize("path", sorted(schema.SCHEMA_DIR.glob("*.json")), ids=lambda p: p.name)
def test_schema_files_are_complete(path):
    doc = json.loads(path.read_text())
    assert path.name == f"{doc['name']}.v{doc['version']}.json" and doc["description"]
    arrow = schema.load(doc["name"], doc["version"])
    assert arrow.metadata[b"dataengine.schema"] == f"{doc['name']}.v{doc['version']}".encode()
    assert all(f["description"] for f in doc["fields"]) and len(arrow) == len(doc["fields"])


def test_load_defaults_to_latest():
    assert schema.load("samples") == schema.load("samples", schema.latest_version("samples"))
