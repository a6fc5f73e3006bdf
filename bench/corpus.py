"""A realistic, deterministic stream of support mail for the benchmarks in ``bench/``.

``Corpus(seed)`` describes a subscription registry (about 60 customers, CSV ready for
``mailgate subscriptions import``) and an endless numbered stream of raw messages written
to it. Message ``i`` depends only on ``(seed, i)``, so any bench (or any thread) can make
any slice of the stream, and the same seed gives byte-identical mail on every machine.

What the stream holds, by default:

* kinds: plain text (~33%), HTML with a plain alternative (~23%, some Outlook-style
  ``multipart/related`` with an inline logo, a few HTML-only), attachments (~22%: logs,
  screenshots, PDFs, archives, CSV; each 2 KB-200 KB, log-uniform, 1-3 per message) and
  replies (~22%) with quoted history (``>`` levels or an Outlook header block), ``Re:``/
  ``AW:``/``RE:`` subjects, ``In-Reply-To`` and ``References``;
* charsets: UTF-8 (base64, quoted-printable, 8bit), US-ASCII, ISO-8859-1/-2/-15,
  windows-1252, KOI8-R, ISO-2022-JP, Shift_JIS, GB2312; RFC 2047 display names and
  subjects in the part's charset, RFC 2231 or RFC 2047 attachment names;
* headers a real message carries: Received chain, DKIM-Signature, ARC,
  Authentication-Results, X-Mailer / User-Agent, Thread-Index, Content-Language;
* what the gateway should decide (``CorpusMessage.expect``): ``ticket`` (~82%),
  ``unknown_subscription`` (~10%, a SUB- ID the registry lacks), ``end_user`` (~5%, a
  colleague not registered as a contact) and ``automatic`` (~3%, out-of-office replies
  with ``Auto-Submitted``). The bodies are English with names, signatures and product
  words in the charset's language, so a language rule should accept them.

Use::

    from bench.corpus import Corpus
    corpus = Corpus(seed=1)
    corpus.write_registry(path)              # CSV for `mailgate subscriptions import`
    for m in corpus.messages(1000):          # CorpusMessage(raw=..., mail_from=..., ...)
        ...

    .venv/bin/python bench/corpus.py --n 50 --out /tmp/corpus   # .eml files + registry.csv
    .venv/bin/python bench/corpus.py --n 2000                   # statistics only
"""

from __future__ import annotations

import argparse
import base64
import binascii
import collections
import csv
import datetime as dt
import io
import math
import random
import statistics
import sys
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.header import Header
from email.utils import format_datetime
from pathlib import Path

CRLF = "\r\n"
SUPPORT_ADDRESS = "support@irex.example"
SUPPORT_DISPLAY = "IREX Support"
# Registry IDs are SUB-10000..SUB-89999; SUB-9xxxx is never registered (R-SUB refusals).
_UNKNOWN_ID_BASE = 90000
_BASE_DATE = dt.datetime(2026, 11, 23, 7, 30, tzinfo=dt.UTC)


# ----------------------------------------------------------------------------- charsets


@dataclass(frozen=True)
class CharsetProfile:
    charset: str  # the MIME charset name
    cte: str  # transfer encoding of text parts: base64 | quoted-printable | 8bit | 7bit
    weight: int
    language: str  # Content-Language of the sender's client
    names: tuple[str, ...]  # "First Last" in this script
    signature: tuple[str, ...]  # extra signature lines (company, greeting) in the charset
    org_words: tuple[str, ...]  # organisation name parts
    curly: bool = False  # windows-1252 clients send typographic quotes and dashes


