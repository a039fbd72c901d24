"""Open a report in headless Chromium (the system's, driven by playwright) to screenshot it and collect errors.

Playwright's own browser downloads are never used: the report must render in a stock Chromium, offline.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    """`$DATAENGINE_CHROMIUM`, else Debian's /usr/bin/chromium, else chromium on PATH; None when absent."""
    for cand in (os.environ.get("DATAENGINE_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def screenshot(
    html: str, png: str, width: int = 1280, height: int | None = 1600, scale: float = 1.0
) -> list[dict[str, Any]]:
    """Render the HTML file and save a PNG of its top `height` pixels (None: the full page).

    Returns the console messages and page errors seen while loading, as {type, text}."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise RuntimeError("screenshots need playwright: pip install -e '.[dev]'") from exc
    exe = chromium_path()
    if exe is None:
        raise RuntimeError("screenshots need Chromium: apt-get install chromium (or set DATAENGINE_CHROMIUM)")
    messages: list[dict[str, Any]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height or 900}, device_scale_factor=scale)
            page.on("console", lambda m: messages.append({"type": m.type, "text": m.text}))
            page.on("pageerror", lambda e: messages.append({"type": "pageerror", "text": str(e)}))
            page.goto(Path(html).resolve().as_uri(), wait_until="load")
            page.screenshot(path=png, full_page=height is None)
        finally:
            browser.close()
    return messages
