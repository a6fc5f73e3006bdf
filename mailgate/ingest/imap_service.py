"""IMAP intake on the real database: the inbox sink, ``mailgate poll --once``, and the
pollers that ``mailgate serve`` runs.

``InboxSink`` is the poller's ``IntakeSink``. It commits the raw bytes with ``store_raw``,
or a fetched group of messages in one transaction with ``store_raw_batch`` (source
"imap", the message's IMAP URL as origin), so the inbox's unique dedupe key
(Message-ID, else the SHA-256 of the bytes) turns a second copy into a no-op whichever way
it arrives; it keeps each folder's ``(UIDVALIDITY, last UID)`` cursor in ``imap_cursors``;
and once a batch is stored *and marked on the server* it hands the new inbox ids on for
processing. Processing is never part of storing (DESIGN.md, "Edges only store"): a message
is safe once committed, and a failure while processing it quarantines it in the inbox
table with its traceback instead of leaving it on the server.

What the sink refuses (``ValueError``, so the poller moves the message to the quarantine
folder instead of retrying it forever) is only what the inbox can never hold: an empty
message, or one whose own content the database rejects (PostgreSQL refuses a NUL in the
Message-ID, for instance). Every other storage failure is a ``StoreError``: the message
stays unmarked on the server and is fetched again after a backoff.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from imapclient import IMAPClient
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DataError, SQLAlchemyError

from mailgate.app import App
from mailgate.config import processing_children
from mailgate.db.models import ImapCursor
from mailgate.errors import ConfigError, StoreError
from mailgate.ingest import pipeline
from mailgate.ingest.imap import ImapMailbox, ImapPoller, ImapSecurityError, PollResult, blank
from mailgate.ingest.store import Incoming, Stored, store_raw, store_raw_batch
from mailgate.ingest.workers import ProcessPool
from mailgate.model import Outcome

if TYPE_CHECKING:
    from mailgate.ingest.result import Result
    from mailgate.serve import Gateway

__all__ = [
    "InboxSink",
    "MailboxReport",
    "PollReport",
    "attach_pollers",
    "make_poller",
    "poll_mailboxes",
    "register",
]

log = logging.getLogger("mailgate.imap")

# Column sizes of the tables written here (mailgate/db/models.py).
_ORIGIN_MAX = 255  # inbox.origin
POOL_TIMEOUT = 3600.0  # seconds poll --once waits for its children to finish a backlog
_ACCOUNT_MAX = 128  # imap_cursors.account
_FOLDER_MAX = 255  # imap_cursors.folder

# sysexits.h, as in mailgate.cli (not imported from there: cli imports this module).
EX_OK = 0
EX_USAGE = 64
EX_TEMPFAIL = 75
EX_CONFIG = 78

Handoff = Callable[[list[int]], None]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def fit_origin(origin: str, limit: int = _ORIGIN_MAX) -> str:
    """``origin`` shortened to fit its column, keeping the part that names the message.

    The poller's origin is an IMAP URL (RFC 5092); a long user or folder name could make it
    longer than the column, and PostgreSQL would then refuse every message of the folder.
    """
    if len(origin) <= limit:
        return origin
    head, sep, tail = origin.partition(";UIDVALIDITY=")
    tail = sep + tail
    if len(tail) + 3 >= limit:
        return origin[: limit - 3] + "..."
    return head[: limit - len(tail) - 3] + "..." + tail


class InboxSink:
    """The poller's ``IntakeSink`` on the inbox and ``imap_cursors`` tables.

    ``handoff`` receives the ids of newly stored inbox items once their batch is marked on
    the server; without one the items stay pending (``process_pending`` and the gateway's
    start-up recovery find them). One sink serves one poller; it may be shared between
    threads.
    """

    def __init__(
        self,
        app: App,
        *,
        handoff: Handoff | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.app = app
        self.handoff = handoff
        self.clock = clock or _utcnow
        self.stored = 0
        self.duplicates = 0
        self._lock = threading.Lock()
        self._ready: list[int] = []

    # -- the IntakeSink protocol ------------------------------------------------------

    def store(self, raw: bytes, *, source: str, origin: str) -> bool:
        if blank(raw):
            raise ValueError("the message is empty")
        try:
            stored = store_raw(
                self.app.db, raw, source=source, received_at=self.clock(), origin=fit_origin(origin)
            )
        except StoreError as exc:
            cause = exc.__cause__
            # The database refuses the message's own content (e.g. PostgreSQL and a NUL in
            # the Message-ID): no retry can succeed, so it must not block the messages
            # behind it. A value too long for its column (SQLSTATE 22001) is not the
            # message's fault - store_raw and fit_origin size everything derived from it -
            # so that stays a StoreError and the mail stays on the server.
            if isinstance(cause, DataError) and getattr(cause.orig, "sqlstate", None) != "22001":
                detail = str(cause.orig).splitlines()[0]
                raise ValueError(f"the database cannot hold this message: {detail}") from exc
            raise
        return self._count(stored)

    def store_batch(self, messages: Sequence[tuple[bytes, str]], *, source: str) -> list[bool]:
        if any(blank(raw) for raw, _ in messages):
            raise StoreError("an empty message cannot be stored with others")
        stored = store_raw_batch(
            self.app.db,
            [Incoming(raw, source, self.clock(), fit_origin(origin)) for raw, origin in messages],
        )
        return [self._count(s) for s in stored]

    def _count(self, stored: Stored) -> bool:
        with self._lock:
            if stored.duplicate:
                self.duplicates += 1
                return False
            self.stored += 1
            self._ready.append(stored.inbox_id)
        return True

    def load_cursor(self, account: str, folder: str) -> tuple[int, int] | None:
        try:
            with self.app.db.transaction() as session:
                row = session.execute(
                    select(ImapCursor.uidvalidity, ImapCursor.last_uid).where(
                        ImapCursor.account == account, ImapCursor.folder == folder
                    )
                ).first()
        except SQLAlchemyError as exc:
            raise StoreError(
                f"could not read the IMAP cursor of {account}/{folder}: {exc}"
            ) from exc
        return None if row is None else (int(row.uidvalidity), int(row.last_uid))

    def save_cursor(self, account: str, folder: str, uidvalidity: int, last_uid: int) -> None:
        now = self.clock()
        insert = pg_insert if self.app.db.dialect == "postgresql" else sqlite_insert
        statement = (
            insert(ImapCursor)
            .values(
                account=account,
                folder=folder,
                uidvalidity=uidvalidity,
                last_uid=last_uid,
                updated_at=now,
            )
            .on_conflict_do_update(
                index_elements=[ImapCursor.account, ImapCursor.folder],
                set_={"uidvalidity": uidvalidity, "last_uid": last_uid, "updated_at": now},
            )
        )
        try:
            with self.app.db.transaction() as session:
                session.execute(statement)
        except SQLAlchemyError as exc:
            raise StoreError(
                f"could not save the IMAP cursor of {account}/{folder}: {exc}"
            ) from exc
        # The poller saves the cursor right after marking a batch, also a batch of nothing
        # but duplicates (after which it does not call stored_batch): items stored by an
        # earlier attempt whose marking failed are handed on here.
        self.flush()

    def stored_batch(self, count: int) -> None:
        self.flush()

    # -- handing on -------------------------------------------------------------------

    def flush(self) -> None:
        """Hand the items stored so far to ``handoff`` (if there is one)."""
        if self.handoff is None:
            return
        with self._lock:
            ready, self._ready = self._ready, []
        if ready:
            self.handoff(ready)


def make_poller(app: App, mailbox: ImapMailbox, sink: InboxSink) -> ImapPoller:
    """A poller for one mailbox; ConfigError if it cannot be used (checked at start-up,
    not at the first poll: a password variable that is not set, a name too long for the
    cursor table)."""
    index = next((i for i, m in enumerate(app.settings.imap.mailboxes) if m is mailbox), None)
    key = "imap.mailboxes" if index is None else f"imap.mailboxes[{index}]"
    if len(mailbox.name) > _ACCOUNT_MAX:
        raise ConfigError(f"{key}.name", f"must be at most {_ACCOUNT_MAX} characters")
    if len(mailbox.folder) > _FOLDER_MAX:
        raise ConfigError(f"{key}.folder", f"must be at most {_FOLDER_MAX} characters")
    return ImapPoller(mailbox, sink)


# -- mailgate poll --once ------------------------------------------------------------


@dataclass(frozen=True)
class MailboxReport:
    """What one pass over one mailbox did; ``error`` says why it stopped early."""

    name: str
    folder: str
    result: PollResult
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        r = self.result
        return {
            "name": self.name,
            "folder": self.folder,
            "fetched": r.fetched,
            "stored": r.stored,
            "duplicates": r.duplicates,
            "quarantined": r.quarantined,
            "error": self.error,
        }


@dataclass
class PollReport:
    """One ``poll --once``: each mailbox, then what processing made of the stored mail."""

    mailboxes: list[MailboxReport] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    processing_errors: int = 0

    @property
    def ok(self) -> bool:
        return self.processing_errors == 0 and all(m.error is None for m in self.mailboxes)

    def outcomes(self) -> dict[str, int]:
        return dict(sorted(Counter(str(r.outcome) for r in self.results).items()))

    def quarantined_inbox_ids(self) -> list[int]:
        return [r.inbox_id for r in self.results if r.outcome == Outcome.QUARANTINED]

    def as_json(self) -> dict[str, Any]:
        return {
            "mailboxes": [m.as_json() for m in self.mailboxes],
            "processed": len(self.results),
            "outcomes": self.outcomes(),
            "quarantined_inbox_ids": self.quarantined_inbox_ids(),
            "processing_errors": self.processing_errors,
        }

    def text(self) -> str:
        lines = []
        for m in self.mailboxes:
            r = m.result
            line = (
                f"{m.name} ({m.folder}): fetched {r.fetched}, stored {r.stored}, "
                f"duplicates {r.duplicates}, quarantined {r.quarantined}"
            )
            if m.error:
                line += f"; stopped early: {m.error}"
            lines.append(line)
        outcomes = ", ".join(f"{n} {o}" for o, n in self.outcomes().items())
        lines.append(f"processed {len(self.results)}" + (f": {outcomes}" if outcomes else ""))
        if self.quarantined_inbox_ids():
            ids = " ".join(str(i) for i in self.quarantined_inbox_ids())
            lines.append(f"quarantined in the inbox (see `mailgate inbox list`): {ids}")
        if self.processing_errors:
            lines.append(f"{self.processing_errors} message(s) left pending by processing errors")
        return "\n".join(lines)


def poll_mailboxes(
    app: App,
    mailboxes: Sequence[ImapMailbox] | None = None,
    *,
    now: dt.datetime | None = None,
) -> PollReport:
    """One pass over each mailbox (default: all configured), processing what was stored.

    Each batch is processed as soon as it is marked on the server; at the end everything
    still pending in the inbox is processed too (mail an earlier run stored but did not
    get to process, e.g. because it was killed). One failing mailbox does not stop the
    others. Raises ConfigError before polling anything if a mailbox cannot be used.
    """
    selected = list(app.settings.imap.mailboxes if mailboxes is None else mailboxes)
    report = PollReport()
    workers = processing_children(app.settings, drain=True)
    # With [processing] workers, children classify each marked batch while this process
    # goes on fetching and storing the next. They are started with the first batch: a
    # pass that finds no new mail (most runs from cron) starts no process. This process
    # runs one thread, so they are forked, with everything already imported. A batch is
    # waiting for them, so they start on it at once rather than warm up first: that would
    # only add the patterns and templates this mail never needs.
    pool = (
        ProcessPool(
            app.settings, workers, on_done=report.results.extend, now=now, fork=True, warm_up=False
        )
        if workers
        else None
    )
    started = False

    def process(ids: list[int]) -> None:
        nonlocal started
        if pool is not None:
            if not started:
                pool.start()
                started = True
            pool.submit(ids)
            return
        try:
            report.results.extend(pipeline.process_batch(app, ids, now=now))
        except Exception:
            # Processing catches the messages' own failures; this is the database. The
            # items stay pending and the next pass (or `serve`) picks them up.
            report.processing_errors += len(ids)
            log.exception("processing inbox items %s failed; they stay pending", ids)

    def fixed_clock() -> dt.datetime:
        assert now is not None
        return now

    clock = fixed_clock if now is not None else None
    try:
        _poll_each(app, selected, report, process, clock)
    finally:
        if pool is not None and started:
            pool.wait_idle(POOL_TIMEOUT)
            pool.stop()
    try:
        report.results.extend(pipeline.process_pending(app, now=now))
    except Exception:
        report.processing_errors += 1
        log.exception("processing pending inbox items failed")
    return report


def _poll_each(
    app: App,
    selected: list[ImapMailbox],
    report: PollReport,
    process: Handoff,
    clock: Callable[[], dt.datetime] | None,
) -> None:
    pollers = []
    for mailbox in selected:
        sink = InboxSink(app, handoff=process, clock=clock)
        pollers.append((mailbox, sink, make_poller(app, mailbox, sink)))
    for mailbox, sink, poller in pollers:
        try:
            result = poller.poll_once()
            report.mailboxes.append(MailboxReport(mailbox.name, mailbox.folder, result))
        except Exception as exc:
            # The poller has logged what it marked; say why this mailbox stopped, with a
            # traceback only when it is not the network or our storage.
            expected = isinstance(exc, StoreError | OSError | IMAPClient.Error | ImapSecurityError)
            log.error(
                "imap %s: poll stopped: %s: %s", mailbox.name, type(exc).__name__, exc,
                exc_info=not expected,
            )  # fmt: skip
            partial = PollResult(stored=sink.stored, duplicates=sink.duplicates)
            report.mailboxes.append(
                MailboxReport(mailbox.name, mailbox.folder, partial, f"{type(exc).__name__}: {exc}")
            )
        finally:
            sink.flush()


def cmd_poll(args: Any, app: App) -> int:
    if not args.once:
        print(
            "mailgate poll: give --once (one pass, then exit); `mailgate serve` polls continuously",
            file=sys.stderr,
        )
        return EX_USAGE
    configured = app.settings.imap.mailboxes
    if not configured:
        print("mailgate poll: no [[imap.mailboxes]] configured", file=sys.stderr)
        return EX_CONFIG
    selected = list(configured)
    if args.mailbox:
        names = {m.name for m in configured}
        unknown = [n for n in args.mailbox if n not in names]
        if unknown:
            print(
                f"mailgate poll: no mailbox named {', '.join(unknown)} "
                f"(configured: {', '.join(sorted(names))})",
                file=sys.stderr,
            )
            return EX_USAGE
        selected = [m for m in configured if m.name in args.mailbox]
    try:
        report = poll_mailboxes(app, selected, now=getattr(args, "now", None))
    except ConfigError as exc:
        print(f"mailgate poll: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print(report.text())
    # 75: something could not be fetched or stored now; the next run retries it.
    return EX_OK if report.ok else EX_TEMPFAIL


def register(sub: Any, add: Any) -> None:
    """Add ``mailgate poll`` to the command line (called through cli._EXTENSIONS)."""
    p = add(
        "poll",
        cmd_poll,
        "fetch new mail from the configured IMAP mailboxes once, store it, then process it",
        now=True,
    )
    p.add_argument(
        "--once",
        action="store_true",
        help="one pass over every mailbox, then exit (continuous polling runs in `serve`)",
    )
    p.add_argument(
        "--mailbox", action="append", metavar="NAME", help="only this mailbox (repeatable)"
    )


# -- mailgate serve ------------------------------------------------------------------


class _ServePoller:
    """One mailbox's poller as a ``Gateway.background`` function (run in its own thread).

    Once a batch is marked on the server, its items go to ``handoff`` (the gateway's
    processing children), or, with no children, are processed right away in this thread,
    which keeps intake from running far ahead of processing; on stop the rest of a batch
    is left pending for the next start's recovery. The outbox sender picks up the
    acknowledgements on its next pass.
    """

    def __init__(self, app: App, mailbox: ImapMailbox, handoff: Handoff | None) -> None:
        self.app = app
        self.mailbox = mailbox
        self.sink = InboxSink(app)
        self.poller = make_poller(app, mailbox, self.sink)
        self.handoff = handoff
        self._stop: threading.Event | None = None

    def __call__(self, stop: threading.Event) -> None:
        threading.current_thread().name = f"imap-{self.mailbox.name}"
        self._stop = stop
        self.sink.handoff = self.handoff or self._process
        self.poller.run(stop)

    def _process(self, ids: list[int]) -> None:
        if self._stop is not None and self._stop.is_set():
            log.info(
                "imap %s: stopping; %d stored message(s) left for the next start",
                self.mailbox.name, len(ids),
            )  # fmt: skip
            return
        try:
            pipeline.process_batch(self.app, ids)
        except Exception:
            log.exception("processing inbox items %s failed; they stay pending", ids)


def attach_pollers(gateway: Gateway) -> int:
    """Add one poller thread per configured mailbox to ``gateway``; returns how many.

    Raises ConfigError (e.g. a password variable that is not set) before anything runs.
    """
    mailboxes = gateway.app.settings.imap.mailboxes
    for mailbox in mailboxes:
        handoff = gateway.submit if gateway.pool is not None else None
        gateway.background.append(_ServePoller(gateway.app, mailbox, handoff))
        log.info(
            "imap %s: will collect %s from %s:%d (%s)",
            mailbox.name, mailbox.folder, mailbox.host, mailbox.port, mailbox.security,
        )  # fmt: skip
    return len(mailboxes)
