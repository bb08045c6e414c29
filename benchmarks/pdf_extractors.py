"""Which PDF text extractor to read PDFs with: pypdf, pypdfium2 or pdfplumber, measured.

    python -m benchmarks.pdf_extractors [--repeats 3]

On the committed multi-page PDF (tests/data/realdocs/corpus/mpl-2.0.pdf, whose text is known)
and on the real PDFs Debian ships on this machine, for each extractor: seconds per page
(median of the repeats, after one warm-up), characters extracted, and text faults. On the
MPL PDF, quality is the share of the must-keep sentences of tests/data/realdocs/
expectations.json found in the extracted text (whitespace normalised, lines joined), which
checks word order, spacing and characters; on the others, where no reference text exists,
it counts the faults a reader sees: ligature code points (U+FB00-FB06) left in the text and
"words" longer than 30 letters (words run together when spaces are lost).
pdfplumber and pypdfium2 are optional: an extractor that is not installed is reported so.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks._common import ROOT, LoadMonitor, append_results

REALDOCS = ROOT / "tests" / "data" / "realdocs"
MPL_PDF = REALDOCS / "corpus" / "mpl-2.0.pdf"
DEBIAN_PDFS = [
    Path("/usr/share/doc/libtasn1-doc/libtasn1.pdf"),
    Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf"),
]
LICENCES = {"pypdf": "BSD-3-Clause", "pypdfium2": "Apache-2.0 or BSD-3-Clause (PDFium: BSD-3)",
            "pdfplumber": "MIT (pdfminer.six: MIT)"}  # fmt: skip


def _pypdf(path: Path) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() or "" for page in PdfReader(path).pages]


def _pypdfium2(path: Path) -> list[str]:
    import pypdfium2

    document = pypdfium2.PdfDocument(path)
    try:
        return [document[n].get_textpage().get_text_range() for n in range(len(document))]
    finally:
        document.close()


def _pdfplumber(path: Path) -> list[str]:
    import pdfplumber

    with pdfplumber.open(path) as pdf:
        return [page.extract_text() or "" for page in pdf.pages]


EXTRACTORS: dict[str, Callable[[Path], list[str]]] = {
    "pypdf": _pypdf,
    "pypdfium2": _pypdfium2,
    "pdfplumber": _pdfplumber,
}


def _faults(text: str) -> tuple[int, int]:
    ligatures = len(re.findall("[\ufb00-\ufb06]", text))
    run_together = len(re.findall(r"[^\W\d_]{31,}", text))
    return ligatures, run_together


def _recall(text: str, sentences: list[str]) -> float:
    flat = " ".join(text.split())
    return sum(1 for s in sentences if " ".join(s.split()) in flat) / len(sentences)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    args = parser.parse_args()
    expectations = json.loads((REALDOCS / "expectations.json").read_text())
    must_keep = expectations["files"]["mpl-2.0.pdf"]["keep"]
    pdfs = [MPL_PDF] + [p for p in DEBIAN_PDFS if p.exists()]
    rows: list[tuple[str, str]] = []
    with LoadMonitor() as load:
        for path in pdfs:
            for name, extract in EXTRACTORS.items():
                try:
                    pages = extract(path)  # warm-up (imports, caches)
                except ImportError:
                    rows.append((f"{path.name} · {name}", "not installed"))
                    continue
                seconds = []
                for _ in range(args.repeats):
                    started = time.perf_counter()
                    extract(path)
                    seconds.append(time.perf_counter() - started)
                text = "\n".join(pages)
                ligatures, run_together = _faults(text)
                recall = f"must-keep found {_recall(text, must_keep):.1%} · " if path == MPL_PDF else ""
                per_page = statistics.median(seconds) / max(1, len(pages)) * 1000
                rows.append(
                    (
                        f"{path.name} ({len(pages)} pages) · {name}",
                        f"{per_page:.1f} ms/page · {len(text):,} chars · {recall}"
                        f"{ligatures} ligatures · {run_together} run-together words",
                    )
                )
    notes = [f"licences: {'; '.join(f'{n}: {lic}' for n, lic in LICENCES.items())}", load.summary()]
    command = f"python -m benchmarks.pdf_extractors --repeats {args.repeats}"
    append_results("PDF text extractors", command, rows, notes, record=not args.no_record)


if __name__ == "__main__":
    main()
