"""The book builds strictly and renders offline, in a real browser.

Builds the real repository once (the same command as `make book`, with the output in a
temporary folder) and checks that:
- the build exits 0 and prints no warning (-W already turns warnings into a non-zero exit;
  the text check also catches Jupyter Book's own "[Warning]" boxes, which do not);
- no page loads anything from a CDN: maths, theme and search must work with no network;
- the MathJax <script> points at the vendored copy, and that file is in the output;
- served on 127.0.0.1 and opened in headless Chromium (Debian's `chromium`), every page
  typesets its maths, every figure loads, no table is wider than its column at 1280 px, no
  figure's smallest text is below 9 px at 1280 or 390 px,
  search finds a chapter, and no request leaves the machine. Screenshots go to _build/screenshots.
- `make dist`'s zip of it, unzipped, opens through file:// with no server: maths and search work.
Takes under a minute: notebooks are not executed (execute_notebooks: "off").
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("cdn.", "cdnjs", "jsdelivr", "unpkg", "googleapis")
REQUIRED_PAGES = ("book/intro.html", "book/ledger.html", "book/differences.html", "book/01_bijection.html")
MATHJAX_SCRIPT = re.compile(r'<script[^>]*\ssrc="([^"]*mathjax[^"]*)"', re.IGNORECASE)
# What a page loads by itself (scripts, images, stylesheets, preloaded fonts); not the links a
# reader clicks, nor <link rel="canonical"> and the like.
SRC_ATTR = re.compile(r'<(?:script|img|iframe|source)\b[^>]*\ssrc="([^"]+)"')
LINK_TAG = re.compile(r"<link\b[^>]*>")
LOADING_REL = re.compile(r'\srel="(?:stylesheet|preload|modulepreload|icon|shortcut icon)"')
HREF_ATTR = re.compile(r'\shref="([^"]+)"')
# A table that failed to render: its |---| rule left as text (smartquotes turn the dashes
# into an en or em dash).
RAW_TABLE_RULE = re.compile(r"\|\s*[-–—]+\s*\|")


def jupyter_book_command() -> str:
    beside_python = Path(sys.executable).parent / "jupyter-book"
    found = str(beside_python) if beside_python.exists() else shutil.which("jupyter-book")
    assert found, "jupyter-book is not installed: pip install -r requirements.txt"
    return found


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def build(tmp_path_factory) -> tuple[Path, str]:
    """The book built once for this module: (html folder, build log)."""
    out = tmp_path_factory.mktemp("book")
    vendored = run([sys.executable, "scripts/vendor_mathjax.py"])
    assert vendored.returncode == 0, vendored.stdout + vendored.stderr
    ledger = run([sys.executable, "scripts/build_ledger.py"])
    assert ledger.returncode == 0, ledger.stdout + ledger.stderr

    built = run([jupyter_book_command(), "build", "--all", "-W", "-n", "--keep-going",
                 str(ROOT), "--path-output", str(out)])
    log = built.stdout + built.stderr
    assert built.returncode == 0, f"book build failed:\n{log[-5000:]}"
    return out / "_build" / "html", log


def test_book_builds_strictly_and_offline(build) -> None:
    html, log = build
    warnings = [line for line in log.splitlines() if "WARNING" in line or "[Warning]" in line]
    assert not warnings, "book build printed warnings:\n" + "\n".join(warnings)

    for page in REQUIRED_PAGES:
        assert (html / page).is_file(), f"{page} was not built"

    pages = sorted(html.rglob("*.html"))
    with_mathjax = []
    for page in pages:
        text = page.read_text(encoding="utf8")
        name = page.relative_to(html).as_posix()
        lowered = text.lower()
        for needle in FORBIDDEN:
            assert needle not in lowered, f"{name} references a CDN ({needle!r})"
        assert not RAW_TABLE_RULE.search(text), f"{name} shows a Markdown table as raw text"
        loaded = SRC_ATTR.findall(text) + [
            HREF_ATTR.search(tag).group(1) for tag in LINK_TAG.findall(text)
            if LOADING_REL.search(tag) and HREF_ATTR.search(tag)]
        for url in loaded:
            assert urlsplit(url).scheme in ("", "data") and not url.startswith("//"), (
                f"{name} loads a remote resource: {url}")
        for src in MATHJAX_SCRIPT.findall(text):
            target = (page.parent / urlsplit(src).path).resolve()
            assert target.is_file(), f"{name}: MathJax script {src} is not in the build output"
            assert target.is_relative_to(html / "_static" / "mathjax"), (
                f"{name}: MathJax script {src} is not the vendored copy")
            with_mathjax.append(name)

    assert "book/intro.html" in with_mathjax, "intro has displayed maths but no MathJax script"
    # CommonHTML output fetches its fonts relative to the script: they must be there too.
    fonts = html / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2"
    assert (fonts / "MathJax_Main-Regular.woff").is_file(), "MathJax fonts missing from output"


# Chromium's own background traffic is switched off: this machine has no network, and every
# request a page makes must go to the local server anyway.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SEARCH_TERM, SEARCH_HIT = "bijection", "01_bijection.html"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextmanager
def served(directory: Path):
    """`directory` served over HTTP on 127.0.0.1 (a free port) for the duration of the block."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        message = "no chromium on PATH (Debian: apt-get install chromium)"
        pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)
    return found


