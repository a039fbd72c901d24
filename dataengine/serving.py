"""What the HTTP servers (`serve translator`, `serve scorer`) share: a capped request body, optional API-key auth
(`Authorization: Bearer KEY`, as vLLM and OpenAI-compatible servers take it), and OpenAI-style error bodies.

A server bound to anything but loopback must have a key: `check_exposure` refuses to start it otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Callable
from typing import Any

import click
from starlette.requests import Request
from starlette.responses import JSONResponse

API_KEY_ENV = "DATAENGINE_API_KEY"


class BadRequest(ValueError):
    """A request the server refuses, with the message the client sees and its HTTP status (400 unless said)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def api_key_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """The `--api-key` option of the serve commands (read from DATAENGINE_API_KEY when not given, which keeps the
    key out of the process list)."""
    return click.option(
        "--api-key",
        envvar=API_KEY_ENV,
        show_envvar=True,
        default=None,
        help="require Authorization: Bearer KEY on requests; required unless bound to loopback",
    )(command)


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address or `localhost` (anything else, 0.0.0.0 included, is reachable)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost: it may resolve to anything
        return False


def check_exposure(host: str, api_key: str | None) -> None:
    """Refuse (ValueError, one line) to serve on a non-loopback address without an API key."""
    if not api_key and not is_loopback(host):
        raise ValueError(
            f"refusing to serve on {host} without an API key: set {API_KEY_ENV} (or pass --api-key), "
            "or bind to 127.0.0.1"
        )


def key_digest(api_key: str | None) -> str | None:
    """The sha256 of the key, which is all a server keeps (the key itself never reaches the deployment)."""
    return hashlib.sha256(api_key.encode()).hexdigest() if api_key else None


def unauthorized(request: Request, digest: str | None) -> JSONResponse | None:
    """None when the request may go on (no key configured, or the right `Authorization: Bearer` key); otherwise
    the 401 answer. Keys are compared as digests in constant time."""
    if digest is None:
        return None
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(key_digest(given.strip()) or "", digest):
        return None
    response = error("missing or invalid API key (send Authorization: Bearer KEY)", 401, "invalid_api_key")
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def error(message: str, status: int, code: str | None = None) -> JSONResponse:
    """An OpenAI-style error answer: {"error": {"message", "type", "param", "code"}}."""
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed `limit` bytes: declared length, then
    as read."""
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise BadRequest("bad Content-Length")
    if declared is not None and int(declared) > limit:
        raise BadRequest(f"body over {limit} bytes", 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"body over {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The request body as a JSON object, capped at `limit` bytes; BadRequest otherwise."""
    data = await read_body(request, limit)
    try:
        body = json.loads(data)
    except ValueError:
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body