PROFILES: tuple[CharsetProfile, ...] = (
    CharsetProfile("utf-8", "quoted-printable", 16, "en-GB",
                   ("Zoë Ångström", "Łukasz Wójcik", "Søren Ærø", "Chloé Dubois",
                    "Jürgen Groß", "Ana Muñoz", "Ömer Yılmaz", "Jane Admin"),
                   ("Sent with ❤ from the ops team", "Tel. +44 20 7946 0958"),
                   ("Nordlicht", "Björk", "Crème", "Fjällräven", "Łódź"), curly=True),
    CharsetProfile("utf-8", "base64", 14, "en-US",
                   ("Mike O'Neil", "Priya Raghunathan", "Kateřina Nováková", "José García",
                    "François Lévesque", "Gülşen Demir"),
                   ("Senior Systems Engineer – Platform", "Mobile: +1 415 555 0134"),
                   ("Summit", "Cascade", "Pioneer", "Señor Foods", "Ærodyn"), curly=True),
    CharsetProfile("utf-8", "8bit", 8, "de-DE",
                   ("Jürgen Müller", "Anna Schäfer", "Björn Weiß", "Lena Kröger"),
                   ("Müller & Söhne Logistik GmbH · Hafenstraße 12 · 20457 Hamburg",
                    "Geschäftsführer: Dr. Hans Bäcker"),
                   ("Müller", "Süd", "Bäckerei", "Straßen", "Grün")),
    CharsetProfile("us-ascii", "7bit", 12, "en-US",
                   ("John Smith", "Emily Clark", "Robert Brown", "Linda Johnson",
                    "David Lee", "Sarah Wilson"),
                   ("IT Operations | Service Desk", "Phone: +1 312 555 0199"),
                   ("Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne")),
    CharsetProfile("iso-8859-1", "quoted-printable", 10, "fr-FR",
                   ("René Lefèvre", "Hélène Moreau", "Jérôme Dupré", "Agnès Kühn"),
                   ("Société Générale de Transports SA - Direction des Systèmes",
                    "Tél. : +33 1 42 68 53 00"),
                   ("Société", "Crédit", "Électrique", "Lumière", "Forêt")),
    CharsetProfile("windows-1252", "quoted-printable", 8, "en-GB",
                   ("Siobhán O'Brien", "Zoë Hart", "Renée Walsh", "Noël Byrne"),
                   ("“Keeping the lights on” – Infrastructure Team", "Price list: 1.200 €"),
                   ("Café", "Naïve", "Résumé", "Coöp"), curly=True),
    CharsetProfile("iso-8859-15", "quoted-printable", 4, "nl-NL",
                   ("Geert Van Dijck", "Anaïs Peeters", "Joëlle Maes"),
                   ("Budget 2027: 45.000 € (excl. btw)", "Tel. +32 2 555 12 34"),
                   ("Brussel", "Ostende", "Namür")),
    CharsetProfile("iso-8859-2", "quoted-printable", 5, "pl-PL",
                   ("Łukasz Kowalski", "Zofia Wiśniewska", "Jiří Dvořák", "Małgorzata Zając"),
                   ("Dział Informatyki - Zespół Utrzymania", "Kraków, ul. Długa 7"),
                   ("Łódź", "Gdańsk", "Poznań", "Śląsk")),
    CharsetProfile("koi8-r", "base64", 4, "ru-RU",
                   ("Дмитрий Иванов", "Ольга Смирнова", "Сергей Кузнецов"),
                   ("С уважением, отдел ИТ", "ООО \"Северный Ветер\""),
                   ("Север", "Волга", "Байкал")),
    CharsetProfile("iso-2022-jp", "7bit", 7, "ja-JP",
                   ("田中 太郎", "佐藤 花子", "鈴木 一郎"),
                   ("よろしくお願いいたします。", "株式会社サンプル 情報システム部"),
                   ("富士", "桜", "大和")),
    CharsetProfile("shift_jis", "base64", 4, "ja-JP",
                   ("高橋 健", "伊藤 美咲"),
                   ("以上、よろしくお願いします。", "東京都千代田区丸の内1-1"),
                   ("東京", "関西", "日の出")),
    CharsetProfile("gb2312", "base64", 4, "zh-CN",
                   ("王伟", "李娜", "张强"),
                   ("此致敬礼", "上海市浦东新区 信息技术部"),
                   ("长城", "华南", "东方")),
)

_ASCII_FIRST = ("alex", "maria", "tom", "nina", "paul", "ines", "omar", "lena", "ravi", "kim",
                "eva", "sam", "yuki", "lars", "mia", "noah", "ella", "jon", "aisha", "piet")
_ASCII_LAST = ("schmidt", "martin", "rossi", "novak", "tanaka", "silva", "jensen", "kaur",
               "moreau", "berg", "costa", "weber", "ito", "nagy", "popescu", "evans")
_TLDS = ("example", "example.com", "example.org", "example.net")

# ------------------------------------------------------------------------------ content

_COMPONENTS = ("scheduler", "report engine", "sync agent", "REST API", "web console",
               "license service", "backup job", "cluster manager", "indexer", "SSO gateway",
               "mail connector", "audit log", "import wizard", "database migration")
