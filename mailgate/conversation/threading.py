"""Which ticket an inbound mail belongs to, if any. In order (the first that holds wins):

1. a validly signed reply address among the recipients (``support+IREX-000123.sig@``);
2. In-Reply-To or any Message-ID in References naming a message of a ticket (ours or
   the customer's), newest reference first;
3. the subject tag ``[IREX-000123]``, when the sender already takes part in the ticket.

A match is only accepted from someone entitled to the ticket: its requester, anyone who
wrote on it, an engineer, or a registered contact of its subscription. A stranger who
copies a ticket tag, token or thread into a mail starts a new request instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from sqlalchemy import literal, select, union_all
from sqlalchemy.orm import Session

from mailgate.conversation.settings import ConversationSettings
from mailgate.conversation.tokens import ReplyTokens
from mailgate.db import queries
from mailgate.db.models import Message, OutboxMessage, Ticket
from mailgate.db.registry import Registry
from mailgate.mail.subject import SubjectTags
from mailgate.model import ParsedMail


@dataclass(frozen=True)
class TicketMatch:
    ticket: Ticket
    how: str  # token | references | subject
    token_kind: str | None  # support | comment, when matched by a valid token
    valid_token: bool


def _recipient_addresses(mail: ParsedMail) -> list[str]:
    found = [a.addr for a in mail.recipients] + list(mail.envelope_to)
    return [a for a in found if a]


def _tickets_for_message_ids(session: Session, message_ids: list[str]) -> dict[str, int]:
    """The ticket of each of ``message_ids`` that names a message of a ticket (ours or the
    customer's): one statement for the whole chain, not two per reference."""
    if not message_ids:
        return {}
    sent = select(
        OutboxMessage.message_id, OutboxMessage.ticket_id, literal(0).label("conversation")
    ).where(OutboxMessage.message_id.in_(message_ids), OutboxMessage.ticket_id.is_not(None))
    kept = select(Message.message_id, Message.ticket_id, literal(1)).where(
        Message.message_id.in_(message_ids), Message.ticket_id.is_not(None)
    )
    # (typed by hand: the stubs cannot follow a UNION of these columns)
    rows: list[Any] = list(session.connection().execute(union_all(sent, kept)))
    # A message's own row in a conversation wins over the outbox row of the same id.
    return {mid: tid for mid, tid, _ in sorted(rows, key=itemgetter(2)) if mid is not None}


def takes_part(
    session: Session,
    ticket: Ticket,
    sender: str,
    settings: ConversationSettings,
    registry: Registry,
    *,
    colleagues: bool = True,
) -> bool:
    """Requester, earlier writer or engineer; with ``colleagues``, also any registered
    contact of the ticket's subscription (an administrator the customer copied in)."""
    sender = sender.lower()
    if sender == ticket.requester or settings.is_engineer(sender):
        return True
    wrote = session.scalar(
        select(Message.id)
        .where(Message.ticket_id == ticket.id, Message.author == sender, Message.direction == "in")
        .limit(1)
    )
    if wrote is not None:
        return True
    if colleagues and ticket.subscription_id:
        sub = registry.get(ticket.subscription_id)
        if sub is not None and sub.contact_match(sender):
            return True
    return False


def match_ticket(
    session: Session,
    mail: ParsedMail,
    tags: SubjectTags,
    sender: str | None,
    tokens: ReplyTokens,
    settings: ConversationSettings,
    registry: Registry,
) -> TicketMatch | None:
    if not sender:
        return None
    for address in _recipient_addresses(mail):
        parts = tokens.parse(address)
        if parts is None:
            continue
        ticket = queries.ticket_by_public_id(session, parts.ticket)
        if ticket is not None and takes_part(session, ticket, sender, settings, registry):
            return TicketMatch(ticket, "token", parts.kind, True)
    refs = list(mail.in_reply_to) + [
        r for r in reversed(mail.references) if r not in mail.in_reply_to
    ]
    known = _tickets_for_message_ids(session, refs)
    for ref in refs:
        ticket = session.get(Ticket, known[ref]) if ref in known else None
        if ticket is not None:
            if takes_part(session, ticket, sender, settings, registry):
                return TicketMatch(ticket, "references", None, False)
            break  # the thread is someone else's: a stranger's mail is a new request
    if tags.ticket_id:
        ticket = queries.ticket_by_public_id(session, tags.ticket_id)
        if ticket is not None and takes_part(
            session, ticket, sender, settings, registry, colleagues=False
        ):
            return TicketMatch(ticket, "subject", None, False)
    return None
