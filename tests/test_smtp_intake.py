"""The SMTP listener over a real socket: store first, then answer; refuse with the right
enhanced status codes; deliver acknowledgements through the outbox."""

from __future__ import annotations

import smtplib
from email import message_from_bytes
from email import policy as email_policy

import pytest
from sqlalchemy import func, select

from mailgate.db.models import InboxItem, OutboxMessage, Ticket
from mailgate.outbox import SmtpTransport
from tests.conftest import add_subscription
from tests.support.mailtools import make_mail, wait_until


def _count(app, model, *where):
    with app.db.transaction() as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_mail_over_smtp_becomes_ticket_and_ack_reaches_relay(make_app, run_gateway, relay):
    app = make_app(
        {"outbox": {"transport": "smtp", "relay": {"port": relay.port, "security": "none"}}}
    )
    add_subscription(app)
    gw = run_gateway(app)
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=10) as client:
        code, _ = client.noop()
        assert code == 250
        long_subject = "[SUB-12345] [L2] Upgrade to 7.4.2 stops at the schema migration"
        client.sendmail(
            "jane@acme.example", ["support@irex.example"], make_mail(subject=long_subject)
        )
    [ack] = relay.wait_for(1)
    assert ack.rcpt_tos == ["jane@acme.example"]
    msg = ack.message
    assert msg["Subject"].startswith("[IREX-000001] ")
    # Not folded right after "Subject:" (clients would show a leading space).
    assert b"\nSubject: [IREX-000001] " in ack.raw.replace(b"\r\n", b"\n")
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["In-Reply-To"] and msg["References"]
    assert "IREX-000001" in ack.text()
    assert _count(app, Ticket) == 1


def test_same_message_twice_gives_one_ticket_and_one_ack(make_app, run_gateway, tmp_path):
    app = make_app()
    add_subscription(app)
    gw = run_gateway(app)
    raw = make_mail(message_id="twice@acme.example")
    for _ in range(2):
        with smtplib.SMTP("127.0.0.1", gw.port, timeout=10) as client:
            client.sendmail("jane@acme.example", ["support@irex.example"], raw)
    wait_until(lambda: _count(app, OutboxMessage, OutboxMessage.state == "sent") >= 1)
    assert _count(app, Ticket) == 1
    assert _count(app, OutboxMessage) == 1
    assert _count(app, InboxItem) == 1


def test_raw_bytes_are_stored_unaltered(make_app, run_gateway):
    app = make_app()
    add_subscription(app)
    gw = run_gateway(app)
    raw = make_mail(body="Caf\u00e9 cr\u00e8me: the upgrade fails.\n.leading dot line\n")
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=10) as client:
        client.sendmail("jane@acme.example", ["support@irex.example"], raw)
    with app.db.transaction() as s:
        stored = s.scalar(select(InboxItem.raw))
    assert stored.replace(b"\r\n", b"\n") == raw.replace(b"\r\n", b"\n")


def test_oversize_mail_is_refused_552_534(make_app, run_gateway):
    app = make_app({"smtp": {"max_message_bytes": 2048}})
    gw = run_gateway(app)
    big = make_mail(body="x" * 5000)
    # A client that announces the size (EHLO SIZE) is refused at MAIL FROM ...
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("jane@acme.example", ["support@irex.example"], big)
    assert refused.value.smtp_code == 552 and b"5.3.4" in refused.value.smtp_error
    # ... and one that does not is refused after DATA.
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=10) as client:
        client.helo("client.test")
        assert client.mail("jane@acme.example")[0] == 250
        assert client.rcpt("support@irex.example")[0] == 250
        code, text = client.data(big)
    assert code == 552 and b"5.3.4" in text
    assert _count(app, InboxItem) == 0


def test_wrong_recipient_is_refused_550_511(make_app, run_gateway):
    app = make_app({"smtp": {"support_addresses": ["support@irex.example"]}})
    gw = run_gateway(app)
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as err:
            client.sendmail("jane@acme.example", ["sales@irex.example"], make_mail())
    code, text = err.value.recipients["sales@irex.example"]
    assert code == 550 and b"5.1.1" in text
    # The configured address, and its plus-tagged form, are accepted.
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=10) as client:
        client.sendmail("jane@acme.example", ["support+IREX-000001.x@irex.example"], make_mail())
    wait_until(lambda: _count(app, InboxItem) == 1)


