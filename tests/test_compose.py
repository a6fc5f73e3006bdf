"""Outgoing mail construction (mailgate.mail.compose): every message is parsed back with the
modern ``email`` parser and checked for headers, decoded values, MIME structure and the wire
format the outbox relies on (7-bit, CRLF, lines of at most 998 characters)."""

from __future__ import annotations

import datetime as dt
import email
import random
import re
import string
from email import policy as email_policy
from email.message import EmailMessage
from typing import Any

import pytest

from mailgate.mail.compose import (
    _POLICY,
    LOOP_HEADER,
    Composer,
    Outgoing,
    make_environment,
    one_line,
)
from mailgate.model import Address, Attachment

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
TEXT = "Hello Jane,\n\nYour request was recorded as IREX-000123.\n"
HTML = "<p>Hello Jane,</p>\n<p>Your request was recorded as <strong>IREX-000123</strong>.</p>\n"


@pytest.fixture
def composer() -> Composer:
    return Composer(
        support_address="support@irex.example",
        support_name="IREX Support",
        id_domain="mg.irex.example",
        environment=make_environment(),
    )


def compose(composer: Composer, **kwargs: Any) -> Outgoing:
    args: dict[str, Any] = {
        "kind": "ack",
        "template": "ack",
        "context": {},
        "to": ["Jane Doe <jane@acme.example>"],
        "subject": "[IREX-000123] Licence server not reachable",
        "label": "IREX-000123",
        "now": NOW,
        "body": (TEXT, HTML),
    }
    args.update(kwargs)
    return composer.compose(**args)


def parse(out: Outgoing) -> EmailMessage:
    msg = email.message_from_bytes(out.raw, policy=email_policy.default)
    assert isinstance(msg, EmailMessage)
    assert not msg.defects
    return msg


def header_block(raw: bytes) -> bytes:
    return raw.split(b"\r\n\r\n", 1)[0]


def content(part: EmailMessage) -> Any:
    value = part.get_content()
    return value.replace("\r\n", "\n") if isinstance(value, str) else value


def assert_wire_safe(raw: bytes) -> None:
    """What a relay without 8BITMIME or SMTPUTF8 accepts, with RFC 5322's line limit."""
    assert raw.isascii()
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_text_and_html_make_a_multipart_alternative_with_every_header(
    composer: Composer,
) -> None:
    out = compose(
        composer,
        to=["Jane Doe <jane@acme.example>", "ops@acme.example"],
        cc=["Bob <bob@acme.example>"],
        reply_to="support+IREX-000123.abc@irex.example",
        in_reply_to="request-1@acme.example",
        references=["root@acme.example"],
    )
    assert out.kind == "ack"
    assert out.mail_from == "support@irex.example"
    assert out.recipients == ("jane@acme.example", "ops@acme.example", "bob@acme.example")
    assert out.subject == "[IREX-000123] Licence server not reachable"
    assert re.fullmatch(r"mg\.irex-000123\.[0-9a-f]{32}@mg\.irex\.example", out.message_id)

    msg = parse(out)
    assert msg["From"] == "IREX Support <support@irex.example>"
    assert [a.addr_spec for a in msg["To"].addresses] == ["jane@acme.example", "ops@acme.example"]
    assert msg["To"].addresses[0].display_name == "Jane Doe"
    assert msg["Cc"].addresses[0].addr_spec == "bob@acme.example"
    assert msg["Reply-To"] == "support+IREX-000123.abc@irex.example"
    assert msg["Subject"] == out.subject
    assert msg["Date"].datetime == NOW
    assert msg["Message-ID"] == f"<{out.message_id}>"
    assert msg["In-Reply-To"] == "<request-1@acme.example>"
    assert msg["References"] == "<root@acme.example> <request-1@acme.example>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg[LOOP_HEADER] == "mg.irex.example"
    assert msg["MIME-Version"] == "1.0"

    assert msg.get_content_type() == "multipart/alternative"
    text, html = msg.iter_parts()
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    assert text.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    assert content(text) == TEXT
    assert content(html) == HTML
    assert_wire_safe(out.raw)