_SYMPTOMS = (
    "The {c} stops responding after about {n} minutes under load.",
    "Since the upgrade to {v} the {c} fails with error code E{e}.",
    "Our nightly {c} run ended with status FAILED at {t}; nothing was changed on our side.",
    "Users report that the {c} takes {n} seconds to open a page that used to take one.",
    "After restarting node {h} the {c} no longer joins the cluster.",
    "The {c} logs \"connection reset by peer\" roughly every {n} seconds.",
    "We see {n} duplicate entries per hour created by the {c}.",
    "The installer for {v} aborts at the {c} step with 'schema lock timeout'.",
    "Memory of the {c} process grows to {n} GB within a day until it is killed.",
    "The {c} rejects valid certificates since we rotated them on {d}.",
)
_CONTEXT = (
    "We run IREX {v} on {n} nodes behind a load balancer, RHEL 9, PostgreSQL 15.",
    "The environment is our production cluster in the {loc} data centre.",
    "Nothing else changed except the OS patches applied on {d}.",
    "We already restarted the services and cleared the cache, without effect.",
    "The problem started at {t} and affects about {n} users.",
    "Attached you will find the logs of the last run and a screenshot of the error.",
    "A colleague opened a similar case last year, but we cannot find the number.",
    "We followed knowledge base article KB{e} step by step.",
    "Rolling back to {v0} is possible, but we would rather not lose the new reports.",
    "Could you tell us whether this is a known issue and if a hotfix exists?",
)
_ASKS = (
    "Could you please look into this as soon as possible?",
    "Please let us know which further information you need.",
    "Is there a workaround we can apply until a fix is available?",
    "We would appreciate a call to go through this together.",
    "Can you confirm whether {v} is affected as well?",
)
_LOCATIONS = ("Frankfurt", "Dublin", "Paris", "Virginia", "Tokyo", "Warsaw", "Amsterdam")
_LEVEL_TAGS = ("[L1]", "[L2]", "[L3]", "[L4]", "[P2]", "[Sev 2]", "[SEV1]", "Level 3 -")
_ENV_TAGS = ("[staging]", "[test]", "[uat]", "[prod]")
_TITLES = (
    "{c} fails after upgrade to {v}",
    "Urgent: {c} down",
    "{c} very slow since {d}",
    "Question about {c} configuration",
    "Error E{e} in {c}",
    "{c}: duplicate records",
    "Cannot log in to the {c}",
    "{c} crashes on node {h}",
)
_LOG_LEVELS = ("INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR")
_LOG_CLASSES = ("com.irex.sync.Scheduler", "com.irex.report.Engine", "com.irex.db.Migrator",
                "com.irex.auth.SsoFilter", "com.irex.cluster.Membership", "org.hibernate.SQL")
_CLIENTS = (
    ("X-Mailer", "Microsoft Outlook 16.0"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Thunderbird/128.5.0"),
    ("X-Mailer", "Apple Mail (2.3776.700.51.11.1)"),
    ("User-Agent", "Roundcube Webmail/1.6.9"),
    ("X-Mailer", "iPhone Mail (22B91)"),
    (None, None),  # Gmail sets neither
)


@dataclass(frozen=True)
class SubscriptionSpec:
    id: str
    organization: str
    tier: str
    domain: str
    contacts: tuple[str, ...]  # addresses, or ("@domain",) for a whole domain
    nonprod_environments: tuple[str, ...]
    profile: int  # index into PROFILES: the charset its people write in

    @property
    def domain_wide(self) -> bool:
        return self.contacts == ("@" + self.domain,)


@dataclass(frozen=True)
class CorpusMessage:
    index: int
    kind: str  # plain | html | attachment | reply
    expect: str  # ticket | unknown_subscription | end_user | automatic
    charset: str
    cte: str
    subscription: str | None  # the registered subscription the sender belongs to
    message_id: str  # without angle brackets
    mail_from: str  # envelope sender
    rcpt_tos: tuple[str, ...]
    raw: bytes  # CRLF line endings, ready for smtplib.sendmail

    @property
    def size(self) -> int:
        return len(self.raw)


# ------------------------------------------------------------------------- encoding bits


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def _qp(data: bytes) -> bytes:
    encoded = binascii.b2a_qp(data.replace(b"\r\n", b"\n"), quotetabs=False, istext=True)
    return encoded.replace(b"\n", b"\r\n") + (b"" if encoded.endswith(b"\n") else b"\r\n")


def _crlf(data: bytes) -> bytes:
    data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def _encode_body(data: bytes, cte: str) -> bytes:
    if cte == "base64":
        return _b64(data)
    if cte == "quoted-printable":
        return _qp(data)
    return _crlf(data)


def _header_words(value: str, charset: str, name: str) -> str:
    """``value`` as an RFC 2047 header in ``charset`` (plain when it is ASCII)."""
    if value.isascii():
        return value
    return Header(value, charset if charset != "us-ascii" else "utf-8", header_name=name,
                  maxlinelen=76).encode(linesep=CRLF)


def _address(name: str, addr: str, charset: str) -> str:
    if not name:
        return addr
    if name.isascii():
        if any(c in name for c in ",.;:@\"'()<>[]"):
            name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return f"{name} <{addr}>"
    return f"{_header_words(name, charset, 'From')} <{addr}>"


def _fold(name: str, value: str, width: int = 76) -> str:
    """Fold a long ASCII header value (DKIM b=, References) at spaces or hard."""
    line = f"{name}: {value}"
    if len(line) <= width:
        return line
    out: list[str] = []
    current = f"{name}:"
    for word in value.split(" "):
        while len(word) > width - 1:  # an unbreakable run: split it (legal inside b=)
            if current.strip():
                out.append(current)
            out.append("\t" + word[: width - 1])
            word = word[width - 1:]
            current = ""
        if current and len(current) + 1 + len(word) > width:
            out.append(current)
            current = "\t" + word
        else:
            current = f"{current} {word}" if current else "\t" + word
    if current.strip():
        out.append(current)
    return CRLF.join(out)


def _part(headers: Sequence[tuple[str, str]], body: bytes) -> bytes:
    head = "".join(f"{n}: {v}{CRLF}" for n, v in headers)
    return head.encode("ascii") + b"\r\n" + body


def _multipart(subtype: str, boundary: str, parts: Sequence[bytes], params: str = "") -> bytes:
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + p +
                    (b"" if p.endswith(b"\r\n") else b"\r\n") for p in parts)
    body += b"--" + boundary.encode() + b"--\r\n"
    ctype = f'multipart/{subtype};{params}{CRLF}\tboundary="{boundary}"'
    return _part([("Content-Type", ctype)], body)


