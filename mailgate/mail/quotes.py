"""Reduce a plain-text mail body to the sender's own words: drop quoted history and signature.

``strip_reply`` splits a body into the sender's new ``text``, the ``quoted`` history and the
``signature``. Downstream code (command parsing, language detection, the stored ticket
message) only ever looks at ``text``, so the rules below lean towards keeping words: when a
heuristic is not sure, the line stays.

Quoted history
    * Lines starting with ``>`` are quoted wherever they are, so top-posting, bottom-posting
      and interleaved answers all keep exactly the lines that are not quoted.
    * An attribution line ("On … wrote:", "Le … a écrit :", "Am … schrieb …:", …, possibly
      wrapped over up to three lines) followed by ``>`` lines is dropped with them. Followed
      by unquoted text (clients that do not prefix history), it ends the new text.
      Attribution patterns come from ``mail-parser-reply``'s language table (en, de, fr, it,
      pl, sv, da, cs, ja, ko, zh, …); we add Spanish with one space before "escribió", Dutch
      "Op … schreef Name:", Portuguese "Em … escreveu:", Polish "… napisał(a):" / "W dniu …
      pisze:" and lines wrapped more than once, which the table misses.
    * An Outlook header block (From:/Sent:/To:/Subject: and its translations, at least three
      fields, the first a "From"), a "-----Original Message-----" line, or a line of
      underscores directly above such a block ends the new text. We do not use the library's
      header-block patterns: its Polish one accepts a single ``Data:`` line (a log line) and
      its French one misses "De:" without the typographic space.

Forwards
    A forward marker ("---------- Forwarded message ---------", "Begin forwarded message:",
    their translations, or an Outlook block whose Subject starts with FW:/TR:/WG:/…) ends
    the new text like a reply header, so a forward with a note keeps just the note. A *bare*
    forward (nothing but a signature above the marker) is itself the request: ``text`` is
    then the forwarded message's body, stripped in turn, and its header block goes to
    ``quoted``.

Signatures (only at the end of the new text)
    * the RFC 3676 delimiter ``-- `` (or ``--``) with at most 20 lines after it;
    * a mobile tagline ("Sent from my iPhone", "Get Outlook for iOS", …) in the last lines;
    * a closing line ("Best regards,", "Cordialement,", "Mit freundlichen Grüßen", …, phrases
      from the library's table plus ours) followed by nothing or by a short contact block
      whose first line looks like a name. The closing line goes to ``signature`` with the
      block - a French "Cordialement," under an English message would otherwise mislead
      the language detector - unless it is all the text there is ("Thanks!").

Everything is line based with short, anchored regular expressions applied to bounded
lines, so the work is linear in the size of the body. Every line of ``text`` is a piece of
a line of the input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mailparser_reply.constants import MAIL_LANGUAGES

__all__ = ["Stripped", "own_text", "strip_reply"]


@dataclass(frozen=True)
class Stripped:
    """A mail body split into the sender's own words and what was removed."""

    text: str  # the sender's own new text, trimmed
    quoted: str  # what was removed as quoted history ("" if none)
    signature: str  # what was removed as signature ("" if none)


def own_text(text: str) -> str:
    """The sender's own new text of a plain-text body (see ``strip_reply``)."""
    return strip_reply(text).text


def strip_reply(text: str) -> Stripped:
    """Split a plain-text body into new text, quoted history and signature."""
    return _strip(text.splitlines(), depth=0)


# --------------------------------------------------------------------------- tuning

#: Longest header line we try to recognise. Real ones are far shorter; this bound and the
#: next keep the work per line constant, so the whole is linear in the size of the body.
_MAX_HEADER_CHARS = 300
#: Longest attribution, wrapped lines joined ("On <date>, <long name> <long address> wrote:").
_MAX_ATTRIBUTION_CHARS = 250
#: Longest line that can be a closing, tagline or a line of a contact block.
_MAX_SIGNATURE_LINE = 80
#: Longest mobile tagline ("Sent from Outlook for Android<https://aka.ms/AAb9ysg>").
_MAX_TAGLINE = 60
#: Lines allowed after a "-- " delimiter (longer: probably not a signature, keep it).
_MAX_AFTER_DELIMITER = 20
#: Lines allowed in the contact block under a closing line, and in a trailing disclaimer.
_MAX_CONTACT_LINES = 8
_MAX_DISCLAIMER_LINES = 15
#: A forward of a forward of a forward is unwrapped this many times at most.
_MAX_FORWARD_DEPTH = 3

