"""`dataengine serve translator`: a Ray Serve deployment exposing an OpenAI-compatible `/v1/chat/completions`
and `/v1/models`, backed by the transformers engine, with dynamic batching of concurrent requests.

Each request is checked before it joins a batch (body at most MAX_BODY bytes, a non-empty list of
role/content messages, `max_tokens` at most MAX_TOKENS, `temperature` in [0, 2]): a bad one is answered 4xx alone,
and one the engine fails on is answered 422 alone. Bound to 127.0.0.1 unless told otherwise; with an API key,
every request needs `Authorization: Bearer KEY` (dataengine.serving)."""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from dataengine.serving import BadRequest, check_exposure, error, key_digest, read_json_object, unauthorized
from dataengine.translate.engines import Completion

MAX_BODY = 4 * 1024 * 1024
MAX_TOKENS = 4096
DEFAULT_MAX_TOKENS = 256
ROLES = ("system", "user", "assistant")

Job = tuple[list[dict[str, str]], int, float]  # messages, max_tokens, temperature


def parse_request(body: dict[str, Any]) -> Job:
    """The validated (messages, max_tokens, temperature) of a chat-completions body; BadRequest otherwise."""
    if body.get("stream"):
        raise BadRequest("stream is not supported by this server")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list")
    for m in messages:
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise BadRequest(f'each message must be {{"role": one of {", ".join(ROLES)}, "content": a string}}')
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        max_tokens = DEFAULT_MAX_TOKENS
    elif isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= MAX_TOKENS:
        raise BadRequest(f"max_tokens must be an integer from 1 to {MAX_TOKENS}")
    temperature = body.get("temperature")
    if temperature is None:
        temperature = 0.0
    elif (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not math.isfinite(temperature)
        or not 0 <= temperature <= 2
    ):
        raise BadRequest("temperature must be a number from 0 to 2")
    return [{"role": m["role"], "content": m["content"]} for m in messages], max_tokens, float(temperature)


@serve.deployment(max_ongoing_requests=64)
class TranslatorServer:
    def __init__(
        self, model: str, storage: str | None, trust_remote_code: bool = False, key_sha256: str | None = None
    ):
        from dataengine.translate.engines.hf import TransformersEngine

        self.engine = TransformersEngine(model, storage=storage, trust_remote_code=trust_remote_code)
        self.key_sha256 = key_sha256

    def _one(self, messages: list[dict[str, str]], max_tokens: int, temperature: float) -> Completion | Exception:
        try:
            return self.engine.generate([messages], max_new_tokens=max_tokens, temperature=temperature)[0]
        except Exception as exc:  # this request alone fails
            return exc

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.05)
    async def _generate(self, jobs: list[Job]) -> list[Completion | Exception]:
        """One engine call per group of identical generation settings, results back in request order; a group
        the engine fails on is generated one by one, so a request it cannot serve fails alone."""
        out: list[Completion | Exception | None] = [None] * len(jobs)
        groups: dict[tuple[int, float], list[int]] = {}
        for i, (_, max_tokens, temperature) in enumerate(jobs):
            groups.setdefault((max_tokens, temperature), []).append(i)
        for (max_tokens, temperature), idx in groups.items():
            try:
                results: list[Completion | Exception] = list(
                    self.engine.generate([jobs[i][0] for i in idx], max_new_tokens=max_tokens, temperature=temperature)
                )
            except Exception:
                results = [self._one(jobs[i][0], max_tokens, temperature) for i in idx]
            for i, res in zip(idx, results, strict=True):
                out[i] = res
        return [r for r in out if r is not None]

    async def __call__(self, request: Request) -> JSONResponse:
        if (refused := unauthorized(request, self.key_sha256)) is not None:
            return refused
        path = request.url.path.rstrip("/")
        if request.method == "GET" and path.endswith("/v1/models"):
            return JSONResponse(
                {"object": "list", "data": [{"id": self.engine.model, "object": "model", "owned_by": "dataengine"}]}
            )
        if request.method != "POST" or not path.endswith("/v1/chat/completions"):
            return error(f"no route {request.method} {path}", 404)
        try:
            job = parse_request(await read_json_object(request, MAX_BODY))
        except BadRequest as exc:
            return error(f"bad request: {exc}", exc.status)
        res = await self._generate(job)
        if isinstance(res, Exception):
            return error(f"could not generate: {type(res).__name__}: {res}"[:300], 422)
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.engine.model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": res.text},
                        "finish_reason": res.finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": res.prompt_tokens,
                    "completion_tokens": res.completion_tokens,
                    "total_tokens": res.prompt_tokens + res.completion_tokens,
                },
            }
        )


def start(
    model: str,
    storage: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    trust_remote_code: bool = False,
    api_key: str | None = None,
) -> str:
    """Start Serve on host:port with the translator at / and return the OpenAI base URL; with `api_key`, requests
    need it (refused without one on a non-loopback host)."""
    check_exposure(host, api_key)
    serve.start(http_options={"host": host, "port": port})
    app = TranslatorServer.bind(model, storage, trust_remote_code, key_digest(api_key))
    serve.run(app, name="translator", route_prefix="/")
    return f"http://{host}:{port}/v1"
