"""The `blocklist` stage: reject a sample whose text names a listed term (a word or phrase, any case)."""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any, Literal

from pydantic import Field

from dataengine.core.rows import Reject
from dataengine.ops.base import RowStage, StageConfig


class BlocklistConfig(StageConfig):
    op: Literal["blocklist"] = "blocklist"
    needs = frozenset({"text"})  # matches the cleaned text
    terms: list[str] = Field(min_length=1, description="words or phrases; Latin ones match whole words only")


class Blocklist(RowStage):
    name = "blocklist"
    Config = BlocklistConfig

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        terms = [re.escape(t) if not t.isascii() else rf"\b{re.escape(t)}\b" for t in self.config.terms]
        return re.compile("|".join(terms), re.IGNORECASE)

    def process(self, row: dict[str, Any]) -> dict[str, Any]:
        text = row["caption"] or "\n".join(t["value"] for t in row["conversations"] or [])
        if found := self.pattern.search(text):
            raise Reject("blocked_term", f"names {found.group(0)!r}")
        return row