def test_storage_failure_answers_451_and_retry_succeeds(make_app, run_gateway):
    app = make_app()
    add_subscription(app)
    gw = run_gateway(app)
    real_store = gw.gateway._store
    failures = {"left": 1}

    def flaky(*args):
        if failures["left"]:
            failures["left"] -= 1
            from mailgate.errors import StoreError

            raise StoreError("disk full")
        return real_store(*args)

    gw.gateway.handler.store = flaky
    raw = make_mail(message_id="retry@acme.example")
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPDataError) as err:
            client.sendmail("jane@acme.example", ["support@irex.example"], raw)
    assert err.value.smtp_code == 451 and b"4.3.0" in err.value.smtp_error
    assert _count(app, InboxItem) == 0
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=10) as client:
        client.sendmail("jane@acme.example", ["support@irex.example"], raw)
    wait_until(lambda: _count(app, Ticket) == 1)


def test_automatic_message_gets_no_reply(make_app, run_gateway):
    app = make_app()
    add_subscription(app)
    gw = run_gateway(app)
    raw = make_mail(
        subject="[SUB-12345] Automatic reply: upgrade", headers={"Auto-Submitted": "auto-replied"}
    )
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=10) as client:
        client.sendmail("jane@acme.example", ["support@irex.example"], raw)
    wait_until(lambda: _count(app, InboxItem, InboxItem.status == "done") == 1)
    with app.db.transaction() as s:
        item = s.scalar(select(InboxItem))
    assert item.outcome == "ignored"
    assert _count(app, OutboxMessage) == 0
    assert _count(app, Ticket) == 0


def test_relay_transport_retries_after_temporary_failure(make_app, relay):
    import datetime as dt

    from mailgate.ingest.pipeline import ingest
    from mailgate.outbox import OutboxSender

    app = make_app(
        {"outbox": {"transport": "smtp", "relay": {"port": relay.port, "security": "none"}}}
    )
    add_subscription(app)
    ingest(app, make_mail(), source="pipe")
    relay.fail_next = 1
    sender = OutboxSender(
        app.db, app.settings.outbox, SmtpTransport(app.settings.outbox.relay), "t"
    )
    first = sender.drain()
    assert (first.sent, first.retried) == (0, 1)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    second = sender.drain(later)
    sender.transport.close()
    assert second.sent == 1
    with app.db.transaction() as s:
        row = s.scalar(select(OutboxMessage))
        assert row.state == "sent" and row.attempts == 2
    msg = message_from_bytes(relay.received[0].raw, policy=email_policy.default)
    assert msg["Auto-Submitted"] == "auto-replied"


def test_nul_characters_and_overlong_values_still_make_a_ticket(make_app):
    """PostgreSQL text cannot hold NUL and refuses over-long values: such mail must still
    become a ticket, not a quarantined item that no retry can fix."""
    from mailgate.ingest.pipeline import ingest

    app = make_app()
    add_subscription(app, contacts=("@acme.example",))
    local = "j" * 330
    raw = make_mail(
        subject="[SUB-12345] Upgrade\x00 fails",
        body="The log shows \x00\x00 bytes after the upgrade to 7.4.2.",
        sender=f"Jane <{local}@acme.example>",
    )
    result = ingest(app, raw, source="pipe")
    assert result.outcome == "ticket_created", result
    with app.db.transaction() as s:
        ticket = s.scalar(select(Ticket))
        assert "\x00" not in ticket.subject and "\ufffd" in ticket.subject
        assert len(ticket.requester) == 320


def test_non_ascii_message_ids_are_not_mistaken_for_duplicates(make_app):
    from mailgate.ingest.pipeline import ingest

    app = make_app()
    add_subscription(app)
    first = make_mail()
    raw_a = b"Message-ID: <caf\xc3\xa9@acme.example>\r\n" + _without_message_id(first)
    raw_b = b"Message-ID: <caf\xc3\xbc@acme.example>\r\n" + _without_message_id(first)
    assert ingest(app, raw_a, source="pipe").outcome == "ticket_created"
    assert ingest(app, raw_b, source="pipe").outcome == "ticket_created"


def _without_message_id(raw: bytes) -> bytes:
    return b"".join(
        line for line in raw.splitlines(keepends=True) if not line.lower().startswith(b"message-id")
    )
