"""mailgate's real IMAP intake sink, instrumented for the poller's tests and benchmark.

``RecordingInboxSink`` *is* ``mailgate.ingest.imap_service.InboxSink`` - the inbox table,
``store_raw``'s dedupe key (Message-ID, else the SHA-256 of the bytes) and the
``imap_cursors`` table - plus what tests look at (``count``, ``message_ids``, ``raws``,
``origins``, ``batches``) and the faults they need: refuse chosen messages as unusable
(``ValueError``, as for content the database cannot hold), fail as storage
(``StoreError``) on chosen calls, or run a hook right after a commit (to die there).
The faults apply to ``store_batch`` as well: a refused message fails its whole batch (as
a value PostgreSQL refuses aborts the transaction), so the poller stores the batch again
one message at a time; ``after_commit`` runs for each message once its batch committed.

``inbox_app`` opens an ``App`` on a database URL the way the gateway does, so a test can
open a second one on the same database to stand for a restarted process.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from mailgate.app import App
from mailgate.config import parse_settings
from mailgate.db.models import InboxItem
from mailgate.errors import StoreError
from mailgate.ingest.imap_service import Handoff, InboxSink


def inbox_app(url: str, workdir: Path, **config: Any) -> App:
    """An App on ``url`` (already migrated) with its outbox Maildir under ``workdir``."""
    data: dict[str, Any] = {
        "database": {"url": url, "auto_migrate": False},
        "smtp": {"port": 0},
        "outbox": {"maildir": str(workdir / "outbox")},
        "logging": {"level": "WARNING"},
    }
    data.update(config)
    return App.create(parse_settings(data, workdir), migrate=False)


class RecordingInboxSink(InboxSink):
    """The real inbox sink, with observation helpers and injectable faults."""

    def __init__(
        self,
        app: App,
        *,
        handoff: Handoff | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        reject: Callable[[bytes], bool] | None = None,
        after_commit: Callable[[bytes], None] | None = None,
        failing_calls: Iterable[int] = (),
    ) -> None:
        super().__init__(app, handoff=handoff, clock=clock)
        self.reject = reject
        self.after_commit = after_commit
        self.failing_calls = set(failing_calls)  # 1 = the first call to store or store_batch
        self.store_calls = 0
        self.batches: list[int] = []
        self._calls_lock = threading.Lock()

    def store(self, raw: bytes, *, source: str, origin: str) -> bool:
        self._fail_if_chosen()
        if self.reject is not None and self.reject(raw):
            raise ValueError("message refused by the test")
        new = super().store(raw, source=source, origin=origin)
        self._committed([raw])
        return new

    def store_batch(self, messages: Sequence[tuple[bytes, str]], *, source: str) -> list[bool]:
        self._fail_if_chosen()
        if self.reject is not None and any(self.reject(raw) for raw, _ in messages):
            raise StoreError("a message refused by the test fails its batch")
        new = super().store_batch(messages, source=source)
        self._committed([raw for raw, _ in messages])
        return new

    def _fail_if_chosen(self) -> None:
        with self._calls_lock:
            self.store_calls += 1
            fail = self.store_calls in self.failing_calls
        if fail:
            raise StoreError("disk full (simulated)")

    def _committed(self, raws: list[bytes]) -> None:
        if self.after_commit is not None:
            for raw in raws:
                self.after_commit(raw)

    def stored_batch(self, count: int) -> None:
        self.batches.append(count)
        super().stored_batch(count)

    # -- what tests look at -----------------------------------------------------------

    def count(self) -> int:
        with self.app.db.transaction() as session:
            return int(session.scalar(select(func.count()).select_from(InboxItem)) or 0)

    def message_ids(self) -> list[str]:
        """``<Message-ID>`` of everything stored, sorted (rows without one are left out)."""
        with self.app.db.transaction() as session:
            stored = session.scalars(select(InboxItem.message_id).order_by(InboxItem.id))
            return sorted(f"<{mid}>" for mid in stored if mid)

    def raws(self) -> list[bytes]:
        with self.app.db.transaction() as session:
            return [bytes(r) for r in session.scalars(select(InboxItem.raw).order_by(InboxItem.id))]

    def origins(self) -> list[str]:
        with self.app.db.transaction() as session:
            return [
                o or "" for o in session.scalars(select(InboxItem.origin).order_by(InboxItem.id))
            ]

    def sources(self) -> list[str]:
        with self.app.db.transaction() as session:
            return list(session.scalars(select(InboxItem.source).order_by(InboxItem.id)))
