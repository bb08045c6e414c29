"""How much real content ingestion keeps, and how much furniture and markup it lets through.

    python -m benchmarks.ingest_quality [--corpus tests/data/realdocs/corpus] [--verbose] [--no-record]

Reads every file of the real-document corpus (licences, READMEs in Markdown, RST and plain
text, an HTML manual page, a multi-page PDF and a DOCX, with their licences in
tests/data/realdocs/LICENSES.md) the way ``qa build`` does, and scores the cleaned text
against tests/data/realdocs/expectations.json:

- must-keep recall: the share of the listed sentences found in the cleaned text (whitespace
  normalised);
- must-go: listed furniture (badges, link targets, page numbers, directives) still present;
- headings glued to a sentence, and markup tokens (``![``, ``](``, setext underlines, list
  bullets, RST directives) inside the sentence units answers are made of;
- table rows whose cells are not on one line; wrong titles; for the PDF, excerpts whose page
  is wrong (when the reader reports pages).

To measure the code of another commit (the "before" numbers), run this script from the
current tree with ``PYTHONPATH`` pointing at that commit's ``qa`` package.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks._common import ROOT, append_results

REALDOCS = ROOT / "tests" / "data" / "realdocs"

# Markup that must not reach an answer unit: images and links, reference-link labels, RST
# directives, roles and link targets, grid-table borders, raw HTML blocks.
MARKUP = re.compile(r"!\[|\]\(|\]\[|(^|\n)\.\. [\w|-]+::|:target:|`_\b|\+-{3,}\+|<details>|</details>")
# In a one-line unit (prose, not a code block): a setext/RST underline, a list bullet or
# heading hashes opening it.
LINE_MARKUP = re.compile(r"^[=\-~^\"'`#*+]{4,}$|^[*+\-•][ \t]|^#{1,6}[ \t]")


def _norm(text: str) -> str:
    return " ".join(text.split())


@dataclass
class FileScore:
    source: str
    keep_total: int = 0
    keep_found: int = 0
    missing: list[str] = field(default_factory=list)
    furniture_left: list[str] = field(default_factory=list)
    glued_headings: list[str] = field(default_factory=list)
    markup_units: list[str] = field(default_factory=list)
    split_rows: list[list[str]] = field(default_factory=list)
    title_wrong: str | None = None
    error: str | None = None


def score_document(source: str, title: str, text: str, expected: dict) -> FileScore:
    """Score one cleaned document against its expectations."""
    from qa.chunking import split_sentences

    result = FileScore(source, keep_total=len(expected["keep"]))
    flat = _norm(text)
    for sentence in expected["keep"]:
        if _norm(sentence) in flat:
            result.keep_found += 1
        else:
            result.missing.append(sentence)
    result.furniture_left = [s for s in expected.get("go", []) if s in text]
    result.furniture_left += [s for s in expected.get("once", []) if text.count(s) > 1]
    units = [text[start:end] for start, end in split_sentences(text)]
    for heading in expected.get("headings", []):
        for unit in units:
            glued = unit != heading and (
                re.match(re.escape(heading) + r"\s", unit)
                or re.search(r"\s" + re.escape(heading) + "$", unit)
            )
            if glued and "\n" in unit:  # a heading line running into a paragraph line
                result.glued_headings.append(unit[:120])
    code = expected.get("code_lookalikes", [])
    result.markup_units = [
        unit[:120]
        for unit in units
        if (MARKUP.search(unit) or ("\n" not in unit and LINE_MARKUP.search(unit)))
        and not any(line in unit for line in code)
    ]
    lines = [_norm(line) for line in text.split("\n")]
    for cells in expected.get("rows", []):
        pattern = re.compile(r"\b.*?".join(re.escape(c) for c in cells))
        if not any(pattern.search(line) for line in lines):
            result.split_rows.append(cells)
    if "title" in expected and _norm(title) != expected["title"]:
        result.title_wrong = title[:120]
    return result


def read_corpus(corpus: Path) -> tuple[dict[str, tuple[str, str]], dict[str, str]]:
    """(source -> (title, cleaned text), source -> why skipped) as ``qa build`` reads them."""
    try:
        from qa.corpus import load_documents
    except ImportError:  # the code before the corpus scan moved out of qa.ingest
        from qa.ingest import load_documents  # type: ignore[attr-defined,no-redef]

    documents, skipped = load_documents(corpus)
    return {d.source: (d.title, d.text) for d in documents}, {s.source: s.reason for s in skipped}


def score_corpus(corpus: Path = REALDOCS / "corpus") -> list[FileScore]:
    expectations = json.loads((REALDOCS / "expectations.json").read_text())["files"]
    read, skipped = read_corpus(corpus)
    scores = []
    for source, expected in sorted(expectations.items()):
        if source in read:
            title, text = read[source]
            scores.append(score_document(source, title, text, expected))
        else:
            reason = skipped.get(source, "not read")
            scores.append(FileScore(source, len(expected["keep"]), 0, list(expected["keep"]), error=reason))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REALDOCS / "corpus")
    parser.add_argument("--verbose", action="store_true", help="print what each file lost or let through")
    parser.add_argument("--label", default="", help="a name for this run in RESULTS.md (e.g. 'before')")
    parser.add_argument("--no-record", action="store_true", help="print only; do not append to RESULTS.md")
    args = parser.parse_args()
    scores = score_corpus(args.corpus)
    rows: list[tuple[str, str]] = []
    for s in scores:
        faults = [
            f"{len(s.furniture_left)} furniture left" if s.furniture_left else "",
            f"{len(s.glued_headings)} glued headings" if s.glued_headings else "",
            f"{len(s.markup_units)} units with markup" if s.markup_units else "",
            f"{len(s.split_rows)} table rows split" if s.split_rows else "",
            f"title {s.title_wrong!r}" if s.title_wrong is not None else "",
            f"skipped: {s.error}" if s.error else "",
        ]
        rows.append((s.source, f"kept {s.keep_found}/{s.keep_total}; " + "; ".join(f for f in faults if f)))
        if args.verbose:
            for item in s.missing:
                print(f"  {s.source} MISSING {item[:150]!r}")
            for item in s.furniture_left:
                print(f"  {s.source} FURNITURE {item!r}")
            for item in s.glued_headings + s.markup_units:
                print(f"  {s.source} MARKUP/HEADING {item!r}")
    kept = sum(s.keep_found for s in scores)
    total = sum(s.keep_total for s in scores)
    rows.insert(0, ("must-keep recall (all files)", f"{kept}/{total} = {kept / total:.1%}"))
    rows.insert(1, ("must-go items left", str(sum(len(s.furniture_left) for s in scores))))
    rows.insert(2, ("answer units with a glued heading", str(sum(len(s.glued_headings) for s in scores))))
    rows.insert(3, ("answer units with markup", str(sum(len(s.markup_units) for s in scores))))
    rows.insert(4, ("table rows split across lines", str(sum(len(s.split_rows) for s in scores))))
    rows.insert(5, ("wrong titles", str(sum(s.title_wrong is not None for s in scores))))
    title = "Ingestion quality on real documents" + (f" ({args.label})" if args.label else "")
    append_results(title, "python -m benchmarks.ingest_quality", rows, record=not args.no_record)


if __name__ == "__main__":
    main()
