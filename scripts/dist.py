"""Zip the built book so that it can be read offline, straight from the file system.

    python scripts/dist.py [HTML_FOLDER] [ZIP]     (`make dist`: _build/html into
                                                   _build/bayesian-attention-reproduced-html.zip)

The zip holds one folder, bayesian-attention-reproduced/, with the HTML book in it: unzipped,
its index.html opens in a browser through file:// with no server and no network. That works
because Jupyter Book links pages relatively, MathJax is the vendored copy under
_static/mathjax (scripts/vendor_mathjax.py), and Sphinx's search loads its index as a script
(searchindex.js), which file:// allows. tests/test_book.py unzips what this writes and opens it
that way in Chromium.
"""

from __future__ import annotations

import argparse
import os
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = "bayesian-attention-reproduced"  # the zip's one top-level folder
DEFAULT_HTML = ROOT / "_build" / "html"
DEFAULT_ZIP = ROOT / "_build" / f"{FOLDER}-html.zip"
# Sphinx's incremental-build record: not part of the book.
SKIPPED = {".buildinfo"}


def make_dist(html: Path, archive: Path) -> Path:
    """Write every file of the built book `html` into the zip `archive`, under FOLDER/.

    Fails with the fix if `html` is not a built book with its vendored MathJax. The zip is
    written beside its destination and renamed, so an interrupted run leaves no half zip.
    """
    html = Path(html)
    archive = Path(archive)
    if not (html / "index.html").is_file():
        raise SystemExit(f"dist: no built book in {html} (no index.html); run make book first")
    if not (html / "_static" / "mathjax" / "tex-mml-chtml.js").is_file():
        raise SystemExit(f"dist: {html} has no vendored MathJax (_static/mathjax); run make book")
    files = sorted(p for p in html.rglob("*") if p.is_file() and p.name not in SKIPPED)
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for path in files:
                zf.write(path, f"{FOLDER}/{path.relative_to(html).as_posix()}")
        os.replace(partial, archive)
    finally:
        partial.unlink(missing_ok=True)
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("html", nargs="?", type=Path, default=DEFAULT_HTML,
                        help="the built book (default: _build/html)")
    parser.add_argument("zip", nargs="?", type=Path, default=DEFAULT_ZIP,
                        help=f"the zip to write (default: _build/{DEFAULT_ZIP.name})")
    args = parser.parse_args(argv)
    archive = make_dist(args.html, args.zip)
    size_mb = archive.stat().st_size / 1e6
    print(f"dist: {archive} ({size_mb:.1f} MB); unzip it and open {FOLDER}/index.html")
    return 0


if __name__ == "__main__":
    sys.exit(main())
