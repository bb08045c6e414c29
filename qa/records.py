"""Frozen records passed between the stages: the build's (files, documents, chunks, the
manifest) and the question's (hits, citations, the structured answer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from qa.config import Settings
from qa.text import marker

# --- the build ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusFile:
    """A file found in the corpus, identified by its path and versioned by its bytes."""

    source: str  # POSIX path relative to the corpus root
    path: Path
    sha256: str


@dataclass(frozen=True)
class Document:
    """A cleaned document. ``source`` is its path relative to the corpus folder.

    ``sections`` holds (offset, heading) for each heading and ``pages`` (offset, page, ocr)
    where each page starts, offsets into ``text`` (pages only for PDFs; ``ocr`` marks text
    recognised from a page's image). ``raw_chars`` is how much text the reader found
    before cleaning removed furniture.
    """

    source: str
    title: str
    text: str
    sha256: str
    date: str | None = None
    sections: tuple[tuple[int, str], ...] = ()
    pages: tuple[tuple[int, int, bool], ...] = ()
    raw_chars: int = 0

    def __post_init__(self) -> None:
        # A document that crossed a process boundary as JSON comes back with lists.
        object.__setattr__(self, "sections", tuple((int(o), str(h)) for o, h in self.sections))
        object.__setattr__(self, "pages", tuple((int(o), int(p), bool(r)) for o, p, r in self.pages))


@dataclass(frozen=True)
class Chunk:
    """A span of a document's cleaned text: ``text == document.text[start:end]``."""

    source: str
    ordinal: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class CleaningNote:
    """How much of a file's text cleaning kept: ``raw_chars`` read, ``kept_chars`` indexed."""

    source: str
    raw_chars: int
    kept_chars: int

    @property
    def kept_share(self) -> float:
        return 1.0 if self.raw_chars <= 0 else min(1.0, self.kept_chars / self.raw_chars)


@dataclass(frozen=True)
class SkippedFile:
    """A corpus file a build could not use: not indexed, reported with the reason."""

    source: str
    reason: str


@dataclass(frozen=True)
class CorpusChanges:
    """How the corpus differs from an index, by document path."""

    added: list[str]
    changed: list[str]
    removed: list[str]
    unchanged: list[str]


@dataclass(frozen=True)
class BuildReport(CorpusChanges):
    """What ``build_index`` did: the changes it applied (a changed file that could not be
    read counts as removed), what it skipped, and the index's size after it. Counts are of
    documents, except ``chunks``."""

    skipped: list[SkippedFile]
    chunks: int
    embedded_chunks: int
    seconds: float
    # Documents read by this build whose cleaning removed more than a small share of text.
    cleaned: list[CleaningNote] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"added {len(self.added)}, changed {len(self.changed)}, removed {len(self.removed)}, "
            f"unchanged {len(self.unchanged)}, skipped {len(self.skipped)}; "
            f"{self.chunks} chunks ({self.embedded_chunks} embedded) in {self.seconds:.1f}s"
        )


@dataclass(frozen=True)
class ModelInfo:  # an encoder, as the manifest records it
    model: str
    dimension: int


@dataclass(frozen=True)
class VectorTypes:
    """The type of each vector index: ``"flat"`` (exact) or ``"ivf-sq8"`` (approximate)."""

    dense: str
    multilingual: str | None


@dataclass(frozen=True)
class Manifest:
    """``manifest.json`` of one index generation: what it was built with and holds.

    The JSON keys are the field names (format 2); ``from_json`` also reads format 1, whose
    ``documents`` was the per-document hash table and which had no ``vectors``.
    """

    format: int
    created: str
    corpus: str  # the corpus folder, absolute
    settings: dict[str, object]  # Settings.build_signature() of the build
    chunker_version: int
    dense: ModelInfo
    multilingual: ModelInfo | None
    vectors: VectorTypes
    chunks: int
    documents: int

    @property
    def build_settings(self) -> Settings:
        """Default settings with the build settings this index was built with."""
        return Settings.from_signature(self.settings)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        """Raises ``KeyError``, ``TypeError`` or ``ValueError`` when ``data`` is not one."""
        multilingual = data["multilingual"]
        documents = data["documents"]
        vectors = data.get("vectors") or {"dense": "flat", "multilingual": "flat" if multilingual else None}
        return cls(
            format=int(data["format"]),
            created=str(data["created"]),
            corpus=str(data["corpus"]),
            settings=dict(data["settings"]),
            chunker_version=int(data.get("chunker_version", 0)),
            dense=ModelInfo(str(data["dense"]["model"]), int(data["dense"]["dimension"])),
            multilingual=None
            if multilingual is None
            else ModelInfo(str(multilingual["model"]), int(multilingual["dimension"])),
            vectors=VectorTypes(str(vectors["dense"]), vectors["multilingual"]),
            chunks=int(data["chunks"]),
            documents=len(documents) if isinstance(documents, dict) else int(documents),
        )

    def to_json(self) -> dict[str, Any]:
        """The JSON object ``from_json`` reads back."""
        return asdict(self)


