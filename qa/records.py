"""Frozen records passed between the stages of the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Document:
    """A cleaned document. ``source`` is its path relative to the corpus folder."""

    source: str
    title: str
    text: str
    sha256: str
    date: str | None = None


@dataclass(frozen=True)
class Chunk:
    """A span of a document's cleaned text: ``text == document.text[start:end]``."""

    source: str
    ordinal: int
    start: int
    end: int
    text: str


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


@dataclass(frozen=True)
class Answer:
    """An answer whose every statement is covered by a citation.

    ``text`` carries inline markers ``[1]``, ``[2]`` that index ``citations`` (1-based) in
    order of first appearance. When ``abstained`` is true the corpus does not answer the
    question; ``citations`` then hold the closest passages found.
    """

    question: str
    text: str
    citations: list[Citation]
    abstained: bool
    query: str = ""
    timings_ms: dict[str, float] = field(default_factory=dict)
    # The evidence the abstain decision weighed: the best sentence's "similarity" to the
    # question and its lexical "coverage" of it (see compose.Thresholds).
    evidence: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SkippedFile:
    source: str
    reason: str


@dataclass(frozen=True)
class BuildReport:
    """What ``build_index`` did. Counts are of documents, except ``chunks``."""

    added: list[str]
    changed: list[str]
    removed: list[str]
    unchanged: list[str]
    skipped: list[SkippedFile]
    chunks: int
    embedded_chunks: int
    seconds: float

    def summary(self) -> str:
        return (
            f"added {len(self.added)}, changed {len(self.changed)}, removed {len(self.removed)}, "
            f"unchanged {len(self.unchanged)}, skipped {len(self.skipped)}; "
            f"{self.chunks} chunks ({self.embedded_chunks} embedded) in {self.seconds:.1f}s"
        )
