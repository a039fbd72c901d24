"""`dataengine serve scorer`: a Ray Serve deployment scoring image-text pairs over HTTP, with dynamic batching.

    POST /v1/score  {"image": BASE64 | "image_uri": URI | "tiles": [BASE64 JPEG, ...],
                     "texts": {"en": "...", "zh": "..."}}
      -> {"model": "NAME:VERSION", "match_en", "match_zh", "loglik_en", "loglik_zh", "translation_drift"}
    GET  /healthz   -> {"status": "ok", "model": "NAME:VERSION"}

An image is tiled here the InternVL 1.5 way; `tiles` (what the score stage sends) skips that. `image_uri` is
read only under the configured image root (never outside it), and only a regular file of at most MAX_IMAGE_FILE
bytes. Bound to 127.0.0.1 unless told otherwise; with an API key, every request but /healthz needs
`Authorization: Bearer KEY` (dataengine.serving).
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from dataengine.serving import BadRequest, check_exposure, key_digest, read_json_object, unauthorized

MAX_PIXELS = 50_000_000  # decompression-bomb limit, read from the header before decoding
MAX_BODY = 64 * 1024 * 1024
MAX_IMAGE_FILE = MAX_BODY * 3 // 4  # an image_uri file may be as large as a base64 image in a body, no larger
MAX_TILES = 40  # tiles one request may send (InternVL's largest dynamic grid + thumbnail fits)
TILE_SIZE = 448


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise BadRequest(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{what} is not valid base64") from None


def confined(uri: str, root: str | None) -> str:
    """The local path of `uri` if it lies under `root`; refuses everything when no root is configured."""
    if root is None:
        raise BadRequest("image_uri is disabled on this server (start it with --image-root)")
    path = uri[len("file://") :] if uri.startswith("file://") else uri
    if "://" in path:
        raise BadRequest("image_uri must be a local path or file:// URI under the image root")
    real, base = os.path.realpath(os.path.join(root, path)), os.path.realpath(root)
    if os.path.commonpath([real, base]) != base:
        raise BadRequest("image_uri points outside the image root")
    return real


def read_image_file(path: str) -> bytes:
    """The bytes of a regular file of at most MAX_IMAGE_FILE bytes. Opened without blocking and checked on the
    open descriptor, so a FIFO or device cannot stall the server, nor a huge file fill its memory."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise BadRequest(f"image_uri cannot be opened: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise BadRequest("image_uri is not a regular file")
        if info.st_size > MAX_IMAGE_FILE:
            raise BadRequest(f"image_uri is {info.st_size} bytes, over the limit of {MAX_IMAGE_FILE}")
        with open(fd, "rb", closefd=False) as f:
            data = f.read(MAX_IMAGE_FILE + 1)
    finally:
        os.close(fd)
    if len(data) > MAX_IMAGE_FILE:  # grew since
        raise BadRequest(f"image_uri is over the limit of {MAX_IMAGE_FILE} bytes")
    return data


def _checked_tile(data: bytes) -> bytes:
    """A client's tile, refused unless its JPEG header says 448x448: no decode of a bomb or a misfit."""
    import simplejpeg

    try:
        height, width, _, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        raise BadRequest("tiles[] must be JPEG images") from None
    if (width, height) != (TILE_SIZE, TILE_SIZE):
        raise BadRequest(f"a tile is {width}x{height}, not {TILE_SIZE}x{TILE_SIZE}")
    return data


def texts_of_body(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(en, zh) from the request: each a string or absent, at least one non-empty."""
    texts = body.get("texts")
    if not isinstance(texts, dict) or any(
        texts.get(k) is not None and not isinstance(texts[k], str) for k in ("en", "zh")
    ):
        raise BadRequest('texts must be an object of strings: {"en": ..., "zh": ...}')
    en, zh = texts.get("en") or None, texts.get("zh") or None
    if en is None and zh is None:
        raise BadRequest('texts must be an object with "en" and/or "zh" strings')
    return en, zh


def tiles_of(body: dict[str, Any], max_tiles: int, image_root: str | None) -> list[bytes]:
    """The request's tiles: given, or cut from its image (bytes or a confined path)."""
    import io

    from PIL import Image

    from dataengine.tiling import tile_encoded

    if "tiles" in body:
        tiles = body["tiles"]
        if not isinstance(tiles, list) or not tiles:
            raise BadRequest("tiles must be a non-empty list")
        if len(tiles) > MAX_TILES:
            raise BadRequest(f"{len(tiles)} tiles, over the limit of {MAX_TILES}")
        return [_checked_tile(_b64(t, "tiles[]")) for t in tiles]
    if "image" in body:
        data = _b64(body["image"], "image")
    elif "image_uri" in body:
        data = read_image_file(confined(str(body["image_uri"]), image_root))
    else:
        raise BadRequest("give one of image, image_uri or tiles")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            w, h = probe.size
    except Exception:
        raise BadRequest("image is not a decodable image") from None
    if w * h > MAX_PIXELS:
        raise BadRequest(f"image is {w}x{h}, over the {MAX_PIXELS} pixel limit")
    return tile_encoded(data, max_tiles=max_tiles).tiles


@serve.deployment(max_ongoing_requests=64)
class ScorerServer:
    def __init__(
        self,
        model_path: str,
        image_root: str | None = None,
        trust_remote_code: bool = False,
        key_sha256: str | None = None,
    ):
        from dataengine.scorer.model import load
        from dataengine.scorer.scoring import Scorer

        self.scorer = Scorer(load(model_path, trust_remote_code=trust_remote_code))
        self.image_root = image_root
        self.key_sha256 = key_sha256

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.02)
    async def _score(self, items: list[Any]) -> list[dict[str, Any]]:
        """Scores for a batch of requests; one bad request fails only itself (its result then carries "error")."""
        return [
            {"error": f"could not score: {type(r).__name__}: {r}"[:300]} if isinstance(r, Exception) else r
            for r in self.scorer.score_each(items)
        ]

    async def __call__(self, request: Request) -> JSONResponse:
        from dataengine.scorer.scoring import Item

        path = request.url.path.rstrip("/")
        if request.method == "GET" and path.endswith("/healthz"):
            return JSONResponse({"status": "ok", "model": self.scorer.label})
        if (refused := unauthorized(request, self.key_sha256)) is not None:
            return refused
        if request.method != "POST" or not path.endswith("/v1/score"):
            return JSONResponse({"error": f"no route {request.method} {path}"}, status_code=404)
        try:
            body = await read_json_object(request, MAX_BODY)
            en, zh = texts_of_body(body)
            tiles = tiles_of(body, self.scorer.model.meta.max_tiles, self.image_root)
        except BadRequest as exc:
            return JSONResponse({"error": f"bad request: {exc}"}, status_code=exc.status)
        except (ValueError, OSError) as exc:
            return JSONResponse({"error": f"bad request: {exc}"}, status_code=400)
        result = await self._score(Item(tiles, en, zh))
        if "error" in result:
            return JSONResponse({"error": result["error"]}, status_code=422)
        return JSONResponse({"model": self.scorer.label, **result})


def start(
    model_path: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    image_root: str | None = None,
    trust_remote_code: bool = False,
    api_key: str | None = None,
) -> str:
    """Start Serve on host:port with the scorer at / and return its base URL; with `api_key`, requests need it
    (refused without one on a non-loopback host)."""
    check_exposure(host, api_key)
    serve.start(http_options={"host": host, "port": port})
    app = ScorerServer.bind(model_path, image_root, trust_remote_code, key_digest(api_key))
    serve.run(app, name="scorer", route_prefix="/")
    return f"http://{host}:{port}"
