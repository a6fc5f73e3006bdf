"""The fast path of the scope rules (R-SCOPE) and of the version rule (R-VERSION) against
the plain searches it lets them skip.

* the word prefilters (``ScopePattern.prefilter``): a text that lacks a word, or a part of
  a word, of one of a pattern's sets has no match of the pattern;
* the words of a text (``ScopeText.split``): every ASCII word of the lower-cased text is
  among them, repeated lines or not;
* the required parts (``ScopePattern.sequence``): a text without a match of the part has
  no match of the whole;
* the lower-case twin, also without its leading \\b (``after_boundary``), behind all of the
  above: ``ScopePattern.search`` and ``finditer`` find the plain search's matches, with
  the same spans of every group;
* ``version._RELEASE_NUMBER``: a text without a release number holds no version, a mail
  without one no form line;
* the sender's lines, each line judged once, and the text that the six rules share
  (``Facts.scope_text``).

A gate may only skip work whose answer it knows. The texts: the first messages of the
bench corpus as the pipeline reads them (subject, own text, the sender's lines), every
file under tests/fixtures/, every string of the policy, scope and version tests, matches
generated from every pattern, and random mutations of all these that put in the
patterns' own words and near misses of them. On all of them, whenever a gate says
"cannot", the check it skips says so too, and the rules give the same verdicts and
evidence with the gates bypassed: ``casefold.lowered`` answering None sends every text
down the plain path, as a text with a case trap goes. No timings here: speed is for the
benchmarks.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import string
from collections.abc import Callable, Iterable, Sequence
from functools import cache
from pathlib import Path

import pytest

from bench.corpus import Corpus
from mailgate.config import TicketSettings
from mailgate.mail.html import strip_html_reply
from mailgate.mail.parse import parse_message
from mailgate.mail.quotes import own_text
from mailgate.mail.subject import compile_subscription_pattern, read_tags, ticket_tag_pattern
from mailgate.policy import casefold, scope
from mailgate.policy.chain import build_chain
from mailgate.policy.facts import Facts
from mailgate.policy.rule import Hit
from mailgate.policy.rules import version
from mailgate.policy.rules.scope import ScopeRule
from mailgate.policy.rules.version import VersionRule, sender_lines
from mailgate.policy.scope import ScopePattern, ScopeSettings, ScopeText, literal_prefilter
from mailgate.policy.settings import PolicySettings
from tests.support.gate_texts import fixture_texts, mutated_windows, strings_of
from tests.test_scope_prefilter import generated_matches, mutate_case, sprinkle

TESTS = Path(__file__).parent
SEED = 20261127
CORPUS_MESSAGES = 400
MUTATIONS = 4000

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
MAIL = parse_message(b"Subject: Question\r\n\r\nHello\r\n")  # the rules read only facts
TICKETS = TicketSettings()
SUBSCRIPTION_RE = compile_subscription_pattern(TICKETS.subscription_pattern)
TICKET_RE = ticket_tag_pattern(TICKETS.id_prefix, TICKETS.id_digits)
RULES = tuple(
    rule for rule in build_chain(PolicySettings()) if isinstance(rule, ScopeRule | VersionRule)
)
VERSION_RULE = next(i for i, rule in enumerate(RULES) if isinstance(rule, VersionRule))

# ---------------------------------------------------------------------------- patterns


def scope_patterns() -> list[tuple[str, ScopePattern]]:
    settings = ScopeSettings()
    found = []
    for name in ScopeSettings.__dataclass_fields__:
        strong, weak = getattr(settings, name).searchable
        found += [(f"{name}.strong[{i}]", p) for i, p in enumerate(strong)]
        found += [(f"{name}.weak[{i}]", p) for i, p in enumerate(weak)]
    return found


def version_patterns() -> list[tuple[str, ScopePattern]]:
    found = [(n, v) for n, v in vars(version).items() if isinstance(v, ScopePattern)]
    return found + [(f"{n}.part", v.part) for n, v in found if v.part is not None]


PATTERNS = dict(scope_patterns() + version_patterns())
VERSION_PATTERNS = dict(version_patterns())


# ------------------------------------------------------------------------------- texts


def read_mail(raw: bytes) -> tuple[str, str]:
    """(subject, own text) as the pipeline reads them (``gather_facts``)."""
    mail = parse_message(raw)
    html = mail.text_from_html and mail.html
    return mail.subject, strip_html_reply(mail.html) if html else own_text(mail.text)


@cache
def corpus_mails() -> tuple[tuple[str, str], ...]:
    return tuple(read_mail(m.raw) for m in Corpus(1).messages(CORPUS_MESSAGES))


@cache
def fixture_mails() -> tuple[tuple[str, str], ...]:
    return tuple(read_mail(p.read_bytes()) for p in sorted((TESTS / "fixtures").rglob("*.eml")))


@cache
def case_texts() -> tuple[str, ...]:
    """Every string of the tests of the rules, alone and inside a request."""
    strings: set[str] = set()
    for module in ("test_policy_clauses.py", "test_scope_prefilter.py", "test_version_rule.py"):
        strings |= strings_of(TESTS / module)
    return tuple(
        text
        for s in sorted(strings)
        for text in (s, f"Hello,\n\nwe run IREX 7.4.2.\n{s}\n\nThanks, Anna")
    )


@cache
def generated_texts() -> tuple[str, ...]:
    """Matches of every pattern, made from the pattern itself, in changing case."""
    return tuple(
        text
        for seed, pattern in enumerate(PATTERNS.values())
        for text in generated_matches(pattern, seed=SEED + seed, count=60)
    )


def pattern_words() -> list[str]:
    """The words and strings the prefilters look for."""
    words: set[str] = set()
    for pattern in PATTERNS.values():
        for word_set in pattern.prefilter:
            words |= word_set.words | set(word_set.parts)
        for strings in literal_prefilter(pattern.regex):
            words |= strings
    return sorted(words)


def near_misses(word: str) -> list[str]:
    """``word`` as it should not, or need not, match: cut short, grown, glued to another
    word, split, in capitals."""
    middle = len(word) // 2
    return [
        word[:-1],
        word[1:],
        f"x{word}",
        f"{word}s",
        f"{word}ing",
        f"{word[:middle]}-{word[middle:]}",
        f"{word[:middle]} {word[middle:]}",
        word.upper(),
        word.title(),
    ]


#: Characters the gates care about: separators, digits, traps, look-alikes.
ALPHABET = [
    *string.digits,
    *string.punctuation,
    *" \t\n\u00a0\u2003",
    *"éüßẞİıſ\u212aΣ→–—“”年",
]
#: What the version patterns look for around a release number.
VERSION_TOKENS = [
    *("7.4.2", "v6.1", "6.2", "12.0.1", "5", "5.2 GB", "3.5%", "10 min", "2.5x", "1.5 s"),
    *("IREX ", "IREX server version ", "version ", "Version: ", "release ", "build ", "ver. "),
    *(" -> ", " → ", "from ", " to ", "we run ", "we're still on ", "currently "),
    *("our server is on ", "upgraded the cluster to ", "moving from ", "PostgreSQL version "),
    *("node 18.2", "\n> "),
]


@cache
def mutated_texts() -> tuple[str, ...]:
    sources = (
        [own for _, own in corpus_mails()]
        + [own for _, own in fixture_mails()]
        + list(case_texts())
        + list(generated_texts())
    )
    tokens = [t for w in pattern_words() for t in (w, f" {w} ", *near_misses(w))]
    return mutated_windows(
        sources,
        seed=SEED,
        count=MUTATIONS,
        alphabet=ALPHABET,
        tokens=tokens + VERSION_TOKENS,
    )


@cache
def all_mails() -> tuple[tuple[str, str], ...]:
    """(subject, own text) of every mail the tests below read: the real ones, and every
    other text with a plain subject or with its first line as the subject."""
    rng = random.Random(SEED)
    others = [*fixture_texts(), *case_texts(), *generated_texts(), *mutated_texts()]
    made = []
    for i, text in enumerate(others):
        if i % 7 == 0:
            text = sprinkle(mutate_case(text, rng), rng)
        subject = text.split("\n", 1)[0][:80] if i % 3 == 0 else "Question"
        made.append((subject, text))
    return corpus_mails() + fixture_mails() + tuple(made)


@cache
def searched_texts() -> tuple[str, ...]:
    """Every text a pattern is searched in: subject and sender's lines, as the rules join
    them; the own text; the form lines; and each text of ``all_mails`` alone."""
    texts: set[str] = set()
    for subject, own in all_mails():
        clean = read_tags(subject, SUBSCRIPTION_RE, TICKET_RE).clean
        texts.update((clean + "\n" + sender_lines(own), own, version._form_lines(own)))
    return tuple(sorted(texts))


@cache
def plain_matches() -> dict[str, tuple[tuple[tuple[int, int], ...] | None, ...]]:
    """Per pattern, per text of ``searched_texts``: the spans of the plain search's match
    (all its groups), or None."""
    return {
        name: tuple(
            None if (m := pattern.regex.search(text)) is None else m.regs
            for text in searched_texts()
        )
        for name, pattern in PATTERNS.items()
    }


@cache
def fast_texts() -> tuple[ScopeText, ...]:
    return tuple(map(ScopeText, searched_texts()))


# ----------------------------------------------------------------------- soundness checks


def prefilter_misses(patterns: dict[str, ScopePattern]) -> tuple[list[str], int]:
    """(pattern, text) where a set of the prefilter says "no match" and the plain search
    finds one; and how many matches there are."""
    misses, found = [], 0
    plain = plain_matches()
    for k, raw in enumerate(searched_texts()):
        text = ScopeText(raw)
        if text.lowered is None:
            continue  # searched the plain way
        for name, pattern in patterns.items():
            if plain[name][k] is None:
                continue
            found += 1
            if not all(map(text.meets, pattern.prefilter)):
                misses.append(f"{name}: {raw!r}")
    return misses, found


def part_misses(patterns: dict[str, ScopePattern]) -> tuple[list[str], int]:
    """(pattern, text) where the required part does not match and the whole does; and
    how many texts the parts let through to a match."""
    misses, found = [], 0
    plain = plain_matches()
    for k, raw in enumerate(searched_texts()):
        for name, pattern in patterns.items():
            if pattern.part is None or plain[name][k] is None:
                continue
            found += 1
            if pattern.part.regex.search(raw) is None:
                misses.append(f"{name}: {raw!r}")
    return misses, found


def search_misses(patterns: dict[str, ScopePattern]) -> tuple[list[str], int]:
    """(pattern, text) where the fast search finds another match than the plain one (or
    none, or one where there is none); and how many matches there are."""
    misses, found = [], 0
    plain = plain_matches()
    for k, text in enumerate(fast_texts()):
        for name, pattern in patterns.items():
            m = pattern.search(text)
            fast = None if m is None else m.regs
            if fast != plain[name][k]:
                misses.append(f"{name}: {text.text!r}: {fast} != {plain[name][k]}")
            found += fast is not None
    return misses, found


def release_number_misses(gate: re.Pattern[str]) -> tuple[list[str], int]:
    """Texts without a release number (says ``gate``) that a version pattern matches, or
    own texts without one whose form lines hold a form line; and how many texts have a
    version the gate lets through."""
    misses, found = [], 0
    plain = plain_matches()
    for k, raw in enumerate(searched_texts()):
        matched = [n for n in VERSION_PATTERNS if plain[n][k] is not None]
        found += bool(matched)
        if matched and gate.search(raw) is None:
            misses.append(f"{matched}: {raw!r}")
    for _, own in all_mails():
        form = version._form_lines(own)
        if gate.search(own) is None and version._FORM_LINE.regex.search(form):
            misses.append(f"form line in {own!r}")
    return misses, found


# ----------------------------------------------------------------------------- soundness


def test_the_texts_exercise_every_pattern() -> None:
    plain = plain_matches()
    assert len(searched_texts()) > 8000
    for name in PATTERNS:
        assert sum(m is not None for m in plain[name]) >= 10, name


def test_word_prefilters_are_sound() -> None:
    misses, found = prefilter_misses(PATTERNS)
    assert misses == []
    assert found > 5000


def test_every_ascii_word_is_among_the_words() -> None:
    for text in fast_texts():
        if text.lowered is not None:
            words = {w for w in re.findall(r"\w+", text.lowered) if w.isascii()}
            assert words <= text.split(), text.text


def test_required_parts_are_sound() -> None:
    misses, found = part_misses(PATTERNS)
    assert misses == []
    assert found > 1000


def test_the_fast_search_finds_the_plain_match() -> None:
    misses, found = search_misses(PATTERNS)
    assert misses == []
    assert found > 5000
    assert any(p.after_boundary for p in PATTERNS.values())


def test_finditer_finds_the_plain_matches() -> None:
    pattern = version._WORD
    for text in fast_texts():
        fast = [m.regs for m in pattern.finditer(text)]
        assert fast == [m.regs for m in pattern.regex.finditer(text.text)], text.text


def test_release_number_gate_is_sound() -> None:
    misses, found = release_number_misses(version._RELEASE_NUMBER)
    assert misses == []
    assert found > 1000


def plain_sender_lines(text: str) -> str:
    """The sender's lines, each line judged on its own (and no cache)."""
    return "\n".join(
        line
        for line in text.splitlines()
        if not (version._MACHINE.match(line) or line.strip().startswith(">"))
    )