def test_text_only_body_is_a_single_part_and_optional_headers_are_absent(
    composer: Composer,
) -> None:
    out = compose(composer, body=(TEXT, None), auto_submitted="")
    msg = parse(out)
    assert msg.get_content_type() == "text/plain"
    assert not msg.is_multipart()
    assert content(msg) == TEXT
    for name in ("Cc", "Reply-To", "In-Reply-To", "References"):
        assert msg[name] is None
    assert msg["Auto-Submitted"] is None and msg["X-Auto-Response-Suppress"] is None
    assert msg["MIME-Version"] == "1.0"
    assert msg[LOOP_HEADER] == "mg.irex.example"


def test_attachments_make_a_multipart_mixed_around_the_alternative(composer: Composer) -> None:
    pdf = bytes(range(256)) * 40
    out = compose(
        composer,
        attachments=[
            Attachment("résumé.pdf", "application/pdf", pdf),
            Attachment(None, "", b"no name, no type"),
        ],
    )
    msg = parse(out)
    assert msg.get_content_type() == "multipart/mixed"
    alternative, first, second = msg.iter_parts()
    assert isinstance(alternative, EmailMessage)
    assert alternative.get_content_type() == "multipart/alternative"
    assert [content(p) for p in alternative.iter_parts()] == [TEXT, HTML]  # type: ignore[arg-type]

    assert isinstance(first, EmailMessage) and isinstance(second, EmailMessage)
    assert first.get_content_type() == "application/pdf"
    assert first.get_content_disposition() == "attachment"
    assert first.get_filename() == "résumé.pdf"
    assert first["Content-Transfer-Encoding"] == "base64"
    assert first.get_content() == pdf
    assert second.get_content_type() == "application/octet-stream"
    assert second.get_filename() == "attachment"
    assert second["Content-Transfer-Encoding"] == "base64"
    assert second.get_content() == b"no name, no type"
    assert_wire_safe(out.raw)


def test_attachment_beside_a_text_only_body(composer: Composer) -> None:
    out = compose(
        composer, body=(TEXT, None), attachments=[Attachment("log.txt", "text/plain", b"l\n")]
    )
    msg = parse(out)
    assert msg.get_content_type() == "multipart/mixed"
    text, log = msg.iter_parts()
    assert isinstance(text, EmailMessage) and isinstance(log, EmailMessage)
    assert text.get_content_type() == "text/plain" and content(text) == TEXT
    assert log.get_filename() == "log.txt" and log.get_content_disposition() == "attachment"


def test_a_long_non_ascii_file_name_is_split_into_rfc2231_sections(composer: Composer) -> None:
    name = "お問い合わせ_サーバーログ_" * 12 + ".zip"
    out = compose(composer, attachments=[Attachment(name, "application/zip", b"PK")])
    assert b"filename*1*=" in out.raw
    *_, part = parse(out).iter_parts()
    assert isinstance(part, EmailMessage)
    assert part.get_filename() == name
    assert_wire_safe(out.raw)


def test_cr_lf_in_subject_names_or_addresses_cannot_inject_a_header(composer: Composer) -> None:
    evil = "\r\nBcc: x@evil.example\r\nX-Injected: 1"
    out = compose(
        composer,
        subject=f"[IREX-000123] Install fails{evil}",
        from_name=f"Jane{evil}",
        to=[f"jane@acme.example{evil}"],
        reply_to=f"support@irex.example{evil}",
        in_reply_to=f"id@acme.example{evil}",
    )
    msg = parse(out)
    assert msg["Bcc"] is None and msg["X-Injected"] is None
    assert not re.search(rb"(?im)^(bcc|x-injected):", header_block(out.raw))
    assert msg["Subject"] == "[IREX-000123] Install fails Bcc: x@evil.example X-Injected: 1"
    assert out.subject == msg["Subject"]
    assert msg["From"].addresses[0].display_name == "Jane Bcc: x@evil.example X-Injected: 1"
    assert msg["From"].addresses[0].addr_spec == "support@irex.example"
    assert_wire_safe(out.raw)


def test_cr_lf_in_an_attachment_name_cannot_inject_a_header(composer: Composer) -> None:
    att = Attachment("report.pdf\r\nBcc: x@evil.example", "application/pdf", b"%PDF")
    out = compose(composer, attachments=[att])
    msg = parse(out)
    assert not re.search(rb"(?im)^bcc:", out.raw)
    *_, part = msg.iter_parts()
    assert isinstance(part, EmailMessage)
    assert part.get_filename() == "report.pdf Bcc: x@evil.example"


