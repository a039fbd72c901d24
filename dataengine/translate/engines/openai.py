"""Any OpenAI-compatible chat-completions server (vLLM serve, LMDeploy, SGLang, Ray Serve LLM, `dataengine serve
translator`): bounded concurrency, timeouts, retries with exponential backoff and jitter, and a clear error when
the server cannot be reached. The API key, when the server needs one, is `api_key` or else $OPENAI_API_KEY (as
OpenAI clients read it), sent as `Authorization: Bearer KEY`."""

from __future__ import annotations

import json
import math
import os
import random
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from dataengine.translate.engines import Completion, Engine, EngineError

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
REQUEST_STATUS = {400, 413, 422}  # this request refused (e.g. over the context length); the server is fine
DIGIT_ANSWERS = {str(d) for d in range(11)}  # "10" counts where the tokenizer has it as one token


class RequestFailed(Exception):
    """One request failed for a reason of its own; the others go on."""


class OpenAIEngine(Engine):
    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str = "http://127.0.0.1:8000/v1",
        api_key: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 120.0,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        **_: Any,
    ):
        self.model, self.base_url = model, base_url.rstrip("/")
        self.server = self.base_url
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
        self.concurrency, self.timeout_s = concurrency, timeout_s
        self.max_retries, self.backoff_s = max_retries, backoff_s
        self.requests = 0

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = json.dumps(payload).encode()
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random()))
            req = urllib.request.Request(f"{self.base_url}/chat/completions", data=body, headers=headers)
            try:
                self.requests += 1
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    raw = resp.read()
            except urllib.error.HTTPError as exc:
                if exc.code not in RETRY_STATUS:
                    detail = exc.read()[:300].decode("utf-8", "replace")
                    if exc.code in REQUEST_STATUS:
                        raise RequestFailed(f"HTTP {exc.code}: {detail}") from None
                    if exc.code in (401, 403):
                        raise EngineError(
                            f"{self.base_url}: HTTP {exc.code}: {detail}; the server wants an API key: set "
                            "OPENAI_API_KEY (or the translate stage's api_key_env)"
                        ) from None
                    raise EngineError(f"{self.base_url}: HTTP {exc.code}: {detail}") from None
                last = exc
                continue
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                last = exc
                continue
            try:
                return json.loads(raw)
            except ValueError as exc:  # a garbled answer: asked again, then this request fails alone
                last = exc
        if isinstance(last, ValueError):
            raise RequestFailed(f"malformed response after {self.max_retries + 1} attempts: {last}")
        raise EngineError(
            f"no OpenAI-compatible server answering at {self.base_url} after {self.max_retries + 1} "
            f"attempts ({type(last).__name__}: {last}); start one, e.g. `dataengine serve translator`"
        )

    def _one(self, messages: list[dict[str, str]], max_new_tokens: int, temperature: float) -> Completion:
        try:
            data = self._post(
                {"model": self.model, "messages": messages, "max_tokens": max_new_tokens, "temperature": temperature}
            )
        except RequestFailed as exc:
            return Completion("", None, error=str(exc)[:300])
        try:
            choice, usage = data["choices"][0], data.get("usage") or {}
            return Completion(
                text=(choice["message"].get("content") or "").strip(),
                finish_reason=choice.get("finish_reason"),
                prompt_tokens=usage.get("prompt_tokens", 0),
                completion_tokens=usage.get("completion_tokens", 0),
            )
        except (KeyError, IndexError, TypeError, AttributeError):  # e.g. {"error": ...} with HTTP 200
            return Completion("", None, error=f"malformed response: {json.dumps(data)[:200]}")

    def _expected(self, messages: list[dict[str, str]]) -> float | None:
        """The expected 0..10 answer from the server's top log-probabilities (OpenAI's `logprobs` and
        `top_logprobs`, which vLLM serves): the first token's mass over "0".."10"; "1" counts as 10 in the share
        P("0" | "1") when the greedy answer began with "1" (the only path the server reports), else as 1. None
        when the server gives no log-probabilities or no digit among them."""
        payload = {
            "model": self.model,
            "messages": messages,
            "max_tokens": 2,
            "temperature": 0.0,
            "logprobs": True,
            "top_logprobs": 20,
        }
        try:
            data = self._post(payload)
            steps = data["choices"][0]["logprobs"]["content"]
        except (RequestFailed, KeyError, IndexError, TypeError):
            return None
        if not steps:
            return None
        probs: dict[int, float] = {}
        for alt in steps[0].get("top_logprobs") or []:
            token = str(alt.get("token", "")).strip()
            if token in DIGIT_ANSWERS:
                probs[int(token)] = probs.get(int(token), 0.0) + math.exp(alt["logprob"])
        if not probs:
            return None
        ten = 0.0
        if str(steps[0].get("token", "")).strip() == "1" and len(steps) > 1:
            ten = sum(math.exp(a["logprob"]) for a in steps[1].get("top_logprobs") or [] if a.get("token") == "0")
        total = sum(probs.values())
        value = sum(d * p for d, p in probs.items()) + probs.get(1, 0.0) * ten * 9
        return round(value / total, 4)

    def expected_scores(self, batch: list[list[dict[str, str]]]) -> list[float | None]:
        """`_expected` for each conversation, requests in parallel (bounded by `concurrency`)."""
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(batch)))) as pool:
            return list(pool.map(self._expected, batch))

    def generate(
        self, batch: list[list[dict[str, str]]], *, max_new_tokens: int, temperature: float
    ) -> list[Completion]:
        with ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(batch)))) as pool:
            return list(pool.map(lambda m: self._one(m, max_new_tokens, temperature), batch))
