"""The gates of ``mailgate.mail.quotes`` against the checks they let ``strip_reply`` skip.

* ``_translation_changes``: ``_clean`` translates only lines the table would change;
* ``_may_start_boundary``: ``_boundary_at`` is tried only on lines where a header can start;
* ``_may_close``: the closing patterns are tried only on lines with a name (or nothing)
  below them.

A gate may only skip work whose answer it knows. The texts: the bench corpus's first
messages, every file under tests/fixtures/ (raw and parsed), every string of
test_quotes.py, and random mutations of their lines. On all of them, whenever a gate says
"cannot", the check it skips says so too, and ``strip_reply`` gives the same result with
the gates bypassed. No timings here: speed is for the benchmarks.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import pytest

from bench.corpus import Corpus
from mailgate.mail import quotes
from mailgate.mail.html import html_to_text
from mailgate.mail.parse import parse_message
from mailgate.mail.quotes import Stripped, strip_reply
from tests.support.gate_texts import fixture_texts, mutated_windows, strings_of

TESTS = Path(__file__).parent
SEED = 20261103
CORPUS_MESSAGES = 400
MUTATIONS = 3000

BoundaryGate = Callable[[Sequence[str], Sequence[quotes._Field]], list[bool]]
ClosingGate = Callable[[Sequence[str], int, int], bool]
TranslationGate = Callable[[str], bool]

# ------------------------------------------------------------------------------ texts


@cache
def corpus_texts() -> tuple[str, ...]:
    """The text (and rendered HTML) of the bench corpus's first messages."""
    texts = []
    for message in Corpus(1).messages(CORPUS_MESSAGES):
        mail = parse_message(message.raw)
        texts.append(mail.text)
        if mail.html:
            texts.append(html_to_text(mail.html))
    return tuple(texts)


#: Ways for a check to match that the texts above lack.
SEEDS = [
    # An attribution wrapped onto three lines, the colon on the last.
    "On Tue, 3 Nov 2026 at 10:02,\nJane Doe <jane@example.com>\nwrote:",
    # Chinese clients end the attribution with a full-width colon.
    "2026年11月3日 Jane Doe <jane@example.com> 写道：",
    "2026年11月3日(火) 10:02 Jane Doe <jane@example.com>:",
    "2026년 11월 3일 (화) 오전 10:02, Jane Doe님이 작성하였습니다:",
]


@cache
def case_texts() -> tuple[str, ...]:
    """Every string of test_quotes.py (bodies, attribution lines, closings, …) and of
    ``SEEDS``, alone and between new text and history, as those tests use them."""
    strings = sorted(strings_of(TESTS / "test_quotes.py") | set(SEEDS))
    return tuple(
        text
        for s in strings
        for text in (s, f"Fixed.\n\n{s}\n\nPlease restart irexd.\n", f"Fixed.\n{s}\n> ok\n")
    )


#: Characters the detectors care about, and the ones ``_clean`` removes or turns to spaces.
ALPHABET = [
    *string.digits,
    *":>-_=*'\"`@<>.,;!?/|#()[] ",
    *map(chr, quotes._TRANSLATION),
    *"：\u00ad\u2028é ßÀ—–年月写道작성送信",
]
TOKENS = [
    *("From:", "Von:", "De :", "Sent:", "To:", "Subject: FW:", "Objet :", "Date:", "Cc:"),
    *("wrote:", " a écrit :", "schrieb", "napisał(a):", "> ", ">", "-- ", "--", "---------- "),
    *("-----Original Message-----", "_" * 12, "Begin forwarded message:", "Forwarded message"),
    *("Regards,", "Best regards", "Thanks", "Cordialement", "Sent from my iPhone", "Jane Doe"),
    *("On 3 Nov 2026 at 10:02, Jane <jane@example.com>", "2026", "10:02", "jane@example.com"),
]


@cache
def mutated_texts() -> tuple[str, ...]:
    """Windows of the texts above with one or two lines mutated (or a new line put in)."""
    return mutated_windows(
        corpus_texts() + fixture_texts() + case_texts(),
        seed=SEED,
        count=MUTATIONS,
        alphabet=ALPHABET,
        tokens=TOKENS,
    )


def all_texts() -> tuple[str, ...]:
    return corpus_texts() + fixture_texts() + case_texts() + mutated_texts()


def _detector_lines(text: str) -> tuple[list[str], list[quotes._Field]]:
    """``det`` and ``fields`` as ``_strip`` computes them."""
    det = [quotes._clean(line) for line in text.splitlines()]
    return det, [quotes._field(clean) for clean in det]


# ----------------------------------------------------------------------- soundness checks


def translation_gate_misses(texts: Sequence[str], gate: TranslationGate) -> list[str]:
    """Lines ``gate`` says the table leaves alone although it changes them."""
    table = quotes._TRANSLATION
    return [
        line
        for text in texts
        for line in text.splitlines()
        if not gate(line) and line.translate(table) != line
    ]


