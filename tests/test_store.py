"""Storing raw mail: one message (``store_raw``) or a fetched group in one transaction
(``store_raw_batch``), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event, func, select

from mailgate.app import App
from mailgate.db.models import InboxItem
from mailgate.errors import StoreError
from mailgate.ingest.store import Incoming, store_raw, store_raw_batch
from tests.conftest import MONDAY_0900
from tests.support.mailtools import make_mail


def _incoming(raw: bytes, received_at: Any = MONDAY_0900) -> Incoming:
    return Incoming(raw, "imap", received_at, origin="imap://test/INBOX;UID=1")


def _rows(app: App) -> list[tuple[int, str | None]]:
    with app.db.transaction() as session:
        query = select(InboxItem.id, InboxItem.message_id).order_by(InboxItem.id)
        return [(row.id, row.message_id) for row in session.execute(query)]


def test_a_batch_is_one_commit_with_each_result_in_order(app: App) -> None:
    earlier = store_raw(
        app.db, make_mail(message_id="old@acme.example"), source="pipe", received_at=MONDAY_0900
    )
    raws = [make_mail(message_id=f"batch-{n}@acme.example") for n in range(3)]
    batch = [raws[0], make_mail(message_id="old@acme.example"), raws[1], raws[0], raws[2]]
    commits: list[object] = []

    def count_commit(conn: object) -> None:
        commits.append(conn)

    event.listen(app.db.engine, "commit", count_commit)
    try:
        stored = store_raw_batch(app.db, [_incoming(raw) for raw in batch])
    finally:
        event.remove(app.db.engine, "commit", count_commit)

    assert len(commits) == 1
    assert [s.duplicate for s in stored] == [False, True, False, True, False]
    assert stored[1].inbox_id == earlier.inbox_id  # stored before the batch
    assert stored[3].inbox_id == stored[0].inbox_id  # twice in the batch
    rows = dict(_rows(app))
    assert [rows[s.inbox_id] for s in stored] == [
        "batch-0@acme.example",
        "old@acme.example",
        "batch-1@acme.example",
        "batch-0@acme.example",
        "batch-2@acme.example",
    ]


def test_a_batch_that_fails_commits_none_of_its_messages(app: App) -> None:
    good = [_incoming(make_mail(message_id=f"good-{n}@acme.example")) for n in range(2)]
    broken = _incoming(make_mail(message_id="broken@acme.example"), received_at=None)
    with pytest.raises(StoreError, match="could not store the messages"):
        store_raw_batch(app.db, [good[0], broken, good[1]])  # received_at is NOT NULL
    assert _rows(app) == []
    # The same messages store fine once the broken one is out.
    assert [s.duplicate for s in store_raw_batch(app.db, good)] == [False, False]
    with app.db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(InboxItem)) == 2

