"""Process stored inbox items: parse -> gather facts -> decide (pure) -> write.

Items are claimed a batch at a time (``process_batch``). A new request is classified
with reads only; a group of them then takes its ticket numbers, renders its replies and
is written by one transaction: decision records, tickets and their first messages,
outbox rows (acknowledgements, refusals, notifications) and the inbox items marked done.
Conversation mail is applied alone, in its own transaction. A failure rolls back and
quarantines the message with its traceback (a failed group is retried message by
message first); the raw bytes stay, and ``mailgate inbox retry`` processes it again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
import traceback
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, true, update
from sqlalchemy.orm import Session

from mailgate.app import App
from mailgate.conversation.replies import compose_notification, handle_reply
from mailgate.conversation.threading import TicketMatch, match_ticket
from mailgate.db import queries
from mailgate.db.models import Decision as DecisionRow
from mailgate.db.models import InboxItem, Subscription, Ticket
from mailgate.db.queries import queue_outgoing
from mailgate.db.registry import Registry
from mailgate.ingest.common import (
    LEVEL_LABELS,
    TIER_LABELS,
    base_context,
    coverage_text,
    finish_inbox,
    format_due,
)
from mailgate.ingest.result import Result
from mailgate.ingest.store import Stored, store_raw
from mailgate.ingest.write import Planned, Prepared, write_prepared
from mailgate.mail.compose import Outgoing
from mailgate.mail.html import strip_html_reply
from mailgate.mail.loops import automatic_reason
from mailgate.mail.parse import parse_message
from mailgate.mail.quotes import own_text
from mailgate.mail.subject import read_tags
from mailgate.model import Outcome, ParsedMail
from mailgate.policy.clauses import CLAUSES
from mailgate.policy.decide import Decision, decide
from mailgate.policy.facts import Facts
from mailgate.policy.rules.subscription import resolve_subscription
from mailgate.policy.rules.version import sender_lines
from mailgate.sla import service as sla_service

log = logging.getLogger("mailgate.pipeline")

CLAIM_LEASE = dt.timedelta(minutes=5)
GROUP_LIMIT = 64  # new requests written by one transaction at most


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ---------------------------------------------------------------- entry points


def ingest(
    app: App,
    raw: bytes,
    *,
    source: str,
    origin: str | None = None,
    envelope_from: str | None = None,
    envelope_to: tuple[str, ...] = (),
    now: dt.datetime | None = None,
) -> Result:
    """Store then process one message (the pipe command). StoreError propagates."""
    now = now or utcnow()
    stored = store_raw(
        app.db,
        raw,
        source=source,
        received_at=now,
        origin=origin,
        envelope_from=envelope_from,
        envelope_to=envelope_to,
    )
    return process_stored(app, stored, now=now)


def process_stored(
    app: App, stored: Stored, now: dt.datetime | None = None, source: str = "pipe"
) -> Result:
    if stored.duplicate:
        started = time.perf_counter()
        with app.db.transaction() as session:
            item = session.get(InboxItem, stored.inbox_id)
            assert item is not None
            original = _result_from_row(session, item)
        log.info(
            "source=%s message_id=%s outcome=duplicate ticket=%s reason=%s ms=%.1f",
            source,
            original.message_id or "-",
            original.ticket or "-",
            original.reason or "-",
            (time.perf_counter() - started) * 1000,
        )
        return dataclasses.replace(original, outcome=Outcome.DUPLICATE, error=None)
    return process_item(app, stored.inbox_id, now=now)


def warm_up(app: App) -> None:
    """Load and build now what the first message would otherwise wait for: the language
    model, the rules' compiled patterns and search helpers, the reply templates. About
    0.1 s; a processing worker calls it as it starts, so the first mail after a start is
    answered as fast as the rest.

    A failure is logged, not raised: the first message meets it again and is quarantined
    with it, as it would have been without this.
    """
    started = time.perf_counter()
    try:
        for rule in app.chain:
            warm = getattr(rule, "warm_up", None)
            if warm is not None:
                warm()
        app.composer.warm_up("ack", "notify")  # written for every new request
    except Exception:
        log.exception("warming up failed")
        return
    log.debug("warmed up in %.0f ms", (time.perf_counter() - started) * 1000)


def process_pending(app: App, *, now: dt.datetime | None = None, limit: int = 500) -> list[Result]:
    """Process every pending inbox item (start-up recovery, `poll --once`, tests)."""
    results: list[Result] = []
    with app.db.transaction() as session:
        queries.release_dead_claims(session, app.host)
    while True:
        with app.db.transaction() as session:
            ids = queries.pending_inbox_ids(session, now or utcnow(), limit)
        if not ids:
            return results
        results.extend(process_batch(app, ids, now=now))
        if len(ids) < limit:
            return results


def process_item(app: App, inbox_id: int, *, now: dt.datetime | None = None) -> Result:
    return process_batch(app, [inbox_id], now=now)[0]


def process_batch(app: App, ids: list[int], *, now: dt.datetime | None = None) -> list[Result]:
    """Process stored items, claimed together in one transaction; the results come in the
    order of ``ids``.

    New requests (the common case) are written in groups: each is classified (reads
    only), the group takes its ticket numbers at once, every reply is rendered, and then
    one transaction writes them all. On SQLite, whose one write lock the listener needs
    for every message it stores, that is one turn at the lock per group instead of one
    per message, and the lock is never held while templates render. Conversation mail
    (replies, engineers' mail) is applied one at a time as before, after the group
    before it is written, and so is a message that refers to one still in the group.
    """
    with app.db.transaction() as session:
        claimed = queries.claim_inbox_items(session, ids, app.owner, utcnow(), CLAIM_LEASE)
    results: dict[int, Result] = {}
    group: list[Planned] = []
    # One reading session and one registry snapshot for the batch's classification; it
    # only reads, and what a group write commits is visible to its next statement.
    with app.db.sessions() as reader:
        registry = app.registry.current(reader)
        for row in claimed:
            started = time.perf_counter()
            at = now or utcnow()
            mail: ParsedMail | None = None
            try:
                mail = parse_message(
                    row.raw,
                    envelope_from=row.envelope_from,
                    envelope_to=tuple(row.envelope_to or ()),
                )
                if _refers_to(mail, group):
                    results.update(_write_group(app, group))
                    group = []
                routed = _route(app, reader, mail, row.received_at, registry)
                if _is_new_request(app, *routed):
                    group.append(_plan(app, row, mail, routed[0], at, started))
                    if len(group) >= GROUP_LIMIT:  # bounds the lock hold and the memory
                        results.update(_write_group(app, group))
                        group = []
                    continue
                results.update(_write_group(app, group))
                group = []
                with app.db.transaction() as session:
                    result = _apply(app, session, row.id, mail, row.received_at, at, routed)
            except Exception as exc:
                reader.rollback()  # a failed read must not poison the rest of the batch
                result = _quarantine(app, row.id, exc)
            _log_result(row.source, mail, result, started)
            results[row.id] = result
    results.update(_write_group(app, group))
    others = [i for i in ids if i not in results]
    if others:  # done already, or another process has them
        with app.db.transaction() as session:
            for inbox_id in others:
                item = session.get(InboxItem, inbox_id)
                if item is None:
                    raise LookupError(f"inbox item {inbox_id} does not exist")
                results[inbox_id] = _result_from_row(session, item)
    return [results[i] for i in ids]


def _log_result(source: str, mail: ParsedMail | None, result: Result, started: float) -> None:
    log.info(
        "source=%s message_id=%s outcome=%s ticket=%s reason=%s ms=%.1f",
        source,
        mail.message_id if mail else "-",
        result.outcome,
        result.ticket or "-",
        result.reason or "-",
        (time.perf_counter() - started) * 1000,
    )


def retry_quarantined(app: App, inbox_ids: list[int] | None = None) -> list[Result]:
    """Put quarantined items back to pending and process them (``mailgate inbox retry``)."""
    with app.db.transaction() as session:
        ids = list(
            session.scalars(
                select(InboxItem.id)
                .where(InboxItem.status == "quarantined")
                .where(InboxItem.id.in_(inbox_ids) if inbox_ids else true())
                .order_by(InboxItem.id)
            )
        )
        if ids:
            session.execute(
                update(InboxItem)
                .where(InboxItem.id.in_(ids))
                .values(status="pending", claimed_until=None, claimed_by=None)
            )
    return [process_item(app, i) for i in ids]


# ---------------------------------------------------------------- facts


def gather_facts(app: App, registry: Registry, mail: ParsedMail, received_at: dt.datetime) -> Facts:
    tz = ZoneInfo(app.settings.sla.timezone)
    # Identity is the From address (Reply-To only says where answers go).
    sender = mail.from_.lower if mail.from_ else None
    tags = read_tags(mail.subject, app.subscription_re, app.ticket_re)
    named = registry.get(tags.subscription_id) if tags.subscription_id else None
    by_contact = registry.of_contact(sender) if sender else ()
    colleagues = (
        registry.at_domain(sender) if sender and not by_contact and not tags.subscription_id else ()
    )
    text = strip_html_reply(mail.html) if mail.text_from_html and mail.html else own_text(mail.text)
    return Facts(
        now=received_at,
        today=received_at.astimezone(tz).date(),
        sender=sender,
        tags=tags,
        named_subscription=named,
        sender_subscriptions=by_contact,
        domain_subscriptions=colleagues,
        automatic=automatic_reason(mail),
        own_text=text,
        # Scope rules read the sender's lines with logs and config removed. (prose_only,
        # tuned for language detection, also drops acronyms such as API and SDK.)
        prose=sender_lines(text),
    )


# ---------------------------------------------------------------- apply


def _route(
    app: App,
    session: Session,
    mail: ParsedMail,
    received_at: dt.datetime,
    registry: Registry | None = None,
) -> tuple[Facts, TicketMatch | None]:
    registry = registry or app.registry.current(session)
    facts = gather_facts(app, registry, mail, received_at)
    conv = app.settings.conversation
    match = match_ticket(session, mail, facts.tags, facts.sender, app.reply_tokens, conv, registry)
    return facts, match


def _is_new_request(app: App, facts: Facts, match: TicketMatch | None) -> bool:
    """Neither conversation mail (a match) nor an engineer's own unmatched mail."""
    conv = app.settings.conversation
    return match is None and not (conv.is_engineer(facts.sender) and facts.automatic is None)


def _plan(
    app: App, row: Any, mail: ParsedMail, facts: Facts, now: dt.datetime, started: float
) -> Planned:
    """A new request classified (the policy chain is pure), ready for its group."""
    decision = decide(mail, facts, app.chain)
    return Planned(row.id, row.source, mail, facts, decision, row.received_at, now, started)


def _refers_to(mail: ParsedMail, group: list[Planned]) -> bool:
    """Whether ``mail`` names a message of the group in In-Reply-To or References (a
    follow-up to a request whose ticket is not written yet must find it)."""
    if not group or not (mail.in_reply_to or mail.references):
        return False
    ids = {p.mail.message_id for p in group if p.mail.message_id}
    return any(r in ids for r in (*mail.in_reply_to, *mail.references))


def _apply(
    app: App,
    session: Session,
    inbox_id: int,
    mail: ParsedMail,
    received_at: dt.datetime,
    now: dt.datetime,
    routed: tuple[Facts, TicketMatch | None] | None = None,
) -> Result:
    """One message in the caller's transaction, whatever it is. ``routed``: its facts
    and ticket match as the batch's reading session found them (not looked up again)."""
    facts, match = routed if routed is not None else _route(app, session, mail, received_at)
    if match is not None:  # the ticket as this transaction's session holds it
        found = session.get(Ticket, match.ticket.id)
        if found is None:  # gone since the batch read it: look again
            facts, match = _route(app, session, mail, received_at)
        else:
            match = dataclasses.replace(match, ticket=found)
    parent: Ticket | None = None
    if match is not None:
        ticket = match.ticket
        conv = app.settings.conversation
        if _reopen_window_passed(app, ticket, received_at) and not conv.is_engineer(facts.sender):
            parent = ticket  # too old to reopen: a new ticket, linked to the old one
        else:
            return handle_reply(
                app,
                session,
                inbox_id,
                mail,
                match,
                facts.own_text,
                facts.automatic,
                received_at,
                now,
            )
    elif not _is_new_request(app, facts, match):
        return _engineer_without_ticket(app, session, inbox_id, mail, facts, now)
    decision = decide(mail, facts, app.chain)
    planned = Planned(inbox_id, "", mail, facts, decision, received_at, now, parent=parent)
    numbers = _take_numbers(app, [planned])
    return write_prepared(app, session, [_prepare(app, planned, numbers)])[inbox_id]


def _engineer_without_ticket(
    app: App, session: Session, inbox_id: int, mail: ParsedMail, facts: Facts, now: dt.datetime
) -> Result:
    """An engineer's mail that matches no ticket is not a customer request: it is kept,
    nothing is relayed, and the engineer is told how to answer a ticket."""
    reason = "engineer_without_ticket"
    row = DecisionRow(
        inbox_id=inbox_id,
        outcome=str(Outcome.IGNORED),
        reason=reason,
        sender=facts.sender,
        subject=mail.subject[:2000],
        record=[
            {
                "rule": "threading",
                "clause": "conversation",
                "verdict": "hit",
                "action": "ignore",
                "reason": reason,
                "evidence": {"sender": facts.sender},
            }
        ],
        created_at=now,
    )
    session.add(row)
    session.flush()
    assert mail.from_ is not None
    out = app.composer.compose(
        kind="error",
        template="engineer_unmatched",
        context=base_context(app, mail),
        to=[mail.from_.formatted()],
        subject=f"Not delivered: {' '.join(mail.subject.split())[:200]}",
        label="unmatched",
        in_reply_to=mail.message_id,
        references=mail.references,
        now=now,
    )
    queue_outgoing(session, out, dedupe_key=f"unmatched:{inbox_id}", now=now, decision_id=row.id)
    finish_inbox(session, inbox_id, Outcome.IGNORED, now, reason=reason)
    return Result(inbox_id, Outcome.IGNORED, reason=reason, message_id=mail.message_id)


def _reopen_window_passed(app: App, ticket: Ticket, received_at: dt.datetime) -> bool:
    if ticket.status != "resolved" or ticket.resolved_at is None:
        return False
    window = dt.timedelta(days=app.settings.conversation.reopen_days)
    return received_at - ticket.resolved_at > window


def _write_group(app: App, group: list[Planned]) -> dict[int, Result]:
    """Write a group of planned requests in one transaction. If that fails, each is
    applied on its own, so one bad message is quarantined and the rest go through."""
    if not group:
        return {}
    try:
        numbers = _take_numbers(app, group)
        prepared = [_prepare(app, p, numbers) for p in group]
        with app.db.transaction() as session:
            results = write_prepared(app, session, prepared)
    except Exception:
        log.warning("writing %d requests together failed; applying each alone", len(group))
        results = {}
        for p in group:
            try:
                with app.db.transaction() as session:
                    results[p.inbox_id] = _apply(
                        app, session, p.inbox_id, p.mail, p.received_at, p.now
                    )
            except Exception as exc:
                results[p.inbox_id] = _quarantine(app, p.inbox_id, exc)
    for p in group:
        _log_result(p.source, p.mail, results[p.inbox_id], p.started)
    return results


def _take_numbers(app: App, group: list[Planned]) -> dict[int, int]:
    """Ticket numbers for the accepted requests of ``group``, by inbox id, taken in one
    short transaction of their own before anything is rendered."""
    accepted = [p.inbox_id for p in group if p.decision.outcome == "accept"]
    if not accepted:
        return {}
    with app.db.transaction() as session:
        return dict(zip(accepted, queries.take_ticket_numbers(session, len(accepted)), strict=True))


def _prepare(app: App, planned: Planned, numbers: dict[int, int]) -> Prepared:
    if planned.decision.outcome == "accept":
        return _prepare_ticket(app, planned, numbers[planned.inbox_id])
    mail = planned.mail
    if planned.decision.outcome == "ignore" or mail.sender is None:
        return Prepared(planned)
    refusal = compose_refusal(app, mail, planned.facts, planned.decision, planned.now)
    return Prepared(planned, refusal=refusal)


def _prepare_ticket(app: App, planned: Planned, number: int) -> Prepared:
    mail, facts, decision, now = planned.mail, planned.facts, planned.decision, planned.now
    sub_info, _ = resolve_subscription(facts)
    assert sub_info is not None  # the subscription rule refuses otherwise
    tier = sub_info.tier
    sender = mail.sender
    assert sender is not None
    ticket = Ticket(
        public_id=app.settings.tickets.public_id(number),
        subscription_id=sub_info.id,
        tier=tier,
        severity=decision.severity,
        severity_source=decision.severity_source,
        environment=facts.tags.environment,
        production=facts.tags.production is not False,
        status="open",
        requester=sender.lower,
        requester_name=sender.name or None,
        subject=facts.tags.clean[:2000] or "(no subject)",
        received_at=planned.received_at,
        tags=list(decision.tags),
        parent_id=planned.parent.id if planned.parent else None,
        updated_at=now,
    )
    # Due time and the first escalation threshold (the SLA scheduler's next look); a
    # ticket without an id has no escalations to look up.
    sla_service.schedule_ticket(None, ticket, app)
    assert ticket.due_at is not None and ticket.public_id is not None
    tz = ZoneInfo(app.settings.sla.timezone)
    due_local, due_utc = format_due(ticket.due_at, tz)
    level_evidence = decision.evidence("non_production_cap")
    context = base_context(app, mail) | {
        "ticket": {
            "id": ticket.public_id,
            "subject": ticket.subject,
            "organization": sub_info.organization,
            "subscription": sub_info.id,
            "tier_label": TIER_LABELS.get(tier, tier),
            "level": ticket.severity,
            "level_label": LEVEL_LABELS[ticket.severity],
            "level_source": ticket.severity_source,
            "requested_level": level_evidence.get("requested_level"),
            "environment": facts.tags.environment,
            "due_local": due_local,
            "due_utc": due_utc,
            "coverage": coverage_text(app, tier, ticket.severity),
            "ask_version": bool(decision.evidence("server_version").get("ask")),
        }
    }
    ack = app.composer.compose(
        kind="ack",
        template="ack",
        context=context,
        to=[sender.formatted()],
        subject=f"[{ticket.public_id}] {ticket.subject}",
        label=ticket.public_id,
        reply_to=app.reply_tokens.address(ticket.public_id),
        in_reply_to=mail.message_id,
        references=mail.references,
        now=now,
    )
    notification = compose_notification(
        app, ticket, event="new", text=facts.own_text or mail.text, author=ticket.requester, now=now
    )
    return Prepared(planned, ticket=ticket, ack=ack, notification=notification)


def refusal_context(app: App, mail: ParsedMail, facts: Facts, decision: Decision) -> dict[str, Any]:
    reason = decision.reason or ""
    clause_id, clause = CLAUSES.get(reason, ("P-OUT", "Support is limited by the policy."))
    evidence: dict[str, Any] = {}
    for result in decision.record:
        if result.verdict == "hit" and result.reason == reason:
            evidence = dict(result.evidence)
    sub_info, _ = resolve_subscription(facts)
    return base_context(app, mail) | {
        "reason": reason,
        "clause_id": clause_id,
        "clause": clause,
        "sender": facts.sender or "your address",
        "organization": sub_info.organization if sub_info else None,
        "subscription": evidence.get("subscription") or facts.tags.subscription_id,
        "valid_from": evidence.get("valid_from"),
        "valid_until": evidence.get("valid_until"),
        "candidates": evidence.get("candidates") or [],
        "matched": evidence.get("matched"),
        "language_name": evidence.get("language_name")
        or evidence.get("language")
        or "another language",
        "version_found": evidence.get("version"),
    }


def compose_refusal(
    app: App, mail: ParsedMail, facts: Facts, decision: Decision, now: dt.datetime
) -> Outgoing:
    sender = mail.sender
    assert sender is not None
    subject = " ".join(mail.subject.split()) or "your request"
    return app.composer.compose(
        kind="rejection",
        template=f"refusal/{decision.reason}",
        context=refusal_context(app, mail, facts, decision),
        # Refusals go to the sender only, never to people in CC.
        to=[sender.formatted()],
        subject=subject if subject.lower().startswith("re:") else f"Re: {subject}",
        label="refusal",
        in_reply_to=mail.message_id,
        references=mail.references,
        now=now,
    )


# ---------------------------------------------------------------- failures


def _quarantine(app: App, inbox_id: int, exc: BaseException) -> Result:
    text = "".join(traceback.format_exception(exc))[-20000:]
    log.exception("inbox item %s quarantined", inbox_id, exc_info=exc)
    with app.db.transaction() as session:
        session.execute(
            update(InboxItem)
            .where(InboxItem.id == inbox_id)
            .values(
                status="quarantined",
                outcome=str(Outcome.QUARANTINED),
                error=text,
                claimed_until=None,
            )
        )
    return Result(inbox_id, Outcome.QUARANTINED, error=f"{type(exc).__name__}: {exc}")


def _result_from_row(session: Session, item: InboxItem) -> Result:
    outcome = Outcome(item.outcome) if item.outcome else Outcome.QUARANTINED
    if item.status in ("pending", "processing"):
        outcome = Outcome.DUPLICATE  # being processed elsewhere right now
    ticket = session.get(Ticket, item.ticket_id) if item.ticket_id else None
    sub_id = None
    if ticket is None:
        sub_id = session.scalar(
            select(DecisionRow.subscription_id).where(DecisionRow.inbox_id == item.id)
        )
    tier = ticket.tier if ticket else None
    if ticket is None and sub_id:
        sub = session.get(Subscription, sub_id)
        tier = sub.tier if sub else None
    return Result(
        item.id,
        outcome,
        ticket=ticket.public_id if ticket else None,
        reason=item.reason,
        severity=ticket.severity if ticket else None,
        tier=tier,
        subscription=ticket.subscription_id if ticket else sub_id,
        due=ticket.due_at if ticket else None,
        message_id=item.message_id,
        error=item.error.splitlines()[-1] if item.error else None,
    )
