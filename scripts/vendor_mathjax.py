"""Copy the part of MathJax 3 the book needs into book/_static/mathjax/, so maths renders offline.

Jupyter Book 1 loads MathJax from a CDN by default; with no network the maths stays raw LaTeX.
The MathJax files come from the pinned PyPI package `django-static-mathjax` (importable module
`mathjax`, files under mathjax/static/mathjax/es5). _config.yml points `mathjax_path` at
`mathjax/tex-mml-chtml.js`, which Sphinx resolves against _static/.

What is copied, and why (MathJax finds lazily loaded parts relative to the script's own URL):
- tex-mml-chtml.js: the combined component. It already contains the loader, TeX and MathML
  input, CommonHTML output with the TeX font data, the context menu (ui/menu) and
  a11y/assistive-mml, so those are not copied again.
- output/chtml/fonts/woff-v2: the web fonts the CommonHTML output requests.
- input/tex/extensions: TeX packages that `autoload` fetches on first use
  (e.g. \\boldsymbol, \\cancel, \\color, mhchem, physics, \\require{...}).
- ui/lazy.js, ui/safe.js: small optional UI components.
Not copied: a11y/explorer, a11y/semantic-enrich, a11y/complexity and sre/ (speech rule
engine, ~4 MB). They load only when a reader switches on the accessibility explorer or speech
in MathJax's right-click menu; offline those menu items fail to load and nothing else changes.

Idempotent: a manifest (VENDORED.json) records the version and every file with its size; if it
matches, nothing is copied. Otherwise the folder is rebuilt in a temporary folder and swapped in.

Run: python scripts/vendor_mathjax.py        (the Makefile's `book` target does this)
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEST = ROOT / "book" / "_static" / "mathjax"
MANIFEST = "VENDORED.json"
EXPECTED_VERSION = "3.2.2"  # what requirements.txt pins (django-static-mathjax==3.2.2.1)

# Paths relative to es5/: files, or folders copied whole.
SUBSET = (
    "tex-mml-chtml.js",
    "output/chtml/fonts/woff-v2",
    "input/tex/extensions",
    "ui/lazy.js",
    "ui/safe.js",
)


def find_mathjax_dist() -> tuple[Path, str]:
    """Return (es5 folder, version) of the installed MathJax, or exit with the fix."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        sys.exit(
            "vendor_mathjax: the Python package providing MathJax (django-static-mathjax) is not "
            "installed. Run: pip install -r requirements.txt"
        )
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    dist = package_dir / "static" / "mathjax"
    es5 = dist / "es5"
    if not (es5 / "tex-mml-chtml.js").is_file():
        sys.exit(
            f"vendor_mathjax: {es5} has no tex-mml-chtml.js; the installed `mathjax` module is not "
            "django-static-mathjax. Run: pip install -r requirements.txt"
        )
    version = json.loads((dist / "package.json").read_text(encoding="utf8"))["version"]
    if version != EXPECTED_VERSION:
        sys.exit(
            f"vendor_mathjax: found MathJax {version}, expected {EXPECTED_VERSION}. "
            "Run: pip install -r requirements.txt"
        )
    return es5, version


def list_files(es5: Path) -> dict[str, int]:
    """Map every file of the subset (POSIX path relative to es5/) to its size in bytes."""
    files: dict[str, int] = {}
    for rel in SUBSET:
        src = es5 / rel
        if src.is_file():
            files[rel] = src.stat().st_size
        elif src.is_dir():
            for path in sorted(p for p in src.rglob("*") if p.is_file()):
                files[path.relative_to(es5).as_posix()] = path.stat().st_size
        else:
            sys.exit(f"vendor_mathjax: {src} is missing from the installed MathJax.")
    return files


def is_up_to_date(manifest: dict) -> bool:
    """True if DEST holds exactly the files the manifest lists, with the same sizes."""
    try:
        recorded = json.loads((DEST / MANIFEST).read_text(encoding="utf8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    if recorded != manifest:
        return False
    return (DEST / "LICENSE").is_file() and all(
        (DEST / rel).is_file() and (DEST / rel).stat().st_size == size
        for rel, size in manifest["files"].items()
    )


def main() -> int:
    es5, version = find_mathjax_dist()
    files = list_files(es5)
    manifest = {"mathjax_version": version, "source": "django-static-mathjax (es5)", "files": files}
    total_mb = sum(files.values()) / 1e6
    if is_up_to_date(manifest):
        print(f"vendor_mathjax: MathJax {version} already in {DEST.relative_to(ROOT)} "
              f"({len(files)} files, {total_mb:.1f} MB)")
        return 0

    # Build beside the destination, then swap, so an interrupted run leaves no half-copy.
    DEST.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".mathjax-", dir=DEST.parent))
    try:
        for rel in files:
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(es5 / rel, target)
        shutil.copyfile(es5.parent / "LICENSE", tmp / "LICENSE")
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n",
                                    encoding="utf8")
        if DEST.exists():
            shutil.rmtree(DEST)
        tmp.rename(DEST)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    print(f"vendor_mathjax: copied MathJax {version} into {DEST.relative_to(ROOT)} "
          f"({len(files)} files, {total_mb:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
