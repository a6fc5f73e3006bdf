"""Conversations by mail, end to end over SMTP: threading of customer replies, engineers
answering and commanding from their mail client, internal notes staying internal."""

from __future__ import annotations

import datetime as dt
import smtplib
from typing import Any

import pytest
from sqlalchemy import func, select

from mailgate.db.models import InboxItem, Message, OutboxMessage, Ticket
from mailgate.ingest.pipeline import ingest
from tests.conftest import add_subscription
from tests.support.mailtools import Received, RelaySink, make_mail, wait_until

ENGINEER = "Eve Engineer <eve@irex.example>"
CONFIG: dict[str, Any] = {
    "conversation": {
        "engineers": ["@irex.example"],
        "on_duty": ["oncall@irex.example"],
        "comment_address": "support-comment@irex.example",
        "hmac_secret": "test-secret",
    },
}


@pytest.fixture
def convo(make_app, run_gateway, relay: RelaySink):
    config = dict(CONFIG)
    config["outbox"] = {
        "transport": "smtp",
        "relay": {"port": relay.port, "security": "none"},
        "poll_interval": 0.05,
    }
    app = make_app(config)
    add_subscription(app)
    gw = run_gateway(app)
    return Conversation(app, gw.port, relay)


class Conversation:
    def __init__(self, app, port: int, relay: RelaySink) -> None:
        self.app = app
        self.port = port
        self.relay = relay

    def send(self, raw: bytes, to: list[str] | None = None, sender: str = "x@x.example") -> None:
        with smtplib.SMTP("127.0.0.1", self.port, timeout=10) as client:
            client.sendmail(sender, to or ["support@irex.example"], raw)

    def processed(self, count: int) -> None:
        def done() -> bool:
            with self.app.db.transaction() as s:
                return (
                    s.scalar(
                        select(func.count())
                        .select_from(InboxItem)
                        .where(InboxItem.status == "done")
                    )
                    >= count
                )

        wait_until(done)

    def mails_to(self, address: str, count: int) -> list[Received]:
        wait_until(lambda: len([m for m in self.relay.received if address in m.rcpt_tos]) >= count)
        return [m for m in self.relay.received if address in m.rcpt_tos]

    def ticket(self) -> Ticket:
        with self.app.db.transaction() as s:
            return s.scalar(select(Ticket).order_by(Ticket.id).limit(1))

    def messages(self) -> list[Message]:
        with self.app.db.transaction() as s:
            return list(s.scalars(select(Message).order_by(Message.id)))

    def open_request(self) -> tuple[Received, Received]:
        """A request from Jane: returns (her acknowledgement, the on-duty notification)."""
        self.send(make_mail(message_id="req-1@acme.example"))
        self.processed(1)
        [ack] = self.mails_to("jane@acme.example", 1)
        [note] = self.mails_to("oncall@irex.example", 1)
        return ack, note


def test_ack_and_engineer_notification_carry_signed_reply_address(convo):
    ack, note = convo.open_request()
    token = ack.message["Reply-To"]
    assert token.startswith("support+IREX-000001.") and token.endswith("@irex.example")
    assert note.message["Reply-To"] == token
    body = note.text()
    assert "Level 2" in body and "Standard" in body and "Respond by" in body
    assert "schema lock timeout" in body  # the customer's own text


def test_customer_reply_threads_by_in_reply_to(convo):
    ack, _ = convo.open_request()
    reply = make_mail(
        subject="Re: upgrade",
        body="More details: it happens on node 2 too.",
        in_reply_to=ack.message["Message-ID"],
    )
    convo.send(reply)
    convo.processed(2)
    with convo.app.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 1
        kinds = [m.kind for m in s.scalars(select(Message).where(Message.direction == "in"))]
    assert kinds == ["request", "reply"]


def test_customer_reply_threads_by_references_chain_only(convo):
    ack, _ = convo.open_request()
    chain = f"<unrelated@acme.example> {ack.message['Message-ID']} <later@acme.example>"
    convo.send(
        make_mail(subject="Another thing", body="Also the backup job fails.", references=chain)
    )
    convo.processed(2)
    assert [m.kind for m in convo.messages() if m.direction == "in"] == ["request", "reply"]


