"""R-SCOPE: the out-of-scope categories as data. Each category has ``strong`` and ``weak``
patterns (regular expressions, case-insensitive, matched on the subject and the sender's
own prose). Strong evidence refuses with the category's template; weak evidence accepts
the request and tags the ticket ``triage:<category>`` for an engineer to judge.

The defaults catch the obvious cases in natural wording and are written so that ordinary
installation, upgrade, configuration, troubleshooting and bug reports (P-IN-1..6) never
match strongly: a strong pattern needs a *request* (someone asking support to do or to
teach the out-of-scope thing), or a statement that names the out-of-scope artefact as
such ("community Helm chart", "below the minimum hardware requirements"). A bare topic
word ("plug-in", "TeamViewer", "webhook") is only weak evidence. Operators replace a
category's lists in ``[policy.scope.<category>]``.

Two conventions make patterns read like the sentences they catch:

* A space in a pattern matches any run of whitespace, line breaks included (a space
  followed by ``?``, ``*``, ``+`` or ``{`` is one whitespace character under that
  quantifier). Mail clients wrap lines anywhere, so "send us sample code" must also
  match "send\\nus sample code". (A look-behind must be fixed-width: write ``\\s`` there.)
* ``_GAP`` ("a few words in between") stops at the end of a sentence and at a blank line,
  so evidence is always taken from one sentence, never pieced together from two.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

from mailgate.errors import ConfigValueError
from mailgate.policy import casefold

if TYPE_CHECKING:  # typeshed describes the parser under its old, deprecated names
    import sre_constants as _constants
    import sre_parse as _parser
else:
    from re import _constants, _parser

# Programming languages and runtimes people write their own code in (P-OUT-DEV).
_LANGS = r"(?:java|python|c#|c\+\+|\.net|dotnet|node(?:\.js)?|javascript|typescript|go|golang|php|ruby|rust|kotlin|swift|powershell|bash|perl|scala)"  # noqa: E501
# A few words within one sentence: any character but a sentence end, or a line break
# that does not start a blank line.
_GAP = r"(?:[^.?!\n]|\n(?!\s*\n))"
# Asking someone else to do it: "can you", "could one of your engineers", "please".
_YOU = (
    r"(?:can|could|would|will) (?:you|one of your (?:engineers|colleagues|team)"
    r"|someone(?: from your team)?|your (?:team|engineers?)) (?:please )?"
)
# A request addressed to support: "please", "can you", "we need you to".
_ASK = (
    rf"(?:please |{_YOU}|(?:we|i)(?: need| want| would like|'d like)"
    r" (?:you|your (?:team|engineers?)) to |(?:help us|we need help to) )"
)
# What an administrator runs: the targets of remote administration.
_SYSTEM = (
    r"(?:server|system|machine|environment|box|instance|vm|host|node|cluster"
    r"|infrastructure)s?"
)


def _whitespace_tolerant(pattern: str) -> str:
    """``pattern`` with each literal space turned into "any whitespace" (see above)."""
    out: list[str] = []
    i, in_class, class_start = 0, False, 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if char == "]" and i > class_start:
                in_class = False
            out.append(r"\s" if char == " " else char)
        elif char == "[":
            in_class = True
            class_start = i + 1 + (pattern[i + 1 : i + 2] == "^")
            out.append(char)
        elif char == " ":
            quantified = pattern[i + 1 : i + 2] in ("?", "*", "+", "{")
            out.append(r"\s" if quantified else r"\s+")
        else:
            out.append(char)
        i += 1
    return "".join(out)


# ======================================================================================
# Searching fast: prefilters and the lower-case path
# ======================================================================================

# The patterns start with \b or an alternation, so re tries to match them at every
# position of the text; ignoring case, it cannot even skip ahead to a character that may
# start a match. These make that cheaper without changing any result:
#
# * A prefilter per pattern, read off its parsed form (RE2's and Hyperscan's
#   "prefilter"): sets of lower-case strings such that every match contains a string of
#   each set ("teamviewer" or "anydesk" or ...). Most mail lacks one of them, and `in`
#   tells so in a fraction of the time a search takes. A prefilter may be weaker than it
#   could be (down to none at all: always search), never wrong, so whatever the walk
#   below does not understand contributes nothing.
# * The same in words (word_prefilter, below): a look-up in the set of the text's words
#   instead of a pass over the text for each string.
# * A pattern whose every literal and class is ASCII and free of capital letters is also
#   compiled case-sensitively to search the lower-cased text: the same match, up to
#   three times faster, as re can then skip to the characters that may start one; and
#   without a leading \b it can skip further (after_boundary_pattern).
# * A text is lower-cased, split into words and checked against each prefilter set once
#   for all the patterns searched in it (ScopeText), by all the rules that read it
#   (Facts.scope_text).
#
# All rest on str.lower() standing in for re.IGNORECASE (mailgate/policy/casefold.py):
# a text where it cannot is searched the plain way.
_MIN_LENGTH = 3  # shorter strings ("an", "go", "c#") are in nearly every mail
_MAX_STRINGS = 48  # more `in` checks than that cost about as much as the search saves
_MAX_SETS = 3  # the most selective few decide almost always
_REPEATS = (_constants.MAX_REPEAT, _constants.MIN_REPEAT, _constants.POSSESSIVE_REPEAT)


@dataclass(frozen=True)
class _Info:
    """What a piece of a pattern says about the text it matches, in lower case."""

    exact: frozenset[str] | None  # it matches one of these strings; None: not known
    required: tuple[frozenset[str], ...] = ()  # it contains a string of each set


_UNKNOWN = _Info(None)  # matches something, we do not know what
_EMPTY = _Info(frozenset({""}))  # \b, ^, look-arounds: match no text at all


def _sets(info: _Info) -> tuple[frozenset[str], ...]:
    return info.required if info.exact is None else (info.exact,)


def _selective(strings: frozenset[str]) -> bool:
    return len(strings) <= _MAX_STRINGS and min(map(len, strings)) >= _MIN_LENGTH


def _selectivity(strings: frozenset[str]) -> tuple[int, int]:
    """Longer strings are rarer; then fewer of them are rarer."""
    return min(map(len, strings)), -len(strings)


# What a set of strings is cut down to once it is required rather than concatenated
# further: each string to a part of it (the same strings, for literal_prefilter).
_Cut = Callable[[frozenset[str]], frozenset[str]]


def _uncut(strings: frozenset[str]) -> frozenset[str]:
    return strings


def _sequence(items: _parser.SubPattern, cut: _Cut = _uncut) -> _Info:
    """Adjacent exact pieces concatenate into longer strings (as many as ``_MAX_STRINGS``);
    the sequence requires whatever any of its pieces requires."""
    run: frozenset[str] | None = frozenset({""})
    required: list[frozenset[str]] = []
    exact = True  # every piece so far is exact and ``run`` holds them all
    for op, av in items.data:
        info = _piece(op, av, cut)
        if (
            run is not None
            and info.exact is not None
            and len(run) * len(info.exact) <= _MAX_STRINGS
        ):
            run = frozenset(a + b for a in run for b in info.exact)
            continue
        if run is not None:
            required.append(cut(run))
        exact = False
        run = info.exact
        required.extend(info.required)
    if exact:
        return _Info(run)
    if run is not None:
        required.append(cut(run))
    return _Info(None, tuple(s for s in required if _selective(s)))


def _branch(alternatives: list[_parser.SubPattern], cut: _Cut) -> _Info:
    """One of the alternatives matches: the union of their strings."""
    infos = [_sequence(alternative, cut) for alternative in alternatives]
    if all(info.exact is not None for info in infos):
        union = frozenset().union(*(info.exact or () for info in infos))
        if len(union) <= _MAX_STRINGS:
            return _Info(union)
    best: list[frozenset[str]] = []
    for info in infos:
        useful = [s for s in map(cut, _sets(info)) if _selective(s)]
        if not useful:
            return _UNKNOWN  # this alternative may match without any of our strings
        best.append(max(useful, key=_selectivity))
    return _Info(None, (frozenset().union(*best),))


def _repeat(low: int, high: int, item: _parser.SubPattern, cut: _Cut) -> _Info:
    body = _sequence(item, cut)
    if low == 0:
        if high == 1 and body.exact is not None:
            return _Info(body.exact | {""})  # optional: "plug-?in" is plug-in or plugin
        return _UNKNOWN
    if low == high == 1:
        return body
    return _Info(None, tuple(map(cut, _sets(body))))  # at least one copy of the body


def _char_class(members: list[tuple[Any, Any]]) -> _Info:
    """A small class of ASCII characters ("[sz]") is a set of one-character strings."""
    chars: set[str] = set()
    for op, av in members:
        if op is _constants.LITERAL and av < 0x80:
            chars.add(chr(av).lower())
        elif op is _constants.RANGE and av[1] < 0x80 and av[1] - av[0] < 4:
            chars.update(chr(code).lower() for code in range(av[0], av[1] + 1))
        else:  # NEGATE, a category such as \s, a non-ASCII character, a wide range
            return _UNKNOWN
    return _Info(frozenset(chars)) if len(chars) <= 4 else _UNKNOWN


def _piece(op: Any, av: Any, cut: _Cut) -> _Info:
    if op is _constants.LITERAL:
        return _Info(frozenset({chr(av).lower()})) if av < 0x80 else _UNKNOWN
    if op is _constants.IN:
        return _char_class(av)
    if op in (_constants.AT, _constants.ASSERT, _constants.ASSERT_NOT):
        return _EMPTY
    if op is _constants.SUBPATTERN:  # (group, flags on, flags off, body): flags do not
        return _sequence(av[3], cut)  # matter, as every literal is compared in lower case
    if op is _constants.ATOMIC_GROUP:
        return _sequence(av, cut)
    if op is _constants.BRANCH:
        return _branch(av[1], cut)
    if op in _REPEATS:
        low, high, item = av
        return _repeat(low, high, item, cut)
    # ANY, NOT_LITERAL, back references, conditionals, anything newer than this code.
    return _UNKNOWN


def literal_prefilter(pattern: re.Pattern[str]) -> tuple[frozenset[str], ...]:
    """Sets of lower-case strings, the most selective first, such that every match of
    ``pattern`` contains a string of each set; () when there is nothing to require."""
    info = _sequence(_parser.parse(pattern.pattern, pattern.flags))
    useful = [s for s in _sets(info) if _selective(s)]
    best = sorted(useful, key=_selectivity, reverse=True)[:_MAX_SETS]
    return tuple(_shortest(strings) for strings in best)


def _shortest(strings: frozenset[str]) -> frozenset[str]:
    """``strings`` without those that contain another: where "plug-ins" is, "plug-in" is."""
    return frozenset(s for s in strings if not any(t != s and t in s for t in strings))


# Words rather than strings: whether a word is among the words of a text is one look-up
# in a set, not a pass over the text. The same walk finds the words when it reads the
# pattern as it sees the words of the text: every character that is not a word character
# (\s, "-", "#"), every run of them (\s+) and every word boundary (\b) is a separator,
# one space, as every run of them is in the text. A string " remote " then says that
# "remote" is one of the words of the text; "upgrad" or " upgrad" only that it is part
# of one.
_WORD = re.compile(r"\w+")
_NOT_WORD = re.compile(r"[^0-9a-z_]+")  # in the lower-case ASCII strings of the walk
_SEPARATOR_CLASSES = (_constants.CATEGORY_SPACE, _constants.CATEGORY_NOT_WORD)
_SPACE = ord(" ")


def _word_char(code: int) -> bool:
    return chr(code).isalnum() or code == ord("_")


def _separator_member(op: Any, av: Any) -> bool:
    """Whether a class member matches only characters that are not word characters."""
    if op is _constants.LITERAL:
        return av < 0x80 and not _word_char(av)
    if op is _constants.RANGE:
        return av[1] < 0x80 and not any(map(_word_char, range(av[0], av[1] + 1)))
    return op is _constants.CATEGORY and av in _SEPARATOR_CLASSES


def _is_separator(op: Any, av: Any) -> bool:
    """Whether a piece is one character that is not a word character, or \\b."""
    if op is _constants.LITERAL:
        return av < 0x80 and not _word_char(av)
    if op is _constants.IN:
        return all(_separator_member(member, value) for member, value in av)
    return op is _constants.AT and av is _constants.AT_BOUNDARY


def _as_words(items: _parser.SubPattern) -> _parser.SubPattern:
    """``items`` with every separator written as one space (see above)."""
    data: list[tuple[Any, Any]] = []
    for op, av in items.data:
        data.extend(_piece_as_words(op, av))
    return _parser.SubPattern(items.state, data)


def _piece_as_words(op: Any, av: Any) -> list[tuple[Any, Any]]:
    if _is_separator(op, av):
        return [(_constants.LITERAL, _SPACE)]
    if op is _constants.SUBPATTERN:
        return [(op, (av[0], av[1], av[2], _as_words(av[3])))]
    if op is _constants.ATOMIC_GROUP:
        return [(op, _as_words(av))]
    if op is _constants.BRANCH:
        return [(op, (av[0], [_as_words(alternative) for alternative in av[1]]))]
    if op in _REPEATS:
        low, high, body = av[0], av[1], _as_words(av[2])
        if _first(body) == (_constants.LITERAL, _SPACE) and len(body.data) == 1:
            # \s+ is one separator; \s* and [-\s]? are one or none.
            return [(_constants.LITERAL, _SPACE)] if low >= 1 else [(op, (0, 1, body))]
        return [(op, (low, high, body))]
    return [(op, av)]


def _first(items: _parser.SubPattern) -> tuple[Any, Any] | None:
    return items.data[0] if items.data else None


class WordSet(NamedTuple):
    """One of ``words`` is a word of the text, or one of ``parts`` is part of a word."""

    words: frozenset[str]
    parts: tuple[str, ...]


# Words in nearly every request: a string with another word is known by that one.
_COMMON_WORDS = frozenset(
    re.findall(
        r"\w+",
        "a all an and any are as at be by can could do for from have help i if in into is it"
        " its like me my need not of on one onto or our out please so some someone that the"
        " this to up us want we will with would you your",
    )
)


def _word_keys(strings: frozenset[str]) -> frozenset[str]:
    """Each string (read as the text's words, see above) cut down to what it says for
    certain: one of its whole words, with the spaces around it (" remote "), or else the
    longer end, part of a word ("upgrad"); "" when it says nothing. The words are picked
    as few and as rare as can be: not a common one where the string has another, then
    the one most strings share ("customise" for "customise the" and "customise our")."""
    choices: list[frozenset[str]] = []
    keys: set[str] = set()
    for string in strings:
        # Any other character that is not a word character ("-" of "[-a]") separates too.
        pieces = _NOT_WORD.sub(" ", string).split(" ")
        whole = [piece for piece in pieces[1:-1] if piece]
        if whole:
            choices.append(frozenset(whole))
        else:
            keys.add(max(pieces[0], pieces[-1], key=len))
    while choices:
        counts = Counter(word for choice in choices for word in choice)
        word = max(counts, key=lambda w: (w not in _COMMON_WORDS, counts[w], len(w), w))
        keys.add(f" {word} ")
        choices = [choice for choice in choices if word not in choice]
    return frozenset(keys)


def _word_set(keys: frozenset[str]) -> WordSet:
    parts = _shortest(frozenset(k for k in keys if not k.startswith(" ")))
    # Where "requirements" is part of a word, the word "requirements" need not be sought.
    words = frozenset(
        k.strip() for k in keys if k.startswith(" ") and not any(p in k for p in parts)
    )
    return WordSet(words, tuple(sorted(parts)))


def word_prefilter(pattern: re.Pattern[str]) -> tuple[WordSet, ...]:
    """Like ``literal_prefilter``, in words: sets such that every match of ``pattern``
    has a word (or part of a word) of each set, those of whole words first; () when there
    is nothing to require. The strings of ``literal_prefilter`` come too, as parts of
    words: they pick differently ("you" where the words say "engineers")."""
    parsed = _parser.parse(pattern.pattern, pattern.flags)
    info = _sequence(_as_words(parsed), _word_keys)
    useful = [s for s in map(_word_keys, _sets(info)) if _selective(s)]
    best = sorted(useful, key=_selectivity, reverse=True)[:_MAX_SETS]
    sets = list(map(_word_set, best))
    for strings in literal_prefilter(pattern):
        # "plug-in" is in the text where "plug" is part of a word.
        parts = frozenset(max(_WORD.findall(s) or [""], key=len) for s in strings)
        if "" not in parts:
            sets.append(WordSet(frozenset(), tuple(sorted(_shortest(parts)))))
    # A set that another implies adds nothing: "screen" or "sharing" where "screen" is.
    kept: list[WordSet] = []
    for word_set in dict.fromkeys(sets):
        if not any(_implies(other, word_set) for other in kept):
            kept = [other for other in kept if not _implies(word_set, other)] + [word_set]
    return tuple(sorted(kept, key=lambda word_set: bool(word_set.parts)))


def _implies(a: WordSet, b: WordSet) -> bool:
    """Whether every text that meets ``a`` meets ``b``: each of its words is a word of
    ``b`` or holds a part of ``b``, each of its parts holds a part of ``b``."""
    return all(w in b.words or any(p in w for p in b.parts) for w in a.words) and all(
        any(p in q for p in b.parts) for q in a.parts
    )


def _lower_ascii(code: int) -> bool:
    return code < 0x80 and not chr(code).isupper()


def _class_member_same(op: Any, av: Any) -> bool:
    if op is _constants.LITERAL:
        return _lower_ascii(av)
    if op is _constants.RANGE:  # [a-z] and [0-9] are fine, [0-z] (with capitals) is not
        return all(map(_lower_ascii, range(av[0], av[1] + 1)))
    return op in (_constants.NEGATE, _constants.CATEGORY)  # [^...], \d, \s, \w


def _same_on_lower_case(items: _parser.SubPattern) -> bool:
    """Whether each piece means the same on text.lower() without re.IGNORECASE as on the
    text with it: ASCII literals that are not capitals, classes of such characters, \\d,
    \\s and \\w (and \\b, which looks at \\w), '.', anchors and plain groups. Each of
    these tests one character at a time, and answers alike for a character and its lower
    case; at the same positions (the lengths are equal), so does the whole search."""
    return all(_piece_same(op, av) for op, av in items.data)


def _piece_same(op: Any, av: Any) -> bool:
    if op in (_constants.LITERAL, _constants.NOT_LITERAL):
        return _lower_ascii(av)
    if op is _constants.IN:
        return all(_class_member_same(member, value) for member, value in av)
    if op in (_constants.ANY, _constants.AT):
        return True
    if op is _constants.SUBPATTERN:  # (?-i:...) and the like are not
        return av[1] == av[2] == 0 and _same_on_lower_case(av[3])
    if op in (_constants.ASSERT, _constants.ASSERT_NOT):
        return _same_on_lower_case(av[1])
    if op is _constants.ATOMIC_GROUP:
        return _same_on_lower_case(av)
    if op is _constants.BRANCH:
        return all(map(_same_on_lower_case, av[1]))
    if op in _REPEATS:
        return _same_on_lower_case(av[2])
    return False  # back references compare ignoring case; conditionals; the unknown


def lower_case_pattern(pattern: re.Pattern[str]) -> re.Pattern[str] | None:
    """``pattern`` (compiled with re.IGNORECASE) compiled without it, when it matches
    ``casefold.lowered(text)`` exactly where ``pattern`` matches ``text``; None otherwise."""
    if pattern.flags & (re.ASCII | re.LOCALE) or not pattern.flags & re.IGNORECASE:
        return None
    if not _same_on_lower_case(_parser.parse(pattern.pattern, pattern.flags)):
        return None
    case_sensitive = re.compile(pattern.pattern, pattern.flags & ~re.IGNORECASE)
    # An inline (?i) at the start would turn IGNORECASE back on.
    return None if case_sensitive.flags & re.IGNORECASE else case_sensitive


def _starts_with_literal(items: _parser.SubPattern) -> bool:
    """Whether re can skip to where a match may start: the first piece is a literal, a
    class, or alternatives that each start with a literal."""
    first = _first(items)
    while first is not None and first[0] is _constants.SUBPATTERN:
        first = _first(first[1][3])
    if first is None:
        return False
    op, av = first
    if op is _constants.BRANCH:
        return all(_literal_first(alternative) for alternative in av[1])
    return op in (_constants.LITERAL, _constants.IN)


def _literal_first(items: _parser.SubPattern) -> bool:
    first = _first(items)
    return first is not None and first[0] is _constants.LITERAL


def after_boundary_pattern(pattern: re.Pattern[str]) -> re.Pattern[str] | None:
    """``pattern`` without its leading ``\\b``, when re can skip ahead in the rest (see
    ``ScopePattern.search``); None otherwise.

    re looks for a match of ``\\b...`` at every position of the text; without the ``\\b``
    it jumps to the characters that may start one, and checking the boundary at the few
    positions found is cheaper. The rest must parse as exactly what followed the ``\\b``
    ("\\ba|\\bb" parses as \\b then a|b, but "a|\\bb" does not)."""
    source = pattern.pattern
    if not source.startswith("\\b"):
        return None
    whole = _parser.parse(source, pattern.flags)
    try:
        rest = _parser.parse(source[2:], pattern.flags)
    except re.error:
        return None
    if _first(whole) != (_constants.AT, _constants.AT_BOUNDARY):
        return None
    if repr(rest.data) != repr(whole.data[1:]) or not _starts_with_literal(rest):
        return None
    return re.compile(source[2:], pattern.flags)


_BOUNDARY = re.compile(r"\b")


class ScopeText:
    """A text to search, with what the fast path needs of it worked out once for all the
    patterns searched in it: the lower case, its words, which prefilter sets it meets."""

    __slots__ = ("_word_text", "found", "lowered", "text", "words")

    def __init__(self, text: str) -> None:
        self.text = text
        self.lowered = casefold.lowered(text)  # None: search ``text`` the plain way
        self.words: frozenset[str] | None = None  # its words, once a pattern asks
        self._word_text: str | None = None
        self.found: dict[WordSet, bool] = {}  # the prefilter sets looked at so far

    def split(self) -> frozenset[str]:
        """``words``, worked out now if need be."""
        if self.words is None:
            assert self.lowered is not None
            self.words = frozenset(_words(self.lowered))
        return self.words

    def meets(self, word_set: WordSet) -> bool:
        """Whether the lowered text has a word, or part of a word, of ``word_set``; each
        set is looked at once per text (the patterns share many: "you", "please")."""
        hit = self.found.get(word_set)
        if hit is None:
            words = self.split()
            hit = not word_set.words.isdisjoint(words)
            if not hit and word_set.parts:
                hit = self.has_part(word_set.parts)
            self.found[word_set] = hit
        return hit

    def has_part(self, parts: tuple[str, ...]) -> bool:
        """Whether one of ``parts`` is part of a word of the text."""
        words = self.split()
        if not words.isdisjoint(parts):  # most often the part is a whole word
            return True
        if self._word_text is None:
            self._word_text = " ".join(words)
        return any(part in self._word_text for part in parts)


# Each ASCII character that is not a word character, as a space.
_SEPARATORS_TO_SPACE = bytes(code if _word_char(code) else _SPACE for code in range(0x100))


def _words(lowered: str) -> list[str]:
    """The words of the text: the runs of word characters (\\w), ASCII ones whole.
    Each line once: a mail's repeated lines (padding, separators, a block pasted twice)
    add no words. A character that is not ASCII turns into "?", which splits "müller"
    into "m" and "ller": the words and parts of words of a prefilter are ASCII, and are
    found all the same."""
    lines = "\n".join(dict.fromkeys(lowered.split("\n")))
    return lines.encode("ascii", "replace").translate(_SEPARATORS_TO_SPACE).decode("ascii").split()


@dataclass(frozen=True)
class ScopePattern:
    """A compiled pattern (re.IGNORECASE) with what searches it fast: its prefilter, its
    lower-case twin, that twin without a leading ``\\b``, and a part of it that every
    match contains (``sequence``). The first three are worked out at the first search:
    reading a pattern's parsed form and compiling its twins takes milliseconds, which
    every command that searches nothing would pay at import (the version rule's patterns
    are made at import)."""

    regex: re.Pattern[str]
    part: ScopePattern | None = None

    @classmethod
    def of(cls, regex: re.Pattern[str], part: ScopePattern | None = None) -> ScopePattern:
        return cls(regex, part)

    @cached_property
    def prefilter(self) -> tuple[WordSet, ...]:
        return word_prefilter(self.regex)

    @cached_property
    def lower_case(self) -> re.Pattern[str] | None:
        return lower_case_pattern(self.regex)

    @cached_property
    def after_boundary(self) -> re.Pattern[str] | None:
        return None if self.lower_case is None else after_boundary_pattern(self.lower_case)

    def warm_up(self) -> None:
        """Work out now what the first search would: the prefilter and the twins."""
        _ = self.prefilter, self.after_boundary  # after_boundary needs lower_case
        if self.part is not None:
            self.part.warm_up()

    @classmethod
    def sequence(cls, head: str, part: str, tail: str, flags: int) -> ScopePattern:
        """The pattern ``head + part + tail``, searched only in text where ``part`` matches.

        Every match holds a match of ``part`` (with the same text around it, which is all
        that look-arounds see). Worth it where re finds ``part`` much faster than the whole
        pattern: when ``part`` starts with a word, and the whole with \\b, a look-behind or
        an optional group, so that re tries the whole at every position.
        """
        whole = head + part + tail
        # "a|b" + "c" is a or bc, not a part followed by another.
        grouped = f"(?:{head})(?:{part})(?:{tail})"
        if repr(_parser.parse(whole, flags)) != repr(_parser.parse(grouped, flags)):
            raise ValueError(f"not a sequence of three parts: {whole!r}")
        return cls.of(re.compile(whole, flags), cls.of(re.compile(part, flags)))

    def search(self, text: ScopeText) -> re.Match[str] | None:
        """``regex.search(text.text)``, or a match with the same spans (groups too) in
        ``text.lowered``."""
        lowered = text.lowered
        if lowered is None:
            return self.regex.search(text.text)
        # all(map(text.meets, self.prefilter)), written out: this runs for every pattern
        # and mail, and most stop here.
        found, words = text.found, text.words
        if words is None:
            words = text.split()
        for word_set in self.prefilter:
            hit = found.get(word_set)
            if hit is None:
                hit = not word_set.words.isdisjoint(words)
                if not hit and word_set.parts:
                    hit = text.has_part(word_set.parts)
                found[word_set] = hit
            if not hit:
                return None
        if self.part is not None and self.part.search(text) is None:
            return None
        if self.after_boundary is not None:
            # The leftmost position where the rest matches and \b holds is where the
            # whole twin matches first, with the same match.
            pos = 0
            while (m := self.after_boundary.search(lowered, pos)) is not None:
                if _BOUNDARY.match(lowered, m.start()):
                    return m
                pos = m.start() + 1
            return None
        if self.lower_case is not None:
            return self.lower_case.search(lowered)
        return self.regex.search(text.text)

    def finditer(self, text: ScopeText) -> Iterator[re.Match[str]]:
        """``regex.finditer(text.text)``, each match as in ``search``."""
        lowered = text.lowered
        if lowered is None:
            return self.regex.finditer(text.text)
        if not all(map(text.meets, self.prefilter)):
            return iter(())
        if self.part is not None and self.part.search(text) is None:
            return iter(())
        if self.lower_case is not None:
            return self.lower_case.finditer(lowered)
        return self.regex.finditer(text.text)


@dataclass(frozen=True)
class ScopeCategory:
    enabled: bool = True
    strong: tuple[str, ...] = ()
    weak: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for kind in ("strong", "weak"):
            for i, pattern in enumerate(getattr(self, kind)):
                try:
                    re.compile(_whitespace_tolerant(pattern))
                except re.error as exc:
                    raise ConfigValueError(
                        f"{kind}[{i}]", f"bad regular expression: {exc}"
                    ) from None

    @cached_property
    def compiled(self) -> tuple[tuple[re.Pattern[str], ...], tuple[re.Pattern[str], ...]]:
        flags = re.IGNORECASE | re.DOTALL
        return (
            tuple(re.compile(_whitespace_tolerant(p), flags) for p in self.strong),
            tuple(re.compile(_whitespace_tolerant(p), flags) for p in self.weak),
        )

    @cached_property
    def searchable(self) -> tuple[tuple[ScopePattern, ...], tuple[ScopePattern, ...]]:
        """``compiled``, each pattern with what searches it fast."""
        strong, weak = self.compiled
        return tuple(map(ScopePattern.of, strong)), tuple(map(ScopePattern.of, weak))

    def warm_up(self) -> None:
        """Compile the patterns and work out their search helpers now, not at the first
        search (5-25 ms for a category)."""
        if self.enabled:
            for patterns in self.searchable:
                for pattern in patterns:
                    pattern.warm_up()


# P-OUT-DEV: development questions or requests.
DEVELOPMENT = ScopeCategory(
    strong=(
        # Asking how to program against the API from their own code:
        # "how do I call the REST API from our Java app".
        r"\bhow (?:do|can|should|would) (?:i|we) (?:call|invoke|use|consume|access|query)"
        r" (?:the |your |irex(?:'s)? )?(?:rest(?:ful)? |graphql |soap |web ?service )?api\b"
        rf"{_GAP}{{0,60}}\b(?:from|in|with|inside) (?:our|my|a|an) (?:[\w#+.-]+ ){{0,2}}?"
        r"(?:app|application|code|program|script|client|frontend|backend|portal)s?\b",
        # Their own program named with its language, then calling the API:
        # "our Python service needs to call the REST API".
        rf"\b(?:our|my) {_LANGS} (?:app|application|code|client|program|script|service)\b"
        rf"{_GAP}{{0,80}}\b(?:call|use|invoke|consume|integrate with|talk to) (?:the |your |irex )*"
        r"(?:rest |graphql )?api\b",
        # Asking for code: "could you send us sample code", "do you have example code"
        # (but not "I can share sample code that reproduces the bug").
        rf"(?:\b{_ASK}(?:send|give|provide|share|write) (?:us |me )?|\bdo you have )"
        r"(?:a |an |any |some )?(?:code (?:sample|example|snippet)|sample code|example code"
        r"|(?:working )?example program)s?\b",
        # Asking for help with their own code: "help us write a Python script".
        r"\b(?:help|assist) (?:us |me )?(?:to |with )?(?:write|writing|develop|developing|debug"
        r"|debugging|review|reviewing|fix|fixing) (?:our|my|a|an|the|some) "
        rf"(?:(?:(?:own|custom|small|simple|{_LANGS}) )*(?:code|script|program|plugin|plug-in"
        r"|extension|module|function|class|macro)s?\b"
        # "application" and "integration" only when it is clearly theirs ("our own app",
        # "a Java application"): "help us fix the application" may well mean IREX.
        rf"|(?:(?:own|custom|in-house|{_LANGS}) )+"
        r"(?:application|app|integration|client|service)s?\b)",
        # Asking support to write the code: "could you write us a script that ...".
        rf"\b{_YOU}(?:write|develop|code|program) (?:us |me |for us )?(?:a |an |some )?"
        rf"(?:(?:custom|small|simple|{_LANGS}) )*(?:script|program|code|function|class|macro)\b",
        # How to build their own extension: "how can we write a custom connector".
        r"\bhow (?:do|can) (?:i|we) (?:write|develop|build|code) (?:a|an|our|my) (?:custom |own )?"
        r"(?:plugin|plug-in|extension|module|connector|script|client)\b",
    ),
    weak=(
        # Developer-facing topics that are often, not always, development questions.
        r"\b(?:sdk|client library|api client|webhooks?|api endpoint)\b",
        # Their own program named with its language.
        rf"\b(?:our|my) {_LANGS} (?:app|application|code|client|program|script)\b",
    ),
)

# P-OUT-3P: third-party integrations, installers, images and plug-ins.
THIRD_PARTY = ScopeCategory(
    strong=(
        # An artefact qualified as not official: "the community Helm chart fails",
        # "an unofficial Docker image", "third-party plug-in".
        r"\b(?:community|unofficial|third[- ]party|3rd[- ]party|non-official)"
        r"(?:[- ](?:maintained|provided|built|made))? (?:helm charts?|docker images?"
        r"|container images?|images?|installers?|plug-?ins?|modules?|operators?"
        r"|ansible roles?|integrations?|connectors?|add-?ons?|extensions?|ami)\b",
        # An artefact attributed to someone else: "plug-in made by a third-party vendor",
        # "image from the community".
        r"\b(?:helm chart|docker image|container image|image|installer|plug-?in|ami|snap|add-?on"
        r"|package|connector)s? (?:from|by|made by|published by|maintained by|built by"
        r"|provided by) (?:a |an |the )?(?:community|third[- ]party|3rd[- ]party|github"
        r"|docker ?hub|an? (?:external|outside) (?:vendor|company|developer))\b",
    ),
    weak=(
        # Packaging and deployment tooling that is usually not IREX's own.
        r"\b(?:helm charts?|docker ?hub|ansible roles?|terraform modules?|marketplace"
        r" (?:image|plugin|listing)|bitnami|chocolatey|homebrew)\b",
        # A plug-in or add-on in use - but not "no/any/without plugins" nor IREX's own
        # plug-in directory, folder or path (an installation matter, P-IN-2).
        r"(?<!\bno\s)(?<!\bany\s)(?<!\bwithout\s)\b(?:plug-?ins?|add-?ons?)\b"
        r"(?! (?:directory|directories|dir|folder|path|location)\b)",
    ),
)

# P-OUT-REMOTE: remote administration.
REMOTE_ADMIN = ScopeCategory(
    strong=(
        # Asking support to get onto their systems: "can you connect to our server",
        # "could one of your engineers log in to our server".
        rf"\b{_YOU}(?:connect|log ?in|log ?into|login|ssh|rdp|remote(?: in)?|dial in|jump on"
        r"|access)"
        rf"(?: (?:to|in ?to|into|on|onto))? (?:our|my|the) {_SYSTEM}\b",
        # A remote-control tool plus doing the work: "over TeamViewer and fix it".
        r"\b(?:teamviewer|anydesk|remote desktop|rdp|vnc|splashtop|logmein)\b"
        rf"{_GAP}{{0,80}}\b(?:fix|do it|do the|install|upgrade|configure|take over|for us|sort it"
        r"|repair|clear|clean|restart)\b",
        # Doing the work for them with their access: "fix it for us, we can give access".
        r"\b(?:fix|do|perform|carry out|handle|install|upgrade|configure)\b"
        rf"{_GAP}{{0,60}}\b(?:for us|on our behalf)\b{_GAP}{{0,40}}\b(?:remote(?:ly)?"
        r"|(?:remote|vpn|ssh|rdp|admin|server) access|credentials|teamviewer|anydesk|vpn|ssh)\b",
        # Offering access to their systems: "we will give you VPN access".
        r"\b(?:we(?:'ll| will| can| could)?|i(?:'ll| will| can| could)?) (?:give|send|provide"
        r"|share|create|set up|grant) (?:you |your (?:team|engineers?) )?(?:(?:remote|vpn|ssh|rdp"
        r"|admin|administrator|root) (?:access|credentials|account)|access to (?:our|the)"
        r" (?:server|system|vpn|machine|network)s?)\b",
        # Handing over a login: "I can send you the TeamViewer ID", "we'll create you an
        # account" (but not "I will share the login page screenshot").
        r"\b(?:we(?:'ll| will| can| could)?|i(?:'ll| will| can| could)?) (?:give|send|provide"
        r"|share|create|set up) you (?:an? (?:admin |administrator |user )?account|the (?:login"
        r"|credentials|password|teamviewer|anydesk)(?: details| id| data)?)\b",
        # Asking support to carry out an operation on their system:
        # "please perform the upgrade for us on Saturday".
        rf"\b{_ASK}(?:perform|do|carry out|run|apply|execute|make) (?:the |this |our |an? )?"
        r"(?:upgrade|update|installation|install|patch(?:ing)?|migration|restore|maintenance)\b"
        rf"{_GAP}{{0,30}}\b(?:for us|on our behalf)\b",
    ),
    weak=(
        # Remote tools and sessions; a Premier screen-sharing session led by the
        # customer's own administrator is allowed, so these only flag for triage.
        r"\b(?:teamviewer|anydesk|remote session|screen[- ]?shar(?:e|ing)|remote access)\b",
    ),
)

# P-OUT-PS: security system design, hardware and network administration, custom
# integrations, UX customisation.
PROFESSIONAL_SERVICES = ScopeCategory(
    strong=(
        # Asking for a design: "please design our security architecture".
        rf"{_ASK}(?:design|architect|plan|draw up|define|create|write)\b{_GAP}{{0,20}}"
        r"\b(?:our|the|a|an)"
        r" (?:new |overall |complete )?(?:security|network|infrastructure|ha|high[- ]availability"
        r"|disaster[- ]recovery|identity) (?:architecture|design|concept|model|system|strategy"
        r"|topology|layout)\b",
        # UX customisation of the product itself: "customise the login page look".
        r"\b(?:customi[sz]e|rebrand|re-brand|redesign|restyle|re-?skin) (?:the |our |its )?"
        r"(?:(?:look|look and feel|appearance|layout|design|style|colou?rs|branding) of"
        r" (?:the |our )?)?"
        r"(?:(?:irex )?(?:login|log-in|sign-in|landing|start|home) (?:page|screen)|look and feel"
        r"|look & feel|appearance|branding|theme|colou?r scheme|user interface|ui|ux)\b"
        r"(?: (?:look|appearance|design|layout|style|colou?rs|logo)\b)?",
        # Changing the look to match their brand: "change the colours of the login page",
        # "make the login page match our corporate design".
        r"\b(?:change|modify|adapt|adjust|make)\b (?:the |our )?(?:look|look and feel|appearance"
        r"|layout|colou?rs|logo|branding|style|design) of (?:the |our )?(?:irex )?(?:login|log-in"
        r"|sign-in|landing|start|home) (?:page|screen)\b",
        r"\b(?:login|log-in|sign-in|landing|start|home) (?:page|screen)\b"
        rf"{_GAP}{{0,40}}\b(?:match|in line with|fit) (?:our|the) (?:new )?(?:corporate|company"
        r"|brand|house) (?:design|identity|colou?rs|branding|style|look)\b",
        # Building a custom integration for them.
        r"\b(?:build|develop|write|create|implement) (?:us |for us )?(?:a |an )?custom"
        r" integration\b",
        # Network or hardware administration on their behalf:
        # "could you configure our load balancer and the firewall rules for us".
        rf"{_ASK}(?:configure|set up|administer|manage|design|install|cable|rack) (?:our |the )?"
        r"(?:firewalls?|firewall rules|switch(?:es)?|routers?|vlans?|load ?balancers?|network"
        rf"|san|storage array|raid|hardware|dns|servers?)\b{_GAP}{{0,40}}\bfor us\b",
        # Security design or testing for them.
        rf"{_ASK}(?:do |perform |run |carry out |conduct |make )?(?:a |an |the |our )?"
        r"(?:security (?:system )?design|security audit|security review|penetration test(?:ing)?"
        r"|pen ?test)s?\b",
    ),
    weak=(
        # The topics, without a request attached.
        r"\b(?:security architecture|penetration test|pentest|custom integration|branding"
        r"|look and feel|ux customi[sz]ation|corporate design)\b",
        # Something already customised: "our custom login page broke after the upgrade".
        r"\bcustom(?:i[sz]ed)? (?:login|sign-in|landing) page|\bcustom (?:theme|css|branding)\b",
    ),
)

# P-HW: deployments that meet the documented hardware requirements.
HARDWARE = ScopeCategory(
    strong=(
        # The sender says the deployment does not meet the requirements.
        r"\b(?:below|under|less than|short of|doesn'?t meet|does not meet|don'?t meet|do not meet"
        r"|not meet(?:ing)?|outside)\s+(?:the\s+)?(?:minimum\s+|recommended\s+|documented\s+)?"
        r"(?:hardware\s+|system\s+)?requirements\b",
        # Less of a resource than required: "fewer cores than the minimum".
        r"\b(?:less|fewer) (?:ram|memory|cpus?|vcpus?|cores?|disk(?: space)?) than (?:the )?"
        r"(?:minimum|required|recommended|documented)\b",
        # Hardware classes the product documentation does not cover.
        r"\b(?:raspberry pi|arm32|armv7|32-bit (?:server|os|windows|linux|machine))\b",
    ),
    weak=(
        # Small machines and requirement talk: an engineer checks the sizing.
        r"\bonly (?:\d+|one|two) ?(?:gb|mb|cpus?|cores?|vcpus?)\b(?: of)?(?: ram| memory)?",
        r"\b(?:hardware requirements|minimum requirements|unsupported hardware)\b",
    ),
)


# One class per category, so that a config table that sets only some keys (say
# `enabled`) keeps the shipped patterns for the others.
@dataclass(frozen=True)
class DevelopmentScope(ScopeCategory):
    strong: tuple[str, ...] = DEVELOPMENT.strong
    weak: tuple[str, ...] = DEVELOPMENT.weak


@dataclass(frozen=True)
class ThirdPartyScope(ScopeCategory):
    strong: tuple[str, ...] = THIRD_PARTY.strong
    weak: tuple[str, ...] = THIRD_PARTY.weak


@dataclass(frozen=True)
class RemoteAdminScope(ScopeCategory):
    strong: tuple[str, ...] = REMOTE_ADMIN.strong
    weak: tuple[str, ...] = REMOTE_ADMIN.weak


@dataclass(frozen=True)
class ProfessionalServicesScope(ScopeCategory):
    strong: tuple[str, ...] = PROFESSIONAL_SERVICES.strong
    weak: tuple[str, ...] = PROFESSIONAL_SERVICES.weak


@dataclass(frozen=True)
class HardwareScope(ScopeCategory):
    strong: tuple[str, ...] = HARDWARE.strong
    weak: tuple[str, ...] = HARDWARE.weak


@dataclass(frozen=True)
class ScopeSettings:
    development: DevelopmentScope = field(default_factory=DevelopmentScope)
    third_party: ThirdPartyScope = field(default_factory=ThirdPartyScope)
    remote_admin: RemoteAdminScope = field(default_factory=RemoteAdminScope)
    professional_services: ProfessionalServicesScope = field(
        default_factory=ProfessionalServicesScope
    )
    hardware: HardwareScope = field(default_factory=HardwareScope)
