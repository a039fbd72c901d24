"""`dataengine report`: a real scored run rendered to one self-contained HTML file, opened in headless Chromium
(Debian's, driven by playwright): every section renders, no console errors, no network requests, untrusted
captions stay text; thumbnails keep to the input root and the decompression-bomb limits."""

from __future__ import annotations

import base64
import io
import os
import re

import pytest
from click.testing import CliRunner
from conftest import bomb_png, encode, textured, write_jsonl
from PIL import Image, ImageStat
from scorer_helpers import save_tiny_scorer, shapes_png

from dataengine import manifest, pipeline, runner
from dataengine.cli import main
from dataengine.report import render, thumbs
from dataengine.report.browser import CHROMIUM_ARGS, chromium_path

N_GOOD = 8
XSS = "<script>alert(1)</script><img src=x onerror=alert(2)> tiny"
SECTIONS = ["summary", "funnel", "rejects", "languages", "tiles", "scores", "drift", "throughput"]
CHARTS = ["funnel", "rejects", "languages", "tiles", "scores", "drift"]
STAGE_STATS = [{"stage": "ReadFiles", "rows": 13, "wall_s": 0.5}, {"stage": "Map(score)", "rows": 9, "wall_s": 3.0}]


@pytest.fixture(scope="module")
def run(ray_local, tmp_path_factory):
    """A run with every charted stage: languages, tiles, bilingual scores, filter rejects and cleaning rejects."""
    root = tmp_path_factory.mktemp("report")
    data = root / "data"
    (data / "img").mkdir(parents=True)
    recs = []
    for i in range(N_GOOD):
        png, en, zh = shapes_png(200 + i)
        (data / "img" / f"{i}.png").write_bytes(png)
        recs.append({"image": f"img/{i}.png", "caption": en} | ({"caption_zh": zh} if i % 3 else {}))
    (data / "img" / "wide.jpg").write_bytes(encode(textured(7, (1300, 420))))
    recs.append({"image": "img/wide.jpg", "caption": "一张宽幅的彩色抽象纹理图片"})
    (data / "img" / "tiny.jpg").write_bytes(encode(textured(8, (16, 16))))
    recs.append({"image": "img/tiny.jpg", "caption": XSS})  # too small: the raw caption reaches the gallery
    recs.append({"image": "img/gone.jpg", "caption": "A file that is not there."})
    recs.append(b'{"image": "img/0.png", "caption": ')  # invalid JSON
    write_jsonl(data / "ann.jsonl", recs)
    save_tiny_scorer(str(root / "storage"))
    stages = [
        {"op": "resolve"},
        {"op": "image"},
        {"op": "text"},
        {"op": "language"},
        {"op": "tile", "max_tiles": 4, "batch_size": 8},
        {"op": "score", "model": "tiny-test", "batch_size": 8},
        {"op": "filter", "keep_top_fraction": 0.6, "top_by": "match_en"},
        {"op": "export"},
    ]
    spec = pipeline.parse({"name": "report", "ray": {"progress": False}, "stages": stages})
    record = runner.run(spec, input_uri=str(data), storage=str(root / "storage"))
    assert record["accounting"]["ok"]
    return root, record


@pytest.fixture(scope="module")
def chromium():
    """Debian's Chromium and playwright, or skip (fail under CI, where setup.sh installs them)."""
    exe = chromium_path()
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        exe = None
    if exe is None:
        reason = "Chromium (/usr/bin/chromium: apt-get install chromium) and playwright are needed to render reports"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return exe