# ------------------------------------------------------------------------ line cleaning

_TRANSLATION = {
    **dict.fromkeys(map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"), None),
    **dict.fromkeys(map(ord, "\u00a0\u202f\u2007\u3000\t"), " "),
}


#: Any character ``_TRANSLATION`` changes. ``str.translate`` looks every character up in the
#: table, which costs more than all the detectors together on a plain line.
_TRANSLATED = re.compile("[" + re.escape("".join(map(chr, _TRANSLATION))) + "]")
#: The only ASCII character the table changes.
_TRANSLATED_ASCII = "\t"


def _translation_changes(line: str) -> bool:
    """Whether ``line.translate(_TRANSLATION)`` differs from ``line``."""
    if line.isascii():  # most lines, and much cheaper than the search
        return _TRANSLATED_ASCII in line
    return _TRANSLATED.search(line) is not None


def _clean(line: str) -> str:
    """The line as detectors see it: invisible characters gone, odd spaces plain, trimmed."""
    if not _translation_changes(line):
        return line.strip()
    return line.translate(_TRANSLATION).strip()


def _is_quote(clean: str) -> bool:
    return clean.startswith(">")


# ------------------------------------------------------------------ library language data


def _words(text: str) -> list[str]:
    return text.split()


def _library_entries(key: str) -> list[str]:
    """Every language's ``key`` entries from mail-parser-reply's table, as regex strings."""
    entries: list[str] = []
    table: dict[str, dict[str, Any]] = MAIL_LANGUAGES
    for language in table.values():
        value = language.get(key)
        if isinstance(value, str) and value:
            entries.append(value)
        elif isinstance(value, list):
            entries.extend(v for v in value if isinstance(v, str) and v)
    return entries


def _compile_each(patterns: Iterable[str], flags: int = re.IGNORECASE) -> list[re.Pattern[str]]:
    """Compile what compiles: a future library release must not break our import."""
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern, flags))
        except re.error:
            continue
    return compiled


def _top_level_alternatives(pattern: str) -> list[str]:
    """``a|(?:b|c)d`` -> ``["a", "(?:b|c)d"]`` (no escaped parentheses in our phrases)."""
    parts, depth, start = [], 0, 0
    for k, char in enumerate(pattern):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "|" and depth == 0:
            parts.append(pattern[start:k])
            start = k + 1
    parts.append(pattern[start:])
    return [part for part in parts if part]


def _alternation(patterns: Iterable[str]) -> str:
    """One alternation of the patterns that compile, longest first (prefer the fuller phrase)."""
    usable = [p.pattern for p in _compile_each(patterns)]
    return "|".join(f"(?:{p})" for p in sorted(set(usable), key=len, reverse=True))


# ------------------------------------------------------------------- attribution lines

#: mail-parser-reply's "On … wrote:" patterns, one per language (anchored, end in ":$").
_LIBRARY_WROTE = _compile_each(_library_entries("wrote_header"))

#: Attribution lines that start with the client's opener word (ours, for what the library
#: table misses or only matches on one line). Single ``.+`` each: linear on a bounded line.
_OWN_WROTE = _compile_each(
    [
        r"On\s.+\swrote\s?:$",
        r"Le\s.+\sa\s+écrit\s?:$",
        r"Am\s.+\sschrieb\s.+:$",
        r"El\s.+\sescribió\s?:$",
        r"Il\s.+\sha\s+scritto\s?:$",
        r"Op\s.+\sschreef\s.*:$",
        r"(?:Em|No dia)\s.+\sescreveu\s?:$",
        r"(?:W dniu|Dnia)\s.+\s(?:napisał(?:\(a\))?|napisała|pisze)\s?:$",
        r"Den\s.+\sskrev\s.*:$",
        # Gmail in Polish starts with the weekday: "wt., 3 lis 2026 o 10:02 Jane … napisał(a):"
        r"\w{2,4}\.?,\s\d{1,2}\s\w+\.?\s\d{4}\s.+\s(?:napisał(?:\(a\))?|napisała)\s?:$",
    ]
)

