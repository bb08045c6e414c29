"""Answer units: sentences that can be read alone, joined with a neighbour when they cannot."""

from __future__ import annotations

from qa.answer_units import build_units, is_non_prose


def texts(text: str) -> list[str]:
    return [unit.text for unit in build_units(text)]


def test_units_are_exact_spans_of_the_text():
    text = "  The council met in Brussels. It agreed on a budget.\n\nLater, the ministers left.  "
    for unit in build_units(text):
        assert text[unit.start : unit.end] == unit.text


def test_a_sentence_that_starts_with_a_pronoun_is_joined_with_the_one_before():
    text = (
        'Rutte addressed the war in Ukraine. He asserted, "China has become a decisive enabler of '
        "Russia's war.\" The meeting then closed."
    )
    assert (
        'Rutte addressed the war in Ukraine. He asserted, "China has become a decisive enabler of '
        "Russia's war.\""
    ) in texts(text)
    assert not any(t.startswith("He asserted") for t in texts(text)), "a pronoun never opens a unit"
    assert "The meeting then closed." in texts(text)


def test_a_pronoun_does_not_reach_back_into_the_previous_paragraph():
    text = "The summit ended on Friday.\n\nThis year the alliance grew."
    assert texts(text) == ["The summit ended on Friday.", "This year the alliance grew."]


def test_a_sentence_that_introduces_a_list_is_joined_with_the_list():
    text = "The release adds three commands:\n\n- git switch\n- git restore\n\n- git sparse\n\nSee the notes."
    units = texts(text)
    assert units[0] == "The release adds three commands:\n\n- git switch\n- git restore\n\n- git sparse"
    assert "See the notes." in units
    assert not any(u.startswith("- ") for u in units), "bullets are never units of their own"


def test_a_quote_that_follows_is_joined_with_the_sentence_that_introduces_it():
    text = 'The minister said:\n\n"We will respond to every provocation."\n\nTalks resume in May.'
    assert texts(text)[0] == 'The minister said:\n\n"We will respond to every provocation."'


def test_headings_underlines_and_link_lists_are_never_units():
    text = (
        "Git v2.39.5 Release Notes\n==========================\n\n"
        "This release merges up the fixes that appear in v2.38.4.\n\n"
        "## Installing\n"
        "Run the installer with the default options.\n\n"
        "Usage\n-----\n\n"
        "[Docs](https://git-scm.com/doc) | [Book](https://git-scm.com/book)\n"
    )
    assert texts(text) == [
        "This release merges up the fixes that appear in v2.38.4.",
        "Run the installer with the default options.",
    ]


def test_non_prose_lines():
    assert is_non_prose("Git v2.39.5 Release Notes")
    assert is_non_prose("=========")
    assert is_non_prose("~~~~~~")
    assert is_non_prose("# Title")
    assert is_non_prose("* a bullet item.")
    assert is_non_prose("[home](/) [about](/about) [blog](/blog)")
    assert not is_non_prose("The default timeout is 30 seconds.")


def test_fragments_are_never_units():
    text = (
        "Pin the version in a .python-version file with the pyenv local command.\n\n"
        ".python-version file with the pyenv local command.\n\n"
        "South Korea, Japan to join NATO's defence summit / PD - White House Photo Archive Collection\n\n"
        "The summit opened on Monday."
    )
    assert texts(text) == [
        "Pin the version in a .python-version file with the pyenv local command.",
        "The summit opened on Monday.",
    ]


def test_a_chain_of_back_references_reaches_the_sentence_they_refer_to():
    text = "Rutte spoke about China. He called it an enabler. This was new. The talks ended."
    assert "Rutte spoke about China. He called it an enabler. This was new." in texts(text)
    assert not any(t.startswith(("He ", "This ")) for t in texts(text))