# --- the question ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its fused score and the ranks it had in each retriever."""

    chunk_id: int
    chunk: Chunk
    title: str
    date: str | None
    score: float
    dense_score: float | None = None
    ranks: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Citation:
    """One cited excerpt. ``excerpt == cleaned_text(source)[start:end]``, always."""

    source: str
    title: str
    excerpt: str
    start: int
    end: int
    score: float
    date: str | None = None
    page: int | None = None  # 1-based page of the excerpt's start (PDFs), else None
    section: str | None = None  # the nearest heading before the excerpt
    ocr: bool = False  # the excerpt was recognised from a scanned page


@dataclass(frozen=True)
class CitedValue:
    """A short value copied from one cited sentence: ``"Brussels"`` from citation 1."""

    value: str
    citation: int  # 1-based number of the citation whose excerpt holds ``value``


ABSTAIN_TEXT = (
    "The indexed documents do not answer this question. The closest passages found are cited "
    "below, for you to judge."
)


@dataclass(frozen=True)
class Answer:
    """An answer whose every statement is covered by a citation.

    Unless ``abstained``, the answer's sentences are its citations' excerpts, in order: a
    sentence copied verbatim from a source can state nothing its citation does not cover.
    Before them may come one ``short_answer`` (a value from a cited sentence) or, when the
    sources give different dates or numbers, the ``conflict`` between them. When
    ``abstained`` is true the corpus does not answer the question; ``citations`` then hold
    the closest passages found. ``text`` renders the structure for reading.
    """

    question: str
    citations: list[Citation]
    abstained: bool
    short_answer: CitedValue | None = None
    conflict: tuple[CitedValue, ...] = ()  # two or more values the sources disagree on
    summary: bool = False  # a summary request, answered by one central unit per document
    query: str = ""  # what was searched: the cleaned question, with a follow-up's context
    timings_ms: dict[str, float] = field(default_factory=dict)
    # The evidence the abstain decision weighed: the answerability model's
    # "answer_probability" for the best unit (see config.Thresholds), and that unit's
    # "similarity" to the question and lexical "coverage" of it.
    evidence: dict[str, float] = field(default_factory=dict)
    # The index generation every part of the answer was read from ("gen-000007"; "" when not
    # read from an index): replicas behind a load balancer say which build answered.
    generation: str = ""

    def render_lead(self, escape: Callable[[str], str] = str) -> str:
        """What comes before the sentences: ``"Brussels [1]"``, the sources' disagreement,
        or nothing. ``escape`` is applied to the copied values (a door's markup)."""
        if self.summary:
            many = len(self.citations) > 1
            return f"Summary: the central passage of {f'each of {len(self.citations)} documents' if many else 'one document'}."
        if self.conflict:
            values = " or ".join(f"{escape(v.value)} {marker(v.citation)}" for v in self.conflict)
            return f"The sources disagree: {values}."
        if self.short_answer is None:
            return ""
        return f"{escape(self.short_answer.value)} {marker(self.short_answer.citation)}"

    def render_sentences(self, escape: Callable[[str], str] = str) -> list[str]:
        """Each answer sentence with its citation marker (none when abstained); ``escape``
        is applied to the copied text."""
        if self.abstained:
            return []
        return [f"{escape(c.excerpt)} {marker(n)}" for n, c in enumerate(self.citations, start=1)]

    @property
    def text(self) -> str:
        """The answer as text: the lead, a blank line, then the sentences with inline
        markers ``[1]``, ``[2]`` that index ``citations`` (1-based) in order of first
        appearance; or the abstention notice."""
        if self.abstained:
            return ABSTAIN_TEXT
        lead = self.render_lead()
        body = " ".join(self.render_sentences())
        return f"{lead}\n\n{body}" if lead else body