# Developer output that must never reach a page a reader sees.
DEVELOPER_OUTPUT = {
    "a traceback": re.compile(r"Traceback \(most recent call last\)"),
    "a warning": re.compile(r"\b\w*Warning\b:|^WARNING\b", re.MULTILINE),
    "an absolute path": re.compile(r"(?<![\w./])/(?:root|home|tmp|usr|opt|var|private)/\S*"),
    "a raw dict": re.compile(r"\{'[^']*': "),
    "a minus zero": re.compile(r"(?<![\w.\-−])[-−]0(?:\.0+)?(?![\d.])%?"),
}
VIEWPORTS = {"laptop": 1280, "phone": 390}


def figure_text_px(page) -> list[tuple[str, float]]:
    """Each chapter figure's smallest text in CSS px as displayed: lib.plotting draws no text
    below MIN_TEXT_PT at DPI, and the page shows the PNG at clientWidth / naturalWidth."""
    from lib.plotting import DPI, MIN_TEXT_PT
    scales = page.eval_on_selector_all(
        "main .cell_output img", "els => els.map(e => [e.getAttribute('src'), e.clientWidth / e.naturalWidth])")
    return [(src, MIN_TEXT_PT * DPI / 72 * scale) for src, scale in scales]


def test_book_in_a_browser(build) -> None:
    from playwright.sync_api import sync_playwright

    html, _ = build
    shots = ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    pages = sorted(p.relative_to(html).as_posix() for p in (html / "book").glob("*.html"))
    outside = []
    with served(html) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        def local_only(route):
            if route.request.url.startswith(base):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", local_only)
        for device, width in VIEWPORTS.items():
            page.set_viewport_size({"width": width, "height": 900})
            for name in pages:
                page.goto(f"{base}/{name}", wait_until="load")
                if page.locator("script[src*='mathjax']").count():  # Sphinx adds it only where there is maths
                    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
                    page.evaluate("MathJax.startup.promise")  # resolves once the page is typeset
                scrolling = page.eval_on_selector_all(  # a visible code or output block wider than the column
                    "main .cell_input pre, main .cell_output pre",
                    "els => els.filter(e => e.offsetParent && e.scrollWidth > e.clientWidth + 1)"
                    ".map(e => e.innerText.slice(0, 80))")
                assert not scrolling, f"{name} at {width} px: code or output scrolls sideways: {scrolling}"
                small = [(src, round(px, 1)) for src, px in figure_text_px(page) if px < 9]
                assert not small, f"{name} at {width} px: figures whose smallest text renders below 9 px: {small}"
                if device == "phone":
                    if name == "book/ledger.html":
                        clipped = page.eval_on_selector_all(
                            ".ledger-table table", "els => els.filter(t => t.scrollWidth > t.clientWidth + 1).length")
                        assert not clipped, f"{name} at {width} px: {clipped} ledger tables wider than the screen"
                    page.screenshot(path=shots / f"{Path(name).stem}-{width}.png", full_page=True)
                    continue
                text = page.inner_text("main")
                for raw in ("\\(", "\\[", "$$"):
                    assert raw not in text, f"{name}: maths left untypeset ({raw!r} in the rendered text)"
                for what, pattern in DEVELOPER_OUTPUT.items():
                    found = pattern.search(text)
                    assert not found, f"{name} shows {what}: ...{text[max(0, found.start() - 60):found.end() + 40]!r}..."
                images = page.eval_on_selector_all(
                    "main img", "els => els.map(e => [e.getAttribute('src'), e.complete && e.naturalWidth > 0])")
                assert all(ok for _, ok in images), f"{name}: figures that did not load: {[s for s, ok in images if not ok]}"
                too_wide = page.eval_on_selector_all(  # at a laptop's 1280 px a reader should not scroll a table
                    "main table", "els => els.filter(t => t.scrollWidth > t.parentElement.clientWidth + 1)"
                                  ".map(t => Array.from(t.querySelectorAll('th')).map(h => h.innerText).join(' | '))")
                assert not too_wide, f"{name}: tables wider than their column (narrow them or tag the cell full-width): {too_wide}"
                if re.match(r"book/\d\d_", name):
                    assert images, f"{name}: a chapter with no figure"
                    assert page.locator("mjx-container").count() > 0, f"{name}: no typeset maths"
                page.screenshot(path=shots / f"{Path(name).stem}-{width}.png", full_page=True)

        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"{base}/search.html?q={SEARCH_TERM}", wait_until="load")
        hit = page.locator(f"#search-results a[href*='{SEARCH_HIT}']").first
        hit.wait_for(timeout=30_000)
        page.screenshot(path=shots / "search.png")
        browser.close()
    assert not outside, f"requests left the machine: {outside}"