# --------------------------------------------------------------------------------- corpus


class Corpus:
    """A registry of subscriptions and the numbered message stream written to it."""

    def __init__(
        self,
        seed: int = 1,
        *,
        subscriptions: int = 60,
        support_address: str = SUPPORT_ADDRESS,
        unknown_share: float = 0.10,
        end_user_share: float = 0.05,
        automatic_share: float = 0.03,
    ) -> None:
        self.seed = seed
        self.support_address = support_address
        self.shares = (unknown_share, end_user_share, automatic_share)
        self.subscriptions = self._make_registry(subscriptions)
        self._named = [s for s in self.subscriptions if not s.domain_wide]

    # ---------------------------------------------------------------- registry

    def _make_registry(self, count: int) -> list[SubscriptionSpec]:
        rng = random.Random(f"registry:{self.seed}")
        ids = rng.sample(range(10000, _UNKNOWN_ID_BASE), count)
        weights = [p.weight for p in PROFILES]
        subs = []
        for n, number in enumerate(ids):
            profile = rng.choices(range(len(PROFILES)), weights)[0]
            p = PROFILES[profile]
            org_word = rng.choice(p.org_words)
            org = f"{org_word} {rng.choice(('Holding', 'Systems', 'Logistics', 'Bank', 'Energy', 'Retail', 'Health'))}"  # noqa: E501
            domain = f"c{n:03d}-{rng.choice(_ASCII_LAST)}.{rng.choice(_TLDS)}"
            tier = "premier" if rng.random() < 0.3 else "standard"
            if rng.random() < 0.4:
                contacts: tuple[str, ...] = ("@" + domain,)
            else:
                people = rng.sample(range(len(_ASCII_FIRST)), rng.randint(2, 4))
                contacts = tuple(
                    f"{_ASCII_FIRST[i]}.{rng.choice(_ASCII_LAST)}@{domain}" for i in people
                )
            nonprod = tuple(rng.sample(("staging", "test", "uat"), rng.randint(1, 2))) if (
                tier == "premier" and rng.random() < 0.5) else ()
            subs.append(SubscriptionSpec(f"SUB-{number:05d}", org, tier, domain, contacts,
                                         nonprod, profile))
        return subs

    def registry_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(("id", "organization", "tier", "valid_from", "valid_until", "contacts",
                         "nonprod_environments"))
        for s in self.subscriptions:
            writer.writerow((s.id, s.organization, s.tier, "2020-01-01", "2099-12-31",
                             ";".join(s.contacts), ";".join(s.nonprod_environments)))
        return out.getvalue()

    def write_registry(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.registry_csv(), encoding="utf-8")
        return path

    # ---------------------------------------------------------------- messages

    def messages(self, n: int, start: int = 0) -> Iterator[CorpusMessage]:
        for i in range(start, start + n):
            yield self.message(i)

    def message(self, index: int) -> CorpusMessage:
        return _Builder(self, index).build()


