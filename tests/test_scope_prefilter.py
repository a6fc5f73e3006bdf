"""The scope rules' fast path (``mailgate/policy/scope.py``): each pattern's prefilter (sets
of words, or strings, every match contains) and its lower-case twin (the same pattern
without re.IGNORECASE, searching the lower-cased text) must never change a verdict, the
matched excerpt or the evidence. Checked on hand-written patterns, on every shipped pattern
over the fixtures, the language corpus and generated text, and on every Unicode character
for what the fast path assumes of str.lower(). tests/test_rules_fast_path.py checks the
rest of the fast path (word boundaries, required parts, the shared text) on the bench
corpus and mutated text."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import re
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailgate.config import TicketSettings
from mailgate.mail.html import strip_html_reply
from mailgate.mail.parse import parse_message
from mailgate.mail.quotes import own_text
from mailgate.mail.subject import compile_subscription_pattern, read_tags, ticket_tag_pattern
from mailgate.policy import scope
from mailgate.policy.casefold import CASE_TRAPS
from mailgate.policy.casefold import lowered as lower_case
from mailgate.policy.chain import build_chain
from mailgate.policy.facts import Facts
from mailgate.policy.rule import Hit
from mailgate.policy.rules.scope import ScopeRule
from mailgate.policy.rules.version import sender_lines
from mailgate.policy.scope import (
    ScopeCategory,
    ScopePattern,
    ScopeSettings,
    ScopeText,
    WordSet,
    literal_prefilter,
    lower_case_pattern,
    word_prefilter,
)
from mailgate.policy.settings import PolicySettings
from tests.test_policy_clauses import ORDINARY, STRONG, WEAK

TESTS = Path(__file__).resolve().parent
FLAGS = re.IGNORECASE | re.DOTALL  # as ScopeCategory compiles
CATEGORY_NAMES = tuple(ScopeSettings.__dataclass_fields__)
RULES = tuple(r for r in build_chain(PolicySettings()) if isinstance(r, ScopeRule))
TRAPS = "\u0130\u0131\u017f"  # İ ı ſ
NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
MAIL = parse_message(b"Subject: Question\r\n\r\nHello\r\n")  # the scope rules read only facts


def shipped_patterns() -> Iterator[tuple[str, ScopePattern]]:
    settings = ScopeSettings()
    for name in CATEGORY_NAMES:
        strong, weak = getattr(settings, name).searchable
        for kind, patterns in (("strong", strong), ("weak", weak)):
            for i, pattern in enumerate(patterns):
                yield f"{name}.{kind}[{i}]", pattern


PATTERNS = dict(shipped_patterns())


def search_span(pattern: ScopePattern, text: str) -> tuple[int, int] | None:
    """What the fast path must reproduce: the plain search of the original text."""
    m = pattern.regex.search(text)
    return None if m is None else m.span()


def passes_prefilter(pattern: ScopePattern, text: ScopeText) -> bool:
    return all(map(text.meets, pattern.prefilter))


def fast_span(pattern: ScopePattern, text: ScopeText) -> tuple[int, int] | None:
    m = pattern.search(text)
    return None if m is None else m.span()


# ---------------------------------------------------------------- deriving prefilters


def prefilter_of(source: str, flags: int = FLAGS) -> list[list[str]]:
    """The prefilter of ``source`` as a scope pattern (a space is any run of whitespace)."""
    compiled = re.compile(scope._whitespace_tolerant(source), flags)
    return [sorted(strings) for strings in literal_prefilter(compiled)]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # Literals, in lower case whatever the pattern's case.
        (r"teamviewer", [["teamviewer"]]),
        (r"TeamViewer", [["teamviewer"]]),
        (r"(?-i:TeamViewer) session", [["teamviewer"], ["session"]]),
        # \b, anchors and look-arounds match no text: the literals around them join.
        (r"^\bfoo(?=bar)baz(?<!x)\b$", [["foobaz"]]),
        # Alternation: the union; common prefixes factored out by the parser still join.
        (r"\b(?:anydesk|teamviewer|logmein)\b", [["anydesk", "logmein", "teamviewer"]]),
        (r"\b(?:conn|connect)ion", [["connection", "connion"]]),
        # One alternative without a requirement (too short, or a class) sinks the branch.
        (r"\b(?:teamviewer|vm)\b", []),
        (r"teamviewer|\w+", []),
        # Optional pieces multiply out; a string containing another is dropped.
        (r"plug-?ins?", [["plug-in", "plugin"]]),
        (r"colou?r scheme", [["scheme"], ["color", "colour"]]),
        # Repeats: at least one copy requires the body, none requires nothing.
        (r"(?:abc)+", [["abc"]]),
        (r"(?:abcd){2,5}?", [["abcd"]]),
        (r"(?:abcd)*xy", []),
        (r"(?:abcd)?+", []),
        # Small classes of ASCII characters are alternatives; others break the string.
        (r"customi[sz]e", [["customise", "customize"]]),
        (r"[Ss]erver", [["server"]]),
        (r"[a-z]+ing", [["ing"]]),
        (r"[^x]abc\sdef", [["abc"], ["def"]]),
        (r"\w+\d\s.", []),
        # Any character, or any but some, is a gap between strings, not a join.
        (r"abc.def", [["abc"], ["def"]]),
        (r"abc[^x]def", [["abc"], ["def"]]),
        (r"abc[^sz]def", [["abc"], ["def"]]),
        # Nested groups, capturing or not, atomic or not.
        (r"((?:re)?(?>brand|style))", [["brand", "style"]]),
        # A sequence keeps its three most selective sets, longest shortest string first
        # ("do|can" and "i|we" are too short to be worth checking).
        (
            r"\bhow (?:do|can) (?:i|we) (?:call|invoke) the api\b",
            [["call", "invoke"], ["how"], ["the"]],
        ),
        # Concatenation stops before 48 strings (2**5 = 32, not 2**6 = 64) and starts over.
        (
            r"[ab][cd][ef][gh][ij][kl]xyz",
            [
                sorted(map("".join, itertools.product("ab", "cd", "ef", "gh", "ij"))),
                ["kxyz", "lxyz"],
            ],
        ),
        # Too many strings make no requirement. (The parser factors out a common prefix,
        # "word" here, which then remains as a requirement.)
        ("|".join(f"{n:02d}word" for n in range(60)), []),
        ("|".join(f"word{n:02d}" for n in range(60)), [["word"]]),
        # Non-ASCII characters are not literals for the prefilter (case-folding them is
        # not what str.lower() does); neither are back references or conditionals.
        (r"größenordnung", [["enordnung"]]),
        (r"(abc)?(?(1)defg|hijk)", []),
        (r"(?P<w>\w+) (?P=w)", []),
        (r".{3}", []),
    ],
)
def test_prefilter_derivation(source: str, expected: list[list[str]]) -> None:
    assert prefilter_of(source) == expected


def word_prefilter_of(source: str) -> list[tuple[list[str], tuple[str, ...]]]:
    compiled = re.compile(scope._whitespace_tolerant(source), FLAGS)
    return [(sorted(s.words), s.parts) for s in word_prefilter(compiled)]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # \b on both sides: a whole word, looked up; its string is no use beside it.
        (r"\bteamviewer\b", [(["teamviewer"], ())]),
        # "-" and \s separate words like \b; "plug-in" has the word "plug".
        (r"\bplug-?ins?\b", [(["plug", "plugin", "plugins"], ())]),
        (r"\b(?:our|my) (?:java|c#|\.net) app\b", [(["app"], ())]),
        # Open at one end: part of a word, sought in the words.
        (r"\bupgrad\w*", [([], ("upgrad",))]),
        # A word many strings share and none of the common ones where there is another;
        # the strings literal_prefilter finds come after the words.
        (r"\b(?:can|could) you\b", [(["you"], ()), ([], ("can", "could"))]),
        (
            r"\bcustomi[sz]e (?:the |our )?(?:login page|theme)\b",
            [(["customise", "customize"], ()), ([], ("login", "theme"))],
        ),
        # "screen" or "sharing" is implied by "screen", and left out.
        (r"screen[- ]?shar(?:e|ing)", [([], ("screen",)), ([], ("share", "sharing"))]),
        # Non-ASCII letters separate the ASCII words the prefilter knows.
        (r"größe des servers", [(["des"], ()), ([], ("servers",))]),
        (r"\bv\d\b", []),
    ],
)
def test_word_prefilter_derivation(
    source: str, expected: list[tuple[list[str], tuple[str, ...]]]
) -> None:
    assert word_prefilter_of(source) == expected


def test_a_prefilter_does_not_depend_on_ignorecase() -> None:
    assert prefilter_of(r"\bTeamViewer\b", re.DOTALL) == [["teamviewer"]]
    assert prefilter_of(r"(?i)TeamViewer") == [["teamviewer"]]


@pytest.mark.parametrize(
    ("source", "flags", "equivalent"),
    [
        (r"\bteam ?viewer\b", FLAGS, True),
        (r"[a-z0-9_]+ [^.?!\n]{0,20}\W\S\D", FLAGS, True),
        (r"(?<!\bno\s)(?=x)(?>plug-?ins?)$", FLAGS, True),
        (r"TeamViewer", FLAGS, False),  # a capital never occurs in lower-cased text
        (r"\x54eam", FLAGS, False),  # nor one written as an escape
        (r"[A-Z]x", FLAGS, False),
        (r"[0-z]", FLAGS, False),  # the range holds the capitals
        (r"größe", FLAGS, False),  # non-ASCII: not proven
        (r"(?-i:abc)", FLAGS, False),  # case-sensitive on purpose
        (r"(?s:abc)", FLAGS, False),  # scoped flags: not understood, so not used
        (r"(abc) \1", FLAGS, False),  # back references compare case-insensitively
        (r"(?i)abc", re.DOTALL, False),  # inline (?i) would survive the recompile
        (r"abc", re.DOTALL, False),  # not case-insensitive in the first place
        (r"abc", FLAGS | re.ASCII, False),  # ASCII-only case folding: K is not k
    ],
)
def test_lower_case_twin_only_where_provably_equivalent(
    source: str, flags: int, equivalent: bool
) -> None:
    twin = lower_case_pattern(re.compile(source, flags))
    assert (twin is not None) == equivalent
    if twin is not None:
        assert twin.pattern == source and not twin.flags & re.IGNORECASE


def test_every_shipped_pattern_gets_a_prefilter_and_a_lower_case_twin() -> None:
    assert len(PATTERNS) == 33
    for name, pattern in PATTERNS.items():
        assert pattern.prefilter, name
        assert pattern.lower_case is not None, name
        # Same parse with and without IGNORECASE: the twin is the same pattern.
        source = pattern.regex.pattern
        parsed = scope._parser.parse(source, FLAGS)
        assert repr(parsed) == repr(scope._parser.parse(source, re.DOTALL)), name


# ---------------------------------------------------------------- what str.lower() does


def test_lower_case_agrees_with_ignorecase_on_every_character() -> None:
    """Outside the traps, str.lower() keeps the length, what \\w, \\d and \\s see, and
    maps exactly the characters IGNORECASE equates with an ASCII character (or class of
    them) to its lower case. A final sigma (lower-cased to ς, not σ) is in the text too."""
    every = "".join(map(chr, [*range(0xD800), *range(0xE000, 0x110000)]))
    safe = CASE_TRAPS.sub("", every) + " ΟΔΟΣ ΣΑΣ "
    lowered = safe.lower()
    assert len(lowered) == len(safe)
    assert lower_case(safe) == lowered

    def starts(pattern: str, text: str, flags: int = 0) -> list[int]:
        return [m.start() for m in re.finditer(pattern, text, flags)]

    for category in (r"\w", r"\d", r"\s", r"\b"):
        assert starts(category, safe) == starts(category, lowered), category
    for char in string.printable:
        literal = re.escape(char)
        assert starts(literal, safe, re.IGNORECASE) == starts(literal.lower(), lowered), char
    # Classes as the shipped patterns write them, and ranges.
    for cls in (r"[^.?!\n]", r"[\w#+.-]", r"[a-z]", r"[0-9]", r"[k-s]", r"[^a-z]", r"[\s]"):
        assert starts(cls, safe, re.IGNORECASE) == starts(cls, lowered), cls


def test_each_trap_is_one() -> None:
    """Each trap equates with an ASCII letter under IGNORECASE and not under str.lower()."""
    for trap, ascii_letter in zip(TRAPS, "iis", strict=True):
        assert re.fullmatch(ascii_letter, trap, re.IGNORECASE)
        assert trap.lower() != ascii_letter
        assert lower_case(f"plain text with {trap}") is None
    assert lower_case("Kelvin sign \u212a, final sigma ΟΔΟΣ") is not None


# ---------------------------------------------------------------- the texts


T = TicketSettings()
SUBSCRIPTION_RE = compile_subscription_pattern(T.subscription_pattern)
TICKET_RE = ticket_tag_pattern(T.id_prefix, T.id_digits)


def scope_input(raw: bytes) -> tuple[str, str]:
    """(subject, prose) as the pipeline gives them to the scope rules."""
    mail = parse_message(raw)
    text = strip_html_reply(mail.html) if mail.text_from_html and mail.html else own_text(mail.text)
    return mail.subject, sender_lines(text)


def facts(subject: str, prose: str) -> Facts:
    tags = read_tags(subject, SUBSCRIPTION_RE, TICKET_RE)
    return Facts(now=NOW, today=NOW.date(), sender=None, tags=tags, prose=prose)


EMLS = sorted((TESTS / "fixtures").rglob("*.eml"))
FIXTURE_INPUTS = [scope_input(p.read_bytes()) for p in EMLS]
FIXTURE_TEXTS = [
    *(f"{s}\n{p}" for s, p in FIXTURE_INPUTS),
    *(p.read_text(encoding="utf-8", errors="replace") for p in EMLS),
]
CORPUS_TEXTS = [
    p.read_text(encoding="utf-8") for p in sorted((TESTS / "corpus" / "language").iterdir())
]
SENTENCES = [*(s for group in STRONG.values() for s in group), *WEAK.values(), *ORDINARY]
# Shipped patterns that neither the fixtures nor the clause tests match: written from the
# patterns' own comments, so that every pattern has a real example.
MORE_POSITIVES = [
    "Our Python service needs to call the REST API every minute.",
    "Could you fix it for us, we can give you remote access.",
    "Please make the login page match our new corporate design.",
    "Can your team build us a custom integration with SAP?",
]
# A long mail from the benchmarks: a request padded with one repeated sentence.
SAMPLE = (
    "Hello,\n\nthis is request 1 (SUB-12345).\n"
    + "The quick brown fox jumps over the lazy support engineer.\n" * 40
)


def mutate_case(text: str, rng: random.Random) -> str:
    how = rng.randrange(5)
    if how == 0:
        return text.upper()
    if how == 1:
        return text.title()
    if how == 2:
        return text.lower()
    if how == 3:  # each letter at random
        return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in text)
    return text


# Characters IGNORECASE equates with ASCII letters: the traps (the slow path) and the
# Kelvin sign, which str.lower() handles; and a capital sigma ("o" is just where it goes),
# whose lower case depends on what follows it.
LOOKALIKES = {"i": "\u0130\u0131", "s": "\u017f", "k": "\u212a", "o": "Σ"}


def sprinkle(text: str, rng: random.Random) -> str:
    return "".join(
        rng.choice(LOOKALIKES[c.lower()]) if c.lower() in LOOKALIKES and rng.random() < 0.1 else c
        for c in text
    )


# ---------------------------------------------------------------- generating matches


_C = scope._constants
_CATEGORY_RE = {
    _C.CATEGORY_DIGIT: r"\d",
    _C.CATEGORY_NOT_DIGIT: r"\D",
    _C.CATEGORY_SPACE: r"\s",
    _C.CATEGORY_NOT_SPACE: r"\S",
    _C.CATEGORY_WORD: r"\w",
    _C.CATEGORY_NOT_WORD: r"\W",
}
_POOL = string.ascii_letters + string.digits + " \n.,;:#+-_'&?!"


def _in_class(char: str, members: list[tuple[Any, Any]]) -> bool:
    hit = False
    for op, av in members:
        if op is _C.LITERAL:
            hit = hit or ord(char) == av
        elif op is _C.RANGE:
            hit = hit or av[0] <= ord(char) <= av[1]
        elif op is _C.CATEGORY:
            hit = hit or re.fullmatch(_CATEGORY_RE[av], char) is not None
    return hit != (members[0][0] is _C.NEGATE)


def generate(items: Any, rng: random.Random) -> str:
    """A random string the parsed pattern may match (assertions are not honoured)."""
    out = []
    for op, av in items.data:
        if op is _C.LITERAL:
            out.append(chr(av))
        elif op in (_C.NOT_LITERAL, _C.ANY):
            out.append(rng.choice("ab "))
        elif op is _C.IN:
            chars = [c for c in _POOL if _in_class(c, av)]
            if " " in chars:  # mostly spaces, or the gaps between words never end in one
                chars += [" "] * len(chars)
            out.append(rng.choice(chars))
        elif op is _C.SUBPATTERN:
            out.append(generate(av[3], rng))
        elif op is _C.BRANCH:
            out.append(generate(rng.choice(av[1]), rng))
        elif op in (_C.MAX_REPEAT, _C.MIN_REPEAT):
            low, high, item = av
            count = rng.randint(low, min(high, low + 3))
            out.extend(generate(item, rng) for _ in range(count))
        else:
            assert op in (_C.AT, _C.ASSERT, _C.ASSERT_NOT), op
    return "".join(out)


def generated_matches(pattern: ScopePattern, seed: int, count: int = 150) -> list[str]:
    """Texts ``pattern`` matches, in changing case, some with look-alike characters."""
    rng = random.Random(seed)
    parsed = scope._parser.parse(pattern.regex.pattern, pattern.regex.flags)
    found = []
    for _ in range(count):
        text = f"Hello,\n{mutate_case(generate(parsed, rng), rng)} thanks."
        if rng.random() < 0.3:
            text = sprinkle(text, rng)
        if pattern.regex.search(text):
            found.append(text)
    return found


def random_prose(rng: random.Random, words: list[str], count: int) -> str:
    """Filler made of the patterns' own words, so that prefilters often pass."""
    out = []
    for _ in range(count):
        out.append(rng.choice(words))
        out.append(rng.choice([" ", " ", " ", "\n", ". ", ", ", "\n\n"]))
    return mutate_case("".join(out), rng)