def test_dist_zip_opens_from_the_file_system(build, tmp_path) -> None:
    """`make dist`'s zip of this build, unzipped and opened through file:// (no server): the
    index leads to the intro, a chapter typesets its maths, and search finds pages."""
    from playwright.sync_api import sync_playwright

    html, _ = build
    archive = tmp_path / "book.zip"
    zipped = run([sys.executable, "scripts/dist.py", str(html), str(archive)])  # what `make dist` runs
    assert zipped.returncode == 0, zipped.stdout + zipped.stderr
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path / "unzipped")
    (book,) = (tmp_path / "unzipped").iterdir()
    requested, failed = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda request: requested.append(request.url))
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.goto((book / "index.html").as_uri())  # Jupyter Book's index redirects to the intro
        page.wait_for_url("**/book/intro.html")
        assert "Bayesian wind tunnels" in page.inner_text("main")

        page.goto((book / "book" / "01_bijection.html").as_uri(), wait_until="load")
        page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("MathJax.startup.promise")
        assert page.locator("main mjx-container").count() > 0, "no typeset maths through file://"
        # MathJax's fonts load through file:// (Chromium refuses the theme's Font Awesome web
        # fonts there, but its script draws the icons as SVG instead).
        assert not [url for url in failed if "mathjax" in url], f"MathJax files not loaded: {failed}"

        page.goto((book / "search.html").as_uri() + "?q=posterior", wait_until="load")
        page.locator("#search-results a[href*='01_bijection.html']").first.wait_for(timeout=30_000)
        shots = ROOT / "_build" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=shots / "search-file.png")
        browser.close()
    remote = [url for url in requested if urlsplit(url).scheme not in ("file", "data", "blob", "about")]
    assert not remote, f"the unzipped book requested: {remote}"