#: The verb alone. Strong enough with an address in the line (Gmail in Polish starts with
#: the weekday: "wt., 3 lis 2026 o 10:02 Jane <jane@…> napisał(a):"); otherwise only when
#: ``>`` lines follow.
_ANY_WROTE = re.compile(
    r".*\s(?:wrote|a\s+écrit|schrieb(?:\s.*)?|escribió|ha\s+scritto|schreef(?:\s.*)?|escreveu"
    r"|napisał(?:\(a\))?|napisała|pisze|skrev(?:\s.*)?|kirjoitti)\s?:$",
    re.IGNORECASE,
)

#: Every attribution pattern above (ours and the library's) contains one of these.
_WROTE_VERBS = _words(
    "wrote écrit schrieb escribió scritto schreef escreveu napisa nadesłał pisze skrev"
    " kirjoitti napsal 年 작성 写道"
)

_HAS_DIGIT = re.compile(r"\d")
#: What makes an attribution certain: a time or a year ("10:02", "2026"), not just any
#: number - "On node 2 the installer 5.2.0 wrote:" is the customer's own sentence.
_HAS_DATE = re.compile(r"\b\d{1,2}:\d{2}\b|\b(?:19|20)\d{2}\b")

# ------------------------------------------------------------------- Outlook-style blocks

_FROM_FIELDS = frozenset(_words("from von de da van od från fra"))
_SUBJECT_FIELDS = frozenset(
    _words("subject betreff objet asunto assunto oggetto onderwerp temat ämne emne předmět")
)
_OTHER_FIELDS = frozenset(
    _words(
        """
        sent date to cc bcc reply-to importance
        gesendet datum an
        envoyé à
        enviado enviada fecha para data
        inviato a
        verzonden aan
        wysłano do dw
        skickat till kopia sendt til kopi kopie
        odesláno komu
        """
    )
)
_FIELD = re.compile(
    r"\*?\s*(?P<name>[^\W\d_][\w-]{0,11})\s*\*?\s*:(?:\s|\*|$)(?P<value>.*)", re.IGNORECASE
)
_FORWARD_SUBJECT = re.compile(r"\s*\*?\s*(?:fwd?|tr|wg|rv|enc|doorst|vs|vb|pd|i)\s*:", re.I)

_ORIGINAL_DIVIDER = re.compile(
    r"-{2,}\s*(?:original message|original-nachricht|ursprüngliche nachricht"
    r"|message d'origine|mensaje original|messaggio originale|oorspronkelijk bericht"
    r"|oryginalna wiadomość|wiadomość oryginalna|ursprungligt meddelande|mensagem original"
    r"|oprindelig meddelelse|původní zpráva)\s*-{2,}",
    re.IGNORECASE,
)
_UNDERSCORE_DIVIDER = re.compile(r"_{10,}")

_FORWARD_MARKER = re.compile(
    r"(?:-{2,}\s*(?:forwarded message|message transféré|weitergeleitete nachricht"
    r"|mensaje reenviado|messaggio inoltrato|doorgestuurd bericht|mensagem encaminhada"
    r"|wiadomość przekazana dalej|przekazana wiadomość|vidarebefordrat meddelande"
    r"|videresendt meddelelse|přeposlaná zpráva)\s*-{2,}"
    r"|(?:begin forwarded message|début du message réexpédié"
    r"|anfang der weitergeleiteten nachricht|inicio del mensaje reenviado"
    r"|inizio messaggio inoltrato|begin doorgestuurd bericht|início da mensagem reencaminhada"
    r"|início da mensagem encaminhada|początek przekazywanej wiadomości"
    r"|vidarebefordrat brev)\s*:)",
    re.IGNORECASE,
)

# ------------------------------------------------------------------------ signatures

_OWN_TAGLINES = [
    r"Sent (?:from|with|via) (?:my|Outlook|Mail|Yahoo|Samsung|BlackBerry|Proton|the|iPhone"
    r"|iPad|Android)",
    r"Get Outlook for",
    r"Envoyé (?:de|depuis) (?:mon|Outlook|Yahoo)",
    r"Obtenez Outlook pour",
    r"Von meinem .{1,40} gesendet",
    r"Holen Sie sich Outlook",
    r"Enviado (?:do|desde|a partir do) (?:meu|mi|Outlook|Yahoo)",
    r"Inviato da",
    r"Verstuurd (?:vanaf|met) mijn",
    r"Verzonden (?:vanaf|met) mijn",
    r"Wysłane z",
    r"Skickat från",
]
_TAGLINE = re.compile(
    rf"(?:{_alternation(_OWN_TAGLINES + _library_entries('sent_from'))})(?:[\s<].*)?$",
    re.IGNORECASE,
)