WORDS = sorted(
    {w for p in PATTERNS.values() for w in re.findall(r"[a-z][a-z'-]*", p.regex.pattern)}
    | {s for p in PATTERNS.values() for strings in literal_prefilter(p.regex) for s in strings}
    | {w for p in PATTERNS.values() for ws in p.prefilter for w in (*ws.words, *ws.parts)}
)


def random_texts(count: int = 400) -> list[str]:
    rng = random.Random(20261123)
    texts = [random_prose(rng, WORDS, rng.randint(3, 60)) for _ in range(count)]
    return [sprinkle(t, rng) if i % 4 == 0 else t for i, t in enumerate(texts)]


ALL_TEXTS = [
    *FIXTURE_TEXTS,
    *CORPUS_TEXTS,
    *SENTENCES,
    *MORE_POSITIVES,
    SAMPLE,
    *random_texts(),
]


# ---------------------------------------------------------------- soundness


@pytest.mark.parametrize("name", PATTERNS)
def test_prefilter_and_twin_agree_with_the_plain_search(name: str) -> None:
    """On every text: a prefilter that says "skip" is right, and the fast path finds the
    very span the plain search finds."""
    pattern = PATTERNS[name]
    rng = random.Random(name)
    for text in ALL_TEXTS:
        for variant in (text, mutate_case(text, rng)):
            expected = search_span(pattern, variant)
            text = ScopeText(variant)
            if text.lowered is not None and not passes_prefilter(pattern, text):
                assert expected is None, (name, variant)
            assert fast_span(pattern, text) == expected, (name, variant)


