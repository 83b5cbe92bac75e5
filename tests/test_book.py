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
from urllib.parse import unquote, urlsplit

import pytest

from conftest import REPO, chromium_binary, require

try:  # PyYAML comes with the `book` extra (jupyter-book); without it the `book` fixture skips
    import yaml
except ImportError:  # pragma: no cover
    yaml = None

WIDGETS_DIR = REPO / "_static_widgets" / "widgets"
WIDGET_FILES = ("require.js", "embed-amd.js")
# Font Awesome, which the widget manager's style sheet loads from beside embed-amd.js.
WIDGET_FONT_GLOB = "*.woff2"
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
    if not (all((WIDGETS_DIR / f).exists() for f in WIDGET_FILES)
            and any(WIDGETS_DIR.glob(WIDGET_FONT_GLOB))):
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


# Pages that still use a shortened recipe model, with why: a strict xfail, so once a page
# passes its entry must go. None today.
NOT_YET_ON_MNIST: dict = {}  # page -> why it is not yet on MNIST at full length


def _mnist_params() -> list:
    return [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=NOT_YET_ON_MNIST[n]))
            if n in NOT_YET_ON_MNIST else n for n in toc_notebooks()]


@pytest.mark.parametrize("notebook", _mnist_params())
def test_pages_were_executed_on_mnist_with_full_length_models(notebook):
    """MNIST is the sources' dataset and the book's: each page's committed run says which
    dataset it used (describe_run) and, for each shared model, its epochs against its
    recipe's (describe_model); no model may be shorter than its recipe."""
    nb = json.loads((REPO / f"{notebook}.ipynb").read_text(encoding="utf-8"))
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code"
                   for o in c.get("outputs", []) if o.get("output_type") == "stream")
    datasets = set(re.findall(r"^dataset: ([a-z-]+)$", text, flags=re.M))
    assert datasets <= {"mnist"}, f"{notebook} was executed on {sorted(datasets)}, not MNIST"
    for recipe, epochs, full in re.findall(r"^(\S+) on mnist: (\d+) epochs \(recipe: (\d+)\)",
                                           text, flags=re.M):
        assert epochs == full, f"{notebook}: {recipe} trained {epochs} of its recipe's {full} epochs"


def test_chapter_notebooks_exist():
    require(yaml is not None, "PyYAML (pip install -e '.[book]')")
    stems = ["01_getting_started", "02_idx_format", "03_autoencoder_to_vae", "04_sampling_layer",
             "05_elbo", "06_training_loop", "07_testing", "08_generating", "09_beyond",
             "10_posterior_collapse", "11_course_recipe"]
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
    assert any((book.html / "_static" / "widgets").glob(WIDGET_FONT_GLOB)), \
        "the widget manager's fonts are missing from _static/widgets: run `make book-assets`"
    # Pages that embed widgets must load the manager from there.
    for page in _built_pages(book):
        html = page.read_text(encoding="utf-8")
        for src in re.findall(r'<script[^>]+src="([^"]*(?:embed-amd|require)\.js)', html):
            assert "_static/widgets/" in src, f"{page.name} loads {src}"


# --- in the browser ---------------------------------------------------------------------------

# Runs first thing in <head>: every JavaScript error (thrown, or a rejected promise nobody
# handled), every element whose file failed to load (script, style sheet, image) and every font
# that failed to load is written into the DOM at once, as JSON in data-probe-errors, so errors
# raised after the load event (the widget manager renders late) are seen by --dump-dom too.
EARLY_PROBE = """<script>
(function () {
  var seen = [];
  function note(kind, what) {
    seen.push(kind + ": " + String(what).slice(0, 300));
    document.documentElement.setAttribute("data-probe-errors", JSON.stringify(seen));
  }
  window.addEventListener("error", function (e) {
    var t = e.target;
    if (t && t !== window && (t.src || t.href)) { note("missing file", t.src || t.href); }
    else { note("javascript error", (e.message || "") + " at " + (e.filename || "?") + ":" + e.lineno); }
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    var r = e.reason;
    note("javascript error", "unhandled rejection: " + (r && (r.message || r.name) || r));
  });
  if (document.fonts) {
    document.fonts.addEventListener("loadingerror", function (e) {
      e.fontfaces.forEach(function (f) { note("missing font", f.family + " " + f.style + " " + f.weight); });
    });
  }
  window.vaeCourseNote = note;
})();
</script>"""

