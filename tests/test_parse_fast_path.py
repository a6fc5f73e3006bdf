"""The fast MIME path of ``parse_message`` (``_fast_tree``) against the stdlib feedparser
(``parse_message_full``), deferred attachment bytes, and ``header_message_id`` against
the feedparser-based implementation it replaced.

Whenever the fast path takes a message, its compat32 tree must be the feedparser's
(headers, payload strings, preamble, epilogue, defects) and the ``ParsedMail`` equal;
when it declines, ``parse_message`` is the full path by construction."""

from __future__ import annotations

import base64
import collections
import copy
import pickle
import random
import re
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from email import message_from_bytes
from email import policy as email_policy
from email.message import Message
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from bench.corpus import Corpus
from mailgate.mail import parse
from mailgate.mail.parse import (
    decode_header_value,
    header_message_id,
    normalize_message_id,
    parse_message,
    parse_message_full,
)
from mailgate.model import Attachment, ParsedMail
from tests.support.mailtools import make_mail

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_FILES = sorted((FIXTURES / "mime").glob("*.eml")) + sorted(
    (FIXTURES / "policy").glob("*.eml")
)


def _tree(msg: Message) -> tuple[Any, ...]:
    """Everything of a compat32 tree that the feedparser sets."""
    payload = msg.get_payload()
    return (
        msg.get_unixfrom(),
        list(msg.raw_items()),
        msg.get_default_type(),
        [type(d).__name__ for d in msg.defects],
        msg.preamble,
        msg.epilogue,
        [_tree(p) for p in payload] if isinstance(payload, list) else payload,
    )


def _fields(mail: ParsedMail) -> tuple[Any, ...]:
    attachments = [
        (a.filename, a.content_type, a.data, a.inline, a.content_id) for a in mail.attachments
    ]
    return (mail, attachments)


def check(raw: bytes) -> bool:
    """Assert both paths agree on ``raw``; True if the fast path took it."""
    fast = parse._fast_tree(raw)
    if fast is not None:
        assert _tree(fast) == _tree(parse._full_tree(raw))
    assert _fields(parse_message(raw)) == _fields(parse_message_full(raw))
    return fast is not None


@cache
def corpus(seed: int, n: int) -> list[Any]:
    return list(Corpus(seed).messages(n))


# ------------------------------------------------------------------ differential


@pytest.mark.parametrize(("seed", "n"), [(1, 2000), (7, 500)])
def test_corpus_both_paths_agree_and_all_take_the_fast_path(seed: int, n: int) -> None:
    taken: collections.Counter[str] = collections.Counter()
    declined = []
    for m in corpus(seed, n):
        if check(m.raw):
            taken[m.kind] += 1
        else:
            declined.append((m.index, m.kind))
    # The corpus is well-formed mail: every message takes the fast path, the multipart
    # ones (all attachment and HTML mails, some others) included.
    assert not declined, declined
    assert taken["attachment"] > n / 10 and taken["html"] > n / 10, taken


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_fixtures_both_paths_agree(path: Path) -> None:
    check(path.read_bytes())


def test_made_mail_both_paths_agree() -> None:
    assert check(make_mail())
    assert check(make_mail(html="<p>Hello <b>team</b></p>"))
    assert check(make_mail(body="Caf\u00e9 cr\u00e8me \u2013 " * 40, html="<p>caf\u00e9</p>"))


# ------------------------------------------------------------------ hand-made cases

HEAD = b"From: Jane <jane@acme.example>\r\nTo: support@irex.example\r\nSubject: edge\r\n"
ATTACHMENT = (
    (
        b"Content-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="a.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(bytes(range(256)) * 3)
    )
    .replace(b"\n", b"\r\n")
    .replace(b"\r\r\n", b"\r\n")
)
TEXT = b"Content-Type: text/plain; charset=utf-8\r\n\r\nHello,\r\nthe server is down.\r\n"
HTML = b"Content-Type: text/html; charset=utf-8\r\n\r\n<p>Hello, <b>down</b></p>\r\n"