def test_non_ascii_subject_and_display_names_are_rfc2047_encoded(composer: Composer) -> None:
    subject = "[IREX-000123] Problème d'accès à l'écran Übersicht"
    out = compose(
        composer,
        subject=subject,
        from_name="Renée Lefèvre",
        to=["José Müller <jose@acme.example>", "plain@acme.example"],
        cc=["Zoë Ångström <zoe@acme.example>"],
    )
    assert out.recipients == ("jose@acme.example", "plain@acme.example", "zoe@acme.example")
    headers = header_block(out.raw)
    assert b"=?utf-8?" in headers
    assert b"\r\nSubject: [IREX-000123] =?utf-8?" in headers  # the ticket ID stays readable
    msg = parse(out)
    assert msg["Subject"] == subject
    sender = msg["From"].addresses[0]
    assert (sender.display_name, sender.addr_spec) == ("Renée Lefèvre", "support@irex.example")
    assert [(a.display_name, a.addr_spec) for a in msg["To"].addresses] == [
        ("José Müller", "jose@acme.example"),
        ("", "plain@acme.example"),
    ]
    assert msg["Cc"].addresses[0].display_name == "Zoë Ångström"
    assert_wire_safe(out.raw)


def test_an_address_outside_ascii_does_not_stop_the_mail(composer: Composer) -> None:
    out = compose(composer, to=["Jean <jean@exämple.example>", "Zoë <zoe@acme.example>"])
    assert out.recipients == ("jean@exämple.example", "zoe@acme.example")
    msg = parse(out)
    # A non-ASCII domain is written in its IDNA form, an address every client can answer.
    assert msg["To"].addresses[0].addr_spec == "jean@xn--exmple-cua.example"
    assert msg["To"].addresses[0].display_name == "Jean"
    assert msg["To"].addresses[-1].addr_spec == "zoe@acme.example"
    assert msg["To"].addresses[-1].display_name == "Zoë"
    assert_wire_safe(out.raw)


def test_a_relayed_engineer_name_keeps_its_parenthesised_support_name(
    composer: Composer,
) -> None:
    # replies.py sends relays from "<engineer> (<support name>)".
    out = compose(composer, from_name="Jérôme Faure (IREX Support)")
    sender = parse(out)["From"].addresses[0]
    assert sender.display_name == "Jérôme Faure (IREX Support)"
    assert sender.addr_spec == "support@irex.example"


def test_a_subject_that_looks_encoded_is_sent_as_written(composer: Composer) -> None:
    subject = "[IREX-000123] literal =?utf-8?q?x?= text"
    assert parse(compose(composer, subject=subject))["Subject"] == subject


def test_a_long_subject_is_not_folded_after_subject(composer: Composer) -> None:
    subject = "[IREX-000123] " + " ".join(f"word{i:03d}" for i in range(40))
    assert len(subject) > 300
    out = compose(composer, subject=subject)
    assert f"\r\nSubject: {subject}\r\n".encode() in out.raw  # one line, as written
    assert parse(out)["Subject"] == subject
    assert_wire_safe(out.raw)


@pytest.mark.parametrize(
    "words", ["Problème d'accès à l'écran ", "サーバーに接続できません "], ids=["latin", "cjk"]
)
def test_a_long_non_ascii_subject_stays_within_rfc_limits(composer: Composer, words: str) -> None:
    subject = "[IREX-000123] " + words * 40
    out = compose(composer, subject=subject)
    assert out.subject == one_line(subject, 400)
    assert b"\r\nSubject: [IREX-000123] =?utf-8?" in out.raw
    assert parse(out)["Subject"] == out.subject
    # RFC 2047 2: an encoded-word is at most 75 characters long.
    encoded = re.findall(rb"=\?[^?]+\?[bqBQ]\?[^?]*\?=", header_block(out.raw))
    assert encoded and max(len(w) for w in encoded) <= 75
    assert_wire_safe(out.raw)


@pytest.mark.parametrize(
    "text",
    [
        "Bonjour,\n\nvotre demande a été enregistrée.\n",
        "日本語のテキスト。お問い合わせありがとうございます。\n" * 30,
        "x" * 1500 + "\nshort line\n",
        "trailing spaces   \n\ttab = sign\n.\nFrom the start\n",
    ],
    ids=["latin", "cjk", "long-line", "whitespace"],
)
def test_bodies_are_seven_bit_with_short_lines(composer: Composer, text: str) -> None:
    html = f"<p>{text}</p>\n"
    out = compose(composer, body=(text, html))
    assert_wire_safe(out.raw)
    plain, rich = parse(out).iter_parts()
    assert isinstance(plain, EmailMessage) and isinstance(rich, EmailMessage)
    assert content(plain) == text
    assert content(rich) == html