def test_sender_lines_judge_a_line_that_comes_again_alike() -> None:
    for _, own in all_mails():
        assert sender_lines(own) == plain_sender_lines(own), own


def test_the_rules_share_one_text_per_mail() -> None:
    subject, own = corpus_mails()[0]
    f = mail_facts(subject, own, sender_lines)
    assert f.scope_text is f.scope_text  # made once, then held by the facts of the mail
    assert f.scope_text.text == f.tags.clean + "\n" + f.prose


# Gates that forget one way a pattern can match: the texts above must show each one
# wrong, or the soundness tests would let such a gate through.


SHIPPED_WORD_KEYS = scope._word_keys


def _edges_as_words(strings: frozenset[str]) -> frozenset[str]:
    # takes "upgrad" of "upgrad\w*" for a whole word
    return frozenset(f" {k.strip()} " if k else k for k in SHIPPED_WORD_KEYS(strings))


def test_a_prefilter_of_wrong_words_is_caught() -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scope, "_word_keys", _edges_as_words)
        rebuilt = {name: ScopePattern.of(p.regex) for name, p in PATTERNS.items()}
        misses, _ = prefilter_misses(rebuilt)
    assert misses


def test_words_not_split_at_a_hyphen_are_caught() -> None:
    # "plug-in" as one word: the word "plug" is missing
    table = bytearray(scope._SEPARATORS_TO_SPACE)
    table[ord("-")] = ord("-")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scope, "_SEPARATORS_TO_SPACE", bytes(table))
        misses, _ = prefilter_misses(PATTERNS)
    assert misses