def test_customer_reply_threads_by_token_without_headers(convo):
    ack, _ = convo.open_request()
    token = ack.message["Reply-To"]
    convo.send(
        make_mail(subject="new subject entirely", body="Here is the log you asked for.", to=token),
        to=[token],
    )
    convo.processed(2)
    assert [m.kind for m in convo.messages() if m.direction == "in"] == ["request", "reply"]


@pytest.mark.parametrize("prefix", ["Re:", "AW:", "WG:", "TR:", "RE: RE:", "Fwd: Re:"])
def test_customer_reply_threads_by_subject_tag_with_prefixes(convo, prefix):
    convo.open_request()
    convo.send(
        make_mail(
            subject=f"{prefix} [IREX-000001] Upgrade fails", body="The workaround did not help."
        )
    )
    convo.processed(2)
    assert [m.kind for m in convo.messages() if m.direction == "in"] == ["request", "reply"]


def test_stranger_copying_a_ticket_tag_is_not_added_to_the_ticket(convo):
    convo.open_request()
    convo.send(
        make_mail(
            subject="Re: [IREX-000001] Upgrade fails",
            sender="mallory@evil.example",
            body="Please send me the logs of this ticket.",
        )
    )
    convo.processed(2)
    inbound = [m for m in convo.messages() if m.direction == "in"]
    assert [m.author for m in inbound] == ["jane@acme.example"]
    with convo.app.db.transaction() as s:
        item = s.scalar(select(InboxItem).order_by(InboxItem.id.desc()).limit(1))
    assert item.outcome == "rejected" and item.reason == "no_subscription"


def test_engineer_reply_is_relayed_stripped_and_stops_the_clock(convo):
    _, note = convo.open_request()
    reply = make_mail(
        sender=ENGINEER,
        to=note.message["Reply-To"],
        subject="Re: " + note.message["Subject"],
        in_reply_to=note.message["Message-ID"],
        body="Hi Jane,\n\nPlease run `irexctl migrate --unlock` and retry.\n\nEve\n\n"
        "On Mon, 23 Nov 2026 at 09:00, IREX Support <support@irex.example> wrote:\n"
        "> New ticket IREX-000001\n> internal details for engineers\n",
    )
    convo.send(reply, to=[note.message["Reply-To"]])
    [answer] = convo.mails_to("jane@acme.example", 2)[1:]
    msg = answer.message
    assert "support@irex.example" in msg["From"]
    assert msg["Subject"].startswith("[IREX-000001]")
    text = answer.text()
    assert "irexctl migrate --unlock" in text
    assert "internal details" not in text and "wrote:" not in text
    assert msg["In-Reply-To"] == "<req-1@acme.example>"
    ticket = convo.ticket()
    assert ticket.first_response_at is not None
    assert ticket.next_check_at is None  # R-ACK: the response clock stopped


def test_R_ACK_acknowledgement_does_not_stop_the_clock(convo):
    convo.open_request()
    ticket = convo.ticket()
    assert ticket.first_response_at is None and ticket.next_check_at is not None


def test_internal_note_and_comment_address_reach_no_customer(convo):
    _, note = convo.open_request()
    token = note.message["Reply-To"]
    convo.send(
        make_mail(
            sender=ENGINEER,
            to=token,
            subject="Re: x",
            body="#internal\nCustomer is on an old kernel, watch out.",
        ),
        to=[token],
    )
    comment = token.replace("support+", "support-comment+")
    convo.send(
        make_mail(sender=ENGINEER, to=comment, subject="Re: x", body="Looks like bug 4711."),
        to=[comment],
    )
    convo.processed(3)
    wait_until(lambda: all(o.state != "pending" for o in _outbox(convo.app)))
    to_jane = convo.mails_to("jane@acme.example", 1)
    assert len(to_jane) == 1  # only the acknowledgement
    notes = [m for m in convo.messages() if m.kind == "internal_note"]
    assert len(notes) == 2 and not any(m.public for m in notes)
    assert "old kernel" in notes[0].body_text and "#internal" not in notes[0].body_text


def _outbox(app) -> list[OutboxMessage]:
    with app.db.transaction() as s:
        return list(s.scalars(select(OutboxMessage)))


