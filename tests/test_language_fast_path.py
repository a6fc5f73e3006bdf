"""The gates of ``mailgate.policy.language.prose_only`` against the checks they let it skip.

* ``_is_plain_prose``: on a line of plain prose ``prose_only`` does not try the fence,
  quote, delimiter and prompt patterns, and ``_is_machine_line``, ``_is_name_line`` and
  ``_clean_inline``, told ``plain=True``, skip what cannot match such a line;
* ``_has_spaces_to_squeeze``: ``_clean_inline`` squeezes spaces only where ``_SPACES``
  would change something;
* ``_may_close``: ``_is_closing`` tries its two patterns only on lines that start with a
  closing phrase;
* the hints of the ``_Hinted`` patterns and the prefilters of the ``_AnyCase`` footer
  patterns.

A gate may only skip work whose answer it knows. The texts: the language corpus, the
text and own text of the bench corpus's first messages, every file under tests/fixtures/
(raw and parsed), every string of test_language.py, ``SEEDS``, and random mutations of
their lines. On all of them, whenever a gate says "cannot", the check it skips says so
too, and ``prose_only`` gives the same result with the gates bypassed. No timings here:
speed is for the benchmarks.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path

import pytest

from bench.corpus import Corpus
from bench.language_corpus import load_corpus
from mailgate.mail.parse import parse_message
from mailgate.mail.quotes import own_text
from mailgate.policy import casefold, language
from mailgate.policy.language import prose_only
from tests.support.gate_texts import fixture_texts, mutated_windows, strings_of

TESTS = Path(__file__).parent
SEED = 20261124
CORPUS_MESSAGES = 300
MUTATIONS = 3000

LineGate = Callable[[str], bool]

# ------------------------------------------------------------------------------ texts


@cache
def language_corpus_texts() -> tuple[str, ...]:
    return tuple(item.text for item in load_corpus())


@cache
def bench_corpus_texts() -> tuple[str, ...]:
    """The text of the bench corpus's first messages, and its own text (what the
    pipeline judges)."""
    texts = []
    for message in Corpus(1).messages(CORPUS_MESSAGES):
        text = parse_message(message.raw).text
        texts += [text, own_text(text)]
    return tuple(texts)


#: Lines that reach what plain prose may still match (commands, names, closings, markers,
#: shouting), and the edges of each gate.
SEEDS = [
    *("make sense.", "free", "ls", "cat", "sudo reboot now", "top", "less is more"),
    *("Hans Müller", "Jan van der Berg", "Anna Maria de la Cruz", "Ana da Silva e Souza"),
    *("Jan van der Berg and Sons of the Hague", "Wir sehen uns", "Gdańsk Śródmieście"),
    *("Original Message", "Begin forwarded message", "Sent from my iPhone", "Von meinem iPad"),
    *("Thanks", "Thanks,", "Best regards", "Kind regards, Anna Nowak", "Cordialement"),
    *("Met vriendelijke groet, Joost de Vries", "Mit freundlichen Grüßen aus Mannheim"),
    *("S pozdravem", "Z poważaniem", "Danke schön", "Obrigado!", "Saludos - Ana"),
    *("Exception in thread main", "ValueError", "KeyError: 'x'", "Foo.BarError here"),
    *("PLEASE HELP US", "I", "I A B C", "ÜBER DIE BRÜCKE", "Ÿ Ł Ĳ", "İSTANBUL OFİSİ"),
    *("ERROR something failed", "INFO started", "REM set path", "MSI (s) log"),
    *("camelCase here", "the IREX server", "see www.irex.ai now", "www. ok", "WwW.x"),
    *("a  b", "a\tb", "a\u00a0b", "a\u3000b", "wait... ok", "e.g. this", "ok .", "x ,y"),
    *("    indented words here", "'quoted' word", "word ’quoted’ word", "don't", "l'été"),
    *("Yes, no, maybe!", "Why?", "Thanks a lot for your help, Anna", "ẞ", "K", "ſ"),
]


@cache
def case_texts() -> tuple[str, ...]:
    """Every string of test_language.py (requests, footers, traces, hint samples, …) and
    of ``SEEDS``, alone and after a line of prose (closings count only after some)."""
    strings = sorted(strings_of(TESTS / "test_language.py") | set(SEEDS))
    return tuple(
        text for s in strings for text in (s, f"We restarted the server twice.\n{s}\nThanks")
    )


#: Characters the gates and the patterns behind them care about.
ALPHABET = [
    *string.digits,
    *string.punctuation,
    *" \t\u00a0\u3000\u2003\u00ad",
    *"“”„«»‘’「」『』【】→–—",
    *"éÉàÀßẞİıſKĳĲŸÿŁłžŽ×÷µ年写道エラー",
]
TOKENS = [
    *("www.", "://", "::", "->", "=>", " > ", "  ", "    ", "--", "-- ", "_____", "```"),
    *("ERROR ", "INFO ", "[WARN] ", "REM ", "MSI (s) ", "2024-03-05 10:15:01 ", "$ ", "# ls"),
    *("Exception in thread ", "Caused by: ", "KeyError", "camelCase", "IREX", "a.b", "e.g."),
    *("Sent from my iPhone", "Thanks", "Best regards", "Original Message", "From: Anna"),
    *("make ", "ls ", "sudo ", "free", "Jan van der Berg", "error: ", "Version: ", "key=value"),
    *("C:\\Temp", "/var/log", "ops@example.com", '"quoted"', "(Urząd Miasta)", "9c1e7f02"),
]


def source_texts() -> tuple[str, ...]:
    return language_corpus_texts() + bench_corpus_texts() + fixture_texts() + case_texts()


@cache
def mutated_texts() -> tuple[str, ...]:
    """Windows of the texts above with one or two lines mutated (or a new line put in)."""
    return mutated_windows(
        source_texts(),
        seed=SEED,
        count=MUTATIONS,
        alphabet=ALPHABET,
        tokens=TOKENS,
    )


def all_texts() -> tuple[str, ...]:
    return source_texts() + mutated_texts()


@cache
def all_lines() -> tuple[str, ...]:
    """Every distinct line of the texts, as written and as ``prose_only`` sees it."""
    lines: set[str] = set()
    for text in all_texts():
        for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
            lines.update((raw, raw.rstrip()))
    return tuple(sorted(lines))


def hinted_patterns() -> list[tuple[str, language._Hinted]]:
    found = [(n, v) for n, v in vars(language).items() if isinstance(v, language._Hinted)]
    found += [(f"_INLINE_NOISE[{i}]", v) for i, v in enumerate(language._INLINE_NOISE)]
    return found


def footer_patterns() -> list[tuple[str, language._AnyCase]]:
    return [(n, v) for n, v in vars(language).items() if isinstance(v, language._AnyCase)]


# ----------------------------------------------------------------------- soundness checks

#: The patterns ``prose_only`` itself does not try on plain prose.
LOOP_PATTERNS = {
    "_FENCE": language._FENCE,
    "_QUOTED": language._QUOTED,
    "_SIGNATURE_DELIMITER": language._SIGNATURE_DELIMITER,
    "_PROMPT": language._PROMPT,
}


def plain_gate_misses(lines: Iterable[str], gate: LineGate) -> tuple[list[str], list[int]]:
    """Lines ``gate`` calls plain prose on which a skipped check would answer otherwise;
    and how many it calls plain, and of those, how many are commands, names and shouted
    lines (found by the checks kept for plain prose: the test is not vacuous)."""
    misses, counts = [], [0, 0, 0, 0]
    for line in lines:
        if not gate(line):
            continue
        wrong = [name for name, pattern in LOOP_PATTERNS.items() if pattern.match(line)]
        machine = language._is_machine_line(line, plain=True)
        if machine != language._is_machine_line(line):
            wrong.append("_is_machine_line")
        name = language._is_name_line(line, plain=True)
        if name != language._is_name_line(line):
            wrong.append("_is_name_line")
        if language._clean_inline(line, plain=True) != language._clean_inline(line):
            wrong.append("_clean_inline")
        if wrong:
            misses.append(f"{line!r}: {wrong}")
        for k, found in enumerate((True, machine, name, language._is_mostly_upper(line))):
            counts[k] += found
    return misses, counts


def squeeze_gate_misses(texts: Iterable[str], gate: LineGate) -> tuple[list[str], int]:
    """Texts ``gate`` says ``_SPACES`` leaves alone although it changes them, and how
    many it changes."""
    misses, changed = [], 0
    for text in texts:
        if language._SPACES.sub(" ", text) != text:
            changed += 1
            if not gate(text):
                misses.append(repr(text))
    return misses, changed


def closing_gate_misses(lines: Iterable[str], gate: LineGate) -> tuple[list[str], int]:
    """Stripped lines ``gate`` says start with no closing phrase although a closing
    pattern matches, and how many the patterns match."""
    misses, found = [], 0
    for line in lines:
        body = line.strip()
        if language._CLOSING.match(body) or language._CLOSING_THEN_NAMES.pattern.match(body):
            found += 1
            if not gate(body):
                misses.append(repr(body))
    return misses, found


def hint_misses(
    strings: Iterable[str], patterns: Sequence[tuple[str, language._Hinted]]
) -> tuple[list[str], int]:
    """Strings a pattern matches although its hint says it cannot, and how many matches."""
    misses, found = [], 0
    for text in strings:
        for name, hinted in patterns:
            if hinted.pattern.search(text):
                found += 1
                if not hinted.may_match(text):
                    misses.append(f"{name}: {text!r}")
    return misses, found


@cache
def _pattern_inputs() -> tuple[str, ...]:
    """The lines, as the patterns also see them: lower-cased (shouted prose), after a
    space (``_LEFTOVER_PUNCTUATION``) and stripped (``_is_closing``)."""
    strings: set[str] = set()
    for line in all_lines():
        strings.update((line, line.lower(), " " + line, line.strip()))
    return tuple(sorted(strings))


# ----------------------------------------------------------------------------- soundness


def test_plain_prose_gate_is_sound() -> None:
    misses, (plain, commands, names, shouted) = plain_gate_misses(
        all_lines(), language._is_plain_prose
    )
    assert misses == []
    assert plain > 1000 and commands > 0 and names > 100 and shouted > 0


def test_plain_prose_lower_cased_is_plain_prose() -> None:
    # _clean_inline lower-cases shouted prose before its own plain shortcut.
    for line in all_lines():
        if language._is_plain_prose(line):
            assert language._is_plain_prose(line.lower()), line


def test_plain_prose_has_a_word_after_each_space_but_a_last_one() -> None:
    # What _is_name_line counts on to call a plain line of many spaces no name.
    for line in all_lines():
        if language._is_plain_prose(line):
            words = sum(1 for token in line.split() if any(map(str.isalpha, token)))
            assert words >= line.rstrip(" ").count(" ") + 1, line


def test_squeeze_gate_is_sound() -> None:
    texts = [t for line in all_lines() for t in (line, " " + line)]
    misses, changed = squeeze_gate_misses(texts, language._has_spaces_to_squeeze)
    assert misses == []
    assert changed > 1000


def test_closing_gate_is_sound() -> None:
    misses, found = closing_gate_misses(all_lines(), language._may_close)
    assert misses == []
    assert found > 100


def test_pattern_hints_are_sound() -> None:
    patterns = hinted_patterns()
    misses, found = hint_misses(_pattern_inputs(), patterns)
    assert misses == []
    assert found > 10_000
    # Every hinted pattern matches somewhere: none of these checks is vacuous.
    for name, hinted in patterns:
        assert any(map(hinted.pattern.search, _pattern_inputs())), name


def test_footer_prefilters_are_sound() -> None:
    paragraphs = {" ".join(text.split("\n")) for text in all_texts()} | set(all_lines())
    found = dict.fromkeys((name for name, _ in footer_patterns()), 0)
    for text in sorted(paragraphs):
        lowered = casefold.lowered(text)
        for name, footer in footer_patterns():
            expected = footer.ignore_case.search(text) is not None
            assert footer.found(text, lowered) == expected, (name, text)
            found[name] += expected
    assert all(found.values()), found


# Gates that forget one way a check can match: the texts above must show each one wrong,
# or the soundness tests would let such a gate through.


def _without_capitals_check(line: str) -> bool:
    # forgets acronyms, log levels and camelCase
    return (
        language._PLAIN_CHARACTERS.fullmatch(line) is not None
        and language._SPACE_BEFORE_SPACE_OR_PUNCTUATION.search(line) is None
        and language._FULL_STOP_INSIDE_TOKEN.search(line) is None
    )


def _with_digits(line: str) -> bool:
    # lets in numbers, versions and hashes
    return language._is_plain_prose(re.sub(r"\d", "x", line))


def _with_colons(line: str) -> bool:
    # lets in "Key: value" config lines and "error: ..." output
    return language._is_plain_prose(line.replace(":", ","))


def _with_spaces_in_a_row(line: str) -> bool:
    # lets in tables, indented code and spaces to squeeze
    return language._is_plain_prose(re.sub(r" +", " ", line).lstrip())


def _with_inner_full_stops(line: str) -> bool:
    # lets in dotted names and "www.example.com"
    return language._is_plain_prose(line.replace(".", ","))


@pytest.mark.parametrize(
    "gate",
    [
        _without_capitals_check,
        _with_digits,
        _with_colons,
        _with_spaces_in_a_row,
        _with_inner_full_stops,
    ],
)
def test_an_unsound_plain_prose_gate_is_caught(gate: LineGate) -> None:
    misses, _ = plain_gate_misses(all_lines(), gate)
    assert misses


def test_an_unsound_squeeze_gate_is_caught() -> None:
    def two_spaces(text: str) -> bool:
        # forgets the tab and the non-breaking spaces
        return "  " in text

    texts = [t for line in all_lines() for t in (line, " " + line)]
    misses, _ = squeeze_gate_misses(texts, two_spaces)
    assert misses


_ENGLISH_CLOSING = re.compile(r"thanks|thank\syou|(?:best\s|kind\s)?regards|cheers", re.I)


def _english_only(line: str) -> bool:
    # forgets every other language
    return _ENGLISH_CLOSING.match(line) is not None


def _ascii_first(line: str) -> bool:
    # forgets "С уважением", "谢谢", "よろしくお願いします"
    return line[:1].isascii() and language._may_close(line)


@pytest.mark.parametrize("gate", [_english_only, _ascii_first])
def test_an_unsound_closing_gate_is_caught(gate: LineGate) -> None:
    misses, _ = closing_gate_misses(all_lines(), gate)
    assert misses


@pytest.mark.parametrize(
    ("index", "needs"),
    [
        (1, "://"),  # URLs: forgets "www."
        (11, "0"),  # hashes: forgets the other digits
        (12, "::"),  # IPv6 and times: forgets "10:15:01"
        (15, ".."),  # dotted names: forgets single full stops
    ],
)
def test_an_unsound_hint_is_caught(index: int, needs: str) -> None:
    original = language._INLINE_NOISE[index].pattern
    narrow = language._Hinted(original.pattern, original.flags, needs=needs)
    misses, _ = hint_misses(_pattern_inputs(), [(f"narrow {index}", narrow)])
    assert misses


# -------------------------------------------------------------------------- differential


def test_prose_only_is_the_same_without_the_gates() -> None:
    texts = all_texts()
    gated = [prose_only(text) for text in texts]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(language, "_is_plain_prose", lambda line: False)
        patch.setattr(language, "_has_spaces_to_squeeze", lambda text: True)
        patch.setattr(language, "_may_close", lambda line: True)
        for _, hinted in hinted_patterns():
            patch.setattr(hinted, "may_match", lambda text: True)
        for _, footer in footer_patterns():
            patch.setattr(footer, "prefilter", ())
        ungated = [prose_only(text) for text in texts]
    assert len(texts) > 4000
    assert sum(map(bool, gated)) > 3000  # most texts keep some prose
    for text, with_gates, without in zip(texts, gated, ungated, strict=True):
        assert with_gates == without, text
