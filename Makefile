# Two entry points: `make chat` and `make test`. Both install what they need into .venv.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: chat test lint install install-test browser ocr screenshot

# torch is installed first and pinned: an unpinned torch resolves to a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -e '.[test,ray]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# Browser tests drive Debian's Chromium; Playwright's own browser download cannot work offline.
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; fi; }

chat: install
	$(VENV)/bin/qa serve

lint: install-test
	$(VENV)/bin/ruff check qa tests benchmarks scripts
	$(VENV)/bin/ruff format --check qa tests benchmarks scripts
	$(VENV)/bin/mypy qa

# Scanned PDFs are read with the tesseract OCR engine (English and Korean), also from Debian;
# the OCR test needs it.
ocr:
	@tesseract --list-langs 2>/dev/null | grep -qx kor || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq tesseract-ocr tesseract-ocr-kor >/dev/null; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq tesseract-ocr tesseract-ocr-kor >/dev/null; fi; }

test: install-test browser ocr lint
	$(VENV)/bin/pytest

# Refreshes the README's picture of the chat (a plain test run writes its screenshot to a
# temporary folder and leaves docs/ alone).
screenshot: install-test browser
	QA_SCREENSHOT=$(CURDIR)/docs/chat.png $(VENV)/bin/pytest -q tests/test_web.py -k test_answer_streams_with_markers_and_cited_excerpts