def multipart(
    *parts: bytes,
    boundary: bytes = b"b1",
    ctype: bytes = b"multipart/mixed",
    preamble: bytes = b"",
    epilogue: bytes = b"",
    head: bytes = HEAD,
    param: bytes | None = None,
    close: bytes | None = None,
) -> bytes:
    param = param if param is not None else b'boundary="' + boundary + b'"'
    body = preamble + b"".join(b"--" + boundary + b"\r\n" + p + b"\r\n" for p in parts)
    close = close if close is not None else b"--" + boundary + b"--\r\n"
    return head + b"Content-Type: " + ctype + b"; " + param + b"\r\n\r\n" + body + close + epilogue


def part(ctype: bytes, body: bytes) -> bytes:
    return b"Content-Type: " + ctype + b"\r\n\r\n" + body


NESTED = multipart(
    multipart(TEXT, HTML, boundary=b"alt", ctype=b"multipart/alternative", head=b""),
    ATTACHMENT,
    boundary=b"outer",
)

TAKEN = {
    "simple": multipart(TEXT, ATTACHMENT),
    "trailing_whitespace_on_delimiters": multipart(TEXT, ATTACHMENT).replace(
        b"--b1\r\n", b"--b1 \t \r\n"
    ),
    "trailing_whitespace_on_close": multipart(TEXT, close=b"--b1--  \r\n"),
    "close_at_end_without_line_ending": multipart(TEXT, ATTACHMENT, close=b"--b1--"),
    "boundary_inside_a_body_not_at_line_start": multipart(
        part(b"text/plain", b"see --b1 and x--b1--\r\n  --b1"), ATTACHMENT
    ),
    "boundary_prefix_lines_are_not_delimiters": multipart(
        part(b"text/plain", b"--b1x\r\n--b1-\r\n--b1 x\r\n--b1---\r\n"), ATTACHMENT
    ),
    "nested": NESTED,
    "nested_related_in_alternative_in_mixed": multipart(
        multipart(
            TEXT,
            multipart(HTML, ATTACHMENT, boundary=b"rel", ctype=b"multipart/related", head=b""),
            boundary=b"alt",
            ctype=b"multipart/alternative",
            head=b"",
        ),
        ATTACHMENT,
        boundary=b"mix",
    ),
    "inner_boundary_extends_outer": multipart(
        multipart(TEXT, HTML, boundary=b"b1-inner", ctype=b"multipart/alternative", head=b""),
        ATTACHMENT,
        boundary=b"b1",
    ),
    "outer_boundary_extends_inner": multipart(
        multipart(TEXT, HTML, boundary=b"b", ctype=b"multipart/alternative", head=b""),
        ATTACHMENT,
        boundary=b"bb",
    ),
    "nested_epilogues": multipart(
        multipart(TEXT, boundary=b"in", ctype=b"multipart/alternative", head=b"", epilogue=b"\r\n"),
        multipart(
            TEXT, boundary=b"in2", ctype=b"multipart/alternative", head=b"", epilogue=b"tail\r\n"
        ),
        multipart(TEXT, boundary=b"in3", ctype=b"multipart/alternative", head=b""),
        boundary=b"out",
    ),
    "preamble_and_epilogue": multipart(
        TEXT,
        ATTACHMENT,
        preamble=b"This is a multi-part message in MIME format.\r\n\r\n",
        epilogue=b"\r\nepilogue line\r\n",
    ),
    "one_line_preamble": multipart(TEXT, preamble=b"\r\n"),
    "empty_epilogue_line": multipart(TEXT, epilogue=b"\r\n"),
    "part_without_headers": multipart(b"\r\nno headers here\r\n", ATTACHMENT),
    "part_is_one_blank_line": multipart(b"", TEXT),
    "part_of_headers_only": multipart(b"Content-Type: text/plain", TEXT),
    "part_of_blank_lines": multipart(b"\r\n\r\n\r\n", TEXT),
    "part_body_ends_with_blank_lines": multipart(part(b"text/plain", b"x\r\n\r\n\r\n"), TEXT),
    "part_body_without_final_newline": multipart(part(b"text/plain", b"x"), TEXT),
    "unquoted_boundary": multipart(TEXT, ATTACHMENT, param=b"boundary=b1"),
    "boundary_with_specials": multipart(
        TEXT,
        ATTACHMENT,
        boundary=b"----=_Part_0_12.34'()+_,-./:=?",
    ),
    "boundary_with_space": multipart(TEXT, boundary=b"a b c"),
    "boundary_folded_header": multipart(TEXT, param=b'\r\n\tboundary="b1"'),
    "uppercase_type": multipart(TEXT, ctype=b"Multipart/Mixed"),
    "multipart_7bit": multipart(TEXT, head=HEAD + b"Content-Transfer-Encoding: 7bit\r\n"),
    "folded_part_headers": multipart(
        b'Content-Type: application/pdf;\r\n\tname*0="re";\r\n name*1="port.pdf"\r\n'
        b'Content-Disposition: attachment;\r\n filename="report.pdf"\r\n\r\nJVBERi0=',
        TEXT,
    ),
    "quoted_printable_and_8bit_parts": multipart(
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"
        b"\r\n\r\nCaf=C3=A9 soft=\r\nbreak =E2=80=93 end=\r\n",
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + "Gr\u00fc\u00dfe \u2013 J\u00fcrgen\r\n".encode(),
    ),
    "8bit_headers": multipart(
        TEXT, head="Subject: Gr\u00fc\u00dfe\r\nFrom: J\u00fcrgen <j@x>\r\n".encode()
    ).replace(
        b"Content-Type: text/plain",
        "Content-Description: \u00e9t\u00e9\r\nContent-Type: text/plain".encode(),
    ),
    "8bit_filename": multipart(
        TEXT,
        b"Content-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="r\xc3\xa9sum\xc3\xa9.pdf"\r\n\r\nJVBERi0=',
    ),
    "lf_only": multipart(TEXT, ATTACHMENT, preamble=b"pre\r\n", epilogue=b"epi\r\n").replace(
        b"\r\n", b"\n"
    ),
    "lf_only_nested": NESTED.replace(b"\r\n", b"\n"),
    "stray_line_endings_inside_a_leaf_body": multipart(
        part(b"text/plain", b"a\nb\rc\r\r\n\n\rd"), ATTACHMENT
    ),
    "unix_from_line": b"From jane@acme.example Mon Nov 23 09:00:00 2026\r\n" + multipart(TEXT),
    "non_multipart": HEAD + b"Content-Type: text/plain\r\n\r\nHello,\r\nplain text.\r\n",
    "non_multipart_without_content_type": HEAD + b"\r\nHello\r\n",
    "non_multipart_base64": HEAD
    + b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes("Gr\u00fc\u00dfe\n".encode()).replace(b"\n", b"\r\n"),
    "non_multipart_lf": (HEAD + b"\r\nHello\r\n--b1\r\n").replace(b"\r\n", b"\n"),
    "non_multipart_mixed_line_endings_in_body": HEAD + b"\r\nHello\nthere\rend",
    "headers_only": HEAD,
    "headers_only_no_final_newline": HEAD + b"X-Last: 1",
    "no_headers": b"\r\nbody only\r\n",
    "empty": b"",
    "broken_base64_attachment": multipart(
        TEXT,
        b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"JVBE!!Ri0xLjQK%",
    ),
    "broken_base64_text": multipart(
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8*gd29ybGQ"
    ),
    "inline_image_with_content_id": multipart(
        HTML,
        b"Content-Type: image/png\r\nContent-Disposition: inline\r\nContent-ID: <logo@x>\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=",
        ctype=b"multipart/related",
    ),
}

