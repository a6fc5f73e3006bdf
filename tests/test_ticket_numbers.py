"""Public ticket numbers come from a counter taken in a transaction of its own, before
the ticket is written: concurrent processes never share a number, and numbering goes on
after the tickets already there."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import delete

from mailgate.db import queries
from mailgate.db.models import Counter
from mailgate.ingest.pipeline import ingest
from tests.conftest import MONDAY_0900, add_subscription
from tests.support.mailtools import make_mail


def _take(app: Any) -> int:
    with app.db.transaction() as session:
        return queries.take_ticket_numbers(session)[0]


def test_numbers_continue_after_the_tickets_already_there(app: Any) -> None:
    add_subscription(app)

    def ticket(n: int) -> str | None:
        mail = make_mail(message_id=f"n-{n}@acme.example")
        return ingest(app, mail, source="pipe", now=MONDAY_0900).ticket

    assert [ticket(1), ticket(2)] == ["IREX-000001", "IREX-000002"]
    # A database from before the counter (or one whose counter row is gone) goes on
    # after its tickets.
    with app.db.transaction() as session:
        session.execute(delete(Counter))
    assert ticket(3) == "IREX-000003"
    # A number taken and not used (the message failed after taking it) is not reused.
    assert _take(app) == 4
    assert ticket(4) == "IREX-000005"


def test_concurrent_takers_never_share_a_number(app: Any) -> None:
    start = _take(app)
    taken: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            mine = [_take(app) for _ in range(50)]
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            return
        with lock:
            taken.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(taken) == list(range(start + 1, start + 201))