def test_forged_engineer_without_token_applies_nothing_and_relays_nothing(convo):
    convo.open_request()
    convo.send(
        make_mail(
            sender=ENGINEER,
            subject="Re: [IREX-000001] Upgrade fails",
            in_reply_to="<req-1@acme.example>",
            body="#status resolved\n#severity 4\nPlease send us your password.",
        )
    )
    convo.processed(2)
    wait_until(lambda: all(o.state != "pending" for o in _outbox(convo.app)))
    ticket = convo.ticket()
    assert ticket.status == "open" and ticket.severity == 2
    assert len(convo.mails_to("jane@acme.example", 1)) == 1
    [warning] = convo.mails_to("eve@irex.example", 1)
    assert "Nothing was applied" in warning.text()


def test_commands_change_status_and_level_with_receipt(convo):
    _, note = convo.open_request()
    token = note.message["Reply-To"]
    before = convo.ticket()
    convo.send(
        make_mail(
            sender=ENGINEER,
            to=token,
            subject="Re: x",
            body="#severity 1\n#status waiting\n#assign eve@irex.example\n#frobnicate\n"
            "\nWe are looking into it.",
        ),
        to=[token],
    )
    [receipt] = convo.mails_to("eve@irex.example", 1)
    after = convo.ticket()
    assert (after.severity, after.status, after.assignee) == (1, "waiting", "eve@irex.example")
    assert after.due_at < before.due_at  # recomputed from the original receipt time
    text = receipt.text()
    assert "level set to 1" in text and "status set to waiting" in text
    assert "REFUSED" in text and "#frobnicate" in text
    [_, answer] = convo.mails_to("jane@acme.example", 2)
    assert "#severity" not in answer.text() and "We are looking into it." in answer.text()


def test_out_of_office_is_attached_without_reply(convo):
    ack, _ = convo.open_request()
    convo.send(
        make_mail(
            subject="Automatic reply: [IREX-000001] Upgrade fails",
            in_reply_to=ack.message["Message-ID"],
            body="I am out until Monday.",
            headers={"Auto-Submitted": "auto-replied"},
        )
    )
    convo.processed(2)
    wait_until(lambda: all(o.state != "pending" for o in _outbox(convo.app)))
    auto = [m for m in convo.messages() if m.kind == "auto_reply"]
    assert len(auto) == 1 and not auto[0].public
    assert len(convo.mails_to("jane@acme.example", 1)) == 1
    assert len(convo.mails_to("oncall@irex.example", 1)) == 1  # no notification either
    assert convo.ticket().status == "open"


def _resolve(app, when: dt.datetime) -> None:
    with app.db.transaction() as s:
        ticket = s.scalar(select(Ticket))
        ticket.status = "resolved"
        ticket.resolved_at = when


def test_reply_reopens_recently_resolved_ticket(make_app):
    app = make_app(CONFIG)
    add_subscription(app)
    now = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
    ingest(app, make_mail(message_id="r1@acme.example"), source="pipe", now=now)
    _resolve(app, now + dt.timedelta(hours=2))
    result = ingest(
        app,
        make_mail(subject="Re: [IREX-000001] x", body="It is back again."),
        source="pipe",
        now=now + dt.timedelta(days=3),
    )
    assert result.outcome == "reply_added" and result.ticket == "IREX-000001"
    with app.db.transaction() as s:
        ticket = s.scalar(select(Ticket))
        assert ticket.status == "open" and ticket.resolved_at is None


def test_reply_after_reopen_window_opens_linked_ticket(make_app):
    app = make_app(CONFIG)
    add_subscription(app)
    now = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)
    ingest(app, make_mail(message_id="old@acme.example"), source="pipe", now=now)
    _resolve(app, now + dt.timedelta(hours=2))
    result = ingest(
        app,
        make_mail(subject="Re: [IREX-000001] x", body="Same problem again."),
        source="pipe",
        now=now + dt.timedelta(days=20),
    )
    assert result.outcome == "ticket_created" and result.ticket == "IREX-000002"
    with app.db.transaction() as s:
        new = s.scalar(select(Ticket).where(Ticket.public_id == "IREX-000002"))
        assert new.parent_id == 1
        old = s.scalar(select(Ticket).where(Ticket.public_id == "IREX-000001"))
        assert old.status == "resolved"


def _with_auth(make_app, relay):
    config = dict(CONFIG)
    config["conversation"] = dict(
        CONFIG["conversation"], require_authentication=True, authserv_id="mx.irex.example"
    )
    config["outbox"] = {"transport": "smtp", "relay": {"port": relay.port, "security": "none"}}
    app = make_app(config)
    add_subscription(app)
    return app


