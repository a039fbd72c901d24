"""Content-addressed translation cache: one small JSON file per (source text, model, prompt version, glossary),
under `<storage>/cache/translate/`, written atomically. Only validated translations are stored."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from dataengine.storage import default_root, exists, join, read_bytes, write_bytes_atomic


class TranslationCache:
    def __init__(self, storage: str | None, model: str, prompt_version: str, glossary_hash: str):
        self.root = join(storage or default_root(), "cache", "translate")
        self.scope = [model, prompt_version, glossary_hash]
        self.hits = self.misses = 0

    def key(self, text: str) -> str:
        return hashlib.sha256(json.dumps([text, *self.scope], ensure_ascii=False).encode()).hexdigest()

    def _path(self, key: str) -> str:
        return join(self.root, key[:2], f"{key}.json")

    def get(self, text: str) -> str | None:
        path = self._path(self.key(text))
        if exists(path):
            self.hits += 1
            return json.loads(read_bytes(path))["translation"]
        self.misses += 1
        return None

    def put(self, text: str, translation: str, **provenance: Any) -> None:
        record = {
            "source": text,
            "translation": translation,
            "model": self.scope[0],
            "prompt_version": self.scope[1],
            "glossary": self.scope[2],
            **provenance,
        }
        write_bytes_atomic(self._path(self.key(text)), json.dumps(record, ensure_ascii=False).encode())