@pytest.mark.parametrize("name", PATTERNS)
def test_every_match_passes_the_prefilter(name: str) -> None:
    """Matches found in the fixtures and the clause tests, and matches generated from the
    pattern itself, in every case, all get through."""
    pattern = PATTERNS[name]
    rng = random.Random(name)
    real = [m.group(0) for t in ALL_TEXTS if (m := pattern.regex.search(t))]
    assert real, f"{name}: no example in the fixtures, the clause tests or MORE_POSITIVES"
    generated = generated_matches(pattern, seed=len(real))
    assert len(generated) >= 10, name
    for match in real + generated:
        for variant in (match, mutate_case(match, rng), match.upper(), match.title()):
            expected = search_span(pattern, variant)
            if expected is None:  # İ lower-cased is i and a combining dot: no match left
                assert "\u0130" in match and "i\u0307" in variant, (name, variant)
                continue
            text = ScopeText(variant)
            if text.lowered is not None:
                assert passes_prefilter(pattern, text), (name, variant)
            assert fast_span(pattern, text) == expected, (name, variant)


@pytest.mark.parametrize(
    ("text", "category", "matched"),
    [
        ("Could you connect to our ſerver tonight?", "remote_admin", "connect to our ſerver"),
        ("We bought a TEAMVİEWER licence.", "remote_admin", "TEAMVİEWER"),
        ("Sadly we are below the mınımum requırements.", "hardware", "mınımum requırements"),
        # Not traps: str.lower() maps these as IGNORECASE does.
        ("We run a Mar\u212aetplace image from AWS.", "third_party", "Mar\u212aetplace image"),
        ("ΟΔΟΣ: can we get a Raspberry Pi?", "hardware", "Raspberry Pi"),
    ],
)
def test_lookalike_characters_still_match(text: str, category: str, matched: str) -> None:
    (rule,) = [r for r in RULES if r.name == category]
    hit = rule.check(MAIL, facts("Question", text))
    assert hit is not None
    assert matched in hit.evidence["matched"]


