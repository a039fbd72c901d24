"""`dataengine serve translator`: a Ray Serve deployment exposing an OpenAI-compatible `/v1/chat/completions`
and `/v1/models`, backed by the transformers engine, with dynamic batching of concurrent requests.
Bound to 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import time
import uuid
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse


@serve.deployment(max_ongoing_requests=64)
class TranslatorServer:
    def __init__(self, model: str, storage: str | None, trust_remote_code: bool = False):
        from dataengine.translate.engines.hf import TransformersEngine

        self.engine = TransformersEngine(model, storage=storage, trust_remote_code=trust_remote_code)

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.05)
    async def _generate(self, requests: list[dict[str, Any]]) -> list[Any]:
        # one engine call per group of identical generation settings, results back in request order
        out: list[Any] = [None] * len(requests)
        groups: dict[tuple[int, float], list[int]] = {}
        for i, r in enumerate(requests):
            groups.setdefault((int(r.get("max_tokens") or 256), float(r.get("temperature") or 0.0)), []).append(i)
        for (max_tokens, temperature), idx in groups.items():
            results = self.engine.generate(
                [requests[i]["messages"] for i in idx], max_new_tokens=max_tokens, temperature=temperature
            )
            for i, res in zip(idx, results, strict=True):
                out[i] = res
        return out

    async def __call__(self, request: Request) -> JSONResponse:
        path = request.url.path.rstrip("/")
        if request.method == "GET" and path.endswith("/v1/models"):
            return JSONResponse(
                {"object": "list", "data": [{"id": self.engine.model, "object": "model", "owned_by": "dataengine"}]}
            )
        if request.method != "POST" or not path.endswith("/v1/chat/completions"):
            return JSONResponse({"error": {"message": f"no route {request.method} {path}"}}, status_code=404)
        try:
            body = await request.json()
            messages = body["messages"]
            if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
                raise ValueError("messages must be a list of objects")
        except (ValueError, KeyError) as exc:
            return JSONResponse({"error": {"message": f"bad request: {exc}"}}, status_code=400)
        res = await self._generate(body)
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
    model: str, storage: str | None = None, host: str = "127.0.0.1", port: int = 8000, trust_remote_code: bool = False
) -> str:
    """Start Serve on host:port with the translator at / and return the OpenAI base URL."""
    serve.start(http_options={"host": host, "port": port})
    serve.run(TranslatorServer.bind(model, storage, trust_remote_code), name="translator", route_prefix="/")
    return f"http://{host}:{port}/v1"