DECLINED = {
    "missing_close_delimiter": multipart(TEXT, ATTACHMENT, close=b""),
    "only_a_close_delimiter": multipart(close=b"--b1--\r\n"),
    "close_delimiter_first": multipart(TEXT, preamble=b"--b1--\r\n"),
    "no_delimiter_at_all": multipart(close=b"just text\r\n"),
    "two_delimiters_in_a_row": multipart(TEXT).replace(b"--b1\r\n", b"--b1\r\n--b1\r\n"),
    "delimiter_then_close": multipart(TEXT, close=b"--b1\r\n--b1--\r\n"),
    "delimiter_in_epilogue": multipart(TEXT, epilogue=b"--b1\r\nmore\r\n--b1--\r\n"),
    "part_after_close": multipart(TEXT, epilogue=b"\r\ntext\r\n--b1\r\n\r\nmore\r\n--b1--\r\n"),
    "close_twice": multipart(TEXT, epilogue=b"\r\ntext\r\n--b1--\r\n"),
    "same_boundary_nested": multipart(
        multipart(TEXT, boundary=b"b1", ctype=b"multipart/alternative", head=b""), TEXT
    ),
    "inner_delimiter_is_the_outer_close": multipart(
        multipart(TEXT, HTML, boundary=b"b1--", ctype=b"multipart/alternative", head=b""),
        TEXT,
        boundary=b"b1",
    ),
    "inner_close_missing": multipart(
        multipart(TEXT, boundary=b"in", ctype=b"multipart/alternative", head=b"", close=b""),
        TEXT,
        boundary=b"out",
    ),
    "no_boundary_parameter": multipart(TEXT, param=b"charset=us-ascii"),
    "empty_boundary": multipart(TEXT, param=b'boundary=""'),
    "rfc2231_non_ascii_boundary": multipart(TEXT, param=b"boundary*=utf-8''%C3%A9"),
    "multipart_base64": multipart(TEXT, head=HEAD + b"Content-Transfer-Encoding: base64\r\n"),
    "digest": multipart(b"\r\nSubject: digest item\r\n\r\nhello", ctype=b"multipart/digest"),
    "message_rfc822_part": multipart(
        TEXT, b"Content-Type: message/rfc822\r\n\r\n" + HEAD + b"\r\nforwarded body\r\n"
    ),
    "message_rfc822_top": HEAD + b"Content-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\nbody\r\n",
    "delivery_status_part": multipart(
        TEXT,
        b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        b"Final-Recipient: rfc822; x@y\r\nAction: failed\r\n",
        ctype=b"multipart/report",
    ),
    "mixed_line_endings_in_part_headers": multipart(
        b"Content-Type: text/plain\nContent-Disposition: inline\r\n\r\nx", TEXT
    ),
    "lf_in_crlf_top_headers": HEAD.replace(b"To:", b"X: 1\nTo:") + b"\r\nbody",
    "cr_in_lf_message_headers": (HEAD + b"\r\nbody")
    .replace(b"\r\n", b"\n")
    .replace(b"To:", b"X: 1\rTo:"),
    "delimiter_after_bare_lf": multipart(part(b"text/plain", b"x\n--b1\n"), TEXT),
    "delimiter_after_bare_cr": multipart(part(b"text/plain", b"x\r--b1\r\n"), TEXT),
    "delimiter_ended_by_bare_cr": multipart(TEXT, ATTACHMENT).replace(
        b"--b1\r\nContent-Type: app", b"--b1\rContent-Type: app"
    ),
    "crlf_delimiter_in_lf_message": multipart(TEXT, TEXT)
    .replace(b"\r\n", b"\n")
    .replace(b"\n--b1\n", b"\r\n--b1\n", 1),
    "non_header_line_in_part_headers": multipart(
        b"Content-Type: text/plain\r\nthis is not a header\r\n\r\nbody", TEXT
    ),
    "non_header_line_in_top_headers": b"Subject: x\r\nnot a header\r\n\r\nbody",
    "from_line_ending_part_headers": multipart(
        b"Content-Type: text/plain\r\nFrom jane Mon Nov 23\r\n\r\nbody", TEXT
    ),
    "continuation_first_in_part": multipart(b" folded first\r\nContent-Type: text/plain\r\n\r\nx"),
    "missing_header_name": multipart(b": no name\r\nContent-Type: text/plain\r\n\r\nx"),
    "too_deep": HEAD
    + b"Content-Type: multipart/mixed; boundary=d0\r\n\r\n"
    + b"".join(
        b"--d%d\r\nContent-Type: multipart/mixed; boundary=d%d\r\n\r\n" % (i, i + 1)
        for i in range(9)
    )
    + b"--d9\r\n"
    + TEXT
    + b"\r\n--d9--\r\n"
    + b"".join(b"--d%d--\r\n" % i for i in range(8, -1, -1)),
}