def test_a_part_that_is_not_required_is_caught() -> None:
    # "running" is no part of "we run 5.1"
    whole = version._RUNNING.regex
    wrong = ScopePattern.of(whole, ScopePattern.of(re.compile(r"running", re.IGNORECASE)))
    misses, _ = part_misses({"_RUNNING": wrong})
    assert misses


def test_a_search_that_forgets_the_boundary_is_caught() -> None:
    # the rest of "\bcan you ..." matches in "Pecan you ..." as well
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(scope, "_BOUNDARY", re.compile(""))
        misses, _ = search_misses(PATTERNS)
    assert misses


def test_a_release_number_gate_wanting_two_digits_is_caught() -> None:
    misses, _ = release_number_misses(re.compile(r"\d\.\d\d"))
    assert misses


# -------------------------------------------------------------------------- differential


def mail_facts(subject: str, own: str, lines: Callable[[str], str]) -> Facts:
    """The facts the rules read, as ``gather_facts`` gathers them."""
    tags = read_tags(subject, SUBSCRIPTION_RE, TICKET_RE)
    return Facts(now=NOW, today=NOW.date(), sender=None, tags=tags, own_text=own, prose=lines(own))


def rule_hits(*, gated: bool) -> list[list[Hit | None]]:
    """Each rule's hit on each mail of ``all_mails``: with the gates, or the plain way."""
    if gated:
        # One Facts per mail, its prose from sender_lines, as the pipeline has it: the
        # rules share their text.
        every = (mail_facts(s, own, sender_lines) for s, own in all_mails())
        return [[rule.check(MAIL, f) for rule in RULES] for f in every]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(casefold, "lowered", lambda text: None)
        patch.setattr(version, "_RELEASE_NUMBER", re.compile(""))
        every = (mail_facts(s, own, plain_sender_lines) for s, own in all_mails())
        return [[rule.check(MAIL, f) for rule in RULES] for f in every]


@cache
def ungated_hits() -> list[list[Hit | None]]:
    return rule_hits(gated=False)


def rule_misses(gated: Sequence[Sequence[Hit | None]]) -> list[str]:
    return [
        f"{mail!r}: {with_gates} != {without}"
        for mail, with_gates, without in zip(all_mails(), gated, ungated_hits(), strict=True)
        if with_gates != without
    ]


def count(hits: Iterable[list[Hit | None]], kind: type) -> int:
    return sum(
        hit is not None and hit.action != "note"
        for row in hits
        for rule, hit in zip(RULES, row, strict=True)
        if isinstance(rule, kind)
    )


def test_the_rules_are_the_same_without_the_gates() -> None:
    gated = rule_hits(gated=True)
    assert rule_misses(gated) == []
    # The mails exercise the rules, not only their gates.
    assert count(gated, ScopeRule) > 1000
    versions = [row[VERSION_RULE] for row in gated]
    found = sum(hit is not None and hit.evidence.get("version") is not None for hit in versions)
    assert found > 1000 and count(gated, VersionRule) > 100
