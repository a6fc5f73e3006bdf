"""A mail that belongs to an existing ticket: a customer's reply, an automatic reply, or
an engineer's answer, note or commands.

- Customer replies are appended with quoted history and signature stripped (the raw
  message stays in the inbox), reopen a recently resolved ticket, and notify the
  assignee or the on-duty engineers.
- Automatic replies (out-of-office) are attached silently.
- An engineer's reply through a valid reply token is relayed to the customer from the
  support address: commands applied, command lines and quoted history removed,
  attachments kept. The first public reply stops the SLA response clock (R-ACK).
  ``#internal`` or the comment address makes it an internal note, relayed to nobody.
  Without a valid token (or, where required, without DKIM/SPF pass) nothing is applied
  or relayed: the engineer gets an error mail explaining why.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailgate.app import App
from mailgate.conversation.auth import authenticated
from mailgate.conversation.commands import Command, ParsedCommands, parse_commands
from mailgate.conversation.threading import TicketMatch
from mailgate.db import queries
from mailgate.db.models import Message, OutboxMessage, Ticket
from mailgate.db.queries import queue_outgoing
from mailgate.ingest.common import LEVEL_LABELS, TIER_LABELS, finish_inbox
from mailgate.ingest.result import Result
from mailgate.mail.compose import Outgoing
from mailgate.model import Outcome, ParsedMail
from mailgate.sla import service as sla_service


@dataclass(frozen=True)
class Applied:
    done: tuple[str, ...]
    refused: tuple[str, ...]


def _thread_refs(session: Session, ticket: Ticket) -> tuple[str | None, list[str]]:
    """(the customer's latest message id, the References chain) for mail to the customer."""
    ids = list(
        session.scalars(
            select(Message.message_id)
            .where(
                Message.ticket_id == ticket.id,
                Message.message_id.is_not(None),
                Message.public.is_(True),
            )
            .order_by(Message.id)
        )
    )
    last_in = session.scalar(
        select(Message.message_id)
        .where(
            Message.ticket_id == ticket.id,
            Message.kind.in_(("request", "reply")),
            Message.message_id.is_not(None),
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
    return last_in, [i for i in ids if i]


def _customer_recipients(session: Session, app: App, ticket: Ticket) -> list[str]:
    """The requester, plus customers who wrote on the ticket themselves."""
    conv = app.settings.conversation
    authors = session.scalars(
        select(Message.author)
        .where(
            Message.ticket_id == ticket.id,
            Message.direction == "in",
            Message.kind.in_(("request", "reply")),
        )
        .distinct()
    )
    out = [ticket.requester]
    for author in authors:
        if author and author not in out and not conv.is_engineer(author):
            out.append(author)
    return out


def _engineer_recipients(app: App, ticket: Ticket) -> list[str]:
    if ticket.assignee:
        return [ticket.assignee]
    return list(app.settings.conversation.on_duty)


def ticket_context(app: App, ticket: Ticket) -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    from mailgate.ingest.common import format_due

    due_local, due_utc = (
        format_due(ticket.due_at, ZoneInfo(app.settings.sla.timezone))
        if ticket.due_at
        else (None, None)
    )
    return {
        "id": ticket.public_id,
        "subject": ticket.subject,
        "status": ticket.status,
        "requester": ticket.requester,
        "subscription": ticket.subscription_id,
        "tier": ticket.tier,
        "tier_label": TIER_LABELS.get(ticket.tier, ticket.tier),
        "level": ticket.severity,
        "level_label": LEVEL_LABELS.get(ticket.severity, ""),
        "due_local": due_local,
        "due_utc": due_utc,
        "answered": ticket.first_response_at is not None,
        "assignee": ticket.assignee,
        "tags": list(ticket.tags or ()),
    }


def notify_engineers(
    app: App,
    session: Session,
    ticket: Ticket,
    *,
    event: str,
    text: str,
    author: str,
    inbox_id: int,
    now: dt.datetime,
    in_reply_to: str | None = None,
) -> None:
    """Tell the assignee (else the on-duty engineers) about a new ticket or reply."""
    out = compose_notification(
        app, ticket, event=event, text=text, author=author, now=now, in_reply_to=in_reply_to
    )
    if out is not None:
        outbox, message = notification_rows(app, ticket.id, out, inbox_id=inbox_id, now=now)
        session.add_all([OutboxMessage(**outbox), Message(**message)])


def compose_notification(
    app: App,
    ticket: Ticket,
    *,
    event: str,
    text: str,
    author: str,
    now: dt.datetime,
    in_reply_to: str | None = None,
) -> Outgoing | None:
    """The engineers' notification of a new ticket or reply; None when nobody is to be
    told. Needs the ticket's public ID, not its row, so it can be rendered before the
    ticket is written."""
    to = _engineer_recipients(app, ticket)
    if not to:
        return None
    assert ticket.public_id is not None
    tokens = app.reply_tokens
    return app.composer.compose(
        kind="notification",
        template="notify",
        context={
            "event": event,
            "ticket": ticket_context(app, ticket),
            "author": author,
            "text": text,
            "reply_address": tokens.address(ticket.public_id),
            "comment_address": tokens.address(ticket.public_id, comment=True)
            if app.settings.conversation.comment_address
            else None,
            "support_name": app.settings.mail.support_name,
            "support_address": app.settings.mail.support_address,
        },
        to=to,
        subject=f"[{ticket.public_id}] {'New' if event == 'new' else 'Reply'}: "
        f"L{ticket.severity} {TIER_LABELS.get(ticket.tier, ticket.tier)} - {ticket.subject}",
        label=ticket.public_id,
        reply_to=tokens.address(ticket.public_id),
        in_reply_to=in_reply_to,
        auto_submitted="auto-generated",
        now=now,
    )


def notification_rows(
    app: App, ticket_id: int, out: Outgoing, *, inbox_id: int, now: dt.datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The outbox row of the engineers' notification about ``inbox_id`` and its internal
    record in the ticket's conversation."""
    outbox = queries.outbox_values(out, f"notify:{inbox_id}", now, ticket_id)
    author = app.settings.mail.support_address
    message = queries.sent_message_values(
        ticket_id, out, kind="notification", public=False, author=author, now=now
    )
    return outbox, message


def _record_out(
    session: Session,
    ticket: Ticket,
    out: Outgoing,
    app: App,
    now: dt.datetime,
    *,
    kind: str,
    public: bool,
    body: str = "",
    author: str | None = None,
) -> None:
    author = author or app.settings.mail.support_address
    values = queries.sent_message_values(
        ticket.id, out, kind=kind, public=public, author=author, now=now, body=body
    )
    session.add(Message(**values))


def handle_reply(
    app: App,
    session: Session,
    inbox_id: int,
    mail: ParsedMail,
    match: TicketMatch,
    text: str,
    automatic: str | None,
    received_at: dt.datetime,
    now: dt.datetime,
) -> Result:
    ticket = match.ticket
    sender = mail.sender.lower if mail.sender else ""
    conv = app.settings.conversation
    if automatic is not None:
        _append(
            session,
            ticket,
            inbox_id,
            mail,
            "auto_reply",
            sender,
            text,
            public=False,
            at=received_at,
        )
        finish_inbox(
            session, inbox_id, Outcome.REPLY_ADDED, now, reason="automatic", ticket_id=ticket.id
        )
        return _result(inbox_id, ticket, mail)
    if conv.is_engineer(sender):
        return _engineer_reply(app, session, inbox_id, mail, match, text, sender, received_at, now)
    # A customer's reply.
    _append(session, ticket, inbox_id, mail, "reply", sender, text, public=True, at=received_at)
    if ticket.status in ("waiting", "resolved"):
        sla_service.set_status(session, ticket, "open", app, received_at)
    ticket.updated_at = now
    notify_engineers(
        app,
        session,
        ticket,
        event="reply",
        text=text,
        author=sender,
        inbox_id=inbox_id,
        now=now,
        in_reply_to=None,
    )
    finish_inbox(session, inbox_id, Outcome.REPLY_ADDED, now, ticket_id=ticket.id)
    return _result(inbox_id, ticket, mail)


def _append(
    session: Session,
    ticket: Ticket,
    inbox_id: int,
    mail: ParsedMail,
    kind: str,
    author: str,
    text: str,
    *,
    public: bool,
    at: dt.datetime,
) -> Message:
    message = Message(
        ticket_id=ticket.id,
        inbox_id=inbox_id,
        direction="in",
        kind=kind,
        message_id=mail.message_id,
        author=author,
        subject=mail.subject[:2000],
        body_text=text,
        public=public,
        created_at=at,
    )
    session.add(message)
    return message


def _result(inbox_id: int, ticket: Ticket, mail: ParsedMail) -> Result:
    return Result.for_ticket(inbox_id, Outcome.REPLY_ADDED, ticket, mail.message_id)


def _engineer_reply(
    app: App,
    session: Session,
    inbox_id: int,
    mail: ParsedMail,
    match: TicketMatch,
    text: str,
    sender: str,
    received_at: dt.datetime,
    now: dt.datetime,
) -> Result:
    ticket = match.ticket
    parsed = parse_commands(text)
    trusted, why = _trusted(app, mail, match)
    if not trusted:
        # Nothing applied, nothing relayed; kept as an internal record, and the engineer
        # (the real owner of the address) hears why.
        _append(
            session,
            ticket,
            inbox_id,
            mail,
            "refused_engineer_mail",
            sender,
            text,
            public=False,
            at=received_at,
        )
        _receipt(
            app,
            session,
            ticket,
            sender,
            inbox_id,
            mail,
            now,
            Applied((), ()),
            parsed,
            refused_reason=why,
        )
        finish_inbox(
            session,
            inbox_id,
            Outcome.REPLY_ADDED,
            now,
            reason="untrusted_engineer",
            ticket_id=ticket.id,
        )
        return _result(inbox_id, ticket, mail)
    internal = (
        parsed.internal
        or match.token_kind == "comment"
        or any(app.reply_tokens.is_comment_address(a.addr) for a in mail.recipients)
    )
    applied = _apply_commands(app, session, ticket, parsed.commands, received_at)
    body = parsed.body
    if internal:
        _append(
            session,
            ticket,
            inbox_id,
            mail,
            "internal_note",
            sender,
            body,
            public=False,
            at=received_at,
        )
    elif body:
        _append(
            session,
            ticket,
            inbox_id,
            mail,
            "engineer_reply",
            sender,
            body,
            public=True,
            at=received_at,
        )
        _relay(app, session, ticket, mail, body, sender, inbox_id, now)
        if ticket.first_response_at is None:
            sla_service.record_first_response(session, ticket, received_at)
    elif parsed.commands:
        _append(
            session, ticket, inbox_id, mail, "commands", sender, "", public=False, at=received_at
        )
    if parsed.commands:
        _receipt(app, session, ticket, sender, inbox_id, mail, now, applied, parsed)
    ticket.updated_at = now
    finish_inbox(session, inbox_id, Outcome.REPLY_ADDED, now, ticket_id=ticket.id)
    return _result(inbox_id, ticket, mail)


def _trusted(app: App, mail: ParsedMail, match: TicketMatch) -> tuple[bool, str]:
    if not match.valid_token:
        return False, (
            "the reply did not come back through this ticket's reply address, so it was "
            "neither relayed nor applied; reply to the ticket's notification instead"
        )
    conv = app.settings.conversation
    if conv.require_authentication:
        ok, evidence = authenticated(mail, conv.authserv_id)
        if not ok:
            return False, f"the sender could not be authenticated ({evidence})"
    return True, ""


def _apply_commands(
    app: App,
    session: Session,
    ticket: Ticket,
    commands: tuple[Command, ...],
    at: dt.datetime,
) -> Applied:
    done: list[str] = []
    refused: list[str] = []
    for command in commands:
        if command.error:
            refused.append(f"{command.line}: {command.error}")
            continue
        if command.name == "status":
            sla_service.set_status(session, ticket, command.arg.lower(), app, at)
            done.append(f"status set to {command.arg.lower()}")
        elif command.name in ("severity", "level"):
            level = int(command.arg)
            sla_service.change_level(session, ticket, level, app)
            done.append(f"level set to {level}; response due recomputed")
        elif command.name == "assign":
            address = command.arg.lower()
            if not app.settings.conversation.is_engineer(address):
                refused.append(f"{command.line}: {address} is not a configured engineer")
                continue
            ticket.assignee = address
            done.append(f"assigned to {address}")
        elif command.name == "internal":
            done.append("recorded as an internal note (not sent to the customer)")
    return Applied(tuple(done), tuple(refused))


def _relay(
    app: App,
    session: Session,
    ticket: Ticket,
    mail: ParsedMail,
    body: str,
    engineer: str,
    inbox_id: int,
    now: dt.datetime,
) -> None:
    assert ticket.public_id is not None
    last_in, refs = _thread_refs(session, ticket)
    name = mail.from_.name if mail.from_ and mail.from_.name else engineer.partition("@")[0]
    out = app.composer.compose(
        kind="relay",
        template="relay",
        context={
            "text": body,
            "engineer_name": name,
            "ticket": ticket_context(app, ticket),
            "support_name": app.settings.mail.support_name,
            "support_address": app.settings.mail.support_address,
        },
        to=_customer_recipients(session, app, ticket),
        subject=f"[{ticket.public_id}] {ticket.subject}",
        label=ticket.public_id,
        from_name=f"{name} ({app.settings.mail.support_name})",
        reply_to=app.reply_tokens.address(ticket.public_id),
        in_reply_to=last_in,
        references=refs,
        auto_submitted="",  # a person's answer, not an automatic reply
        attachments=[a for a in mail.attachments if not a.inline or a.filename],
        now=now,
    )
    queue_outgoing(session, out, dedupe_key=f"relay:{inbox_id}", now=now, ticket_id=ticket.id)
    _record_out(
        session, ticket, out, app, now, kind="relay", public=True, body=body, author=engineer
    )


def _receipt(
    app: App,
    session: Session,
    ticket: Ticket,
    engineer: str,
    inbox_id: int,
    mail: ParsedMail,
    now: dt.datetime,
    applied: Applied,
    parsed: ParsedCommands,
    refused_reason: str | None = None,
) -> None:
    assert ticket.public_id is not None
    failed = bool(refused_reason or applied.refused)
    out = app.composer.compose(
        kind="receipt",
        template="receipt",
        context={
            "ticket": ticket_context(app, ticket),
            "done": list(applied.done),
            "refused": list(applied.refused),
            "refused_reason": refused_reason,
            "commands": [c.line for c in parsed.commands],
            "support_name": app.settings.mail.support_name,
            "support_address": app.settings.mail.support_address,
        },
        to=[engineer],
        subject=f"[{ticket.public_id}] {'Not applied' if failed else 'Applied'}: {ticket.subject}",
        label=ticket.public_id,
        reply_to=app.reply_tokens.address(ticket.public_id),
        in_reply_to=mail.message_id,
        references=mail.references,
        auto_submitted="auto-replied",
        now=now,
    )
    queue_outgoing(session, out, dedupe_key=f"receipt:{inbox_id}", now=now, ticket_id=ticket.id)
