"""The book builds without a single Sphinx warning and works offline in a real browser.

One session fixture builds the whole book with ``jupyter-book build -W -n --keep-going`` into
a fresh temporary folder (a stale ``_build/`` could hide warnings of unchanged pages). Pages
are then opened in headless Chromium with every host name unresolvable, so whatever renders
(MathJax, widgets, figures) renders from the book's own files. Each opened page is also saved
as a screenshot in ``_build/screenshots/`` for a human to look at.

Extending: notebooks with stored image (or widget) outputs are found automatically; add prose
pages with figures to ``FIGURE_PAGES`` and pages with math to ``MATH_PAGES``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import REPO, require

try:  # PyYAML comes with the `book` extra (jupyter-book); without it the `book` fixture skips
    import yaml
except ImportError:  # pragma: no cover
    yaml = None

WIDGETS_DIR = REPO / "_static_widgets" / "widgets"
WIDGET_FILES = ("require.js", "embed-amd.js")
SCREENSHOTS = REPO / "_build" / "screenshots"
IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# Host names of public CDNs; none may appear anywhere in the built HTML.
CDN_PATTERN = re.compile(r"cdn\.|cdnjs|jsdelivr|unpkg|googleapis", re.I)

# Prose pages (built .html paths) that must show at least one figure; chapter notebooks
# with image outputs are added automatically (see figure_pages()).
FIGURE_PAGES: list[str] = []
# Pages whose math must be typeset; every notebook page with math is checked as well.
MATH_PAGES: list[str] = ["book/notation.html"]


# --- what the book contains, read from _toc.yml, _config.yml and the notebooks ------------

def _load_yaml(name: str) -> dict:
    if yaml is None:
        return {}
    return yaml.safe_load((REPO / name).read_text(encoding="utf-8"))


def toc_documents() -> list[str]:
    """Every document of _toc.yml, as a path without suffix ('book/intro', ...)."""
    toc = _load_yaml("_toc.yml")
    if not toc:
        return []
    docs = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                docs.append(entry["file"])
            walk(entry.get("chapters"))
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return [d.removesuffix(".ipynb").removesuffix(".md") for d in docs]


def toc_notebooks() -> list[str]:
    return [d for d in toc_documents() if (REPO / f"{d}.ipynb").exists()]


def count_outputs(notebook: str, mimes: tuple[str, ...]) -> int:
    """Number of stored outputs of a notebook that carry one of ``mimes``."""
    nb = json.loads((REPO / f"{notebook}.ipynb").read_text(encoding="utf-8"))
    return sum(
        any(m in out.get("data", {}) for m in mimes)
        for cell in nb.get("cells", []) if cell.get("cell_type") == "code"
        for out in cell.get("outputs", [])
    )


def figure_pages() -> list[str]:
    return FIGURE_PAGES + [f"{nb}.html" for nb in toc_notebooks() if count_outputs(nb, IMAGE_MIMES)]


def widget_pages() -> list[str]:
    return [f"{nb}.html" for nb in toc_notebooks() if count_outputs(nb, (WIDGET_MIME,))]


# --- building -------------------------------------------------------------------------------

@dataclass
class Build:
    returncode: int
    log: str
    html: Path


def _jupyter_book() -> str | None:
    beside_python = Path(sys.executable).with_name("jupyter-book")
    return str(beside_python) if beside_python.exists() else shutil.which("jupyter-book")


@pytest.fixture(scope="session")
def book(tmp_path_factory) -> Build:
    if not all((WIDGETS_DIR / f).exists() for f in WIDGET_FILES):
        require(shutil.which("make") is not None and shutil.which("npm") is not None,
                "make and npm (to fetch the offline widget manager: make book-assets)")
        done = subprocess.run(["make", "book-assets"], cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, f"make book-assets failed:\n{done.stdout}\n{done.stderr}"
    jb = _jupyter_book()
    require(jb is not None, "jupyter-book (pip install -e '.[book]')")
    out = tmp_path_factory.mktemp("book")
    done = subprocess.run(
        [jb, "build", "-W", "-n", "--keep-going", "--path-output", str(out), str(REPO)],
        cwd=REPO, capture_output=True, text=True, timeout=1800,
        env={**os.environ, "PYTHONWARNINGS": "ignore"})
    return Build(done.returncode, done.stdout + done.stderr, out / "_build" / "html")


def test_book_builds_with_no_warnings(book):
    assert book.returncode == 0, "jupyter-book build -W -n failed:\n" + book.log[-6000:]


def test_every_toc_document_is_built(book):
    missing = [d for d in toc_documents() if not (book.html / f"{d}.html").is_file()]
    assert not missing, f"pages in _toc.yml without HTML: {missing}"


@pytest.mark.parametrize("notebook", toc_notebooks())
def test_notebooks_are_committed_with_outputs_of_real_runs(notebook):
    """The build does not execute notebooks, so what is committed is what readers see."""
    nb = json.loads((REPO / f"{notebook}.ipynb").read_text(encoding="utf-8"))
    if nb.get("metadata", {}).get("vae_course", {}).get("placeholder"):
        pytest.skip(f"{notebook} is still a placeholder")
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    unexecuted = [i for i, c in enumerate(code) if c.get("execution_count") is None]
    assert not unexecuted, (f"{notebook}: code cells {unexecuted} were never run; "
                            f"run `python tools/run_notebooks.py {notebook}.ipynb`")
    outputs = [o for c in code for o in c.get("outputs", [])]
    errors = [o.get("ename") for o in outputs if o.get("output_type") == "error"]
    assert not errors, f"{notebook} was committed with errors: {errors}"
    text = json.dumps(outputs)
    assert "QUICK MODE" not in text, f"{notebook} was committed with VAE_COURSE_QUICK outputs"


def test_chapter_notebooks_exist():
    require(yaml is not None, "PyYAML (pip install -e '.[book]')")
    stems = ["01_getting_started", "02_idx_format", "03_autoencoder_to_vae", "04_sampling_layer",
             "05_elbo", "06_training_loop", "07_testing", "08_generating", "09_beyond"]
    chapters = [d for d in toc_notebooks() if d.startswith("notebooks/")]
    assert chapters == [f"notebooks/{s}" for s in stems]


# --- offline: nothing from a CDN ------------------------------------------------------------

class _Resources(HTMLParser):
    """Collects the URLs a page makes the browser fetch (not plain links)."""

    def __init__(self):
        super().__init__()
        self.fetched: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "embed", "audio", "video") and a.get("src"):
            self.fetched.append(a["src"])
        elif tag == "link" and a.get("href") and a.get("rel") not in ("canonical", "alternate"):
            self.fetched.append(a["href"])
        elif tag == "object" and a.get("data"):
            self.fetched.append(a["data"])


def _built_pages(book: Build) -> list[Path]:
    return [p for p in book.html.rglob("*.html") if not p.name.endswith(".probe.html")]


def test_no_page_mentions_a_cdn(book):
    offenders = {}
    for page in _built_pages(book):
        hits = sorted(set(CDN_PATTERN.findall(page.read_text(encoding="utf-8"))))
        if hits:
            offenders[str(page.relative_to(book.html))] = hits
    assert not offenders, f"CDN references in the built HTML: {offenders}"


def test_no_page_fetches_anything_remote(book):
    offenders = {}
    for page in _built_pages(book):
        parser = _Resources()
        parser.feed(page.read_text(encoding="utf-8"))
        remote = [u for u in parser.fetched if re.match(r"(?i)(https?:)?//", u)]
        if remote:
            offenders[str(page.relative_to(book.html))] = remote
    assert not offenders, f"pages that load remote resources: {offenders}"


def test_mathjax_is_served_from_the_book(book):
    html = (book.html / "book" / "notation.html").read_text(encoding="utf-8")
    assert re.search(r'<script[^>]+src="[./]*_static/mathjax/tex-chtml\.js', html), \
        "notation.html does not load MathJax from _static/mathjax (sphinx-mathjax-offline)"
    assert (book.html / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert (book.html / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()


def test_widget_manager_is_in_the_build(book):
    for name in WIDGET_FILES:
        path = book.html / "_static" / "widgets" / name
        assert path.is_file(), f"{path} missing: run `make book-assets`"
        assert path.stat().st_size > 10_000, f"{path} is suspiciously small"
    # Pages that embed widgets must load the manager from there.
    for page in _built_pages(book):
        html = page.read_text(encoding="utf-8")
        for src in re.findall(r'<script[^>]+src="([^"]*(?:embed-amd|require)\.js)', html):
            assert "_static/widgets/" in src, f"{page.name} loads {src}"


# --- in the browser ---------------------------------------------------------------------------

# Runs at the end of <body>: lazy images are made eager, and once everything has loaded each
# image's natural size is written into the DOM, where --dump-dom can see it.
PROBE = """<script>
for (const img of document.images) { img.loading = "eager"; }
window.addEventListener("load", function () {
  for (const img of document.images) {
    img.setAttribute("data-probe-size", img.naturalWidth + "x" + img.naturalHeight);
  }
  document.documentElement.setAttribute("data-probe-loaded", "yes");
});
</script>"""


class _Dom(HTMLParser):
    """Start tags with their attributes, and the visible text (outside script/style)."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        if tag in ("script", "style"):
            self._hidden += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.text.append(data)


