# vae-course: build the book, regenerate notebook outputs, run the tests.
# Every target first runs tools/setup.sh (idempotent: .venv with the package and its
# book/test extras, plus Debian's Fashion-MNIST and Chromium when run as root).
# Skip it in an environment you manage yourself with `make book SETUP=: VENV=$CONDA_PREFIX`.

VENV    ?= .venv
SETUP   ?= VENV=$(VENV) bash tools/setup.sh
PYTHON  := $(VENV)/bin/python
NPM     ?= npm

# The offline widget manager is fetched from npm at build time, never committed:
# node_modules goes under _build/, the files the pages load go to _static_widgets/widgets/
# (both .gitignored; _static_widgets is in html_static_path, see _config.yml).
NPM_PREFIX   := _build/book-assets
WIDGETS_DIR  := _static_widgets/widgets
HTML_MANAGER := $(NPM_PREFIX)/node_modules/@jupyter-widgets/html-manager/dist
REQUIREJS    := $(NPM_PREFIX)/node_modules/requirejs

.PHONY: setup book book-assets notebooks test test-full test-portability test-one-dataset

setup:
	$(SETUP)

# The second environment CI tests: torch 2.14.1 + torchvision 0.29.1 in .venv-vision, running
# the torchvision cross-checks, chapter 2 under nbval and the package tests (see the script).
.PHONY: test-vision
test-vision:
	bash tools/ci_torchvision.sh

# The html-manager's style sheet (inside embed-amd.js) loads Font Awesome's font files from
# the folder embed-amd.js is served from: they are copied along (missing, they were 404s).
WIDGET_FONTS := woff2 woff ttf eot svg

book-assets:
	@if [ -f $(WIDGETS_DIR)/embed-amd.js ] && [ -f $(WIDGETS_DIR)/require.js ] \
	    && ls $(WIDGETS_DIR)/*.woff2 >/dev/null 2>&1; then \
	  echo "book-assets: $(WIDGETS_DIR) already present"; \
	else \
	  mkdir -p $(NPM_PREFIX) $(WIDGETS_DIR) && \
	  if [ ! -f $(HTML_MANAGER)/embed-amd.js ] || [ ! -f $(REQUIREJS)/require.js ]; then \
	    $(NPM) install --no-save --no-audit --no-fund --prefix $(NPM_PREFIX) \
	      @jupyter-widgets/html-manager@1 requirejs@2; \
	  fi && \
	  cp $(HTML_MANAGER)/embed-amd.js $(HTML_MANAGER)/embed.js.LICENSE.txt $(WIDGETS_DIR)/ && \
	  cp $(foreach ext,$(WIDGET_FONTS),$(HTML_MANAGER)/*.$(ext)) $(WIDGETS_DIR)/ && \
	  cp $(REQUIREJS)/require.js $(WIDGETS_DIR)/require.js && \
	  echo "book-assets: copied the widget manager and its fonts into $(WIDGETS_DIR)"; \
	fi

# -W: any warning fails the build; -n: so does any unresolved cross-reference.
book: setup book-assets
	$(VENV)/bin/jupyter-book build -W -n --keep-going .

# Re-execute every chapter notebook in place with the real (full-length) settings.
notebooks: setup
	$(PYTHON) tools/run_notebooks.py

# Package and book tests, then every notebook under nbval: every stored output is compared
# except cells tagged nbval-ignore-output (training, timing, sampling, widgets); addresses,
# devices and timings are sanitized. Quick mode (VAE_COURSE_QUICK=1) is the default, so the
# chapters train for seconds; `make test-full` runs them at their real length instead.
# TEST_JOBS pytest-xdist workers share the cores (conftest.py splits the threads); loadscope
# keeps each notebook's cells, and each test module, in one worker. TEST_JOBS=0: no workers.
TEST_JOBS ?= 2
export TEST_JOBS  # tools/cpu_variants.sh, test_one_dataset.sh and ci_torchvision.sh use it too
PYTEST_ALL := -m pytest -q -n $(TEST_JOBS) --dist loadscope --nbval --nbval-current-env \
              --nbval-sanitize-with tests/nbval_sanitize.cfg tests notebooks book
test: setup
	VAE_COURSE_QUICK=$${VAE_COURSE_QUICK-1} $(PYTHON) $(PYTEST_ALL)

test-full: setup
	env -u VAE_COURSE_QUICK $(PYTHON) $(PYTEST_ALL)

# The numerics-sensitive tests as on other CPUs (forced instruction sets) and at 1-4 threads,
# chapter 6 under each instruction set and at 3 threads: proves the tolerance policy holds
# beyond this machine's rounding.
test-portability: setup
	VAE_COURSE_QUICK=1 bash tools/cpu_variants.sh $(PYTHON)

# Offline with only one dataset: every chapter and book/*.ipynb under nbval with only
# Fashion-MNIST reachable, then the pages that name Fashion-MNIST with only MNIST (the others
# run on MNIST exactly as in make test), from the folder MNIST_DATA names (its four .gz files,
# or an mnist/ subfolder). Quick mode, downloads off, an empty XDG cache.
# The stored outputs are MNIST runs (make test compares them), so these passes prove "runs top
# to bottom without error" on either dataset alone with --nbval-lax (every cell still runs; any exception fails) rather than
# comparing outputs. Details in tools/test_one_dataset.sh.
test-one-dataset: setup
	MNIST_DATA="$(MNIST_DATA)" PYTHON=$(PYTHON) bash tools/test_one_dataset.sh