@pytest.mark.parametrize("name", sorted(TAKEN))
def test_well_formed_edge_cases_take_the_fast_path(name: str) -> None:
    assert check(TAKEN[name]), "declined"


@pytest.mark.parametrize("name", sorted(DECLINED))
def test_unusual_structures_go_to_the_full_path(name: str) -> None:
    assert not check(DECLINED[name]), "taken"


def test_edge_cases_parse_as_intended() -> None:
    """Spot checks that the cases above say what their names say."""
    mail = parse_message(TAKEN["preamble_and_epilogue"])
    assert mail.text == "Hello,\nthe server is down.\n"  # the helper adds a blank line
    assert [a.data for a in mail.attachments] == [bytes(range(256)) * 3]
    tree = parse._fast_tree(TAKEN["preamble_and_epilogue"])
    assert tree is not None
    assert tree.preamble == "This is a multi-part message in MIME format.\r\n"
    assert tree.epilogue == "\r\nepilogue line\r\n"
    assert parse_message(TAKEN["boundary_inside_a_body_not_at_line_start"]).text == (
        "see --b1 and x--b1--\n  --b1"
    )
    nested = parse_message(TAKEN["nested"])
    assert nested.html is not None and "<b>down</b>" in nested.html
    assert len(nested.attachments) == 1
    assert (
        "CloseBoundaryNotFoundDefect" in parse_message(DECLINED["missing_close_delimiter"]).defects
    )
    too_deep = parse._full_tree(DECLINED["too_deep"])
    assert len(list(too_deep.walk())) == 11