# Runs at the end of <body>: lazy images are made eager, and once everything has loaded (and
# MathJax, where the page has it, has typeset every formula) the layout is measured and written
# into the DOM, where --dump-dom can see it:
#   img               data-probe-size="WxH" (natural size), data-probe-shown="W" (rendered width)
#   display formula   data-probe-fit="W/P": width of the typeset formula / width of its container
#   pre (code cells)  data-probe-scroll="S/C": scrollWidth / clientWidth (cell inputs only)
PROBE = """<script>
for (const img of document.images) { img.loading = "eager"; }
function vaeCourseProbe() {
  for (const img of document.images) {
    img.setAttribute("data-probe-size", img.naturalWidth + "x" + img.naturalHeight);
    img.setAttribute("data-probe-shown", Math.round(img.getBoundingClientRect().width));
  }
  for (const box of document.querySelectorAll('mjx-container[display="true"]')) {
    const formula = box.querySelector("mjx-math") || box;
    box.setAttribute("data-probe-fit", Math.ceil(formula.getBoundingClientRect().width) + "/"
                     + Math.floor(box.getBoundingClientRect().width));
  }
  for (const pre of document.querySelectorAll("div.cell_input pre")) {
    pre.setAttribute("data-probe-scroll", pre.scrollWidth + "/" + pre.clientWidth);
  }
  if (document.fonts) {
    document.fonts.forEach(function (f) {
      if (f.status === "error") { window.vaeCourseNote("missing font", f.family + " " + f.style + " " + f.weight); }
    });
  }
  document.documentElement.setAttribute("data-probe-loaded", "yes");
}
window.addEventListener("load", function () {
  const mathjax = window.MathJax && window.MathJax.startup && window.MathJax.startup.promise;
  if (mathjax) { mathjax.then(vaeCourseProbe, vaeCourseProbe); } else { vaeCourseProbe(); }
});
</script>"""