# ---------------------------------------------------------------- verdicts and evidence


def reference_check(rule: ScopeRule, f: Facts) -> Hit | None:
    """ScopeRule.check as it was before the fast path: every pattern searched plainly."""
    if not rule.category.enabled:
        return None
    text = f.tags.clean + "\n" + f.prose
    strong, weak = rule.category.compiled
    for strength, patterns in (("strong", strong), ("weak", weak)):
        for pattern in patterns:
            m = pattern.search(text)
            if m is None:
                continue
            evidence = {
                "matched": " ".join(m.group(0).split())[:160],
                "pattern": pattern.pattern,
                "strength": strength,
            }
            if strength == "strong":
                return Hit("reject", rule.reason, evidence)
            return Hit("flag", rule.reason, evidence, tag=f"triage:{rule.reason}")
    return None


def all_facts() -> Iterator[Facts]:
    for subject, prose in FIXTURE_INPUTS:
        yield facts(subject, prose)
    rng = random.Random(7)
    for text in ALL_TEXTS:
        yield facts("Question", text)
        yield facts("Question", sprinkle(text, rng))
    for seed, pattern in enumerate(PATTERNS.values()):
        for text in generated_matches(pattern, seed=seed, count=40):
            yield facts("Question", text)


def test_verdicts_and_evidence_are_unchanged() -> None:
    hits = 0
    for f in all_facts():
        for rule in RULES:
            expected = reference_check(rule, f)
            assert rule.check(MAIL, f) == expected, (rule.name, f.prose)
            hits += expected is not None
    assert hits > 1000  # the texts exercise the patterns, not only their prefilters