def test_a_failing_fast_path_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(raw: bytes) -> Message | None:
        raise RuntimeError("bug")

    monkeypatch.setattr(parse, "_fast_tree", broken)
    raw = TAKEN["simple"]
    assert parse_message(raw) == parse_message_full(raw)


# ------------------------------------------------------------------ fuzz


def _mutations(rng: random.Random, raw: bytes) -> bytes:
    lines = raw.splitlines(keepends=True)
    boundaries = re.findall(rb'boundary="?([^";\r\n]+)', raw)
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(
            ("cut", "duplicate", "delete", "boundary", "boundary", "ending", "insert", "lf")
        )
        i = rng.randrange(len(lines)) if lines else 0
        if op == "cut":
            return b"".join(lines)[: rng.randrange(len(raw) + 1)]
        if op == "duplicate" and lines:
            lines.insert(i, lines[i])
        elif op == "delete" and lines:
            del lines[i]
        elif op == "boundary" and boundaries:
            b = rng.choice(boundaries)
            delimiters = [j for j, line in enumerate(lines) if line.startswith(b"--" + b)]
            if delimiters:
                j = rng.choice(delimiters)
                line = lines[j]
                lines[j] = rng.choice(
                    (
                        line.replace(b, b[:-1], 1),
                        line.rstrip(b"\r\n") + b"--\r\n",
                        line.rstrip(b"\r\n") + b" \t\r\n",
                        line.rstrip(b"\r\n") + b"\n",
                        line.rstrip(b"\r\n") + b"\r",
                        line.rstrip(b"\r\n") + b"x\r\n",
                        b"",
                        line + line,
                        b"--" + b + b"--\r\n",
                    )
                )
        elif op == "ending" and lines:
            lines[i] = lines[i].rstrip(b"\r\n") + rng.choice((b"\n", b"\r", b"", b"\r\n\r\n"))
        elif op == "insert":
            lines.insert(
                i,
                rng.choice(
                    (
                        b"\r\n",
                        b"not a header\r\n",
                        b" folded\r\n",
                        b"Content-Type: message/rfc822\r\n",
                        b"Content-Transfer-Encoding: base64\r\n",
                        b"From someone\r\n",
                        b"\xff\xfe\r\n",
                    )
                ),
            )
        elif op == "lf":
            return b"".join(lines).replace(b"\r\n", b"\n")
    return b"".join(lines)