#: Closing phrases, one a line (regex syntax); the library's table adds more.
_OWN_CLOSINGS = r"""
(?:best|kind|warm|warmest|many|with kind|with best)?\s*regards
best wishes|best|cheers|all the best|sincerely|yours sincerely|yours truly|yours|respectfully
thanks|thank you|many thanks|thanks again|thanks a lot|thank you very much|thanks and regards
thanks in advance|thank you in advance|rgds|br
(?:bien )?cordialement|bien à vous|(?:sincères |meilleures )?salutations|amicalement
merci(?: d'avance| beaucoup| par avance)?|bonne (?:journée|soirée)
mit freundlichen gr(?:ü|ue)(?:ß|ss)en
(?:freundliche|viele|beste|liebe|herzliche) gr(?:ü|ue)(?:ß|ss)e
mfg|lg|vg|gru(?:ß|ss)|(?:vielen )?dank(?:e)?
(?:un )?saludos?(?: cordiales)?|un cordial saludo|atentamente|(?:muchas )?gracias
(?:cordiali|distinti) saluti|saluti|un saluto|grazie(?: mille)?
(?:met )?vriendelijke groet(?:en)?|(?:hartelijke )?groet(?:en)?|bedankt|mvg|dank (?:u|je)(?: wel)?
atenciosamente|(?:melhores )?cumprimentos|obrigad[oa]|abraços?|saudações
(?:serdecznie )?pozdrawiam|z poważaniem|pozdrowienia|dziękuję
(?:med )?vänliga hälsningar|(?:bästa )?hälsningar|mvh|tack
"""
#: One pattern a phrase, tried in turn: an alternation would stop at "thanks" in "thanks in
#: advance" and never try the longer phrase.
_CLOSING_PHRASES = [
    phrase
    for line in _OWN_CLOSINGS.splitlines() + _library_entries("signatures")
    for phrase in _top_level_alternatives(line)
    if phrase
]
_CLOSINGS = _compile_each(
    rf"(?:{phrase})(?!\w)[\s,.!;:\-–—]*(?P<name>.*?)[\s,.!]*" for phrase in _CLOSING_PHRASES
)


def _any_closing(phrases: list[str]) -> re.Pattern[str] | None:
    """One pattern that matches at the start of every line some closing pattern matches
    (each needs its phrase there, then no word character): lines it does not match are
    not tried against the patterns one by one. None if the phrases do not combine (one
    that does not compile, or with a named group): then every line is tried."""
    combined = _compile_each(["(?:" + "|".join(f"(?:{p})" for p in phrases) + r")(?!\w)"])
    return combined[0] if combined else None


_ANY_CLOSING = _any_closing(_CLOSING_PHRASES)

_DISCLAIMER = re.compile(
    r"\W*(?:confidential|confidentiality|disclaimer|caution|privileged|important notice"
    r"|this (?:e-?mail|message|communication)|the information (?:contained|in this)"
    r"|ce (?:message|courriel|mail)|les informations contenues|diese (?:e-?mail|nachricht)"
    r"|este (?:mensaje|correo)|questo messaggio|dit (?:bericht|e-?mailbericht)"
    r"|ta wiadomość|detta (?:e-?mail|meddelande))",
    re.IGNORECASE,
)

_NAME_PARTICLES = frozenset(
    {"de", "da", "del", "der", "den", "di", "du", "la", "le", "van", "von", "y", "e", "dos"}
)
_NAME_SEPARATORS = frozenset({"|", "-", "–", "—", "/", "&"})


# ------------------------------------------------------------------------- detection


@dataclass(frozen=True)
class _Boundary:
    """A header line (or block) where quoted history begins."""

    start: int  # first line of the header
    end: int  # first line after the header
    kind: str  # "wrote", "reply" or "forward"
    weak: bool = False  # a "wrote" line that counts only when ">" lines follow
    body: int = -1  # for forwards: first line of the forwarded message's own header/body


def _next_nonblank(det: Sequence[str], start: int) -> int:
    k = start
    while k < len(det) and not det[k]:
        k += 1
    return k