def boundary_gate_misses(texts: Sequence[str], gate: BoundaryGate) -> tuple[list[str], int]:
    """Lines where ``gate`` says no header starts although ``_boundary_at`` finds one, and
    how many headers ``_boundary_at`` finds on all lines (the test is not vacuous)."""
    misses, found = [], 0
    for text in texts:
        det, fields = _detector_lines(text)
        for i, may_start in enumerate(gate(det, fields)):
            if quotes._boundary_at(det, fields, i) is not None:
                found += 1
                if not may_start:
                    misses.append(f"{text!r} line {i}")
    return misses, found


def closing_gate_misses(texts: Sequence[str], gate: ClosingGate) -> tuple[list[str], int]:
    """Lines where ``gate`` says no closing although ``_signature_start``'s check (closing
    line and contact block below it, up to the cut) finds one, and how many it finds."""
    misses, found = [], 0
    for text in texts:
        det, _ = _detector_lines(text)
        for k, clean in enumerate(det):
            if not clean:
                continue
            # The block ends at the end of the text, or earlier at a delimiter or tagline.
            for end in {len(det), min(len(det), k + 1 + k % 4)}:
                if quotes._is_closing(clean) and quotes._contact_block_ok(det, k + 1, end):
                    found += 1
                    if not gate(det, k, end):
                        misses.append(f"{text!r} line {k} cut {end}")
    return misses, found


# ----------------------------------------------------------------------------- soundness


def test_the_translation_table_changes_one_ascii_character() -> None:
    # _translation_changes looks for that one character only in ASCII lines.
    assert {chr(k) for k in quotes._TRANSLATION if k < 128} == set(quotes._TRANSLATED_ASCII)


def test_translation_gate_is_sound() -> None:
    texts = all_texts()
    assert translation_gate_misses(texts, quotes._translation_changes) == []
    for text in texts:
        for line in text.splitlines():
            assert quotes._clean(line) == line.translate(quotes._TRANSLATION).strip()


def test_boundary_gate_is_sound() -> None:
    misses, found = boundary_gate_misses(all_texts(), quotes._may_start_boundary)
    assert misses == []
    assert found > 500


def test_closing_gate_is_sound() -> None:
    misses, found = closing_gate_misses(all_texts(), quotes._may_close)
    assert misses == []
    assert found > 500


# Gates that forget one way a check can match: the texts above must show each one wrong,
# or the soundness tests would let such a gate through.


def _without_lookahead(det: Sequence[str], fields: Sequence[quotes._Field]) -> list[bool]:
    # forgets attributions wrapped onto a second or third line
    ends = ("-", "_", ":", "：")
    return [f is not None or c.endswith(ends) for c, f in zip(det, fields, strict=True)]


def _without_dividers(det: Sequence[str], fields: Sequence[quotes._Field]) -> list[bool]:
    # forgets the "-----Original Message-----" and "_____" dividers
    ends = [c.endswith((":", "：")) for c in det] + [False, False]
    return [f is not None or any(ends[k : k + 3]) for k, f in enumerate(fields)]


def _only_colon_endings(det: Sequence[str], fields: Sequence[quotes._Field]) -> list[bool]:
    # forgets header blocks whose first field does not end in a colon
    ends = [c.endswith((":", "：")) for c in det] + [False, False]
    return [c.endswith(("-", "_")) or any(ends[k : k + 3]) for k, c in enumerate(det)]


@pytest.mark.parametrize("gate", [_without_lookahead, _without_dividers, _only_colon_endings])
def test_an_unsound_boundary_gate_is_caught(gate: BoundaryGate) -> None:
    misses, _ = boundary_gate_misses(all_texts(), gate)
    assert misses


def test_an_unsound_closing_gate_is_caught() -> None:
    def needs_a_name_below(det: Sequence[str], k: int, end: int) -> bool:
        # forgets the closing with nothing below it
        first = quotes._next_nonblank(det, k + 1)
        return first < end and quotes._looks_like_name(det[first])

    misses, _ = closing_gate_misses(all_texts(), needs_a_name_below)
    assert misses


def test_an_unsound_translation_gate_is_caught() -> None:
    def ascii_never_changes(line: str) -> bool:
        # forgets the tab
        return not line.isascii() and quotes._TRANSLATED.search(line) is not None

    assert translation_gate_misses(all_texts(), ascii_never_changes)


# -------------------------------------------------------------------------- differential


def _strip_all(texts: Sequence[str]) -> list[Stripped]:
    return [strip_reply(text) for text in texts]


def test_strip_reply_is_the_same_without_the_gates() -> None:
    texts = all_texts()
    gated = _strip_all(texts)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(quotes, "_translation_changes", lambda line: True)
        patch.setattr(quotes, "_may_start_boundary", lambda det, fields: [True] * len(det))
        patch.setattr(quotes, "_may_close", lambda det, k, end: True)
        ungated = _strip_all(texts)
    assert len(ungated) == len(texts) > 4000
    for text, with_gates, without in zip(texts, gated, ungated, strict=True):
        assert with_gates == without, text