def test_fuzzed_corpus_messages_agree() -> None:
    rng = random.Random(20261123)
    seeds = [m.raw for m in corpus(7, 500) if len(m.raw) < 40_000 and b"multipart/" in m.raw]
    outcomes: collections.Counter[bool] = collections.Counter()
    for _ in range(300):
        outcomes[check(_mutations(rng, rng.choice(seeds)))] += 1
    # Both paths are exercised: some mutants stay well-formed, most do not.
    assert outcomes[True] >= 20 and outcomes[False] >= 20, outcomes


# ------------------------------------------------------------------ deferred attachments


def _attachment_message() -> tuple[bytes, list[bytes]]:
    payloads = [bytes(range(256)) * 5, "Gr\u00fc\u00dfe \u2013 caf\u00e9\n".encode() * 20]
    qp = b"Caf=C3=A9 =E2=80=93 soft=\r\nbreak=\r\n trailing =\r\nend\r\n"
    parts = [
        b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; "
        b'filename="b.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        + base64.encodebytes(payloads[0]).replace(b"\n", b"\r\n").rstrip(),
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: attachment; "
        b'filename="q.txt"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n' + qp,
        b'Content-Type: text/csv\r\nContent-Disposition: attachment; filename="s.csv"\r\n'
        b"Content-Transfer-Encoding: 7bit\r\n\r\na,b\r\n1,2\r\n",
        b"Content-Type: text/x-log; charset=utf-8\r\nContent-Disposition: attachment; "
        b'filename="e.log"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n' + payloads[1],
        b'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="x.pdf"'
        b"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBE!!Ri0xLjQK%",
        b'Content-Type: application/pdf\r\nContent-Disposition: attachment; filename="y.pdf"'
        b"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK1",
    ]
    raw = multipart(TEXT, *parts)
    full = parse._full_tree(raw).get_payload()
    assert isinstance(full, list)
    expected = [p.get_payload(decode=True) for p in full[1:]]
    return raw, expected


def test_deferred_attachment_bytes_are_the_stdlib_decoding() -> None:
    raw, expected = _attachment_message()
    assert check(raw)
    mail = parse_message(raw)
    assert [a.filename for a in mail.attachments] == [
        "b.bin",
        "q.txt",
        "s.csv",
        "e.log",
        "x.pdf",
        "y.pdf",
    ]
    assert [a.data for a in mail.attachments] == expected
    assert [a.size for a in mail.attachments] == [len(e) for e in expected]
    assert mail.attachments[0].data == bytes(range(256)) * 5
    assert mail.attachments[1].data.startswith("Café – soft".encode())
    assert mail.attachments[2].data == b"a,b\r\n1,2\r\n"  # the helper adds a blank line
    assert mail.attachments[3].data.decode().startswith("Grüße – café")


def test_attachments_are_decoded_on_first_access_only(monkeypatch: pytest.MonkeyPatch) -> None:
    decoded: list[str | None] = []
    real = parse._decoded_payload

    def spy(part: Message) -> bytes:
        decoded.append(part.get_filename())
        return real(part)

    monkeypatch.setattr(parse, "_decoded_payload", spy)
    raw, expected = _attachment_message()
    mail = parse_message(raw)
    assert decoded == [None]  # the text part only
    first = mail.attachments[0]
    assert first.data == expected[0]
    assert first.data is first.data and first.size == len(expected[0])
    assert decoded == [None, "b.bin"]


