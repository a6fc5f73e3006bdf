"""Processing a batch: new requests are classified and rendered first and written
together in one transaction, in the order they arrived, with replies, follow-ups to a
request of the same batch, the daily refusal limit and failures all handled as when
each message is processed alone."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select

from mailgate.app import App
from mailgate.db.models import Decision, InboxItem, Message, OutboxMessage, Ticket
from mailgate.ingest import pipeline
from mailgate.ingest.store import store_raw
from mailgate.model import Outcome
from tests.conftest import MONDAY_0900, add_subscription
from tests.support.mailtools import make_mail


def _store(app: App, raws: list[bytes]) -> list[int]:
    return [store_raw(app.db, raw, source="pipe", received_at=MONDAY_0900).inbox_id for raw in raws]


@pytest.fixture
def transactions(app: App) -> Iterator[list[list[str]]]:
    """The SQL statements the app runs (their first three words), one list per
    transaction, while the test runs."""
    seen: list[list[str]] = [[]]

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen[-1].append(" ".join(statement.split()[:3]))

    def end(conn: Any) -> None:
        seen.append([])

    event.listen(app.db.engine, "before_cursor_execute", record)
    event.listen(app.db.engine, "commit", end)
    yield seen
    event.remove(app.db.engine, "before_cursor_execute", record)
    event.remove(app.db.engine, "commit", end)


def test_new_requests_of_a_batch_are_written_together_in_arrival_order(
    app: App, transactions: list[list[str]]
) -> None:
    add_subscription(app)
    raws = [
        make_mail(message_id=f"b-{i}@acme.example", subject=f"[SUB-12345] [L3] Question {i}")
        for i in range(8)
    ]
    raws[3] = make_mail(message_id="b-3@acme.example", sender="Eve <eve@unknown.example>")
    raws[5] = make_mail(message_id="b-5@acme.example", headers={"Auto-Submitted": "auto-generated"})
    ids = _store(app, raws)
    transactions[:] = [[]]
    results = pipeline.process_batch(app, ids, now=MONDAY_0900)

    assert [r.inbox_id for r in results] == ids
    outcomes = [r.outcome for r in results]
    assert (
        outcomes
        == [Outcome.TICKET_CREATED] * 3
        + [Outcome.REJECTED]
        + [Outcome.TICKET_CREATED]
        + [Outcome.IGNORED]
        + [Outcome.TICKET_CREATED] * 2
    )
    # Numbered in the order the mail arrived, with no gap for the refused and ignored.
    tickets = [r.ticket for r in results if r.ticket]
    assert tickets == [f"IREX-{n:06d}" for n in range(1, 7)]
    # All of it written by one transaction (on PostgreSQL one INSERT per table; SQLite's
    # driver gets one per row, inside the same transaction).
    [writer] = [t for t in transactions if "INSERT INTO tickets" in t]
    assert writer.count("INSERT INTO decisions") in (1, 8)
    assert "INSERT INTO outbox" in writer and "UPDATE inbox SET" in writer
    writes = [t for t in transactions if any(not s.startswith("SELECT") for s in t)]
    assert len(writes) == 3  # claiming the batch, taking 6 ticket numbers, the group
    with app.db.transaction() as s:
        items = {i.id: i for i in s.scalars(select(InboxItem).where(InboxItem.id.in_(ids)))}
        kinds = Counter(s.scalars(select(OutboxMessage.kind)))
        by_public = {t.public_id: t.id for t in s.scalars(select(Ticket))}
    assert {i.status for i in items.values()} == {"done"}
    assert items[ids[0]].ticket_id == by_public["IREX-000001"]
    assert items[ids[3]].outcome == "rejected" and items[ids[5]].reason == "automatic"
    assert kinds == {"ack": 6, "rejection": 1}
    # The rows of each request point at one another (ids are taken from the database in
    # the order the rows were written): ticket, request message, decision, acknowledgement.
    with app.db.transaction() as s:
        for inbox_id in ids:
            decision = s.scalars(select(Decision).where(Decision.inbox_id == inbox_id)).one()
            out = s.scalars(select(OutboxMessage).where(OutboxMessage.decision_id == decision.id))
            if items[inbox_id].ticket_id is None:
                assert decision.ticket_id is None
                continue
            ticket = s.get(Ticket, items[inbox_id].ticket_id)
            assert ticket is not None and decision.ticket_id == ticket.id
            request = ticket.messages[0]
            assert (request.kind, request.inbox_id) == ("request", inbox_id)
            assert ticket.subject.endswith(f"Question {ids.index(inbox_id)}")
            [ack] = out.all()
            assert (ack.kind, ack.ticket_id) == ("ack", ticket.id)
            assert ack.subject.startswith(f"[{ticket.public_id}] ")
            assert [m.kind for m in ticket.messages] == ["request", "ack"]
            assert ticket.messages[1].message_id == ack.message_id


def test_a_follow_up_to_a_request_of_the_same_batch_joins_its_ticket(app: App) -> None:
    add_subscription(app)
    first = make_mail(message_id="first@acme.example")
    follow_up = make_mail(
        message_id="second@acme.example",
        subject="Re: [SUB-12345] [L2] Upgrade to 7.4.2 fails",
        in_reply_to="<first@acme.example>",
        references="<first@acme.example>",
        body="One more detail: the installer log is attached to the first mail.",
    )
    ids = _store(app, [first, follow_up])
    results = pipeline.process_batch(app, ids, now=MONDAY_0900)
    assert [r.outcome for r in results] == [Outcome.TICKET_CREATED, Outcome.REPLY_ADDED]
    assert results[0].ticket == results[1].ticket == "IREX-000001"
    with app.db.transaction() as s:
        assert s.query(Ticket).count() == 1
        inbound = s.scalars(select(Message.kind).where(Message.direction == "in")).all()
    assert sorted(inbound) == ["reply", "request"]


def test_a_reply_between_new_requests_keeps_its_place(app: App) -> None:
    add_subscription(app)
    [existing] = pipeline.process_batch(
        app, _store(app, [make_mail(message_id="old@acme.example")]), now=MONDAY_0900
    )
    reply = make_mail(
        message_id="reply@acme.example",
        subject=f"Re: [{existing.ticket}] Upgrade to 7.4.2 fails",
        in_reply_to="<old@acme.example>",
    )
    raws = [make_mail(message_id="new-a@acme.example"), reply]
    raws.append(make_mail(message_id="new-b@acme.example"))
    results = pipeline.process_batch(app, _store(app, raws), now=MONDAY_0900)
    assert [r.outcome for r in results] == [
        Outcome.TICKET_CREATED,
        Outcome.REPLY_ADDED,
        Outcome.TICKET_CREATED,
    ]
    assert [r.ticket for r in results] == ["IREX-000002", existing.ticket, "IREX-000003"]


def test_the_daily_refusal_limit_holds_inside_one_batch(make_app: Any) -> None:
    app = make_app({"policy": {"refusals_per_sender_per_day": 2}})
    pat = "Pat <pat@elsewhere.example>"
    earlier = make_mail(message_id="p-0@elsewhere.example", sender=pat)
    pipeline.process_batch(app, _store(app, [earlier]), now=MONDAY_0900)
    raws = [
        make_mail(message_id=f"r-{i}@nowhere.example", sender="Sam <sam@nowhere.example>")
        for i in range(4)
    ]
    raws[1:1] = [make_mail(message_id=f"p-{i}@elsewhere.example", sender=pat) for i in (1, 2)]
    results = pipeline.process_batch(app, _store(app, raws), now=MONDAY_0900)
    assert {r.outcome for r in results} == {Outcome.REJECTED}
    with app.db.transaction() as s:
        rows = s.execute(
            select(OutboxMessage.recipients, OutboxMessage.state).order_by(OutboxMessage.id)
        ).all()
    states = [(recipients[0][:3], state) for recipients, state in rows]
    # Each sender's count is their own: Pat had one refusal earlier the same day.
    assert states == [
        ("pat", "pending"),
        ("sam", "pending"),
        ("pat", "pending"),
        ("pat", "suppressed"),
        ("sam", "pending"),
        ("sam", "suppressed"),
        ("sam", "suppressed"),
    ]


def test_the_refusal_count_reads_only_the_senders_refusals(lite_app: Any) -> None:
    """The count goes from the sender's decisions to their outbox rows by index, not
    through every refusal ever queued (which made each refusal slower as the outbox
    grew)."""
    app = lite_app()
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "count(outbox.id)" in statement:
            seen.append((statement, parameters))

    event.listen(app.db.engine, "before_cursor_execute", record)
    raw = make_mail(message_id="q-1@nowhere.example", sender="Sam <sam@nowhere.example>")
    pipeline.process_batch(app, _store(app, [raw]), now=MONDAY_0900)
    event.remove(app.db.engine, "before_cursor_execute", record)
    assert len(seen) == 1
    statement, parameters = seen[0]
    with app.db.engine.connect() as conn:
        cursor = conn.connection.cursor()
        plan = " | ".join(
            str(row[-1]) for row in cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
        )
    assert "ix_outbox_decision_id" in plan, plan
    assert "ix_outbox_kind" not in plan, plan


def test_a_message_that_breaks_the_group_write_is_quarantined_alone(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_subscription(app)
    real = pipeline.compose_refusal

    def breaks_on_bob(a: App, mail: Any, *args: Any, **kwargs: Any) -> Any:
        if mail.from_ and mail.from_.lower == "bob@unknown.example":
            raise RuntimeError("simulated template bug")
        return real(a, mail, *args, **kwargs)

    monkeypatch.setattr(pipeline, "compose_refusal", breaks_on_bob)
    raws = [
        make_mail(message_id="g-1@acme.example"),
        make_mail(message_id="g-2@unknown.example", sender="Bob <bob@unknown.example>"),
        make_mail(message_id="g-3@acme.example"),
    ]
    ids = _store(app, raws)
    results = pipeline.process_batch(app, ids, now=MONDAY_0900)
    assert [r.outcome for r in results] == [
        Outcome.TICKET_CREATED,
        Outcome.QUARANTINED,
        Outcome.TICKET_CREATED,
    ]
    assert "simulated template bug" in (results[1].error or "")
    with app.db.transaction() as s:
        item = s.get(InboxItem, ids[1])
        assert item is not None and item.status == "quarantined"
        assert s.query(Ticket).count() == 2
        acks = s.scalars(select(OutboxMessage.dedupe_key).where(OutboxMessage.kind == "ack"))
        assert sorted(acks) == [f"ack:{ids[0]}", f"ack:{ids[2]}"]


def test_items_done_already_or_held_elsewhere_are_reported_not_redone(app: App) -> None:
    add_subscription(app)
    ids = _store(app, [make_mail(message_id=f"d-{i}@acme.example") for i in range(2)])
    [first] = pipeline.process_batch(app, ids[:1], now=MONDAY_0900)
    with app.db.transaction() as s:
        held = s.get(InboxItem, ids[1])
        assert held is not None
        held.status, held.claimed_by = "processing", "otherhost:1"
        held.claimed_until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    again = pipeline.process_batch(app, ids, now=MONDAY_0900)
    assert again[0].outcome == Outcome.TICKET_CREATED and again[0].ticket == first.ticket
    assert again[1].outcome == Outcome.DUPLICATE  # being processed elsewhere right now
    with app.db.transaction() as s:
        assert s.query(Ticket).count() == 1


def test_a_long_batch_is_written_in_groups_of_at_most_the_limit(
    app: App, transactions: list[list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    add_subscription(app)
    monkeypatch.setattr(pipeline, "GROUP_LIMIT", 3)
    ids = _store(app, [make_mail(message_id=f"l-{i}@acme.example") for i in range(8)])
    transactions[:] = [[]]
    results = pipeline.process_batch(app, ids, now=MONDAY_0900)
    assert [r.ticket for r in results] == [f"IREX-{n:06d}" for n in range(1, 9)]
    writers = [t for t in transactions if "INSERT INTO tickets" in t]
    assert [t.count("INSERT INTO outbox") for t in writers] in ([1, 1, 1], [3, 3, 2])