class _Dom(HTMLParser):
    """Start tags with their attributes, the visible text (outside script/style), and the
    prose: the visible text outside <pre> blocks (code cells and their outputs)."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.prose: list[str] = []
        self._hidden = 0
        self._pre = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        if tag in ("script", "style"):
            self._hidden += 1
        elif tag == "pre":
            self._pre += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1
        elif tag == "pre" and self._pre:
            self._pre -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.text.append(data)
            if not self._pre:
                self.prose.append(data)


@dataclass
class Rendered:
    page: str
    dom: str
    screenshot: Path
    tags: list[tuple[str, dict]] = field(default_factory=list)
    text: str = ""
    prose: str = ""
    errors: list[str] = field(default_factory=list)

    def find(self, tag: str, **attrs) -> list[dict]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    def with_class(self, fragment: str) -> list[tuple[str, dict]]:
        return [(t, a) for t, a in self.tags if fragment in a.get("class", "").split()]


@pytest.fixture(scope="session")
def browser(book):
    """``browser("book/notation.html") -> Rendered``; each page is rendered once per session."""
    exe = chromium_binary()
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
        html = source.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>")
        html = re.sub(r"<head(\s[^>]*)?>", lambda m: m.group(0) + EARLY_PROBE, html, count=1)
        probe.write_text(html, encoding="utf-8")
        shot = SCREENSHOTS / (page.removesuffix(".html").replace("/", "__") + ".png")
        with tempfile.TemporaryDirectory() as profile:
            done = subprocess.run(
                [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                 "--host-resolver-rules=MAP * ~NOTFOUND",  # offline, whatever the machine has
                 "--window-size=1280,1600", "--virtual-time-budget=10000",
                 "--enable-logging=stderr", "--v=0",  # console messages, for uncaught errors
                 f"--screenshot={shot}", "--dump-dom", probe.as_uri()],
                capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and "<html" in done.stdout, \
            f"chromium failed on {page}:\n{done.stderr[-3000:]}"
        parser = _Dom()
        parser.feed(done.stdout)
        result = Rendered(page, done.stdout, shot, parser.tags, "".join(parser.text),
                          "".join(parser.prose))
        probed = result.find("html")[0].get("data-probe-errors") if result.find("html") else None
        result.errors = json.loads(probed) if probed else []
        # Chromium's console log also has what no listener of the page sees (e.g. in workers).
        result.errors += [f"console: {m.group(1)[:300]}" for m in re.finditer(
            r':CONSOLE[^\]]*\] "(Uncaught[^\n]*)', done.stderr)]
        assert result.find("html", **{"data-probe-loaded": "yes"}), f"{page} never finished loading"
        cache[page] = result
        return result

    return render


def _pages_in_toc() -> list[str]:
    """Every page of _toc.yml, as its built .html path."""
    return [f"{d}.html" for d in toc_documents()]


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


def _local_target(page: Path, url: str, html_root: Path) -> Path | None:
    """The file a page-relative (or file://) URL names inside the build; None if not local."""
    if re.match(r"(?i)(https?:|data:|mailto:|javascript:|about:|blob:|//)", url) or not url.strip():
        return None
    if url.lower().startswith("file://"):
        return Path(unquote(urlsplit(url).path))
    path = unquote(urlsplit(url).path)
    if not path:  # "#anchor" or "?query" only: the page itself
        return None
    return (html_root / path.lstrip("/")) if path.startswith("/") else (page.parent / path)


_CSS_URL = re.compile(r"url\(\s*['\"]?([^'\")]+)['\"]?\s*\)")


def test_no_missing_static_files(book):
    """Every file a page makes the browser fetch (scripts, style sheets, images, icons) and
    every file those style sheets load (fonts, images) exists in the build."""
    missing: dict[str, list[str]] = {}
    sheets: set[Path] = set()
    # (_static/ holds the themes' template fragments, "{{ pathto(...) }}": not pages)
    for page in [p for p in _built_pages(book) if p.relative_to(book.html).parts[0] != "_static"]:
        parser = _Resources()
        parser.feed(page.read_text(encoding="utf-8"))
        for url in parser.fetched:
            target = _local_target(page, url, book.html)
            if target is None:
                continue
            if not target.is_file():
                missing.setdefault(str(page.relative_to(book.html)), []).append(url)
            elif target.suffix == ".css":
                sheets.add(target.resolve())
    for sheet in sorted(sheets):
        for url in _CSS_URL.findall(sheet.read_text(encoding="utf-8", errors="replace")):
            target = _local_target(sheet, url, book.html)
            if target is not None and not target.is_file():
                missing.setdefault(str(sheet.relative_to(book.html.resolve())), []).append(url)
    assert not missing, f"references to files that are not in the build: {missing}"


@pytest.mark.parametrize("page", _pages_in_toc())
def test_no_javascript_errors(browser, page):
    r = browser(page)
    errors = [e for e in r.errors if e.startswith(("javascript error", "console"))]
    assert not errors, f"{page}: {len(errors)} JavaScript errors, e.g. {errors[:3]}"


@pytest.mark.parametrize("page", _pages_in_toc())
def test_no_file_fails_to_load_in_the_browser(browser, page):
    """Files fetched at run time (by scripts, or fonts by style sheets that scripts insert)
    are invisible to test_no_missing_static_files: the browser reports them."""
    r = browser(page)
    failed = [e for e in r.errors if e.startswith(("missing file", "missing font"))]
    assert not failed, f"{page}: {len(failed)} files failed to load, e.g. {failed[:6]}"


def test_home_page_renders(browser):
    r = browser("book/intro.html")
    assert "Variational Autoencoders with PyTorch" in r.text
    repo = _load_yaml("_config.yml")["repository"]["url"]
    assert r.find("a", href=repo), f"no repository button linking to {repo}"


# --- what readers see: no markup left raw, nothing wider than the page --------------------------
# Defects that learners reported from the rendered pages (issue 11), each class with its check.
# The browser renders at 1280 x 1600 (see `browser`); the layout measurements come from PROBE.

# A pipe table that was not parsed (e.g. displayed Markdown rendered as CommonMark) reaches the
# page as lines such as "| recipe | loss |" and "|—|—|" (Sphinx turns --- into a dash).
RAW_TABLE_LINE = re.compile(r"^\s*\|.*\|.*\|")
# MyST roles and directives that reached the page as text instead of being resolved.
RAW_MYST = re.compile(r"\{(?:ref|doc|eq|numref|term|download|abbr|math|cite(?::\w+)?|"
                      r"glue(?::\w+)?|prf:ref|sub|sup)\}|(?:```|:::)\{[\w:-]+\}")
# A reference whose text already names its target's kind, written after that word again.
DOUBLED_KIND = re.compile(r"\b(Exercise|Solution|Figure|Table|Equation|Section|Chapter)\s+\1\b")
# Pages that teach MyST syntax to contributors and show it, on purpose, as inline code.
MYST_SYNTAX_PAGES = ["book/contributing.html"]
# A figure shown below this fraction of its natural width has unreadably small labels.
MIN_FIGURE_SCALE = 0.75
# The longest line a code cell may have: what fits the code block of a 1280-pixel window
# with book/static/course.css (measured: `test_code_cells_do_not_scroll`).
MAX_CODE_LINE = 88


def _pages() -> list[str]:
    return _pages_in_toc()


HIDDEN_INPUT = {"hide-input", "remove-input", "remove-cell"}


def _shown_code(nb: dict) -> list[tuple[int, str]]:
    """(index, source) of the code cells a reader sees without opening a toggle."""
    return [(i, "".join(c["source"])) for i, c in enumerate(nb["cells"])
            if c["cell_type"] == "code" and not HIDDEN_INPUT & set(c["metadata"].get("tags", []))]


def _notebooks_showing_code() -> list[str]:
    """The chapters and every other page that shows its code (the results pages may)."""
    return [nb for nb in toc_notebooks()
            if _shown_code(json.loads((REPO / f"{nb}.ipynb").read_text(encoding="utf-8")))]


@pytest.mark.parametrize("page", _pages())
def test_no_raw_table_text(browser, page):
    r = browser(page)
    raw = [line.strip()[:100] for line in r.prose.splitlines() if RAW_TABLE_LINE.match(line)]
    assert not raw, f"{page}: {len(raw)} lines of a table shown as raw text, e.g. {raw[:3]}"


@pytest.mark.parametrize("page", _pages())
def test_no_raw_myst_markup(browser, page):
    r = browser(page)
    if page not in MYST_SYNTAX_PAGES:
        raw = sorted({m.group(0) for m in RAW_MYST.finditer(r.prose)})
        assert not raw, f"{page} shows MyST markup as text: {raw}"
    doubled = sorted({m.group(0) for m in DOUBLED_KIND.finditer(r.prose)})
    assert not doubled, f"{page} says {doubled}: the reference's text already names its kind"


def test_display_math_fits_the_page(book, browser):
    too_wide, measured = {}, 0
    for page in _math_pages(book):
        r = browser(page)
        fits = [a["data-probe-fit"] for t, a in r.tags if t == "mjx-container"
                and a.get("display") == "true"]
        measured += len(fits)
        wide = [f for f in fits if int(f.split("/")[0]) > int(f.split("/")[1])]
        if wide:
            too_wide[page] = wide
    assert measured, "no display formula measured"
    assert not too_wide, ("display formulas wider than their container (formula/container "
                          f"px): {too_wide}; break them over lines (aligned)")


@pytest.mark.parametrize("page", figure_pages() or [pytest.param(
    None, marks=pytest.mark.skip(reason="no page with figures yet"))])
def test_figures_are_shown_at_a_readable_scale(browser, page):
    r = browser(page)
    small = []
    for t, a in r.tags:
        if t != "img" or "_images/" not in a.get("src", ""):
            continue
        natural = int(a.get("data-probe-size", "0x0").split("x")[0])
        shown = int(a.get("data-probe-shown", "0"))
        if natural and shown < MIN_FIGURE_SCALE * natural:
            small.append(f"{a['src'].rsplit('/', 1)[-1]}: {shown} of {natural} px")
    assert not small, (f"{page}: figures shrunk below {MIN_FIGURE_SCALE:.0%} of their width, "
                       f"labels unreadable (make them narrower): {small}")


@pytest.mark.parametrize("notebook", _notebooks_showing_code())
def test_code_cells_do_not_scroll(browser, notebook):
    r = browser(f"{notebook}.html")
    inputs = [a for t, a in r.tags if t == "pre" and "data-probe-scroll" in a]
    assert inputs, f"{notebook}: no code cell measured"
    scrolling = [a["data-probe-scroll"] for a in inputs
                 if int(a["data-probe-scroll"].split("/")[0])
                 > int(a["data-probe-scroll"].split("/")[1])]
    assert not scrolling, (f"{notebook}: {len(scrolling)} of {len(inputs)} code blocks scroll "
                           f"sideways (scrollWidth/clientWidth px: {scrolling[:5]})")


@pytest.mark.parametrize("notebook", _notebooks_showing_code())
def test_code_lines_fit_the_page(notebook):
    nb = json.loads((REPO / f"{notebook}.ipynb").read_text(encoding="utf-8"))
    long = [(i, len(line)) for i, source in _shown_code(nb)
            for line in source.splitlines() if len(line) > MAX_CODE_LINE]
    assert not long, (f"{notebook}: {len(long)} code lines longer than {MAX_CODE_LINE} "
                      f"characters (cell, length): {long[:8]}")


_LABEL = re.compile(r"^\((?P<a>[\w-]+)\)=|\$\$\s*\((?P<b>[\w-]+)\)|:label:\s*(?P<c>[\w-]+)", re.M)


def _book_labels() -> set[str]:
    """Every label the book defines: (name)=, $$ (name) and :label: name, in every document."""
    labels = set()
    for doc in toc_documents():
        if (REPO / f"{doc}.ipynb").exists():
            nb = json.loads((REPO / f"{doc}.ipynb").read_text(encoding="utf-8"))
            texts = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]
        else:
            texts = [(REPO / f"{doc}.md").read_text(encoding="utf-8")]
        labels |= {next(g for g in m.groups() if g) for t in texts for m in _LABEL.finditer(t)}
    return labels