@dataclass
class Rendered:
    page: str
    dom: str
    screenshot: Path
    tags: list[tuple[str, dict]] = field(default_factory=list)
    text: str = ""

    def find(self, tag: str, **attrs) -> list[dict]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    def with_class(self, fragment: str) -> list[tuple[str, dict]]:
        return [(t, a) for t, a in self.tags if fragment in a.get("class", "").split()]


def _chromium() -> str | None:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser",
                 "google-chrome", "google-chrome-stable"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="session")
def browser(book):
    """``browser("book/notation.html") -> Rendered``; each page is rendered once per session."""
    exe = _chromium()
    require(exe is not None, "Chromium (apt-get install chromium)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    cache: dict[str, Rendered] = {}

    def render(page: str) -> Rendered:
        if page in cache:
            return cache[page]
        source = book.html / page
        assert source.is_file(), f"{page} was not built"
        # A copy next to the page (relative URLs keep working) with the probe added.
        probe = source.with_name(source.stem + ".probe.html")
        probe.write_text(source.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"),
                         encoding="utf-8")
        shot = SCREENSHOTS / (page.removesuffix(".html").replace("/", "__") + ".png")
        with tempfile.TemporaryDirectory() as profile:
            done = subprocess.run(
                [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                 "--host-resolver-rules=MAP * ~NOTFOUND",  # offline, whatever the machine has
                 "--window-size=1280,1600", "--virtual-time-budget=10000",
                 f"--screenshot={shot}", "--dump-dom", probe.as_uri()],
                capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "<html" in done.stdout, \
            f"chromium failed on {page}:\n{done.stderr[-3000:]}"
        parser = _Dom()
        parser.feed(done.stdout)
        result = Rendered(page, done.stdout, shot, parser.tags, "".join(parser.text))
        assert result.find("html", **{"data-probe-loaded": "yes"}), f"{page} never finished loading"
        cache[page] = result
        return result

    return render


def _math_pages(book: Build) -> list[str]:
    pages = list(MATH_PAGES)
    for nb in toc_notebooks():
        if 'class="math notranslate' in (book.html / f"{nb}.html").read_text(encoding="utf-8"):
            pages.append(f"{nb}.html")
    return pages


def test_math_is_typeset_offline(book, browser):
    for page in _math_pages(book):
        static = (book.html / page).read_text(encoding="utf-8")
        n_math = len(re.findall(r'class="math notranslate nohighlight"', static))
        assert n_math, f"{page} is listed as having math but has none"
        r = browser(page)
        n_typeset = len(r.find("mjx-container"))
        assert n_typeset >= n_math, \
            f"{page}: {n_math} formulas but only {n_typeset} typeset by MathJax"
        for raw in ("\\(", "\\)", "\\[", "\\begin{"):
            assert raw not in r.text, f"{page} still shows raw TeX {raw!r} after MathJax ran"


@pytest.mark.parametrize("notebook", toc_notebooks())
def test_notebook_pages_have_a_colab_link(book, browser, notebook):
    config = _load_yaml("_config.yml")
    repo = config["repository"]["url"].removeprefix("https://github.com/").strip("/")
    expected = (f"{config['launch_buttons']['colab_url'].rstrip('/')}/github/{repo}/blob/"
                f"{config['repository'].get('branch', 'main')}/{notebook}.ipynb")
    r = browser(f"{notebook}.html")
    assert r.find("a", href=expected), f"{notebook}.html has no launch link {expected}"


@pytest.mark.parametrize("page", figure_pages() or [pytest.param(None, marks=pytest.mark.skip(
    reason="no page with figures yet: chapter notebooks have no image outputs"))])
def test_figures_are_displayed(book, browser, page):
    r = browser(page)
    figures = [a for t, a in r.tags if t == "img" and "_images/" in a.get("src", "")]
    stem = page.removesuffix(".html")
    expected = count_outputs(stem, IMAGE_MIMES) if (REPO / f"{stem}.ipynb").exists() else 1
    assert len(figures) >= expected, f"{page}: {expected} figures expected, {len(figures)} shown"
    broken = [a.get("src") for a in figures if a.get("data-probe-size", "0x0").startswith("0x")
              or a.get("data-probe-size", "").endswith("x0")]
    assert not broken, f"{page}: images that did not load: {broken}"


@pytest.mark.parametrize("page", widget_pages() or [pytest.param(None, marks=pytest.mark.skip(
    reason="no notebook with widget outputs yet"))])
def test_widgets_render_offline(book, browser, page):
    r = browser(page)
    assert r.with_class("jupyter-widgets"), f"{page}: no widget rendered (widget state saved?)"
    assert not r.with_class("widget-error") and not r.with_class("jupyter-widgets-error"), \
        f"{page}: a widget failed to render"


def test_home_page_renders(browser):
    r = browser("book/intro.html")
    assert "Variational Autoencoders with PyTorch" in r.text
    repo = _load_yaml("_config.yml")["repository"]["url"]
    assert r.find("a", href=repo), f"no repository button linking to {repo}"
