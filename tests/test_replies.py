"""The mail the policy sends: refusals (one template per reason code) and the
acknowledgement. Each is checked as the customer receives it: multipart/alternative with
a text and an HTML body, quoting the clause it applies and saying what to do instead;
HTML escaped; headers that a subject cannot inject into; sent to the sender only; and at
most ``policy.refusals_per_sender_per_day`` refusal mails per sender and day.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from typing import Any

import pytest
from sqlalchemy import select

from mailgate.app import App
from mailgate.db.models import Decision, OutboxMessage
from mailgate.ingest.pipeline import ingest
from mailgate.ingest.result import Result
from mailgate.model import Outcome, Reason
from mailgate.outbox import OutboxSender, make_transport
from mailgate.policy.clauses import CLAUSES
from tests.support.mailtools import RelaySink, make_mail
from tests.test_policy_clauses import (
    MONDAY_0900,
    PREMIER,
    STANDARD,
    fixtures_for,
    paris,
    registry,
    send,
    send_fixture,
)
from tests.test_policy_fixtures import FIXTURES

STRANGER = "Mark Evans <mark@evans-consulting.example>"  # nobody's contact: no_subscription

# What each refusal must tell the customer to do, beyond the common parts.
INSTEAD: dict[str, tuple[str, ...]] = {
    Reason.NON_ENGLISH: ("send your request again, written in English", "SUB-12345"),
    Reason.END_USER: ("ask your IT administrator to open this request", "register your address"),
    Reason.NO_SUBSCRIPTION: ("Put your subscription ID in the subject", "[SUB-12345]"),
    Reason.EXPIRED_SUBSCRIPTION: ("renew the subscription", "[SUB-12345]"),
    Reason.NOT_STARTED_SUBSCRIPTION: ("send the request again from", "account manager"),
    Reason.UNKNOWN_SUBSCRIPTION: ("Check the ID", "[SUB-12345]"),
    Reason.DEVELOPMENT: ("developer documentation", "account manager"),
    Reason.THIRD_PARTY: ("contact the vendor or the community", "official IREX installer"),
    Reason.REMOTE_ADMIN: ("guide your administrators step by step", "screen-sharing"),
    Reason.UNSUPPORTED_VERSION: ("upgrade to a supported version", "7.x, 6.x", "7.4.2"),
    Reason.PROFESSIONAL_SERVICES: ("talk to your IREX account manager", "professional services"),
    Reason.HARDWARE: ("hardware requirements in the product documentation", "supported hardware"),
}
REFUSAL_REASONS = [r for r in Reason if r != Reason.AUTOMATIC]


def words(text: str) -> str:
    return " ".join(text.split())


def html_words(markup: str) -> str:
    """The HTML body as the reader sees it: tags dropped, entities decoded."""
    return words(html.unescape(re.sub(r"<[^>]+>", " ", markup)))


def parse(raw: bytes) -> EmailMessage:
    msg = message_from_bytes(raw, policy=email_policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def bodies(msg: EmailMessage) -> tuple[str, str]:
    """(text, html) of a multipart/alternative message."""
    assert msg.get_content_type() == "multipart/alternative", msg.get_content_type()
    text, markup = msg.get_body(("plain",)), msg.get_body(("html",))
    assert text is not None and markup is not None
    return str(text.get_content()), str(markup.get_content())


def outbox_rows(app: App, result: Result, kind: str) -> list[OutboxMessage]:
    with app.db.transaction() as session:
        stmt = (
            select(OutboxMessage)
            .join(Decision, Decision.id == OutboxMessage.decision_id)
            .where(Decision.inbox_id == result.inbox_id, OutboxMessage.kind == kind)
        )
        rows = list(session.scalars(stmt))
        for row in rows:
            session.expunge(row)
        return rows


def reply_to(app: App, result: Result, kind: str) -> tuple[OutboxMessage, EmailMessage]:
    [row] = outbox_rows(app, result, kind)
    return row, parse(row.raw)


def drain(app: App, now: dt.datetime) -> None:
    """Deliver what the outbox holds at ``now`` through the configured transport."""
    transport = make_transport(app.settings.outbox)
    try:
        OutboxSender(app.db, app.settings.outbox, transport, "test").drain(now)
    finally:
        close = getattr(transport, "close", None)
        if close is not None:
            close()


@pytest.fixture
def app(make_app: Any) -> App:
    return registry(make_app())


# ---------------------------------------------------------------- refusal templates


@pytest.mark.parametrize("reason", REFUSAL_REASONS, ids=str)
def test_every_refusal_renders_text_and_html_quoting_its_clause(app: App, reason: str) -> None:
    name = fixtures_for(reason=str(reason))[0]
    result = send_fixture(app, name)
    assert (result.outcome, result.reason) == (Outcome.REJECTED, reason)
    _row, msg = reply_to(app, result, "rejection")
    text, markup = bodies(msg)
    shown = html_words(markup)
    clause_id, clause = CLAUSES[reason]
    for body in (words(text), shown):
        assert f"({clause_id})" in body
        assert words(clause) in body, "the clause text is quoted"
        assert "No ticket has been opened" in body
        for advice in INSTEAD[reason]:
            assert advice in body, (reason, advice)
        assert "{{" not in body and "{%" not in body
    # A reply in the thread, marked automatic (RFC 3834), from the support address.
    original = parse((FIXTURES / f"{name}.eml").read_bytes())
    assert msg["In-Reply-To"].strip() == original["Message-ID"].strip()
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Subject"].startswith("Re: ")
    assert "support@irex.example" in msg["From"]


def test_refusals_name_what_was_found(app: App) -> None:
    """The explanation uses the stored evidence: the language, the version, the
    subscription and its dates, the candidates of an ambiguous contact."""
    cases = {
        "refuse_lang_de_prose_with_long_stacktrace": "appears to be written in German",
        "refuse_version_51_with_742_in_log": "you are running IREX 5.1.3",
        "refuse_expired_named_premier": "The subscription SUB-10009 ended on 2026-06-30",
        "refuse_not_started_named_address_contact": "SUB-10014 starts on 2026-12-01",
        "refuse_unknown_id_typo": "SUB-10100, is not one we know",
        "refuse_nosub_contact_of_two_subscriptions": "(SUB-10005, SUB-10006)",
        "refuse_enduser_wingtip_marketing_pdf": "lena.fischer@wingtip.example is not one of its",
        "refuse_3p_community_helm_chart": '("community Helm chart")',
    }
    for name, phrase in cases.items():
        _, msg = reply_to(app, send_fixture(app, name), "rejection")
        text, markup = bodies(msg)
        assert phrase in words(text), (name, words(text))
        assert phrase in html_words(markup), name


def test_refusal_text_keeps_the_spaces_around_optional_parts(app: App) -> None:
    for name, phrase in (
        ("refuse_enduser_wingtip_marketing_pdf", "Wingtip Toys's subscription"),
        ("refuse_3p_community_helm_chart", 'image or plug-in ("community Helm chart")'),
    ):
        _, msg = reply_to(app, send_fixture(app, name), "rejection")
        text, _ = bodies(msg)
        assert phrase in words(text), (name, words(text))


# ---------------------------------------------------------------- escaping and headers


def test_html_is_escaped(app: App) -> None:
    subject = "<script>alert('x')</script> Install & upgrade fail"
    refused = send(app, subject=subject, sender=STRANGER)
    _, msg = reply_to(app, refused, "rejection")
    text, markup = bodies(msg)
    assert "<script>" not in markup
    assert "&lt;script&gt;" in markup and "&amp; upgrade" in markup
    assert "<script>alert('x')</script>" in text  # plain text is shown as written
    accepted = send(app, subject=f"[L3] {subject}")
    _, ack = reply_to(app, accepted, "ack")
    _, ack_html = bodies(ack)
    assert "<script>" not in ack_html and "&lt;script&gt;" in ack_html


def _raw_with_subject(encoded_subject: str, sender: str, message_id: str) -> bytes:
    return (
        f"From: {sender}\r\n"
        "To: support@irex.example\r\n"
        f"Subject: {encoded_subject}\r\n"
        "Date: Mon, 23 Nov 2026 08:57:00 +0100\r\n"
        f"Message-ID: <{message_id}>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "\r\n"
        "Hello,\r\n\r\nThe IREX 7.4.2 installer stops at the database step with a\r\n"
        "'schema lock timeout'. Which setting controls the timeout?\r\n\r\nMark\r\n"
    ).encode()


def test_a_subject_with_cr_lf_cannot_inject_a_header(app: App) -> None:
    # RFC 2047 lets a subject carry encoded CR/LF; decoded, it spells a header.
    evil = "=?utf-8?q?Install_fails=0D=0ABcc:_victim@evil.example=0D=0AX-Injected:_1?="
    for sender, kind in ((STRANGER, "rejection"), (STANDARD, "ack")):
        raw = _raw_with_subject(evil, sender, f"crlf-{kind}@example.test")
        result = ingest(app, raw, source="pipe", now=MONDAY_0900)
        row, msg = reply_to(app, result, kind)
        assert msg["Bcc"] is None and msg["X-Injected"] is None
        assert "\n" not in msg["Subject"] and "\r" not in msg["Subject"]
        assert "Install fails Bcc: victim@evil.example" in msg["Subject"]
        assert row.recipients == [sender.rpartition("<")[2].rstrip(">")]
        header_block = row.raw.split(b"\r\n\r\n", 1)[0]
        assert not re.search(rb"(?im)^(bcc|x-injected):", header_block)


def test_refusals_go_to_the_sender_only_never_to_cc(make_app: Any, relay: RelaySink) -> None:
    app = registry(
        make_app(
            {"outbox": {"transport": "smtp", "relay": {"port": relay.port, "security": "none"}}}
        )
    )
    raw = make_mail(
        subject="[L2] Licence server not reachable",
        sender=STRANGER,
        to="IREX Support <support@irex.example>, Colleague <colleague@evans-consulting.example>",
        cc="Boss <boss@evans-consulting.example>, client-it@client.example",
    )
    result = ingest(app, raw, source="pipe", now=MONDAY_0900)
    assert result.reason == Reason.NO_SUBSCRIPTION
    row, msg = reply_to(app, result, "rejection")
    assert row.recipients == ["mark@evans-consulting.example"]
    assert msg["Cc"] is None and msg["To"] == "Mark Evans <mark@evans-consulting.example>"
    drain(app, MONDAY_0900 + dt.timedelta(minutes=1))
    [delivered] = relay.wait_for(1)
    assert delivered.rcpt_tos == ["mark@evans-consulting.example"]


# ---------------------------------------------------------------- refusal limit


def _refuse(app: App, at: dt.datetime, n: int, sender: str = STRANGER) -> Result:
    return send(app, subject=f"Question {n} about the installer", sender=sender, now=at)


def _states(app: App, results: list[Result]) -> list[str]:
    return [reply_to(app, r, "rejection")[0].state for r in results]


def test_refusal_mails_are_limited_per_sender_per_day(make_app: Any, relay: RelaySink) -> None:
    app = registry(
        make_app(
            {"outbox": {"transport": "smtp", "relay": {"port": relay.port, "security": "none"}}}
        )
    )
    assert app.settings.policy.refusals_per_sender_per_day == 3
    # Monday evening in Paris; the last one is past midnight in Paris, though still Monday
    # in UTC: the day is the policy zone's day.
    times = [paris(23, 9), paris(23, 12), paris(23, 18), paris(23, 23, 30), paris(23, 23, 45)]
    monday = [_refuse(app, at, n) for n, at in enumerate(times)]
    assert [r.outcome for r in monday] == [Outcome.REJECTED] * 5
    assert _states(app, monday) == ["pending", "pending", "pending", "suppressed", "suppressed"]
    # Each refusal is still decided and recorded, with its mail kept as "suppressed".
    with app.db.transaction() as session:
        assert session.query(Decision).filter(Decision.reason == "no_subscription").count() == 5
    # Another sender has their own allowance.
    other = _refuse(app, paris(23, 23, 50), 9, sender="Lee <lee@elsewhere.example>")
    assert _states(app, [other]) == ["pending"]
    # A new day (00:30 in Paris = 23:30 UTC the day before) resets it.
    tuesday_0030 = paris(24, 0, 30)
    assert tuesday_0030.astimezone(dt.UTC).day == 23
    tuesday = [_refuse(app, tuesday_0030 + dt.timedelta(minutes=i), 10 + i) for i in range(4)]
    assert _states(app, tuesday) == ["pending", "pending", "pending", "suppressed"]
    # Only the pending ones are ever delivered.
    drain(app, paris(24, 9))
    delivered = relay.wait_for(7)
    assert len(delivered) == 7
    assert (
        sorted(r for d in delivered for r in d.rcpt_tos).count("mark@evans-consulting.example") == 6
    )


def test_refusal_limit_is_configuration(make_app: Any) -> None:
    app = registry(make_app({"policy": {"refusals_per_sender_per_day": 1}}))
    results = [_refuse(app, paris(23, 9 + i), i) for i in range(3)]
    assert _states(app, results) == ["pending", "suppressed", "suppressed"]


# ---------------------------------------------------------------- acknowledgement


def test_ack_states_level_default_tier_and_deadline_in_zone_and_utc(app: App) -> None:
    result = send(app, subject="Scheduled exports stopped", sender=STANDARD)  # no tag
    assert (result.severity, result.tier) == (3, "standard")
    _, msg = reply_to(app, result, "ack")
    text, markup = bodies(msg)
    for body in (words(text), html_words(markup)):
        assert "Level 3" in body and "normal" in body
        assert "carried no severity tag" in body  # why: defaulted (R-NOTAG)
        assert "[L1]" in body and "[L2]" in body and "[L4]" in body  # how to tag
        assert "Standard" in body
        # Standard L3 on Monday 09:00: 16 covered hours -> Wednesday 09:00 Paris.
        assert "Wed 25 Nov 2026 09:00 CET (Europe/Paris)" in body
        assert "2026-11-25 08:00 UTC" in body
    assert msg["Subject"].startswith(f"[{result.ticket}] ")
    assert msg["Auto-Submitted"] == "auto-replied"


def test_ack_states_a_capped_level_and_why(app: App) -> None:
    result = send(app, subject="[SUB-10007] [STAGING] [L1] Staging node down", sender=PREMIER)
    assert (result.severity, result.tier) == (4, "premier")
    _, msg = reply_to(app, result, "ack")
    text, markup = bodies(msg)
    for body in (words(text), html_words(markup)):
        assert "non-production environment (staging)" in body
        assert "Level 4" in body and "You asked for Level 1" in body
        assert "test, staging and pre-production systems are not production" in body
        assert "Premier" in body
        # Premier L4: 24 covered hours from Monday 09:00 -> Thursday 09:00 Paris.
        assert "Thu 26 Nov 2026 09:00 CET (Europe/Paris)" in body
        assert "2026-11-26 08:00 UTC" in body
        assert "carried no severity tag" not in body


def test_ack_for_a_tagged_request_gives_no_level_explanation(app: App) -> None:
    result = send(app, subject="[L2] Import stops", sender=PREMIER, now=paris(28, 10))
    _, msg = reply_to(app, result, "ack")
    text, markup = bodies(msg)
    for body in (words(text), html_words(markup)):
        assert "Level 2 (high)" in body or "Level: 2 (high)" in body
        assert "carried no severity tag" not in body and "non-production" not in body
        # Premier L2 counts the weekend: Saturday 10:00 -> Saturday 12:00.
        assert "Sat 28 Nov 2026 12:00 CET (Europe/Paris)" in body
        assert "2026-11-28 11:00 UTC" in body
        assert "weekends from fri 16:00 to mon 08:00" in body
