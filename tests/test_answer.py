"""Answers on the real models: the dev set, abstention, Korean, and incremental rebuilds."""

from __future__ import annotations

import json

import pytest

from qa.build import build_index
from qa.errors import QuestionError
from qa.evaluate import evaluate, is_correct, load_questions
from qa.pipeline import Engine
from tests.conftest import DEV_SET


@pytest.fixture(scope="module")
def dev_questions():
    if not DEV_SET.is_file():
        pytest.skip(f"{DEV_SET} is not present (../shared is absent)")
    return load_questions(DEV_SET)


def test_dev_set_score(demo_engine, dev_questions):
    report = evaluate(dev_questions, demo_engine)
    correct = sum(r.correct for r in report.results)
    print(f"\ndev set: {correct}/{report.questions} right; failed: {report.failed}; "
          f"p50 {report.latency_p50_ms:.0f} ms")  # fmt: skip
    assert correct >= 9, report.failed
    assert report.abstention_recall == 1.0, "both unanswerable questions abstain"
    assert report.citation_verbatim_rate == 1.0


def test_answer_cites_exact_excerpts_with_ordered_markers(demo_engine):
    result = demo_engine.answer("Which countries does NATO say are supporting Russia?")
    assert not result.abstained
    assert result.text.startswith(result.citations[0].excerpt)
    assert "[1]" in result.text
    for citation in result.citations:
        assert citation.excerpt in result.text, "every citation is used"
        assert citation.source.endswith(".txt") and "/" not in citation.source
        assert citation.title and citation.score > 0
    assert {"China", "North Korea", "Iran"} <= {
        w for w in ("China", "North Korea", "Iran") if w in result.text
    }


def test_unanswerable_question_abstains_and_shows_closest_passages(demo_engine):
    result = demo_engine.answer("What is the exchange rate between the won and the euro?")
    assert result.abstained
    assert "do not answer" in result.text
    assert result.citations, "the closest passages are still returned"


def test_korean_question_is_answered_from_english_text(demo_engine):
    result = demo_engine.answer("NATO 국방장관 회의는 어디에서 열렸나요?")
    assert not result.abstained
    assert "Brussels" in result.text


@pytest.mark.parametrize("question", ["", "   ", "?!…", "\x00\x07"])
def test_empty_questions_get_a_clear_error(demo_engine, question):
    with pytest.raises(QuestionError, match="empty"):
        demo_engine.answer(question)


def test_overlong_question_gets_a_clear_error(demo_engine):
    with pytest.raises(QuestionError, match="characters long"):
        demo_engine.answer("why " * 30_000)


def test_control_characters_are_ignored(demo_engine):
    plain = "Which news agency did the ministry quote when reporting Shin's meeting?"
    result = demo_engine.answer(
        "Which news agency\x00 did the ministry\x1b quote when reporting Shin's meeting?"
    )
    assert "Yonhap" in result.text and result.text == demo_engine.answer(plain).text


def test_incremental_rebuild_on_real_models_changes_the_answers(
    corpus_copy, tmp_path, encoder, multilingual_encoder
):
    index_dir = tmp_path / "index"
    encoders = {"encoder": encoder, "multilingual_encoder": multilingual_encoder}
    build_index(corpus_copy, index_dir, **encoders)
    engine = Engine(index_dir)
    question = "Where will the Zorblat Accord be signed?"
    assert engine.answer(question).abstained

    (corpus_copy / "accord.txt").write_text(
        "Zorblat Accord talks\n\nThe Zorblat Accord will be signed in Reykjavik next spring, officials said."
    )
    report = build_index(corpus_copy, index_dir, **encoders)
    assert report.added == ["accord.txt"] and report.embedded_chunks == 1
    result = engine.answer(question)  # the engine picks up the new generation by itself
    assert not result.abstained and "Reykjavik" in result.text
    assert result.citations[0].source == "accord.txt"

    (corpus_copy / "accord.txt").write_text(
        "Zorblat Accord talks\n\nThe Zorblat Accord will be signed in Oslo next spring, officials said."
    )
    report = build_index(corpus_copy, index_dir, **encoders)
    assert report.changed == ["accord.txt"] and report.embedded_chunks == 1
    result = engine.answer(question)
    assert "Oslo" in result.text and "Reykjavik" not in result.text

    (corpus_copy / "accord.txt").unlink()
    report = build_index(corpus_copy, index_dir, **encoders)
    assert report.removed == ["accord.txt"] and report.embedded_chunks == 0
    result = engine.answer(question)
    assert result.abstained and all(c.source != "accord.txt" for c in result.citations)


def test_is_correct_follows_the_dev_set_rules():
    from qa.records import Answer, Citation

    def make(text, abstained=False):
        citation = Citation("a.txt", "A", text, 0, len(text), 0.5)
        return Answer(question="q", citations=[citation], abstained=abstained)

    assert is_correct({"any": ["Brussels", "브뤼셀"]}, make("held in brussels [1]"))
    assert not is_correct({"all": ["China", "Iran"]}, make("China [1]"))
    assert is_correct({"abstain": True}, make("", abstained=True))
    assert not is_correct({"any": ["x"]}, make("x", abstained=True))


def test_eval_report_is_json(demo_engine, dev_questions):
    report = evaluate(dev_questions[:2], demo_engine)
    data = json.loads(report.to_json())
    assert data["questions"] == 2 and len(data["results"]) == 2


@pytest.mark.parametrize(
    ("question", "short"),
    [
        ("Where was the NATO Defense Ministers' Meeting held in October 2024?", "Brussels [1]"),
        (
            "How many areas of cooperation does the Individually Tailored Partnership Program cover?",
            "11 areas [1]",
        ),
        # the best sentence comes second in its document: it is still cited first
        ("When did the NATO Defense Ministers' Meeting take place?", "October 16-17 [1]"),
    ],
)
def test_typed_questions_get_a_short_answer_first(demo_engine, question, short):
    result = demo_engine.answer(question)
    assert result.text.startswith(short + "\n\n")
    assert result.short_answer is not None and result.short_answer.citation == 1
    assert result.short_answer.value == short.split(" [")[0] in result.citations[0].excerpt


def test_no_short_answer_when_the_best_sentence_holds_several_candidates(demo_engine):
    result = demo_engine.answer("When were South Korea's formal ties with NATO first established?")
    assert result.short_answer is None and not result.conflict, "2005 and 2012 both appear: no guess"
    assert result.text.startswith(result.citations[0].excerpt)


def test_unrelated_numbers_are_never_a_conflict(demo_engine):
    # Once answered with "The sources disagree: two NATO [1] or 17, South [2]": two numbers
    # that answer nothing. A conflict needs two values that each answer the question.
    result = demo_engine.answer("장관을 만난 NATO 회원국 관리들은 몇 개 나라에서 왔나요?")
    assert not result.conflict
    dated = demo_engine.answer("When was the NATO summit in Washington held?")
    assert not dated.abstained and (dated.short_answer is not None or dated.conflict)


def test_korean_paraphrases_of_the_dev_set(demo_engine):
    from tests.conftest import ROOT

    report = evaluate(load_questions(ROOT / "eval" / "korean_paraphrases.jsonl"), demo_engine)
    correct = sum(r.correct for r in report.results)
    print(f"\nKorean paraphrases: {correct}/{report.questions}; failed {report.failed}")
    # measured: 5/9 (k02, k03, k05, k08 fail: k05 is abstained, the others cite another sentence)
    assert correct >= 5 and report.abstention_recall == 1.0
