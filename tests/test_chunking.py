"""Sentence spans and chunks: exact offsets, sizes, overlap."""

from __future__ import annotations

import itertools
import random

import pytest

from qa.chunking import chunk_document, split_sentences
from qa.corpus import load_documents
from qa.records import Document
from tests.conftest import CORPUS


def _doc(text: str) -> Document:
    return Document(source="d.txt", title="t", text=text, sha256="0")


def test_sentences_respect_abbreviations_and_initials():
    text = "At the meeting on Oct. 17, Mr. Kim spoke. J. Smith of the U.S. agreed! Did they? Yes.\n\nNext."
    sentences = [text[s:e] for s, e in split_sentences(text)]
    assert sentences == [
        "At the meeting on Oct. 17, Mr. Kim spoke.",
        "J. Smith of the U.S. agreed!",
        "Did they?",
        "Yes.",
        "Next.",
    ]


def test_paragraph_break_ends_a_sentence_without_punctuation():
    text = "A heading\n\nThe body starts here."
    assert [text[s:e] for s, e in split_sentences(text)] == ["A heading", "The body starts here."]


@pytest.mark.parametrize(("size", "overlap"), [(700, 150), (300, 0), (120, 60), (2000, 400)])
def test_chunks_are_exact_spans_within_size_and_cover_every_sentence(size, overlap):
    docs, _ = load_documents(CORPUS)
    for doc in docs:
        chunks = chunk_document(doc, size=size, overlap=overlap)
        covered = set()
        for chunk in chunks:
            assert doc.text[chunk.start : chunk.end] == chunk.text
            assert len(chunk.text) <= size
            covered.update(range(chunk.start, chunk.end))
        for start, end in split_sentences(doc.text):
            assert start in covered and end - 1 in covered
        assert [c.ordinal for c in chunks] == list(range(len(chunks)))


def test_overlap_repeats_whole_trailing_sentences():
    text = " ".join(f"Sentence number {i} is here." for i in range(40))
    chunks = chunk_document(_doc(text), size=200, overlap=60)
    for before, after in itertools.pairwise(chunks):
        assert after.start < before.end, "consecutive chunks share their boundary sentences"
        assert after.start > before.start, "every chunk moves forward"
        assert text[after.start : after.start + 8] == "Sentence"


def test_a_sentence_longer_than_the_chunk_is_cut_at_words():
    text = "word " * 500
    chunks = chunk_document(_doc(text.strip()), size=100, overlap=0)
    assert all(len(c.text) <= 100 for c in chunks)
    assert "".join(c.text + " " for c in chunks).split() == text.split()


def test_random_texts_keep_the_offset_invariant():
    rng = random.Random(7)
    alphabet = ["Mr.", "Kim", "U.S.", "said", "\n\n", "yes!", "no?", "a", "b.", "“quoted.”", "x" * 50]
    for _ in range(200):
        text = " ".join(rng.choice(alphabet) for _ in range(rng.randint(1, 120)))
        for chunk in chunk_document(_doc(text), size=rng.randint(20, 300), overlap=rng.randint(0, 19)):
            assert text[chunk.start : chunk.end] == chunk.text and chunk.text.strip() == chunk.text


def test_bad_sizes_are_rejected():
    with pytest.raises(ValueError):
        chunk_document(_doc("x"), size=100, overlap=100)