@pytest.fixture
def browser(chromium):
    """A headless Chromium for one test (playwright's sync API allows one driver at a time per thread)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield b
        b.close()


def open_report(browser, path):
    """Load a report; returns the page and what it logged, requested and tried to pop up."""
    page = browser.new_page(viewport={"width": 1280, "height": 1600})
    seen = {"console": [], "errors": [], "requests": [], "dialogs": []}
    page.on("console", lambda m: seen["console"].append((m.type, m.text)))
    page.on("pageerror", lambda e: seen["errors"].append(str(e)))
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("dialog", lambda d: (seen["dialogs"].append(d.message), d.dismiss()))
    page.goto(path.as_uri(), wait_until="load")
    return page, seen


def test_report_renders_in_chromium_without_errors(run, browser, tmp_path):
    root, record = run
    args = ["--storage", str(root / "storage"), "report", record["run_id"], "--gallery", "6"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    path = root / "storage" / "runs" / record["run_id"] / "report.html"
    assert path.is_file() and not [f for f in os.listdir(path.parent) if f.endswith(".tmp")]
    page, seen = open_report(browser, path)
    try:
        assert [m for m in seen["console"] if m[0] in ("error", "warning")] == [] and seen["errors"] == []
        assert all(u.startswith(("file:", "data:")) for u in seen["requests"]), seen["requests"]
        for section in SECTIONS + ["gallery-accepted", "gallery-rejected", "review"]:
            assert page.locator(f"#{section}").count() == 1, section
        for section in CHARTS:  # every chart decoded by the browser
            ok = page.eval_on_selector(f"#{section} img.chart", "i => i.complete && i.naturalWidth > 100")
            assert ok, section
        throughput = page.inner_text("#throughput")  # the run's own stage_stats (Ray Data's operators)
        assert "tile" in throughput and "export" in throughput and "not recorded" not in throughput
        stats = record["accounting"]
        assert page.locator("#gallery-accepted article.card").count() == min(6, stats["accepted"])
        assert page.locator("#gallery-rejected article.card").count() == min(6, stats["rejected"])
        assert page.locator("#gallery-accepted img.thumb").count() == min(6, stats["accepted"])  # from the export
        rejected_text = page.inner_text("#gallery-rejected")
        for reason in ("too_small", "below_top_fraction", "missing_file", "invalid_json"):
            assert reason in rejected_text
        cards = page.locator("#gallery-rejected article.card")
        # path-based rejects get thumbnails from the source file, read inside the input root
        assert cards.filter(has_text="below_top_fraction").first.locator("img.thumb").count() == 1
        assert cards.filter(has_text="too_small").locator("img.thumb").count() == 1
        assert cards.filter(has_text="missing_file").locator(".thumb.missing").count() == 1
        assert "一个" in page.inner_text("#gallery-accepted")  # Chinese captions beside the English ones
        review_text = page.inner_text("#review")  # the review sample: a table per group, thumbnails decoded
        for group in ("accepted", "image/too_small", "filter/below_top_fraction", "ingest/invalid_json"):
            assert group in review_text
        minis = page.locator("#review img.mini")
        assert minis.count() >= min(5, stats["accepted"]) and minis.evaluate_all(
            "l => l.every(i => i.naturalWidth > 0)"
        )
        assert "<script>alert(1)</script>" in review_text
        # an untrusted caption is shown as text: nothing ran, no element was injected
        assert seen["dialogs"] == [] and page.locator("script").count() == 0
        assert page.locator("img[onerror]").count() == 0
        assert "<script>alert(1)</script>" in rejected_text
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot))
    finally:
        page.close()
    img = Image.open(shot)
    assert img.format == "PNG" and img.size == (1280, 1600)
    assert max(ImageStat.Stat(img.convert("L")).stddev) > 20  # charts and text, not a blank page
    assert len(img.convert("RGB").getcolors(1 << 20)) > 100


def test_html_escapes_captions_and_has_no_network_references(run):
    _, record = run
    html = render.render(record, gallery_size=20)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    assert "<script" not in html.lower() and "<img src=x" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # no CDN, fonts or remote images
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_throughput_from_stage_stats(run, browser, tmp_path):
    root, record = run
    rec = {**manifest.load(record["run_id"], str(root / "storage")), "stage_stats": STAGE_STATS}
    out = tmp_path / "with-stats.html"
    render.write(rec, str(out), gallery_size=2)
    page, seen = open_report(browser, out)
    try:
        assert seen["errors"] == [] and not [m for m in seen["console"] if m[0] == "error"]
        assert page.eval_on_selector("#throughput img.chart", "i => i.complete && i.naturalWidth > 100")
        table = page.inner_text("#throughput table")
        assert "Map(score)" in table and "3.00" in table and "26.0" in table  # 13 rows / 0.5 s
        assert page.locator("#gallery-accepted article.card").count() == 2
    finally:
        page.close()


def test_screenshot_option(run, chromium, tmp_path):
    root, record = run
    png = tmp_path / "shot.png"
    args = ["--storage", str(root / "storage"), "report", record["run_id"], "--out", str(tmp_path / "r.html")]
    result = CliRunner().invoke(main, [*args, "--screenshot", str(png), "--screenshot-height", "900"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.html").is_file()
    img = Image.open(png)
    assert img.format == "PNG" and img.size == (1280, 900) and max(ImageStat.Stat(img.convert("L")).stddev) > 20


def test_thumbnails_stay_inside_the_input_root_and_under_the_pixel_limit(tmp_path):
    data = tmp_path / "data"
    (data / "img").mkdir(parents=True)
    (data / "img" / "ok.jpg").write_bytes(encode(textured(1, (640, 480))))
    (tmp_path / "secret.jpg").write_bytes(encode(textured(2, (64, 64))))
    os.symlink(tmp_path / "secret.jpg", data / "img" / "link.jpg")
    (data / "img" / "bomb.png").write_bytes(bomb_png())
    root = str(data)
    assert thumbs.read_source(root, str(data / "img"), "ok.jpg")
    assert thumbs.read_source(root, str(data / "img"), "../../secret.jpg") is None
    assert thumbs.read_source(root, str(data / "img"), "link.jpg") is None  # symlink out of the root
    assert thumbs.read_source(root, str(tmp_path), "secret.jpg") is None  # an image root outside the input
    assert thumbs.read_source(root, str(data / "img"), "/etc/passwd") is None
    assert thumbs.read_source(root, str(data / "img"), "ok.jpg", max_bytes=100) is None
    uri = thumbs.data_uri(thumbs.read_source(root, str(data / "img"), "ok.jpg"))
    assert uri and uri.startswith("data:image/jpeg;base64,")
    thumb = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert thumb.format == "JPEG" and thumb.size == (160, 120)
    assert thumbs.data_uri((data / "img" / "bomb.png").read_bytes()) is None  # refused from the header
    assert thumbs.data_uri(b"not an image") is None and thumbs.data_uri(None) is None


def test_incomplete_run_renders_with_empty_sections(run):
    _, record = run
    started = {k: record[k] for k in ("run_id", "pipeline", "config", "input", "output", "started_at")}
    html = render.render({**started, "status": "incomplete"}, gallery_size=4)
    assert "incomplete" in html and "no inputs" in html and "not recorded for this run" in html
    assert "nothing was rejected" in html and "<article" not in html