def _wrote_kind(window: str, *, single_line: bool) -> bool | None:
    """Whether ``window`` is an attribution: ``False`` strong, ``True`` weak, ``None`` not."""
    if not window.endswith((":", "：")) or len(window) > _MAX_ATTRIBUTION_CHARS:
        return None
    lowered = window.lower()
    if not any(verb in lowered for verb in _WROTE_VERBS):
        return None  # cheap test first: some library patterns are quadratic in the length
    has_date = _HAS_DATE.search(window) is not None
    if any(p.match(window) for p in _OWN_WROTE) or any(p.match(window) for p in _LIBRARY_WROTE):
        return not (has_date or "@" in window)
    if single_line and _ANY_WROTE.match(window):
        return "@" not in window
    return None


def _wrote_at(det: Sequence[str], i: int) -> _Boundary | None:
    """An attribution line starting at ``i``, wrapped over up to three lines."""
    end = min(i + 3, len(det))
    if not any(det[k].endswith((":", "：")) for k in range(i, end)):
        return None  # fast path: an attribution ends with a colon
    parts: list[str] = []
    for k in range(i, end):
        if not det[k] or _is_quote(det[k]):
            return None
        parts.append(det[k])
        if len(" ".join(parts)) > _MAX_ATTRIBUTION_CHARS:
            return None
        weak = _wrote_kind(" ".join(parts), single_line=k == i)
        if weak is None:
            continue
        # "On node 2 it fails," + "On Tue, … wrote:": the attribution starts further down.
        later = range(1, k - i + 1)
        if any(_wrote_kind(" ".join(parts[j:]), single_line=j == k - i) is not None for j in later):
            return None
        return _Boundary(i, k + 1, "wrote", weak=weak)
    return None


def _field(clean: str) -> tuple[str, str] | None:
    """``(name, value)`` when the line is a "Name: value" header field we know."""
    if len(clean) > _MAX_HEADER_CHARS or ":" not in clean:
        return None
    match = _FIELD.match(clean)
    if match is None:
        return None
    name = match.group("name").lower()
    if name in _FROM_FIELDS or name in _SUBJECT_FIELDS or name in _OTHER_FIELDS:
        return name, match.group("value")
    return None


_Field = tuple[str, str] | None


def _header_block(
    det: Sequence[str], fields: Sequence[_Field], i: int, *, need_from: bool
) -> tuple[int, bool] | None:
    """An Outlook-style header block at ``i``: ``(end, is_forward)``.

    At least three distinct fields on consecutive lines (one blank line or one wrapped
    continuation line tolerated), the first a "From" field when ``need_from``.
    ``fields[k]`` is ``_field(det[k])``, computed once a body.
    """
    first = fields[i] if i < len(fields) else None
    if first is None or (need_from and first[0] not in _FROM_FIELDS):
        return None
    names = {first[0]}
    forward = False
    last = i
    k = i + 1
    while k < len(det) and k <= i + 12:
        field = fields[k]
        if field is not None:
            names.add(field[0])
            if field[0] in _SUBJECT_FIELDS and _FORWARD_SUBJECT.match(field[1]):
                forward = True
            last = k
        elif k - last > 1 or (not det[k] and not (k + 1 < len(det) and fields[k + 1])):
            # Two lines that are not fields, or a blank line not followed by a field.
            break
        k += 1
    # "From: 5.1.4 / To: 5.2.0 / Date: …" is an upgrade path, not a mail header: a header
    # has a subject or an address.
    if len(names) < 3 or not (names & _SUBJECT_FIELDS or "@" in first[1]):
        return None
    return last + 1, forward


def _quoted_forward_marker(clean: str) -> bool:
    return _is_quote(clean) and _FORWARD_MARKER.fullmatch(clean[1:].strip()) is not None


def _may_start_boundary(det: Sequence[str], fields: Sequence[_Field]) -> list[bool]:
    """For each line, False when no header can start there: ``_boundary_at`` would say None.

    Most lines are prose or log lines, and proving that is cheaper than trying the patterns:
    dividers and forward markers end in a dash, an underscore or a colon, a header block
    starts with a field we know, and an attribution ends, within three lines, in a colon.
    """
    ends_in_colon = [clean.endswith((":", "：")) for clean in det] + [False, False]
    return [
        field is not None
        or clean.endswith(("-", "_"))
        or ends_in_colon[k]
        or ends_in_colon[k + 1]
        or ends_in_colon[k + 2]
        for k, (clean, field) in enumerate(zip(det, fields, strict=True))
    ]


