"""The book as one PDF (`make pdf`, Jupyter Book's LaTeX builder with xelatex): CI builds it
before the tests, and this checks what came out. Without TeX (a local machine that never ran
`make pdf`) it is skipped; under CI a missing PDF fails.

Checked in the PDF's text and images: every chapter's title, the ledger's line for every claim
record (the PDF's own layout of it, in words), the theorem blocks, and at least one image per
named figure of the chapters.
"""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PDF = ROOT / "_build" / "latex" / "book.pdf"


@pytest.fixture(scope="module")
def pdf_text() -> str:
    if not PDF.exists() or not shutil.which("pdftotext"):
        if os.environ.get("CI") == "true":
            pytest.fail("CI runs `make pdf` before the tests, but _build/latex/book.pdf is missing")
        pytest.skip("no PDF: run `make pdf` (it installs TeX from Debian's packages)")
    return subprocess.run(["pdftotext", str(PDF), "-"], capture_output=True, text=True, check=True).stdout


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u2019", "'"))


def test_every_chapter_is_in_the_pdf(pdf_text):
    for notebook in sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        title = next(line for c in cells if c["cell_type"] == "markdown" for line in "".join(c["source"]).splitlines()
                     if line.startswith("# "))[2:]
        assert flat(title) in flat(pdf_text), f"{notebook.name}: its title {title!r} is not in the PDF"
        # numbered as on the web (01_bijection is Chapter 1), whatever pages come before it
        number, opening = int(notebook.name[:2]), " ".join(title.split()[:2])
        assert re.search(rf"(^|\n){number} {re.escape(opening)}", pdf_text), \
            f"{notebook.name} is not chapter {number} in the PDF's contents"


def test_the_ledger_lists_every_claim_in_words(pdf_text):
    text = flat(pdf_text)
    for path in sorted((ROOT / "data" / "claims").glob("*.json")):
        rec = json.loads(path.read_text())
        assert re.search(rf"{rec['id']} {re.escape(rec['verdict'])} .{{0,1500}}What fails:", text), \
            f"the PDF's ledger has no line for {rec['id']}"


def test_theorems_and_figures_come_out(pdf_text):
    assert "Theorem" in pdf_text and "Proof" in pdf_text
    sources = "".join(p.read_text() for p in (ROOT / "book").glob("[0-9][0-9]_*.py"))
    figures = set(re.findall(r'"name": "(fig-[a-z0-9-]+)"|:name: (fig-[a-z0-9-]+)', sources))
    listed = subprocess.run(["pdfimages", "-list", str(PDF)], capture_output=True, text=True, check=True).stdout
    images = len(listed.splitlines()) - 2  # two header lines
    assert images >= len(figures) > 20