@pytest.mark.parametrize("notebook", toc_notebooks())
def test_code_does_not_name_internal_labels(notebook):
    """Labels are for cross-references; shown in a code comment they mean nothing to a reader
    (the page shows "equation (5.3)", the comment would say "eq-05-...")."""
    labels = _book_labels()
    assert "eq-kl-closed-form" in labels  # the label finder works (book/notation.md)
    nb = json.loads((REPO / f"{notebook}.ipynb").read_text(encoding="utf-8"))
    code = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    named = sorted({label for src in code for label in labels
                    if re.search(rf"(?<![\w-]){re.escape(label)}(?![\w-])", src)})
    assert not named, f"{notebook}: code cells name internal labels {named}"


# --- chapter 8's static latent explorer (issue 11, section 6) -----------------------------------

# Runs after the page has loaded: moves the first slider of every explorer to its first value,
# as a user's drag would (an "input" event), and records what each explorer shows before and after.
MOVE_EXPLORERS = """<script>
window.addEventListener("load", function () {
  var found = document.querySelectorAll("figure.vae-explorer"), result = [];
  for (var k = 0; k < found.length; k++) {
    var view = found[k].querySelector("div.vae-explorer-view");
    var slider = found[k].querySelector("input[type=range]");
    var entry = {before: getComputedStyle(view).backgroundPosition};
    slider.value = "0";
    slider.dispatchEvent(new Event("input"));
    entry.after = getComputedStyle(view).backgroundPosition;
    entry.shown = found[k].querySelector("output").textContent;
    entry.width = view.getBoundingClientRect().width;
    result.push(entry);
  }
  document.documentElement.setAttribute("data-explorers", JSON.stringify(result));
});
</script>"""


