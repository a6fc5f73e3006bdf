"""MIME robustness of ``parse_message`` (fixtures under ``fixtures/mime/``, each with the
expected result in JSON beside it), parser fuzzing with hypothesis, the subject tags
(``mail/subject.py``) and automatic-mail detection (``mail/loops.py``)."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from mailgate.db.models import InboxItem, OutboxMessage, Ticket
from mailgate.ingest import pipeline
from mailgate.ingest.store import dedupe_key
from mailgate.mail import parse as parse_mod
from mailgate.mail.loops import automatic_reason
from mailgate.mail.parse import decode_bytes, header_message_id, parse_message
from mailgate.mail.subject import (
    compile_subscription_pattern,
    find_severity,
    read_tags,
    strip_prefixes,
    ticket_tag_pattern,
)
from tests.conftest import MONDAY_0900, add_subscription
from tests.support.mailtools import make_mail

MIME = Path(__file__).parent / "fixtures" / "mime"
FIXTURES = sorted(p.stem for p in MIME.glob("*.eml"))


def _load(name: str) -> tuple[bytes, dict[str, Any]]:
    raw = (MIME / f"{name}.eml").read_bytes()
    expected = json.loads((MIME / f"{name}.json").read_text(encoding="utf-8"))
    return raw, expected


def _fixture_params() -> list[str]:
    return FIXTURES


def test_every_fixture_has_its_expectation() -> None:
    assert len(FIXTURES) >= 15
    for name in FIXTURES:
        assert (MIME / f"{name}.json").is_file(), name


@pytest.mark.parametrize("name", _fixture_params())
def test_mime_fixture(name: str) -> None:
    raw, exp = _load(name)
    mail = parse_message(raw)

    assert mail.message_id == exp["message_id"]
    if "subject" in exp:
        assert mail.subject == exp["subject"]
    if "from" in exp:
        assert mail.from_ is not None
        assert [mail.from_.name, mail.from_.addr] == exp["from"]
    if "to" in exp:
        assert [a.addr for a in mail.to] == exp["to"]
    if "cc" in exp:
        assert [a.addr for a in mail.cc] == exp["cc"]
    if "date" in exp:
        assert mail.date == dt.datetime.fromisoformat(exp["date"])
    if "in_reply_to" in exp:
        assert list(mail.in_reply_to) == exp["in_reply_to"]
    if "references" in exp:
        assert list(mail.references) == exp["references"]
    if "content_type" in exp:
        assert mail.content_type == exp["content_type"]
    for needle in exp.get("text_contains", []):
        assert needle in mail.text, f"{needle!r} not in {mail.text!r}"
    for needle in exp.get("text_not_contains", []):
        assert needle not in mail.text, f"{needle!r} in {mail.text!r}"
    assert "\r" not in mail.text
    if "html" in exp:
        assert (mail.html is not None) == exp["html"]
    for needle in exp.get("html_contains", []):
        assert mail.html is not None and needle in mail.html
    if "attachments" in exp:
        assert len(mail.attachments) == len(exp["attachments"]), mail.attachments
        got = [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                **({"size": a.size} if "size" in want else {}),
                **({"inline": a.inline} if "inline" in want else {}),
                **({"content_id": a.content_id} if "content_id" in want else {}),
            }
            for a, want in zip(mail.attachments, exp["attachments"], strict=True)
        ]
        assert got == exp["attachments"]
    if "automatic" in exp:
        assert (automatic_reason(mail) is not None) == exp["automatic"]


def test_attachment_bytes_are_decoded_exactly() -> None:
    raw, _ = _load("attachments_rfc2231")
    mail = parse_message(raw)
    pdf, log, png, toml = mail.attachments
    assert pdf.data.startswith(b"%PDF-1.4") and pdf.data.endswith(b"%%EOF\n")
    assert log.data.decode().startswith("2026-11-23 09:00 ERROR schema lock timeout")
    assert png.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert toml.data == b"[server]"


def test_raw_8bit_bytes_in_content_disposition_keep_the_body_and_the_attachment() -> None:
    """Some clients write a UTF-8 file name into the header unencoded. The message
    used to lose its structure (read as raw text, with an AttributeError defect)."""
    raw = (
        b"From: a@b.example\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="zz"\r\n\r\n'
        b"--zz\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--zz\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="rapport-\xc3\xa9t\xc3\xa9.pdf"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--zz--\r\n"
    )
    mail = parse_message(raw)
    assert mail.text == "hello" and not mail.defects
    [pdf] = mail.attachments
    assert pdf.content_type == "application/pdf" and pdf.data == b"%PDF-"
    assert pdf.filename == "rapport-été.pdf"


@pytest.mark.parametrize(
    ("headers", "name"),
    [
        # UTF-8 bytes, unencoded, in both parameters or in one of them
        (b'Content-Type: application/pdf; name="r\xc3\xa9sum\xc3\xa9.pdf"\r\n'
         b'Content-Disposition: attachment; filename="r\xc3\xa9sum\xc3\xa9.pdf"\r\n',
         "résumé.pdf"),
        (b'Content-Type: application/pdf; name="\xe5\xa0\xb1\xe5\x91\x8a.pdf"\r\n'
         b"Content-Disposition: attachment\r\n",
         "報告.pdf"),
        # Latin-1 bytes: decoded as any 8-bit header is
        (b"Content-Type: application/pdf\r\n"
         b'Content-Disposition: attachment; filename="r\xe9sum\xe9.pdf"\r\n',
         "résumé.pdf"),
        # Encoded names are read as before
        (b"Content-Type: application/pdf\r\n"
         b"Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.pdf\r\n",
         "résumé.pdf"),
        (b"Content-Type: application/pdf\r\n"
         b'Content-Disposition: attachment; filename="=?UTF-8?Q?r=C3=A9sum=C3=A9.pdf?="\r\n',
         "résumé.pdf"),
    ],
)  # fmt: skip
def test_raw_8bit_file_names_are_decoded_not_replaced(headers: bytes, name: str) -> None:
    raw = (
        b"From: a@b.example\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="zz"\r\n\r\n'
        b"--zz\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--zz\r\n" + headers + b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--zz--\r\n"
    )
    [pdf] = parse_message(raw).attachments
    assert pdf.filename == name


def test_html_only_mail_derives_text_but_keeps_html() -> None:
    raw, _ = _load("html_only")
    mail = parse_message(raw)
    assert mail.html is not None and "<b>crashes</b>" in mail.html
    # Paragraphs become separate lines, not one run-on line.
    lines = [ln for ln in mail.text.splitlines() if ln.strip()]
    assert lines[0] == "Hello team,"
    assert lines[1] == "The server crashes after the upgrade & restarts."


# ------------------------------------------------------------------ RFC 2047 subjects


def _with_subject(subject_line: bytes) -> bytes:
    return (
        b"From: jane@acme.example\r\nTo: support@irex.example\r\n"
        + subject_line
        + b"\r\nMessage-ID: <s@acme.example>\r\n\r\nbody\r\n"
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        # B and Q encodings, UTF-8 and ISO-8859-1, any letter case.
        (b"Subject: =?UTF-8?B?Q2Fmw6kgY3LDqG1l?=", "Café crème"),
        (b"Subject: =?utf-8?q?Caf=C3=A9_cr=C3=A8me?=", "Café crème"),
        (b"Subject: =?ISO-8859-1?B?Q2Fm6SBjcuhtZQ==?=", "Café crème"),
        (b"Subject: =?iso-8859-1?Q?Caf=E9_cr=E8me?=", "Café crème"),
        (b"Subject: =?windows-1252?Q?=93quoted=94_=80?=", "\u201cquoted\u201d \u20ac"),
        # Adjacent encoded words: the whitespace between them disappears (RFC 2047 6.2).
        (b"Subject: =?UTF-8?Q?Serveur_arr?= =?UTF-8?Q?=C3=AAt=C3=A9?=", "Serveur arrêté"),
        # A multi-byte character split across two encoded words.
        (b"Subject: =?UTF-8?B?4oCT?= =?UTF-8?B?w6k=?=", "\u2013é"),
        (b"Subject: =?UTF-8?Q?=E2=80?= =?UTF-8?Q?=93_dash?=", "\u2013 dash"),
        # Folded over lines, mixed with plain words and another charset.
        (
            b"Subject: [L1] =?UTF-8?Q?donn=C3=A9es?=\r\n =?ISO-8859-1?Q?_apr=E8s?=\r\n\tla mise",
            "[L1] données après la mise",
        ),
        # Not encoded words at all: left as written.
        (b"Subject: a =? b ?= c", "a =? b ?= c"),
        # An unknown charset or a broken word is kept as text rather than raising.
        (b"Subject: =?x-unknown?Q?abc?= tail", "=?x-unknown?Q?abc?= tail"),
    ],
)
def test_rfc2047_subjects(header: bytes, expected: str) -> None:
    assert parse_message(_with_subject(header)).subject == expected


@pytest.mark.parametrize(
    "header",
    [
        b"Subject: =?iso-8\xc3\xa959-1?q?caf=E9?=",  # 8-bit byte inside the charset name
        b"Subject: =?utf-8?B?w\xff?= x",  # 8-bit byte inside the encoded text
        b"Subject: =?utf-8?B?wSubject: =?iso-8859-1?q?caf=E9?=",  # torn encoded words
    ],
)
def test_malformed_encoded_words_never_raise(header: bytes) -> None:
    mail = parse_message(_with_subject(header))
    assert isinstance(mail.subject, str) and mail.subject
    assert mail.text.strip() == "body"


def test_missing_message_id_is_none_and_dedupes_by_hash() -> None:
    raw, _ = _load("no_message_id")
    assert parse_message(raw).message_id is None
    assert header_message_id(raw) is None
    key, message_id, digest = dedupe_key(raw)
    assert message_id is None and key == f"sha256:{digest}"
    other_key, _, _ = dedupe_key(raw + b"another line\r\n")
    assert other_key != key


def test_part_defects_are_listed() -> None:
    raw, _ = _load("broken_base64")
    mail = parse_message(raw)
    assert any("Base64" in d for d in mail.defects), mail.defects


@pytest.mark.parametrize(
    "declared",
    [
        None,
        "",
        "utf-8",
        "UTF-8",
        '"utf-8"',
        "iso-8859-1",
        "us-ascii",
        "x-unknown",
        # Codec names that are not text encodings, or cannot be names at all.
        "base64",
        "rot13",
        "hex",
        "zlib",
        "uu",
        "undefined",
        "idna",
        "a\x00b",
    ],
)
def test_decode_bytes_never_raises_and_finds_utf8(declared: str | None) -> None:
    assert decode_bytes("Café – ok".encode(), declared) == "Café – ok"


# ------------------------------------------------------------------ never raises


_SEEDS = [(MIME / f"{n}.eml").read_bytes() for n in FIXTURES]
_TOKENS = [
    b"\r\n",
    b"\n",
    b":",
    b";",
    b"=?",
    b"?=",
    b"--",
    b"\xff",
    b"\x00",
    b"\xc3\xa9",
    b"=",
    b"<",
    b">",
    b"@",
    b'"',
    b"*=",
    b"'",
    b"%",
    b" ",
    b"\t",
    b"=?utf-8?b?",
    b"=?x?q?",
    b"boundary=",
    b"charset=",
    b"filename*0*=",
    b"Content-Type: multipart/mixed; boundary=",
    b"Content-Transfer-Encoding: base64",
    b"quoted-printable",
    b"message/rfc822",
    b"text/html",
    b"Content-Type: text/plain; charset=",
    b"From: ",
    b"Reply-To: ",
]


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(_SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(("token", "delete", "flip", "insert")))
        if op == "token":
            data[pos:pos] = draw(st.sampled_from(_TOKENS))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 40))]
        elif op == "flip" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        else:
            data[pos:pos] = draw(st.binary(min_size=1, max_size=12))
    return bytes(data)


def _check_parses(raw: bytes) -> None:
    mail = parse_message(raw, envelope_from="x@y.example")
    assert isinstance(mail.subject, str) and isinstance(mail.text, str)
    # What the pipeline does with it next must not raise either.
    automatic_reason(mail)
    dedupe_key(raw)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=3000))
def test_parse_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    _check_parses(raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_messages())
def test_parse_never_raises_on_mutated_messages(raw: bytes) -> None:
    _check_parses(raw)


# ------------------------------------------------------------------ subject tags

SUB_RE = compile_subscription_pattern(r"SUB-\d{5}")
TICKET_RE = ticket_tag_pattern("IREX-", 6)


@pytest.mark.parametrize(
    ("subject", "level", "tag"),
    [
        ("[L1] Server down", 1, "[L1]"),
        ("[L2] Slow reports", 2, "[L2]"),
        ("[l3] lower case", 3, "[l3]"),
        ("[L4] Docs typo", 4, "[L4]"),
        ("[P1] Outage", 1, "[P1]"),
        ("[SEV1] Outage", 1, "[SEV1]"),
        ("[Sev 2] Outage", 2, "[Sev 2]"),
        ("Sev 2 - login slow", 2, "Sev 2"),
        ("Level 3 question about exports", 3, "Level 3"),
        ("Niveau 1 panne totale", 1, "Niveau 1"),
        ("P1: database corrupted", 1, "P1:"),
        ("[SUB-12345] [Severity-4] cosmetic", 4, "[Severity-4]"),
        ("Re: Fwd: [L1] still down", 1, "[L1]"),
    ],
)
def test_severity_tags(subject: str, level: int, tag: str) -> None:
    tags = read_tags(subject, SUB_RE, TICKET_RE)
    assert (tags.severity, tags.severity_text) == (level, tag)


@pytest.mark.parametrize(
    "subject",
    [
        "L2 cache misses after upgrade",
        "[L5] not a level",
        "[L0] not a level",
        "logging level 10 is too verbose",
        "Upgrade to 7.4.2 fails",
        "P1 without a separator",
        "SEV12 is not a level",
        "[SUB-12345] plain request",
    ],
)
def test_not_severity_tags(subject: str) -> None:
    assert find_severity(strip_prefixes(subject)) == (None, None)
    assert read_tags(subject, SUB_RE, TICKET_RE).severity is None


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("[SUB-12345] Upgrade", "SUB-12345"),
        ("Re: sub-54321 lower case", "SUB-54321"),
        ("(SUB-00001) in parentheses", "SUB-00001"),
        ("SUB-123456 six digits", None),
        ("XSUB-12345 glued to a word", None),
        ("SUB-12345-2 glued to more", None),
        ("SUB-1234 four digits", None),
        ("no id at all", None),
    ],
)
def test_subscription_ids(subject: str, expected: str | None) -> None:
    assert read_tags(subject, SUB_RE, TICKET_RE).subscription_id == expected


def test_ticket_tag_is_read_from_the_whole_subject() -> None:
    tags = read_tags("RE: [IREX-000123] [SUB-12345] thanks", SUB_RE, TICKET_RE)
    assert tags.ticket_id == "IREX-000123"
    assert tags.subscription_id == "SUB-12345"
    assert read_tags("[IREX-12] too short", SUB_RE, TICKET_RE).ticket_id is None


@pytest.mark.parametrize(
    ("subject", "environment", "production"),
    [
        ("[PROD] Outage", "production", True),
        ("[Production] Outage", "production", True),
        ("[STAGING] Slow", "staging", False),
        ("[TEST] Slow", "test", False),
        ("[UAT] Slow", "uat", False),
        ("[DEV] Slow", "development", False),
        ("[NONPROD] Slow", "nonproduction", False),
        ("[Pre-Prod] Slow", "preproduction", False),
        ("[preprod] Slow", "preproduction", False),
        ("PROD without brackets", None, None),
        ("[prod-eu] unknown tag", None, None),
    ],
)
def test_environment_tags(subject: str, environment: str | None, production: bool | None) -> None:
    tags = read_tags(subject, SUB_RE, TICKET_RE)
    assert tags.environment == environment
    assert tags.production is production


@pytest.mark.parametrize(
    ("subject", "clean"),
    [
        ("Re: Upgrade fails", "Upgrade fails"),
        ("RE: RE: Upgrade fails", "Upgrade fails"),
        ("Fwd: Upgrade fails", "Upgrade fails"),
        ("FW: Upgrade fails", "Upgrade fails"),
        ("AW: Upgrade fails", "Upgrade fails"),
        ("WG: Upgrade fails", "Upgrade fails"),
        ("TR: Upgrade fails", "Upgrade fails"),
        ("Re[2]: Upgrade fails", "Upgrade fails"),
        ("Re(3): Upgrade fails", "Upgrade fails"),
        ("RE: Fw: AW: Upgrade fails", "Upgrade fails"),
        ("Re:Upgrade fails", "Upgrade fails"),
        ("Reply about the upgrade", "Reply about the upgrade"),
        ("Trouble: upgrade fails", "Trouble: upgrade fails"),
        ("Regression in 7.4", "Regression in 7.4"),
    ],
)
def test_reply_prefixes_are_stripped(subject: str, clean: str) -> None:
    assert strip_prefixes(subject) == clean
    assert read_tags(subject, SUB_RE, TICKET_RE).clean == clean


# ------------------------------------------------------------------ automatic mail


AUTOMATIC = {
    "auto_replied": {"headers": {"Auto-Submitted": "auto-replied"}},
    "auto_generated": {"headers": {"Auto-Submitted": "auto-generated"}},
    "precedence_bulk": {"headers": {"Precedence": "bulk"}},
    "precedence_junk": {"headers": {"Precedence": "junk"}},
    "precedence_list": {"headers": {"Precedence": "list"}},
    "list_id": {"headers": {"List-Id": "IREX users <users.lists.acme.example>"}},
    "empty_return_path": {"headers": {"Return-Path": "<>"}},
    "mailer_daemon": {"sender": "Mail Delivery System <MAILER-DAEMON@mx.acme.example>"},
    "postmaster": {"sender": "postmaster@acme.example"},
}


def _auto_mail(case: str) -> bytes:
    spec = AUTOMATIC[case]
    return make_mail(
        subject="[SUB-12345] [L2] Upgrade to 7.4.2 fails",
        sender=spec.get("sender", "Jane Admin <jane@acme.example>"),
        headers=spec.get("headers"),
    )


@pytest.mark.parametrize("case", sorted(AUTOMATIC))
def test_automatic_mail_is_recognised(case: str) -> None:
    assert automatic_reason(parse_message(_auto_mail(case))) is not None


def test_dsn_and_empty_envelope_sender_are_automatic() -> None:
    raw, _ = _load("bounce_dsn")
    assert automatic_reason(parse_message(raw)) is not None
    # Without the other bounce signs, multipart/report alone is enough.
    stripped = (
        raw.replace(b"Return-Path: <>\r\n", b"")
        .replace(b"Auto-Submitted: auto-replied\r\n", b"", 1)
        .replace(b"MAILER-DAEMON@", b"jane@")
    )
    assert "multipart/report" in (automatic_reason(parse_message(stripped)) or "")
    plain = make_mail()
    assert automatic_reason(parse_message(plain, envelope_from="")) is not None
    assert automatic_reason(parse_message(plain, envelope_from="jane@acme.example")) is None


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {"Auto-Submitted": "no"},
        {"Auto-Submitted": "No"},
        {"Precedence": "first-class"},
        {"Return-Path": "<jane@acme.example>"},
    ],
)
def test_mail_from_a_person_is_not_automatic(headers: dict[str, str] | None) -> None:
    assert automatic_reason(parse_message(make_mail(headers=headers))) is None


def test_automatic_mail_gets_no_reply(app: Any, subtests: pytest.Subtests) -> None:
    """End to end: each is stored and recorded as ignored, with no outbox row, no ticket."""
    add_subscription(app, contacts=("@acme.example", "@mx.acme.example"))
    for case in [*sorted(AUTOMATIC), "dsn"]:
        with subtests.test(case=case):
            raw = _load("bounce_dsn")[0] if case == "dsn" else _auto_mail(case)
            result = pipeline.ingest(app, raw, source="pipe", now=MONDAY_0900)
            assert str(result.outcome) == "ignored"
            assert result.reason == "automatic"
            with app.db.transaction() as s:
                item = s.get(InboxItem, result.inbox_id)
                assert (item.status, item.outcome) == ("done", "ignored")
    with app.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(OutboxMessage)) == 0
        assert s.scalar(select(func.count()).select_from(Ticket)) == 0
    # The same request from a person does get an acknowledgement.
    person = make_mail(subject="[SUB-12345] [L2] Upgrade to 7.4.2 fails")
    result = pipeline.ingest(app, person, source="pipe", now=MONDAY_0900)
    assert str(result.outcome) == "ticket_created"


@settings(max_examples=2000, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["Jean", "Dupont", "é", "Müller", "J.", "<", ">", "@", "acme", ".", "example",
             " ", "  ", "\t", ",", '"', "(c)", ";", ":", "[", "]", "\\", "x-y", "o'b", "+",
             "Jean Dupont <jean.dupont@acme.example>", "<j@a.b>", "j@a.b"]
        ),
        max_size=8,
    ).map("".join)
)  # fmt: skip
def test_plain_mailboxes_are_read_as_getaddresses_reads_them(value: str) -> None:
    """From/To/Cc values in their plainest forms are read by one regular expression
    instead of email.utils.getaddresses; every value reads the same either way."""
    assert parse_mod._mailboxes(value) == email.utils.getaddresses([value])