def test_operator_patterns_get_the_fast_path_too() -> None:
    category = ScopeCategory(
        strong=(r"\bgraphql\b", r"Größe des (?:Servers|Hosts)", r"\bIREX (?:6|5)\.\d\b"),
        weak=(r"\b(?:kubernetes|openshift|k8s)\b", r"\bv\d\b"),
    )
    strong, weak = category.searchable
    assert [literal_prefilter(p.regex) for p in strong] == [
        (frozenset({"graphql"}),),
        (frozenset({"servers", "hosts"}), frozenset({"des"})),
        (frozenset({"irex"}),),
    ]
    assert [p.prefilter for p in strong] == [
        (WordSet(frozenset({"graphql"}), ()),),
        (WordSet(frozenset({"des"}), ()), WordSet(frozenset(), ("hosts", "servers"))),
        (WordSet(frozenset({"irex"}), ()),),
    ]
    assert [p.lower_case is not None for p in strong] == [True, False, False]
    assert [literal_prefilter(p.regex) for p in weak] == [
        (frozenset({"kubernetes", "openshift", "k8s"}),),
        (),
    ]
    assert [p.prefilter for p in weak] == [
        (WordSet(frozenset({"kubernetes", "openshift", "k8s"}), ()),),
        (),
    ]
    rule = ScopeRule("development", "P-OUT-DEV", "development", category)
    for text in (
        "Our GraphQL queries time out.",
        "Die GRÖSSE DES SERVERS reicht nicht.",
        "Die größe des servers reicht nicht.",
        "We still run IREX 6.2 on k8s.",
        "We run IREX 7.4 on OpenShift, v2.",
        "Nothing to see here.",
    ):
        f = facts("Question", text)
        assert rule.check(MAIL, f) == reference_check(rule, f), text
