"""What a question asks for, and the values of that type a sentence holds."""

from __future__ import annotations

import pytest

from qa.answer_types import answer_type, values


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("When was the treaty signed?", "time"),
        ("How many ships did the navy lose?", "quantity"),
        ("Where was the summit held?", "place"),
        ("Who maintains libxml2?", "person"),
        ("Why did the talks fail?", "reason"),
        ("회의는 어디에서 열렸나요?", "place"),
        ("몇 개 나라가 참가했나요?", "quantity"),
    ],
)
def test_the_question_word_decides_the_type(question, kind):
    found = answer_type(question)
    assert found is not None and found.name == kind


@pytest.mark.parametrize(
    ("question", "text", "expected"),
    [
        (
            "When was the treaty signed?",
            "The war began in 1618, and the treaty was signed in 1648.",
            ["1618", "1648"],
        ),
        (
            "When was the treaty signed in 1648?",
            "The treaty was signed in 1648.",
            [],
        ),  # the question names it
        ("Where was the summit held?", "The summit was held in Brussels.", ["Brussels"]),
        ("Who maintains libxml2?", "The library is maintained by Nick Wellnhofer.", ["Nick Wellnhofer"]),
        # A capital that only opens a sentence names no one.
        ("Who maintains libxml2?", "Another option for compiling libxml is using CMake:", []),
    ],
)
def test_values_of_the_asked_type(question, text, expected):
    kind = answer_type(question)
    assert kind is not None
    assert [text[start:end] for start, end in values(kind, text, question)] == expected