def _boundary_at(det: Sequence[str], fields: Sequence[_Field], i: int) -> _Boundary | None:
    """The kind of quoted-history header starting at line ``i``, if any."""
    line = det[i]
    if not line or _is_quote(line) or len(line) > _MAX_HEADER_CHARS:
        return None
    if _FORWARD_MARKER.fullmatch(line):
        return _Boundary(i, i + 1, "forward", body=i + 1)
    if _ORIGINAL_DIVIDER.fullmatch(line):
        nxt = _next_nonblank(det, i + 1)
        block = _header_block(det, fields, nxt, need_from=False) if nxt < len(det) else None
        if block is not None and block[1]:
            return _Boundary(i, block[0], "forward", body=block[0])
        return _Boundary(i, i + 1, "reply")
    if _UNDERSCORE_DIVIDER.fullmatch(line):
        nxt = _next_nonblank(det, i + 1)
        block = _header_block(det, fields, nxt, need_from=True) if nxt <= i + 3 else None
        if block is None:
            return None
        return _Boundary(i, block[0], "forward" if block[1] else "reply", body=block[0])
    block = _header_block(det, fields, i, need_from=True)
    if block is not None:
        return _Boundary(i, block[0], "forward" if block[1] else "reply", body=block[0])
    return _wrote_at(det, i)


# ------------------------------------------------------------------------ signatures


def _looks_like_name(clean: str) -> bool:
    """Capitalised words and no digits: "Jane Doe", "J. Smith", "Jean-Luc de la Tour | IREX"."""
    if not clean or len(clean) > 50 or _HAS_DIGIT.search(clean):
        return False
    words = [w for w in clean.replace(",", " ").split() if w not in _NAME_SEPARATORS]
    if not 1 <= len(words) <= 5:
        return False
    for word in words:
        letters = [c for c in word if c.isalpha()]
        if not letters:
            return False
        if not letters[0].isupper() and word.lower() not in _NAME_PARTICLES:
            return False
    return True


def _sentence_like(clean: str) -> bool:
    """Prose rather than a name, title, company, address, phone number or link."""
    words = [w for w in clean.split() if any(c.isalpha() for c in w)]
    if len(words) >= 10:
        return True
    return len(words) >= 5 and clean.endswith((".", "?", "!", ":"))


def _contact_block_ok(det: Sequence[str], start: int, end: int) -> bool:
    """Whether ``det[start:end]`` can be the contact block under a closing line."""
    lines = [c for c in det[start:end] if c]
    if not lines:
        return True
    if not _looks_like_name(lines[0]):
        return False
    contact = disclaimer = 0
    for clean in lines:
        if disclaimer or _DISCLAIMER.match(clean):
            disclaimer += 1
            if disclaimer > _MAX_DISCLAIMER_LINES:
                return False
            continue
        contact += 1
        if contact > _MAX_CONTACT_LINES:
            return False
        if len(clean) > _MAX_SIGNATURE_LINE or _sentence_like(clean):
            return False
    return True


def _is_tagline(clean: str) -> bool:
    """A short tagline such as "Sent from my iPhone", not a sentence that starts alike."""
    if len(clean) > _MAX_TAGLINE or clean.endswith("."):
        return False
    return _TAGLINE.match(clean) is not None


def _is_closing(clean: str) -> bool:
    # Starts with a letter: the library's Swedish "/Name" closing would also take "/opt".
    if len(clean) > _MAX_SIGNATURE_LINE or not clean[:1].isalpha():
        return False
    if _ANY_CLOSING is not None and _ANY_CLOSING.match(clean) is None:
        return False
    for closing in _CLOSINGS:
        match = closing.fullmatch(clean)
        if match is not None:
            name = match.group("name")
            if not name or (len(name.split()) <= 3 and _looks_like_name(name)):
                return True
    return False


def _may_close(det: Sequence[str], k: int, end: int) -> bool:
    """False when line ``k`` cannot end the text as a closing: the block under it, up to
    ``end``, does not start with a name, so ``_contact_block_ok`` would say False. Far
    cheaper than the closing patterns, which prose and log lines would all go through."""
    first = _next_nonblank(det, k + 1)
    return first >= end or _looks_like_name(det[first])