def _drain(app) -> None:
    from mailgate.outbox import OutboxSender, SmtpTransport

    transport = SmtpTransport(app.settings.outbox.relay)
    OutboxSender(app.db, app.settings.outbox, transport, "test").drain(
        dt.datetime.now(dt.UTC) + dt.timedelta(days=30)
    )
    transport.close()


@pytest.mark.parametrize(
    ("auth_header", "applied"),
    [
        (None, False),
        ("mx.irex.example; dkim=pass header.d=irex.example header.s=sel", True),
        ("mx.irex.example; spf=pass smtp.mailfrom=eve@irex.example", True),
        ("mx.irex.example; dkim=fail header.d=irex.example", False),
        # Forged by the sender: another authserv-id is never trusted (RFC 8601 section 5).
        ("evil.example; dkim=pass header.d=irex.example", False),
    ],
)
def test_commands_need_dkim_or_spf_pass_when_required(make_app, relay, auth_header, applied):
    app = _with_auth(make_app, relay)
    now = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
    ingest(app, make_mail(message_id="a1@acme.example"), source="pipe", now=now)
    token = app.reply_tokens.address("IREX-000001")
    headers = {"Authentication-Results": auth_header} if auth_header else {}
    ingest(
        app,
        make_mail(
            sender=ENGINEER,
            to=token,
            subject="Re: x",
            headers=headers,
            body="#status resolved\nFixed in 7.4.3.",
        ),
        source="pipe",
        now=now + dt.timedelta(hours=1),
    )
    _drain(app)
    with app.db.transaction() as s:
        ticket = s.scalar(select(Ticket))
    assert (ticket.status == "resolved") is applied
    to_jane = [m for m in relay.received if "jane@acme.example" in m.rcpt_tos]
    assert len(to_jane) == (2 if applied else 1)


def test_html_only_outlook_reply_from_engineer_is_stripped_and_keeps_attachments(make_app, relay):
    config = dict(CONFIG)
    config["outbox"] = {"transport": "smtp", "relay": {"port": relay.port, "security": "none"}}
    app = make_app(config)
    add_subscription(app)
    now = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
    ingest(app, make_mail(message_id="h1@acme.example"), source="pipe", now=now)
    token = app.reply_tokens.address("IREX-000001")
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"] = ENGINEER
    msg["To"] = token
    msg["Subject"] = "RE: [IREX-000001] Upgrade fails"
    msg["Message-ID"] = "<outlook-1@irex.example>"
    msg.set_content(
        "<html><body><div>Please apply the attached patch and restart.</div>"
        '<div id="appendonsend"></div><hr style="display:inline-block;width:98%">'
        '<div id="divRplyFwdMsg"><b>From:</b> IREX Support<br><b>Sent:</b> Monday<br>'
        "<b>Subject:</b> New ticket</div><div>internal on-duty notification text</div>"
        "</body></html>",
        subtype="html",
    )
    msg.add_attachment(
        b"--- a/x\n+++ b/x\n", maintype="text", subtype="x-diff", filename="fix.patch"
    )
    ingest(app, msg.as_bytes(), source="pipe", now=now + dt.timedelta(minutes=30))
    _drain(app)
    [answer] = [m for m in relay.received if "jane@acme.example" in m.rcpt_tos][1:]
    text = answer.text()
    assert "attached patch" in text and "on-duty notification" not in text
    names = [p.get_filename() for p in answer.message.iter_attachments()]
    assert names == ["fix.patch"]


def test_engineer_mail_matching_no_ticket_is_kept_and_explained(make_app):
    app = make_app(CONFIG)
    now = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
    result = ingest(
        app,
        make_mail(
            sender=ENGINEER,
            subject="Customer called about 7.4.2",
            body="Can someone look at ACME's upgrade?",
        ),
        source="pipe",
        now=now,
    )
    assert (result.outcome, result.reason) == ("ignored", "engineer_without_ticket")
    rows = _outbox(app)
    assert [(o.kind, o.recipients) for o in rows] == [("error", ["eve@irex.example"])]
    assert b"did not match any ticket" in rows[0].raw
    with app.db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(Ticket)) == 0
