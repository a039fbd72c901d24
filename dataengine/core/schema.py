"""Versioned output schemas, loaded from `schemas/*.json`: the code writes exactly these."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pyarrow as pa

from dataengine.core.storage import PACKAGE_DIR

SCHEMA_DIR = PACKAGE_DIR / "schemas"
_PRIMITIVES = {
    "string": pa.string(),
    "binary": pa.binary(),
    "bool": pa.bool_(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
}


def _arrow_type(spec: Any) -> pa.DataType:
    if isinstance(spec, str):
        return _PRIMITIVES[spec]
    if "list" in spec:
        return pa.list_(_arrow_type(spec["list"]))
    if "struct" in spec:
        return pa.struct([pa.field(f["name"], _arrow_type(f["type"])) for f in spec["struct"]])
    raise ValueError(f"unknown schema type {spec!r}")


def latest_version(name: str) -> int:
    versions = [int(p.name.split(".v")[1].split(".")[0]) for p in SCHEMA_DIR.glob(f"{name}.v*.json")]
    if not versions:
        raise FileNotFoundError(f"no schema named {name!r} in {SCHEMA_DIR}")
    return max(versions)


@cache
def load(name: str, version: int | None = None) -> pa.Schema:
    """The Arrow schema of `schemas/{name}.v{version}.json` (default: the latest), tagged with name and version."""
    version = version or latest_version(name)
    doc = json.loads((SCHEMA_DIR / f"{name}.v{version}.json").read_text())
    fields = [
        pa.field(
            f["name"],
            _arrow_type(f["type"]),
            nullable=f.get("nullable", True),
            metadata={"description": f.get("description", "")},
        )
        for f in doc["fields"]
    ]
    return pa.schema(fields, metadata={"dataengine.schema": f"{doc['name']}.v{doc['version']}"})


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Select and cast `table`'s columns to `schema` (missing nullable columns become nulls)."""
    cols = []
    for field in schema:
        if field.name in table.column_names:
            col = table.column(field.name).cast(field.type)
        elif field.nullable:
            col = pa.nulls(len(table), field.type)
        else:
            raise ValueError(f"column {field.name!r} required by schema is missing")
        if not field.nullable and col.null_count:
            raise ValueError(f"column {field.name!r} has {col.null_count} nulls but the schema forbids them")
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=schema)