def test_deferred_attachment_loads_once_and_behaves_like_a_value() -> None:
    calls: list[int] = []

    def load() -> bytes:
        calls.append(1)
        return b"%PDF-1.4"

    lazy = Attachment.deferred("r.pdf", "application/pdf", load, inline=True, content_id="c@x")
    assert calls == []
    assert "r.pdf" in repr(lazy) and "PDF" not in repr(lazy) and calls == []
    eager = Attachment("r.pdf", "application/pdf", b"%PDF-1.4", inline=True, content_id="c@x")
    assert lazy == eager and hash(lazy) == hash(eager)
    assert lazy.size == 8 and lazy.data == b"%PDF-1.4" and calls == [1]
    assert lazy != Attachment("r.pdf", "application/pdf", b"other", True, "c@x")
    assert lazy != Attachment("r.pdf", "application/pdf", b"%PDF-1.4")
    assert Attachment(filename=None, content_type="", data=b"x") == Attachment(
        None, "", b"x", False, None
    )
    for name in ("data", "filename", "inline", "_data", "anything"):
        with pytest.raises(FrozenInstanceError):
            setattr(lazy, name, b"x")
    with pytest.raises(FrozenInstanceError):
        del lazy.filename
    for clone in (copy.copy(lazy), copy.deepcopy(lazy), pickle.loads(pickle.dumps(lazy))):
        assert clone == eager and clone.inline and clone.content_id == "c@x"
    assert calls == [1]


# ------------------------------------------------------------------ header_message_id


def reference_header_message_id(raw: bytes) -> str | None:
    """The implementation ``header_message_id`` replaced: the feedparser on the head."""
    head, _, _ = raw.partition(b"\r\n\r\n")
    if len(head) == len(raw):
        head, _, _ = raw.partition(b"\n\n")
    msg = message_from_bytes(head + b"\n\n", policy=email_policy.compat32)
    values = [str(v) for k, v in msg.raw_items() if k.lower() == "message-id"]
    return normalize_message_id(decode_header_value(values[0])) if values else None