def test_bodies_get_a_final_newline_and_crlf_line_endings(composer: Composer) -> None:
    out = compose(composer, body=("one\r\ntwo\rthree\nfour", None))
    assert out.raw.endswith(b"one\r\ntwo\r\nthree\r\nfour\r\n")
    assert_wire_safe(out.raw)


def test_references_keep_the_first_and_the_last_nineteen(composer: Composer) -> None:
    chain = [f"m{i}@acme.example" for i in range(30)]
    out = compose(composer, references=[*chain, ""], in_reply_to="last@acme.example")
    msg = parse(out)
    expected = [chain[0], *chain[-18:], "last@acme.example"]
    assert msg["References"].split() == [f"<{r}>" for r in expected]
    assert msg["In-Reply-To"] == "<last@acme.example>"
    assert_wire_safe(out.raw)


def test_in_reply_to_already_in_the_references_is_not_repeated(composer: Composer) -> None:
    out = compose(composer, references=["a@x.example", "b@x.example"], in_reply_to="b@x.example")
    assert parse(out)["References"] == "<a@x.example> <b@x.example>"


def test_the_ack_template_renders_into_text_and_html(composer: Composer) -> None:
    context = {
        "greeting_name": "Jane",
        "support_name": "IREX Support",
        "support_address": "support@irex.example",
        "latest_version": "7.4.2",
        "supported_versions": "7.x, 6.x",
        "ticket": {
            "id": "IREX-000123",
            "subject": "Licence server <not> reachable",
            "organization": "Acme",
            "subscription": "SUB-12345",
            "tier_label": "Standard",
            "level": 2,
            "level_label": "major production problem",
            "level_source": "tag",
            "due_local": "Mon 23 Nov 2026 13:00 (Europe/Paris)",
            "due_utc": "2026-11-23 12:00 UTC",
            "coverage": "Mon-Fri 09:00-18:00 Europe/Paris",
            "ask_version": False,
        },
    }
    out = compose(composer, template="ack", context=context, body=None)
    msg = parse(out)
    assert msg.get_content_type() == "multipart/alternative"
    text, html = (content(p) for p in msg.iter_parts())  # type: ignore[arg-type]
    assert "recorded as ticket IREX-000123" in text
    assert "Subject:       Licence server <not> reachable" in text
    assert "<strong>IREX-000123</strong>" in html
    assert "Licence server &lt;not&gt; reachable" in html  # autoescaped
    assert_wire_safe(out.raw)


def test_a_text_only_template_makes_a_single_text_part(composer: Composer) -> None:
    context = {
        "original_subject": "Question",
        "support_name": "IREX Support",
        "support_address": "support@irex.example",
    }
    out = compose(composer, kind="error", template="engineer_unmatched", context=context, body=None)
    msg = parse(out)
    assert msg.get_content_type() == "text/plain"
    assert 'Your mail "Question" did not match any ticket' in content(msg)


def test_one_line_strips_line_breaks_and_control_characters() -> None:
    assert one_line("a\r\nb\tc\x00d\x1b e  \n f") == "a b c d e f"
    assert one_line("x" * 300) == "x" * 250
    assert one_line("x" * 300, 400) == "x" * 300


def test_message_ids_are_ours(composer: Composer) -> None:
    assert re.fullmatch(r"mg\.sla\.[0-9a-f]{32}@mg\.irex\.example", composer.new_message_id("SLA!"))
    assert composer.new_message_id("").startswith("mg.mail.")


@pytest.mark.parametrize("name", ["Dupont, Jean", "Dupont, Jérôme", 'Jean "JD" Dupont', "J. (ops)"])
def test_a_sender_name_with_a_comma_or_special_stays_one_recipient(
    composer: Composer, name: str
) -> None:
    """A parsed sender's name goes back out through Address.formatted(): quoted, so that
    "Dupont, Jean" is one person and not a second address 'Dupont'."""
    to = Address(name, "jean.dupont@acme.example").formatted()
    out = compose(composer, to=[to])
    assert out.recipients == ("jean.dupont@acme.example",)
    [address] = parse(out)["To"].addresses
    assert (address.display_name, address.addr_spec) == (name, "jean.dupont@acme.example")


