"""Publishing the book: `make publish`, `make dist`, the Pages workflow, the public URL switch,
the licences and the citation.

- `make publish` against a local bare repository (never a real remote): the gh-pages branch holds
  exactly the built HTML plus .nojekyll, a second publish replaces the first, and no other branch
  is created or moved, in the remote or in the repository it runs from.
- `make dist` zips the built book under one folder (tests/test_book.py opens the unzipped copy of
  the real book through file:// in Chromium).
- .github/workflows/pages.yml, which cannot run here, parsed: it runs README's first command and
  nothing else, then uploads _build/html and deploys it.
- _config.yml's `publishing:` block: unset (as shipped) every public setting is off; filled, it
  turns on html_baseurl, the repository, issue and download buttons, and the strict build passes
  with canonical links and a sitemap (one build of the book, into a temporary folder).
- LICENSE, LICENSE-CONTENT, the footer, README, CITATION.cff and the intro's "How to cite".
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_BOOK_URL = "https://example.org/bayesian-attention-reproduced/"
EXAMPLE_REPO_URL = "https://github.com/example/bayesian-attention-reproduced"


def git(*args: str, cwd: Path, env: dict | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"git {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def git_env(home: Path) -> dict:
    """An environment whose git ignores the user's and the system's configuration."""
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(HOME=str(home), GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=str(home / "gitconfig"),
               GIT_AUTHOR_NAME="Publisher", GIT_AUTHOR_EMAIL="publisher@example.invalid",
               GIT_COMMITTER_NAME="Publisher", GIT_COMMITTER_EMAIL="publisher@example.invalid")
    return env


def make(target: str, *assignments: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """`make TARGET` with the project's Makefile, run in `cwd` (the Makefile is the real one)."""
    return subprocess.run(["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), target,
                           f"PYTHON={sys.executable}", *assignments],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def write_files(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf8")


def refs(repo: Path, env: dict) -> dict[str, str]:
    lines = git("for-each-ref", "--format=%(refname) %(objectname)", cwd=repo, env=env).split("\n")
    return dict(line.split(" ") for line in lines if line)


# --- make publish -----------------------------------------------------------------------------

def test_make_publish_pushes_exactly_the_built_book_to_gh_pages(tmp_path) -> None:
    env = git_env(tmp_path / "home")
    remote = tmp_path / "remote.git"
    git("init", "--bare", "-q", str(remote), cwd=tmp_path, env=env)
    # The repository publish runs from: a clone of the project would do, but a small one of its
    # own keeps the test away from the project's branches and its real remote. Like the project,
    # it ignores _build/, where the book is built.
    work = tmp_path / "work"
    work.mkdir()
    git("init", "-q", "-b", "main", cwd=work, env=env)
    write_files(work, {".gitignore": "_build/\n", "notes.md": "the source\n"})
    git("add", ".", cwd=work, env=env)
    git("commit", "-q", "-m", "source", cwd=work, env=env)
    main_before = git("rev-parse", "main", cwd=work, env=env).strip()

    html = work / "_build" / "html"
    first = {"index.html": "<meta http-equiv=refresh content='0; url=book/intro.html'>",
             "book/intro.html": "<p>first</p>", "_static/styles.css": "body {}",
             "searchindex.js": "Search.setIndex({})"}
    write_files(html, first)
    published = make("publish", f"REMOTE={remote}", cwd=work, env=env)
    assert published.returncode == 0, published.stdout + published.stderr

    def tree() -> list[str]:
        return sorted(git("ls-tree", "-r", "--name-only", "gh-pages", cwd=remote, env=env).split())

    assert tree() == sorted([*first, ".nojekyll"])
    assert git("show", "gh-pages:book/intro.html", cwd=remote, env=env) == "<p>first</p>"
    assert list(refs(remote, env)) == ["refs/heads/gh-pages"], "publish pushed more than gh-pages"

    # A second build: a page gone, one changed, one new. The branch holds exactly the new build.
    shutil.rmtree(html)
    second = {"index.html": first["index.html"], "book/intro.html": "<p>second</p>",
              "book/01_bijection.html": "<p>chapter</p>", "searchindex.js": "Search.setIndex({})"}
    write_files(html, second)
    republished = make("publish", f"REMOTE={remote}", cwd=work, env=env)
    assert republished.returncode == 0, republished.stdout + republished.stderr
    assert tree() == sorted([*second, ".nojekyll"])
    assert git("show", "gh-pages:book/intro.html", cwd=remote, env=env) == "<p>second</p>"
    assert git("show", "gh-pages:.nojekyll", cwd=remote, env=env) == ""
    assert list(refs(remote, env)) == ["refs/heads/gh-pages"]

    # Neither the branch it ran from nor the work tree moved: only gh-pages was written.
    assert git("rev-parse", "main", cwd=work, env=env).strip() == main_before
    assert git("symbolic-ref", "HEAD", cwd=work, env=env).strip() == "refs/heads/main"
    assert git("status", "--porcelain", cwd=work, env=env) == ""
    assert sorted(refs(work, env)) == ["refs/heads/gh-pages", "refs/heads/main"]


def test_make_publish_refuses_without_a_built_book(tmp_path) -> None:
    env = git_env(tmp_path / "home")
    git("init", "-q", "-b", "main", cwd=tmp_path, env=env)
    refused = make("publish", f"REMOTE={tmp_path / 'nowhere.git'}", cwd=tmp_path, env=env)
    assert refused.returncode != 0
    assert "run make book first" in refused.stdout + refused.stderr


# --- make dist --------------------------------------------------------------------------------

def test_make_dist_zips_the_built_book_under_one_folder(tmp_path) -> None:
    html = tmp_path / "html"
    book = {"index.html": "<a href='book/intro.html'>", "book/intro.html": "<p>intro</p>",
            "_static/mathjax/tex-mml-chtml.js": "// MathJax", "searchindex.js": "Search.setIndex({})"}
    write_files(html, {**book, ".buildinfo": "# Sphinx build info"})
    archive = tmp_path / "out" / "book.zip"
    done = make("dist", f"BOOK_HTML={html}", f"DIST={archive}", cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    with zipfile.ZipFile(archive) as zf:
        assert sorted(zf.namelist()) == sorted(f"bayesian-attention-reproduced/{name}" for name in book)
        assert zf.read("bayesian-attention-reproduced/book/intro.html") == b"<p>intro</p>"

    (html / "_static" / "mathjax" / "tex-mml-chtml.js").unlink()
    refused = make("dist", f"BOOK_HTML={html}", f"DIST={archive}", cwd=ROOT)
    assert refused.returncode != 0 and "MathJax" in refused.stdout + refused.stderr


# --- the GitHub Pages workflow ----------------------------------------------------------------

def readme_first_command() -> list[str]:
    """The command lines (comments left out) of README's first ```bash block."""
    readme = (ROOT / "README.md").read_text(encoding="utf8")
    block = re.search(r"^```bash\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert block, "README has no ```bash block"
    return [line.strip() for line in block.group(1).splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_pages_workflow_runs_readmes_first_command_and_deploys_the_html() -> None:
    assert readme_first_command() == ["make setup reproduce book"]  # the workflow relies on it
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text(encoding="utf8"))
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["branches"] == ["main"]
    (job,) = workflow["jobs"].values()
    assert job["permissions"]["pages"] == "write" and job["permissions"]["id-token"] == "write"
    assert job["environment"]["name"] == "github-pages"
    steps = job["steps"]

    runs = [step["run"].strip() for step in steps if "run" in step]
    assert runs == readme_first_command(), "the workflow must run README's first command, and only it"
    uses = [step["uses"].split("@")[0] for step in steps if "uses" in step]
    assert uses == ["actions/checkout", "actions/setup-python",
                    "actions/upload-pages-artifact", "actions/deploy-pages"]
    by_action = {step["uses"].split("@")[0]: step for step in steps if "uses" in step}
    assert by_action["actions/checkout"].get("with", {}).get("lfs", False) is False
    assert str(by_action["actions/setup-python"]["with"]["python-version"]) == "3.11"
    assert by_action["actions/upload-pages-artifact"]["with"]["path"] == "_build/html"
    assert steps[-1]["uses"].startswith("actions/deploy-pages@") and steps[-1]["id"] == "deployment"
    # build, then upload, then deploy
    assert [i for i, s in enumerate(steps) if "run" in s][0] < steps.index(by_action["actions/upload-pages-artifact"])


# --- the public URL: one block of _config.yml -------------------------------------------------

def config_text(book_url: str = "", repository_url: str = "", online: bool = False) -> str:
    """_config.yml as shipped, or with its `publishing:` block filled."""
    text = (ROOT / "_config.yml").read_text(encoding="utf8")
    for key, value in (("book_url", f'"{book_url}"'), ("repository_url", f'"{repository_url}"'),
                       ("online", "true" if online else "false")):
        text, count = re.subn(rf"^(  {key}: &{key} ).*$", lambda m: m.group(1) + value, text, flags=re.MULTILINE)
        assert count == 1, f"_config.yml has no `publishing: {key}: &{key} ...` line"
    return text


def sphinx_config(text: str) -> dict:
    """The Sphinx configuration Jupyter Book derives from a _config.yml text."""
    from jupyter_book.config import get_final_config
    config, _ = get_final_config(user_yaml=yaml.safe_load(text), cli_config={"latex_individualpages": False},
                                 sourcedir=ROOT, raise_on_invalid=True)
    return config


def test_the_shipped_config_builds_an_offline_book() -> None:
    shipped = (ROOT / "_config.yml").read_text(encoding="utf8")
    assert shipped == config_text(), "the publishing block must ship empty and off"
    config = sphinx_config(shipped)
    theme = config["html_theme_options"]
    assert config["html_baseurl"] == "" and theme["repository_url"] == ""
    assert not theme["use_repository_button"] and not theme["use_issues_button"]
    assert theme["use_download_button"] is False
    assert not any(theme["launch_buttons"][key] for key in ("binderhub_url", "jupyterhub_url", "colab_url",
                                                             "deepnote_url", "thebe"))


def test_the_publishing_block_turns_on_every_public_setting() -> None:
    config = sphinx_config(config_text(EXAMPLE_BOOK_URL, EXAMPLE_REPO_URL, online=True))
    theme = config["html_theme_options"]
    assert config["html_baseurl"] == EXAMPLE_BOOK_URL
    assert theme["repository_url"] == EXAMPLE_REPO_URL
    assert theme["use_repository_button"] and theme["use_issues_button"] and theme["use_download_button"]
    assert "sphinx_sitemap" in config["extensions"]
    # what the block does not set stays as shipped
    shipped = sphinx_config(config_text())
    changed = {key for key in config if config[key] != shipped.get(key)}
    assert changed == {"html_baseurl", "html_theme_options"}


def jupyter_book_command() -> str:
    beside_python = Path(sys.executable).parent / "jupyter-book"
    found = str(beside_python) if beside_python.exists() else shutil.which("jupyter-book")
    assert found, "jupyter-book is not installed: pip install -r requirements.txt"
    return found


def test_the_strict_build_with_the_public_url_set(tmp_path) -> None:
    """`make book`'s build, with the block filled: canonical links, sitemap and buttons."""
    for script in ("scripts/vendor_mathjax.py", "scripts/build_ledger.py"):
        done = subprocess.run([sys.executable, script], cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    config = tmp_path / "_config.yml"
    config.write_text(config_text(EXAMPLE_BOOK_URL, EXAMPLE_REPO_URL, online=True), encoding="utf8")
    built = subprocess.run([jupyter_book_command(), "build", "--all", "-W", "-n", "--keep-going", str(ROOT),
                            "--config", str(config), "--path-output", str(tmp_path)],
                           cwd=ROOT, capture_output=True, text=True, timeout=600)
    log = built.stdout + built.stderr
    assert built.returncode == 0, f"book build failed:\n{log[-5000:]}"
    warnings = [line for line in log.splitlines() if "WARNING" in line or "[Warning]" in line]
    assert not warnings, "book build printed warnings:\n" + "\n".join(warnings)

    html = tmp_path / "_build" / "html"
    chapter = (html / "book" / "01_bijection.html").read_text(encoding="utf8")
    assert f'<link rel="canonical" href="{EXAMPLE_BOOK_URL}book/01_bijection.html" />' in chapter
    for button in ("btn-source-repository-button", "btn-source-issues-button", "dropdown-download-buttons",
                   "btn-download-source-button", "btn-download-pdf-button"):
        assert button in chapter, f"no {button} on a chapter page"
    assert f'href="{EXAMPLE_REPO_URL}"' in chapter
    assert f'href="{EXAMPLE_REPO_URL}/issues/new?' in chapter
    assert '<a href="../_sources/book/01_bijection.ipynb"' in chapter  # the download button's notebook
    assert (html / "_sources" / "book" / "01_bijection.ipynb").is_file()
    sitemap = (html / "sitemap.xml").read_text(encoding="utf8")
    pages = re.findall(r"<loc>([^<]+)</loc>", sitemap)
    assert f"{EXAMPLE_BOOK_URL}book/intro.html" in pages and f"{EXAMPLE_BOOK_URL}book/01_bijection.html" in pages
    assert all(page.startswith(EXAMPLE_BOOK_URL) and "/en/" not in page for page in pages)
    assert not [page for page in pages if page.endswith(("search.html", "genindex.html"))]
    assert "CC BY 4.0" in chapter and "MIT licence" in chapter


# --- licences and citation --------------------------------------------------------------------

def test_licences_are_stated_in_the_files_readme_and_footer() -> None:
    mit = (ROOT / "LICENSE").read_text(encoding="utf8")
    assert mit.startswith("MIT License\n")
    assert "Copyright (c) 2026 The Bayesian Attention, Reproduced contributors" in mit
    content = (ROOT / "LICENSE-CONTENT").read_text(encoding="utf8")
    assert "https://creativecommons.org/licenses/by/4.0/legalcode" in content
    assert "Creative Commons Attribution 4.0 International Public License" in content
    assert "Section 8 – Interpretation." in content  # the full legal code, to its end
    readme = (ROOT / "README.md").read_text(encoding="utf8")
    assert "`LICENSE`" in readme and "`LICENSE-CONTENT`" in readme and "CC BY 4.0" in readme
    footer = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))["html"]["extra_footer"]
    assert 'href="https://creativecommons.org/licenses/by/4.0/">CC BY 4.0</a>' in footer
    assert 'href="https://opensource.org/license/mit"' in footer


def bib_entries() -> dict[str, dict[str, str]]:
    """book/references.bib as {key: {field: value}} (flat fields, braces removed)."""
    text = (ROOT / "book" / "references.bib").read_text(encoding="utf8")
    entries = {}
    for key, body in re.findall(r"@\w+\{(\w+),(.*?)\n\}", text, re.DOTALL):
        fields = dict(re.findall(r"(\w+)\s*=\s*\{(.*)\},?\s*$", body, re.MULTILINE))
        entries[key] = {name: value.replace("{", "").replace("}", "") for name, value in fields.items()}
    return entries


def test_citation_cff_cites_the_book_and_the_three_papers() -> None:
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf8"))
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))
    assert cff["cff-version"] == "1.2.0"
    assert cff["title"] == config["title"]
    assert cff["authors"] == [{"name": config["author"]}]
    assert str(cff["date-released"]) == "2026-11-30"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf8")
    assert f'version = "{cff["version"]}"' in pyproject
    assert sorted(cff["license"]) == ["CC-BY-4.0", "MIT"]
    for field in ("message", "type", "abstract"):
        assert cff[field]

    papers = bib_entries()
    assert len(cff["references"]) == len(papers) == 3
    for reference, paper in zip(cff["references"], papers.values()):
        assert reference["title"] == paper["title"]
        assert str(reference["year"]) == paper["year"]
        assert reference["url"] == paper["url"]
        assert {"type": "other", "value": f"arXiv:{paper['eprint']}", "description": "arXiv identifier"} in reference["identifiers"]
        names = [f"{a['family-names']}, {a['given-names']}" for a in reference["authors"]]
        assert names == paper["author"].split(" and ")

    # Once the book is published, the citation names the same URLs as _config.yml.
    block = config["publishing"]
    assert cff.get("url", "") == block["book_url"]
    assert cff.get("repository-code", "") == block["repository_url"]


def test_the_intro_says_how_to_cite() -> None:
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf8")
    section = intro.split("## How to cite", 1)[1].split("\n## ", 1)[0]
    for key in bib_entries():
        assert f"{{cite}}`{key}`" in section, f"How to cite does not cite {key}"
    bibtex = re.search(r"```bibtex\n(.*?)```", section, re.DOTALL)
    assert bibtex and "title  = {Bayesian Attention, Reproduced}" in bibtex.group(1)
    assert "CITATION.cff" in section