MESSAGE_ID_CASES = {
    "plain": b"From: a@b\r\nMessage-ID: <one@acme.example>\r\n\r\nbody",
    "lf_only": b"From: a@b\nMessage-ID: <one@acme.example>\n\nbody",
    "no_blank_line": b"From: a@b\r\nMessage-ID: <one@acme.example>\r\nSubject: x\r\n",
    "no_blank_line_no_newline": b"Message-ID: <one@acme.example>",
    "no_header_block_end_then_body_like_line": b"From: a@b\r\nbody line\r\nMessage-ID: <x@y>\r\n",
    "folded_value_on_next_line": b"From: a@b\r\nMessage-ID:\r\n <folded@acme.example>\r\n\r\nx",
    "folded_inside_value": b"Message-ID: <fold\r\n\ted@acme.example>\r\nTo: c@d\r\n\r\nx",
    "folded_lf": b"Message-ID:\n\t<folded@acme.example>\n\nx",
    "folded_then_blank_continuation": b"Message-ID: <a@b>\r\n \r\n\r\n",
    "eight_bit": "Message-ID: <caf\u00e9@acme.example>\r\n\r\nx".encode(),
    "eight_bit_latin1": b"Message-ID: <caf\xe9@acme.example>\r\n\r\nx",
    "eight_bit_before": "Subject: Gr\u00fc\u00dfe\r\nMessage-ID: <a@b>\r\n\r\nx".encode(),
    "several_first_wins": b"Message-ID: <first@a>\r\nMessage-ID: <second@a>\r\n\r\n",
    "several_case_first_wins": b"message-id: <first@a>\r\nMESSAGE-ID: <second@a>\r\n\r\n",
    "upper_case": b"MESSAGE-ID: <up@a>\r\n\r\n",
    "mixed_case": b"Message-Id: <mixed@a>\r\n\r\n",
    "in_body_only": b"From: a@b\r\nSubject: x\r\n\r\nMessage-ID: <body@a>\r\n",
    "in_body_after_header_one": b"Message-ID: <head@a>\r\n\r\nMessage-ID: <body@a>\r\n",
    "in_body_lf": b"From: a@b\n\nMessage-ID: <body@a>\n",
    "x_message_id": b"X-Message-ID: <x@a>\r\nMessage-ID: <real@a>\r\n\r\n",
    "only_x_message_id": b"X-Message-ID: <x@a>\r\n\r\n",
    "in_another_value": b"Subject: see Message-ID: <s@a>\r\n\r\n",
    "as_a_continuation": b"Subject: x\r\n Message-ID: <c@a>\r\n\r\n",
    "space_before_colon": b"Message-ID : <sp@a>\r\n\r\n",
    "after_invalid_line": b"Subject: x\r\n<not a header>\r\nMessage-ID: <a@b>\r\n\r\n",
    "after_missing_name": b": nameless\r\nMessage-ID: <a@b>\r\n\r\n",
    "after_unix_from": b"From jane Mon Nov 23 09:00:00 2026\r\nMessage-ID: <a@b>\r\n\r\n",
    "after_misplaced_from": b"To: x@y\r\nFrom jane Mon\r\nMessage-ID: <a@b>\r\n\r\n",
    "lf_blank_line_inside_crlf_head": b"To: x@y\n\nMessage-ID: <a@b>\r\n\r\nx",
    "bare_cr_lines": b"To: x@y\rMessage-ID: <cr@a>\r\r\n\r\n",
    "bare_cr_blank_line": b"To: x@y\r\rMessage-ID: <cr@a>\r\n\r\n",
    "head_ends_with_cr": b"Message-ID: <a@b>\r\r\n\r\n",
    "encoded_word": b"Message-ID: =?utf-8?q?=3Cenc=40a=3E?=\r\n\r\n",
    "no_brackets": b"Message-ID: bare@acme.example\r\n\r\n",
    "empty_value": b"Message-ID:\r\n\r\n",
    "empty_message": b"",
    "blank_only": b"\r\n\r\n",
    "body_only": b"\r\nMessage-ID: <a@b>\r\n",
    "crlf_and_lf_blank_lines": b"A: b\n\nMessage-ID: <lf@a>\r\n\r\n",
    "long_dkim_first": b"DKIM-Signature: v=1; a=rsa-sha256;\r\n\tb="
    + b"A" * 4000
    + b"\r\nMessage-ID: <after-dkim@a>\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(MESSAGE_ID_CASES))
def test_header_message_id_odd_inputs(name: str) -> None:
    raw = MESSAGE_ID_CASES[name]
    assert header_message_id(raw) == reference_header_message_id(raw)


def test_header_message_id_odd_inputs_mean_what_they_say() -> None:
    got = {name: header_message_id(raw) for name, raw in MESSAGE_ID_CASES.items()}
    assert got["folded_value_on_next_line"] == "folded@acme.example"
    assert got["folded_inside_value"] == "folded@acme.example"
    assert got["several_first_wins"] == got["several_case_first_wins"] == "first@a"
    assert got["in_body_only"] is None and got["in_body_lf"] is None
    assert got["in_body_after_header_one"] == "head@a"
    assert got["no_blank_line"] == "one@acme.example"
    assert got["eight_bit"] == "café@acme.example"
    assert got["x_message_id"] == "real@a" and got["only_x_message_id"] is None
    assert got["after_invalid_line"] is None


def test_header_message_id_corpus_and_fixtures() -> None:
    raws = [m.raw for m in corpus(1, 2000)] + [m.raw for m in corpus(7, 500)]
    raws += [p.read_bytes() for p in FIXTURE_FILES]
    for raw in raws:
        assert header_message_id(raw) == reference_header_message_id(raw)
        assert header_message_id(raw) == parse_message(raw).message_id


def _header_mutants(rng: random.Random) -> Iterator[bytes]:
    pieces = [
        b"Message-ID: <m@a>",
        b"message-id:<lower@a>",
        b"Message-ID:",
        b" <cont@a>",
        b"\t<tab@a>",
        b"Subject: x",
        b"X-Message-ID: <x@a>",
        b"not a header",
        b"From jane",
        b": nameless",
        b"",
        b"Message-ID: <\xff@a>",
        b"Message-ID: =?utf-8?b?PGVAYT4=?=",
    ]
    endings = [b"\r\n", b"\n", b"\r"]
    for _ in range(500):
        yield b"".join(
            rng.choice(pieces) + rng.choice(endings) for _ in range(rng.randint(0, 7))
        ) + rng.choice([b"", b"body\r\nMessage-ID: <body@a>\r\n"])


def test_header_message_id_fuzzed_headers() -> None:
    for raw in _header_mutants(random.Random(7)):
        assert header_message_id(raw) == reference_header_message_id(raw), raw