def test_headers_on_one_line_are_written_as_compat32_folding_writes_them() -> None:
    """The composer's policy writes a single ASCII line within 998 characters itself
    instead of through email.header.Header: byte for byte what compat32 writes, at and
    around the limit, with the characters folding treats specially."""
    reference = email_policy.compat32.clone(linesep="\r\n", max_line_length=998)
    rnd = random.Random(5)
    alphabet = string.ascii_letters + string.digits + " \t=?<>\"',;:()[]@.-_/\\"
    fast = 0
    for _ in range(5000):
        length = rnd.choice([0, 1, 5, 80, 200, 979, 980, 981, 983, 990, 996, 1000, 1200])
        value = "".join(rnd.choice(alphabet) for _ in range(length))
        value = rnd.choice(["", " "]) + value + rnd.choice(["", " ", "\t"])
        name = rnd.choice(["Subject", "To", "X-Auto-Response-Suppress", "References"])
        assert _POLICY.fold_binary(name, value) == reference.fold_binary(name, value), value
        fast += len(name) + 2 + len(value) <= 998
    assert 1000 < fast < 5000  # both sides of the limit were tried


def test_one_line_is_the_character_by_character_definition() -> None:
    """one_line works with str.translate; it must equal the plain reading of its rule:
    every C0 control character (CR, LF and tab among them) becomes a space, runs of
    whitespace one space, then the limit."""
    rnd = random.Random(7)
    alphabet = "ab é\u00a0\u2028\u3000\x85\r\n\t\x00\x1b\x1f\x7f日"
    for _ in range(3000):
        value = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 30)))
        limit = rnd.choice([5, 250])
        spaced = "".join(" " if ord(c) < 32 else c for c in value)
        assert one_line(value, limit) == " ".join(spaced.split())[:limit], repr(value)


def test_mail_without_attachments_is_written_as_the_email_package_writes_it(
    composer: Composer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mail without attachments is written directly, not through message objects and the
    generator: the bytes must be the generator's, byte for byte, for text-only and
    text-and-HTML bodies in each transfer encoding, with every optional header, plain and
    encoded names and subjects, long and odd lines and every kind of line end."""
    from mailgate.mail import compose as module

    written: list[tuple[bytes, bytes]] = []
    direct = module._direct

    def both(text: Any, html: Any, headers: Any, boundary: str) -> bytes:
        raw = direct(text, html, headers, boundary)
        written.append((raw, module._generated(text, html, (), headers, boundary)))
        return raw

    monkeypatch.setattr(module, "_direct", both)
    rnd = random.Random(11)
    pieces = [
        "Hello", "Grüße", "日本語", "From the start", ".", "=?utf-8?q?x?=", "a" * 1200, "é" * 400,
        "\t tab", "", " ", "<p>", "&amp;", "\x0c", "\u2028", "\r", "\n", "\r\n", "\n\n",
    ]  # fmt: skip
    names = ["Jane Doe", "Zoë Ünal", "O'Brien, Pat", "=?x?=", "李雷", ""]
    encodings: set[bytes] = set()
    for i in range(600):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 12)))
        html = (
            None if i % 3 == 0 else "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 12)))
        )
        name = rnd.choice(names)
        out = compose(
            composer,
            body=(text, html),
            to=[f"{name} <jane{i}@acme.example>" if name else f"jane{i}@acme.example"],
            cc=["Ops <ops@acme.example>"] if i % 4 == 0 else [],
            reply_to="support+t.abc@irex.example" if i % 2 else None,
            from_name=rnd.choice([None, "Émile (IREX Support)"]),
            subject=" ".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 6))),
            in_reply_to=rnd.choice([None, f"m{i}@acme.example"]),
            references=[f"r{k}@acme.example" for k in range(rnd.choice([0, 1, 25]))],
            auto_submitted=rnd.choice(["auto-replied", ""]),
        )
        raw, generated = written[-1]
        assert out.raw == raw == generated, (text, html)
        encodings.update(re.findall(rb"Content-Transfer-Encoding: (\S+)", raw))
    assert encodings == {b"7bit", b"quoted-printable", b"base64"}