class _Builder:
    """Makes message ``index`` of a corpus; all randomness comes from one seeded Random."""

    def __init__(self, corpus: Corpus, index: int) -> None:
        self.corpus = corpus
        self.index = index
        self.rng = random.Random(f"message:{corpus.seed}:{index}")

    # ------------------------------------------------------------ small helpers

    def _hex(self, n: int) -> str:
        return self.rng.randbytes((n + 1) // 2).hex()[:n].upper()

    def _fill(self, template: str) -> str:
        r = self.rng
        major = r.choice((6, 7, 7, 8))
        return template.format(
            c=r.choice(_COMPONENTS),
            v=f"{major}.{r.randint(0, 5)}.{r.randint(0, 9)}",
            v0=f"{major}.{r.randint(0, 3)}.{r.randint(0, 9)}",
            n=r.randint(2, 90),
            e=r.randint(1000, 9999),
            h=f"irex-{r.choice(('app', 'db', 'web', 'idx'))}{r.randint(1, 12):02d}",
            t=f"{r.randint(0, 23):02d}:{r.randint(0, 59):02d}",
            d=f"{r.randint(1, 28)} {r.choice(('Oct', 'Nov'))} 2026",
            loc=r.choice(_LOCATIONS),
        )

    def _typography(self, text: str) -> str:
        if not self.profile.curly:
            return text
        return text.replace(" - ", " – ").replace("'", "’")

    def _person(self, sub: SubscriptionSpec, *, end_user: bool = False) -> tuple[str, str]:
        """(display name, address) of someone writing for ``sub``."""
        r = self.rng
        name = r.choice(self.profile.names)
        if sub.domain_wide or end_user:
            local = f"{r.choice(_ASCII_FIRST)}.{r.choice(_ASCII_LAST)}"
            if end_user:
                local = f"{local}{r.randint(2, 99)}"  # never one of the registered contacts
            return name, f"{local}@{sub.domain}"
        return name, r.choice(sub.contacts)

    # ------------------------------------------------------------ text

    def _log_lines(self, size: int) -> str:
        r = self.rng
        lines = []
        total = 0
        second = r.randint(0, 80000)
        while total < size:
            second += r.randint(0, 3)
            level = r.choice(_LOG_LEVELS)
            line = (f"2026-11-{22 + second // 86400:02d} {second // 3600 % 24:02d}:"
                    f"{second // 60 % 60:02d}:{second % 60:02d},{r.randint(0, 999):03d} "
                    f"{level:5} [worker-{r.randint(1, 16)}] {r.choice(_LOG_CLASSES)} - "
                    f"{self._fill(r.choice(_SYMPTOMS))}")
            if level == "ERROR" and r.random() < 0.3:
                line += "\njava.lang.IllegalStateException: lock timeout\n" + "".join(
                    f"\tat com.irex.{r.choice(('db', 'sync', 'core'))}.Worker.run"
                    f"(Worker.java:{r.randint(10, 900)})\n" for _ in range(r.randint(3, 12)))
                line = line.rstrip("\n")
            lines.append(line)
            total += len(line) + 1
        return "\n".join(lines) + "\n"

    def _body_text(self, name: str, sub: SubscriptionSpec) -> str:
        r = self.rng
        paragraphs = [r.choice(("Hello,", "Hi support team,", "Dear IREX Support,", "Hello team,"))]
        problem = [self._fill(r.choice(_SYMPTOMS))]
        problem += [self._fill(s) for s in r.sample(_CONTEXT, r.randint(1, 4))]
        paragraphs.append(" ".join(problem))
        paragraphs = [self._typography(p) for p in paragraphs]
        if r.random() < 0.35:  # logs are pasted as they are, never "typographed"
            paragraphs.append("Here is the relevant part of the log:\n\n" +
                              self._log_lines(r.randint(300, 2500)).rstrip())
        if r.random() < 0.5:
            paragraphs.append(self._typography(
                " ".join(self._fill(s) for s in r.sample(_CONTEXT, 2))))
        paragraphs.append(self._typography(self._fill(r.choice(_ASKS))))
        signature = [r.choice(("Best regards,", "Kind regards,", "Thanks,", "Regards,")),
                     name, sub.organization]
        signature += list(self.profile.signature)
        return "\n\n".join(paragraphs) + "\n\n" + "\n".join(signature) + "\n"

    def _quoted_history(self, sub: SubscriptionSpec, subject: str) -> str:
        r = self.rng
        levels = r.randint(1, 3)
        history = ""
        for level in range(levels):
            name, addr = self._person(sub)
            body = self._body_text(name, sub)
            when = _BASE_DATE - dt.timedelta(days=level + 1, minutes=r.randint(0, 600))
            if r.random() < 0.5:
                quoted = "\n".join(("> " + line) if line else ">"
                                   for line in (body + history).splitlines())
                history = (f"On {when:%a, %d %b %Y} at {when:%H:%M}, {name} <{addr}> wrote:\n"
                           f"{quoted}\n")
            else:
                history = ("-----Original Message-----\n"
                           f"From: {name} <{addr}>\n"
                           f"Sent: {when:%A, %B %d, %Y %I:%M %p}\n"
                           f"To: {SUPPORT_DISPLAY} <{self.corpus.support_address}>\n"
                           f"Subject: {subject}\n\n{body}\n{history}")
        return history

    def _html(self, text: str, charset: str) -> str:
        r = self.rng
        paragraphs = []
        for block in text.split("\n\n"):
            escaped = (block.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
            if block.startswith(("> ", ">")):
                paragraphs.append('<blockquote type="cite" style="margin:0 0 0 .8ex;'
                                  'border-left:1px solid #ccc;padding-left:1ex">'
                                  + escaped.replace("\n", "<br>\n") + "</blockquote>")
            elif "\tat " in block or block.count("\n") > 6:
                paragraphs.append('<pre style="font-family:Consolas;font-size:9pt">'
                                  + escaped + "</pre>")
            else:
                paragraphs.append('<p class="MsoNormal"><span style="font-size:11.0pt;'
                                  'font-family:&quot;Calibri&quot;,sans-serif">'
                                  + escaped.replace("\n", "<br>\n") + "</span></p>")
        style = "\n".join(
            f"p.MsoNormal{i}, li.MsoNormal{i} {{margin:0cm;font-size:11.0pt;"
            f"font-family:\"Calibri\",sans-serif;color:#{self._hex(6)}}}"
            for i in range(r.randint(5, 40)))
        return (f'<html xmlns:o="urn:schemas-microsoft-com:office:office">\n<head>\n'
                f'<meta http-equiv="Content-Type" content="text/html; charset={charset}">\n'
                f'<style><!--\n{style}\n--></style>\n</head>\n'
                f'<body lang="EN-US" link="#0563C1" vlink="#954F72">\n'
                f'<div class="WordSection1">\n' + "\n".join(paragraphs) +
                "\n</div>\n</body>\n</html>\n")

    # ------------------------------------------------------------ parts

    def _text_part(self, text: str, subtype: str = "plain") -> bytes:
        p = self.profile
        data = text.encode(p.charset)
        cte = p.cte
        if subtype == "html" and cte in ("8bit", "7bit") and p.charset != "iso-2022-jp":
            cte = "quoted-printable"  # HTML lines are long
        params = f"text/{subtype}; charset=\"{p.charset}\""
        if subtype == "plain" and self.rng.random() < 0.2:
            params += "; format=flowed"
        return _part([("Content-Type", params), ("Content-Transfer-Encoding", cte)],
                     _encode_body(data, cte))

    def _attachment(self, size: int) -> bytes:
        r = self.rng
        kind = r.choice(("log", "log", "png", "pdf", "zip", "csv"))
        if kind == "log":
            data = self._log_lines(size).encode("utf-8")
            ctype, name = "text/plain", r.choice(("server.log", "irex-sync.log",
                                                  "Protokoll_Übersicht.log", "catalina.out"))
        elif kind == "csv":
            rows = ["id;user;duration_ms;status"]
            total = len(rows[0]) + 1
            while total < size:
                rows.append(f"{r.randint(1, 10**6)};{r.choice(_ASCII_FIRST)};"
                            f"{r.randint(1, 90000)};{r.choice(('ok', 'failed', 'timeout'))}")
                total += len(rows[-1]) + 1
            data = ("\n".join(rows) + "\n").encode()
            ctype, name = "text/csv", "export_résultats.csv"
        else:
            magic = {"png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "pdf": b"%PDF-1.7\n%\xe2\xe3",
                     "zip": b"PK\x03\x04\x14\x00\x00\x00\x08\x00"}[kind]
            data = magic + r.randbytes(max(size - len(magic), 0))
            ctype, name = {"png": ("image/png", "screenshot 2026-11-23 09.14.png"),
                           "pdf": ("application/pdf", "Fehlerbericht März.pdf"),
                           "zip": ("application/zip", "diagnostics-bundle.zip")}[kind]
        if name.isascii():
            disp = f'attachment;{CRLF}\tfilename="{name}"'
            ct = f'{ctype}; name="{name}"'
        elif r.random() < 0.5:  # RFC 2231 (Thunderbird, Apple Mail)
            quoted = urllib.parse.quote(name, safe="")
            disp = f"attachment;{CRLF}\tfilename*=utf-8''{quoted}"
            ct = f"{ctype};{CRLF}\tname*=utf-8''{quoted}"
        else:  # RFC 2047 inside quotes (Outlook, Gmail)
            words = Header(name, "utf-8").encode()
            disp = f'attachment;{CRLF}\tfilename="{words}"'
            ct = f'{ctype};{CRLF}\tname="{words}"'
        return _part([("Content-Type", ct), ("Content-Disposition", disp),
                      ("Content-Transfer-Encoding", "base64")], _b64(data))

    def _alternative(self, text: str) -> bytes:
        r = self.rng
        html = self._text_part(self._html(text, self.profile.charset), "html")
        plain = self._text_part(text)
        if r.random() < 0.08:
            return html  # an HTML-only client
        alt = _multipart("alternative", f"_000_{self._hex(24)}_", [plain, html])
        if r.random() < 0.3:  # Outlook: a logo in the signature, multipart/related
            logo = _part([("Content-Type", 'image/png; name="image001.png"'),
                          ("Content-Description", "image001.png"),
                          ("Content-Disposition", 'inline; filename="image001.png"'),
                          ("Content-ID", f"<image001.png@01DB{self._hex(12)}>"),
                          ("Content-Transfer-Encoding", "base64")],
                         _b64(b"\x89PNG\r\n\x1a\n" + r.randbytes(r.randint(3000, 15000))))
            return _multipart("related", f"_004_{self._hex(24)}_", [alt, logo],
                              ' type="multipart/alternative";')
        return alt

    # ------------------------------------------------------------ the whole message

    def build(self) -> CorpusMessage:
        corpus, r = self.corpus, self.rng
        unknown, end_user, automatic = corpus.shares
        roll = r.random()
        if roll < unknown:
            expect = "unknown_subscription"
        elif roll < unknown + end_user:
            expect = "end_user"
        elif roll < unknown + end_user + automatic:
            expect = "automatic"
        else:
            expect = "ticket"
        sub = r.choice(corpus._named if expect == "end_user" else corpus.subscriptions)
        # Mostly the customer's usual client; now and then a phone or webmail in UTF-8.
        self.profile = PROFILES[sub.profile] if r.random() < 0.85 else r.choice(PROFILES[:2])
        p = self.profile
        name, addr = self._person(sub, end_user=expect == "end_user")

        kind = r.choices(("plain", "html", "attachment", "reply"), (33, 23, 22, 22))[0]
        title = self._typography(self._fill(r.choice(_TITLES)))
        if r.random() < 0.15 and not p.charset.startswith(("us-", "iso-2022", "shift", "gb")):
            title += f" ({r.choice(p.org_words)})"
        tags = []
        if expect == "unknown_subscription":
            tags.append(f"[SUB-{_UNKNOWN_ID_BASE + r.randint(0, 9999):05d}]")
        elif expect == "end_user" or r.random() < 0.7:
            tags.append(f"[{sub.id}]")
        if r.random() < 0.5:
            tags.append(r.choice(_LEVEL_TAGS))
        if r.random() < 0.1:
            tags.append(r.choice(_ENV_TAGS))
        r.shuffle(tags)
        subject = " ".join([*tags, title])
        if kind == "reply":
            subject = f"{r.choice(('Re:', 'RE:', 'AW:', 'Re: Re:', 'RE: [EXTERNAL]'))} {subject}"
        text = self._body_text(name, sub)
        if expect == "automatic":
            kind = "plain"
            subject = f"{r.choice(('Automatic reply:', 'Out of Office:', 'Abwesenheitsnotiz:'))} {subject}"  # noqa: E501
            text = self._typography(f"Hello,\n\nI am out of the office until 2 Dec 2026 with "
                                    f"limited access to e-mail.\n\n{name}\n")
        references: list[str] = []
        if kind == "reply":
            text = text + "\n" + self._quoted_history(sub, subject.split(" ", 1)[1])
            references = [f"{self._hex(16).lower()}.{k}@{sub.domain}"
                          for k in range(r.randint(1, 5))]

        if kind == "plain":
            body = self._text_part(text)
        elif kind == "html":
            body = self._alternative(text)
        elif kind == "attachment":
            first = self._alternative(text) if r.random() < 0.5 else self._text_part(text)
            attachments = [self._attachment(int(math.exp(r.uniform(math.log(2000),
                                                                    math.log(200_000)))))
                           for _ in range(r.choices((1, 2, 3), (70, 20, 10))[0])]
            body = _multipart("mixed", f"----=_Part_{r.randint(10**5, 10**6)}_"
                              f"{r.randint(10**8, 10**9)}.{1764000000000 + self.index}",
                              [first, *attachments])
        else:  # reply: plain or alternative, sometimes with an attachment
            first = self._alternative(text) if r.random() < 0.5 else self._text_part(text)
            if r.random() < 0.15:
                body = _multipart("mixed", f"=_{self._hex(20)}",
                                  [first, self._attachment(r.randint(2000, 60000))])
            else:
                body = first

        when = _BASE_DATE + dt.timedelta(seconds=self.index * 7 + r.randint(0, 6))
        mx = f"mx{r.randint(1, 4)}.{sub.domain}"
        message_id = (f"{when:%Y%m%d%H%M%S}.{corpus.seed}.{self.index}."
                      f"{self._hex(12).lower()}@{mx}")
        headers = [
            ("Return-Path", f"<{addr}>"),
            ("Received", f"from {mx} ({mx} [192.0.2.{r.randint(1, 254)}]){CRLF}\tby "
                         f"mx.irex.example (Postfix) with ESMTPS id {self._hex(10)}{CRLF}\tfor "
                         f"<{corpus.support_address}>; {format_datetime(when)}"),
            ("Received", f"from [10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}]"
                         f" (unknown [10.1.2.3]){CRLF}\tby {mx} with ESMTPSA id "
                         f"{self._hex(12)}; {format_datetime(when)}"),
        ]
        headers_text = [
            _fold("DKIM-Signature",
                  f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={sub.domain}; s=sel{r.randint(1, 9)};"
                  f" t={int(when.timestamp())}; h=from:to:subject:date:message-id:mime-version;"
                  f" bh={base64.b64encode(r.randbytes(32)).decode()};"
                  f" b={base64.b64encode(r.randbytes(256)).decode()}"),
            _fold("Authentication-Results",
                  f"mx.irex.example; dkim=pass header.d={sub.domain}; spf=pass "
                  f"smtp.mailfrom={addr}; dmarc=pass header.from={sub.domain}"),
        ]
        headers += [(line.split(":", 1)[0], line.split(":", 1)[1].lstrip(" "))
                    for line in headers_text]
        headers += [
            ("From", _address(name, addr, p.charset)),
            ("To", _address(SUPPORT_DISPLAY, corpus.support_address, p.charset)),
        ]
        if r.random() < 0.25:
            cc_name, cc_addr = self._person(sub, end_user=True)
            headers.append(("Cc", _address(cc_name, cc_addr, p.charset)))
        headers += [
            ("Subject", _header_words(subject, p.charset, "Subject")),
            ("Date", format_datetime(when)),
            ("Message-ID", f"<{message_id}>"),
        ]
        if references:
            headers.append(("In-Reply-To", f"<{references[-1]}>"))
            headers.append(("References", _fold("References", " ".join(
                f"<{ref}>" for ref in references)).split(": ", 1)[1]))
        if expect == "automatic":
            headers += [("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")]
        client = r.choice(_CLIENTS)
        if client[0]:
            headers.append(client)
        if client[1] and "Outlook" in client[1]:
            headers.append(("Thread-Index", base64.b64encode(r.randbytes(22)).decode()))
        headers += [("Content-Language", p.language), ("MIME-Version", "1.0")]
        raw = "".join(f"{n}: {v}{CRLF}" for n, v in headers).encode("ascii") + body
        return CorpusMessage(
            index=self.index,
            kind=kind,
            expect=expect,
            charset=p.charset,
            cte=p.cte,
            subscription=sub.id,
            message_id=message_id,
            mail_from=addr,
            rcpt_tos=(corpus.support_address,),
            raw=raw,
        )


# ---------------------------------------------------------------------------------- CLI


def summary(messages: Sequence[CorpusMessage]) -> dict[str, object]:
    sizes = sorted(m.size for m in messages)

    def pct(q: float) -> int:
        return sizes[min(int(q * len(sizes)), len(sizes) - 1)]

    return {
        "messages": len(messages),
        "bytes": sum(sizes),
        "size_mean": round(statistics.fmean(sizes)),
        "size_p50": pct(0.5),
        "size_p90": pct(0.9),
        "size_max": sizes[-1],
        "kind": dict(collections.Counter(m.kind for m in messages).most_common()),
        "expect": dict(collections.Counter(m.expect for m in messages).most_common()),
        "charset": dict(collections.Counter(f"{m.charset}/{m.cte}"
                                            for m in messages).most_common()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write NNNNN.eml files and registry.csv here")
    args = parser.parse_args(argv)
    corpus = Corpus(args.seed)
    messages = list(corpus.messages(args.n))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        corpus.write_registry(args.out / "registry.csv")
        for m in messages:
            (args.out / f"{m.index:05d}-{m.kind}-{m.expect}.eml").write_bytes(m.raw)
    for key, value in summary(messages).items():
        print(f"{key:10} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