def test_chapter_8_explorers_work_in_the_built_page(book):
    """The rendered chapter 8 has no kernel: its static explorers must change their image
    when a slider moves, from the page's own inline script."""
    exe = chromium_binary()
    require(exe is not None, "Chromium (apt-get install chromium)")
    source = book.html / "notebooks" / "08_generating.html"
    html = source.read_text(encoding="utf-8")
    assert 'class="vae-explorer"' in html, "chapter 8 shows no static latent explorer"
    probe = source.with_name("08_generating.explorer.probe.html")
    probe.write_text(html.replace("</body>", MOVE_EXPLORERS + "</body>"), encoding="utf-8")
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
             "--window-size=1280,1600", "--virtual-time-budget=10000", "--dump-dom",
             probe.as_uri()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"chromium failed:\n{done.stderr[-3000:]}"
    found = re.search(r"<html[^>]*data-explorers=\"([^\"]*)\"", done.stdout)
    assert found, "the page never recorded its explorers (did its load event fire?)"
    explorers = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert explorers, "no explorer rendered in the page"
    for k, e in enumerate(explorers):
        assert e["width"] > 0, f"explorer {k} shows no image"
        assert e["after"] != e["before"], f"explorer {k}: moving a slider changed nothing ({e})"
        assert e["shown"] == "-1.64", f"explorer {k}: the slider shows {e['shown']!r}"
