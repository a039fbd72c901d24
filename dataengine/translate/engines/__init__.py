"""Translation engines behind one interface: chat messages in, completions out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None  # "stop" or "length"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None  # this request alone failed (refused, malformed answer): its segment fails with it


class EngineError(RuntimeError):
    """The engine cannot serve requests (server down, model missing...): the run stops with this message."""


class Engine(ABC):
    name: str
    model: str
    server: str  # where the weights are served from (server URL, local file or folder): part of the cache key

    @abstractmethod
    def generate(
        self, batch: list[list[dict[str, str]]], *, max_new_tokens: int, temperature: float
    ) -> list[Completion]:
        """One completion per conversation in `batch`, in order."""


def build_engine(kind: str, **options: Any) -> Engine:
    """An engine by name: transformers (in process), openai (HTTP), vllm (GPU clusters only)."""
    if kind == "transformers":
        from dataengine.translate.engines.hf import TransformersEngine

        return TransformersEngine(**options)
    if kind == "openai":
        from dataengine.translate.engines.openai import OpenAIEngine

        return OpenAIEngine(**options)
    if kind == "vllm":
        raise EngineError("the vllm engine runs as a Ray Data LLM processor, not per batch: see translate.vllm")
    raise EngineError(f"unknown engine {kind!r}; use transformers, openai or vllm")