def _signature_start(det: Sequence[str]) -> int:
    """Index of the first signature line of the cleaned lines ``det`` (``len(det)`` when none)."""
    nonblank = [k for k, clean in enumerate(det) if clean]
    cut = len(det)

    # RFC 3676 section 4.3: "-- " alone on a line starts the signature.
    for k in nonblank[-(_MAX_AFTER_DELIMITER + 1) :]:
        if det[k] == "--":
            cut = k
            break

    # Mobile taglines sit in the last lines.
    for k in nonblank[-3:]:
        if k < cut and _is_tagline(det[k]):
            cut = k
            break

    # A closing line followed by nothing or by a short contact block.
    before_cut = [k for k in nonblank if k < cut]
    for k in before_cut[-(_MAX_CONTACT_LINES + _MAX_DISCLAIMER_LINES + 1) :]:
        if _may_close(det, k, cut) and _is_closing(det[k]) and _contact_block_ok(det, k + 1, cut):
            if any(det[j] for j in range(k)):
                return k
            # Nothing but the closing: "Thanks!" is then the message; keep it.
            return k + 1
    return cut


# ---------------------------------------------------------------------------- strip


def _join(lines: Iterable[str]) -> str:
    """Lines right-trimmed, runs of blank lines collapsed to one, the whole trimmed."""
    out: list[str] = []
    blank = False
    for line in lines:
        if not _clean(line):
            blank = bool(out)
            continue
        if blank:
            out.append("")
            blank = False
        out.append(line.rstrip())
    return "\n".join(out).strip()


def _dequote(lines: Sequence[str]) -> list[str]:
    """Remove one level of ``>`` quoting (a forward shown as a quote, e.g. Apple Mail)."""
    result = []
    for line in lines:
        stripped = line.lstrip()
        if stripped.startswith(">"):
            stripped = stripped[1:]
            result.append(stripped[1:] if stripped.startswith(" ") else stripped)
        else:
            result.append(line)
    return result


def _unwrap_forward(lines: Sequence[str], boundary: _Boundary, depth: int) -> Stripped:
    """The forwarded message of a bare forward, itself stripped of quotes and signature."""
    rest = list(lines[boundary.body :])
    det = [_clean(line) for line in rest]
    first = _next_nonblank(det, 0)
    if first < len(det) and _is_quote(det[first]):
        rest = _dequote(rest)
        det = [_clean(line) for line in rest]
    start = _next_nonblank(det, 0)
    fields = [_field(clean) for clean in det[start : start + 14]]
    block = _header_block(det[start:], fields, 0, need_from=False) if start < len(det) else None
    header_end = start + block[0] if block is not None else 0
    inner = _strip(rest[header_end:], depth + 1)
    header = list(lines[boundary.start : boundary.body]) + rest[:header_end]
    return Stripped(
        text=inner.text,
        quoted=_join([*header, "", inner.quoted]),
        signature=inner.signature,
    )


def _strip(lines: Sequence[str], depth: int) -> Stripped:
    det = [_clean(line) for line in lines]
    fields = [_field(clean) for clean in det]
    may_start = _may_start_boundary(det, fields)
    own: list[int] = []  # indices of the sender's own lines
    quoted: list[str] = []
    boundary: _Boundary | None = None
    i = 0
    while i < len(lines):
        if not quoted and not own and _quoted_forward_marker(det[i]):
            # Apple Mail on iOS quotes the whole forward, marker included.
            boundary = _Boundary(i, i + 1, "forward", body=i + 1)
            break
        found = _boundary_at(det, fields, i) if may_start[i] else None
        if found is not None:
            after = _next_nonblank(det, found.end)
            if found.kind == "wrote" and after < len(det) and _is_quote(det[after]):
                # Attribution of the ">" block below it; text after that block is new.
                quoted.extend(lines[i : found.end])
                i = found.end
                continue
            if not found.weak:
                boundary = found
                break
        if det[i] and _is_quote(det[i]):
            quoted.append(lines[i])
        elif det[i] or own:  # leading blank lines are dropped by _join anyway
            own.append(i)
        i += 1

    cut = _signature_start([det[k] for k in own])
    body = [lines[k] for k in own[:cut]]
    signature = [lines[k] for k in own[cut:]]
    bare_forward = boundary is not None and boundary.kind == "forward" and not _join(body)
    if boundary is not None and bare_forward and depth < _MAX_FORWARD_DEPTH:
        inner = _unwrap_forward(lines, boundary, depth)
        return Stripped(
            text=inner.text,
            quoted=_join([*quoted, "", inner.quoted]),
            signature=_join([*signature, "", inner.signature]),
        )
    if boundary is not None:
        quoted.extend(lines[boundary.start :])
    return Stripped(text=_join(body), quoted=_join(quoted), signature=_join(signature))
