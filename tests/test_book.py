"""The book builds strictly and renders offline.

Builds the real repository (the same command as `make book`, with the output in a temporary
folder) and checks that:
- the build exits 0 and prints no warning (-W already turns warnings into a non-zero exit;
  the text check also catches Jupyter Book's own "[Warning]" boxes, which do not);
- no page loads anything from a CDN: maths, theme and search must work with no network;
- the MathJax <script> points at the vendored copy, and that file is in the output.
Takes a few seconds: notebooks are not executed (execute_notebooks: "off").
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("cdn.", "cdnjs", "jsdelivr", "unpkg", "googleapis")
REQUIRED_PAGES = ("book/intro.html", "book/ledger.html", "book/01_bijection.html")
MATHJAX_SCRIPT = re.compile(r'<script[^>]*\ssrc="([^"]*mathjax[^"]*)"', re.IGNORECASE)
# What a page loads by itself (scripts, images, stylesheets, preloaded fonts); not the links a
# reader clicks, nor <link rel="canonical"> and the like.
SRC_ATTR = re.compile(r'<(?:script|img|iframe|source)\b[^>]*\ssrc="([^"]+)"')
LINK_TAG = re.compile(r"<link\b[^>]*>")
LOADING_REL = re.compile(r'\srel="(?:stylesheet|preload|modulepreload|icon|shortcut icon)"')
HREF_ATTR = re.compile(r'\shref="([^"]+)"')


def jupyter_book_command() -> str:
    beside_python = Path(sys.executable).parent / "jupyter-book"
    found = str(beside_python) if beside_python.exists() else shutil.which("jupyter-book")
    assert found, "jupyter-book is not installed: pip install -r requirements.txt"
    return found


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_book_builds_strictly_and_offline(tmp_path: Path) -> None:
    vendored = run([sys.executable, "scripts/vendor_mathjax.py"])
    assert vendored.returncode == 0, vendored.stdout + vendored.stderr
    ledger = run([sys.executable, "scripts/build_ledger.py"])
    assert ledger.returncode == 0, ledger.stdout + ledger.stderr

    build = run([jupyter_book_command(), "build", "--all", "-W", "-n", "--keep-going",
                 str(ROOT), "--path-output", str(tmp_path)])
    log = build.stdout + build.stderr
    assert build.returncode == 0, f"book build failed:\n{log[-5000:]}"
    warnings = [line for line in log.splitlines() if "WARNING" in line or "[Warning]" in line]
    assert not warnings, "book build printed warnings:\n" + "\n".join(warnings)

    html = tmp_path / "_build" / "html"
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
        assert "|---|" not in text, f"{name} shows a Markdown table as raw text"
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
