"""Deliver the outbox: claim due rows, hand them to a transport, record every attempt.

Rows are claimed a batch at a time with a conditional UPDATE (state pending, due, no
live lease), which only one process can win for each row, on SQLite and on PostgreSQL
alike: several senders sharing one database never send a row twice. A batch's outcomes
are recorded together after its deliveries, so a crash in between can resend what was
delivered once the lease lapses; the stable Message-ID lets the receiving side
recognise the repeat.
"""

from __future__ import annotations

import datetime as dt
import logging
import mailbox
import random
import smtplib
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy import bindparam, insert, or_, select, update

from mailgate.config import OutboxSettings, RelaySettings
from mailgate.db.engine import Database
from mailgate.db.models import OutboxAttempt, OutboxMessage
from mailgate.model import ascii_domain

log = logging.getLogger("mailgate.outbox")


class DeliveryError(Exception):
    """Delivery failed; ``permanent`` failures are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Transport(Protocol):
    name: str

    def deliver(self, mail_from: str, recipients: list[str], raw: bytes) -> None: ...

    def close(self) -> None: ...


class MaildirTransport:
    """Writes each message as one file into a Maildir (``new/``), atomically."""

    name = "maildir"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._box = mailbox.Maildir(str(self.path), create=True)

    def deliver(self, mail_from: str, recipients: list[str], raw: bytes) -> None:
        try:
            self._box.add(raw)
        except OSError as exc:
            raise DeliveryError(f"cannot write to {self.path}: {exc}") from exc

    def close(self) -> None:
        return None


class SmtpTransport:
    """Delivers through an SMTP relay with STARTTLS, implicit TLS or none."""

    name = "smtp"

    def __init__(self, relay: RelaySettings) -> None:
        self.relay = relay
        self._conn: smtplib.SMTP | None = None

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.relay.ca_file)

    def _connect(self) -> smtplib.SMTP:
        r = self.relay
        conn: smtplib.SMTP
        if r.security == "tls":
            conn = smtplib.SMTP_SSL(r.host, r.port, timeout=r.timeout, context=self._context())
        else:
            conn = smtplib.SMTP(r.host, r.port, timeout=r.timeout)
        try:
            if r.security == "starttls":
                conn.starttls(context=self._context())
            if r.username:
                conn.login(r.username, r.effective_password)
        except BaseException:
            conn.close()  # a failed STARTTLS or login must not leak the socket
            raise
        return conn

    def deliver(self, mail_from: str, recipients: list[str], raw: bytes) -> None:
        # Non-ASCII domains go in their IDNA form; a non-ASCII local part needs SMTPUTF8.
        sender, *rcpts = map(ascii_domain, [mail_from, *recipients])
        utf8 = not all(addr.isascii() for addr in (sender, *rcpts))
        for attempt in (1, 2):  # a reused connection may have been dropped by the relay
            try:
                if self._conn is None:
                    self._conn = self._connect()
                options = self._utf8_options(self._conn) if utf8 else ()
                refused = self._conn.sendmail(sender, rcpts, raw, mail_options=options)
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _ in exc.recipients.values()]
                self.close()
                raise DeliveryError(
                    f"all recipients refused: {exc.recipients}",
                    permanent=all(500 <= c < 600 for c in codes),
                ) from exc
            except smtplib.SMTPResponseException as exc:
                self.close()
                raise DeliveryError(
                    f"relay answered {exc.smtp_code} {exc.smtp_error!r}",
                    permanent=500 <= exc.smtp_code < 600,
                ) from exc
            except (smtplib.SMTPServerDisconnected, ConnectionResetError) as exc:
                self.close()
                if attempt == 2:
                    raise DeliveryError(f"relay disconnected: {exc}") from exc
                continue
            except (OSError, smtplib.SMTPException) as exc:
                self.close()
                raise DeliveryError(f"relay {self.relay.host}:{self.relay.port}: {exc}") from exc
            except ValueError as exc:
                # An address smtplib cannot write (a character the command encoding lacks).
                # The transaction is half-open: close it, or the next message's MAIL would
                # be refused as nested. No retry writes it differently.
                self.close()
                raise DeliveryError(f"cannot send to {rcpts}: {exc}", permanent=True) from exc
            if refused:
                log.warning("relay refused some recipients: %s", refused)
            return

    def _utf8_options(self, conn: smtplib.SMTP) -> tuple[str, ...]:
        conn.ehlo_or_helo_if_needed()
        if not conn.has_extn("smtputf8"):
            raise DeliveryError(
                f"relay {self.relay.host}:{self.relay.port} does not offer SMTPUTF8, which an "
                "address with a non-ASCII local part needs (RFC 6531)",
                permanent=True,
            )
        return ("SMTPUTF8",)

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._conn = None


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_transport(settings: OutboxSettings) -> Transport:
    if settings.transport == "smtp":
        return SmtpTransport(settings.relay)
    return MaildirTransport(settings.maildir)


@dataclass(frozen=True)
class Claimed:
    """An outbox row this sender holds a lease on, with what delivering it needs."""

    id: int
    kind: str
    mail_from: str
    recipients: list[str]
    raw: bytes
    attempts: int
    lease_until: dt.datetime


@dataclass(frozen=True)
class _Outcome:
    """One delivery attempt of a claimed row: the error (None when sent), whether it is
    permanent, and when it ended."""

    row: Claimed
    error: str | None
    permanent: bool
    at: dt.datetime


@dataclass(frozen=True)
class DrainResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0


def backoff(settings: OutboxSettings, attempts: int, rng: random.Random | None = None) -> float:
    """Seconds before the next try: doubling from ``backoff_initial``, capped, +-10% jitter
    so that many failed rows do not all retry in the same second."""
    base = min(settings.backoff_initial * 2.0 ** max(attempts - 1, 0), settings.backoff_max)
    jitter: float = (rng or random).uniform(0.9, 1.1)
    return base * jitter


class OutboxSender:
    def __init__(
        self, db: Database, settings: OutboxSettings, transport: Transport, owner: str
    ) -> None:
        self.db = db
        self.settings = settings
        self.transport = transport
        self.owner = owner

    def _due_ids(self, now: dt.datetime, limit: int) -> list[int]:
        # Due-ness follows ``now`` (which `--now` may move); leases follow the real clock,
        # so a simulated time can never take over a row a live sender holds.
        real = _utcnow()
        with self.db.transaction() as session:
            return list(
                session.scalars(
                    select(OutboxMessage.id)
                    .where(
                        OutboxMessage.state == "pending",
                        OutboxMessage.next_attempt_at <= now,
                        or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < real),
                    )
                    .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                    .limit(limit)
                )
            )

    def _claim(self, ids: list[int], now: dt.datetime) -> list[Claimed]:
        """Take the listed rows in one UPDATE that re-checks every condition: another
        sender may have sent or rescheduled some since the list of due rows was read.
        Returns the rows this sender now holds (``RETURNING``, on SQLite and PostgreSQL)."""
        if not ids:
            return []
        real = _utcnow()
        lease_until = real + dt.timedelta(seconds=self.settings.lease_seconds)
        with self.db.transaction() as session:
            rows = session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id.in_(ids),
                    OutboxMessage.state == "pending",
                    OutboxMessage.next_attempt_at <= now,
                    or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < real),
                )
                .values(lease_owner=self.owner, lease_until=lease_until)
                .returning(
                    OutboxMessage.id,
                    OutboxMessage.kind,
                    OutboxMessage.mail_from,
                    OutboxMessage.recipients,
                    OutboxMessage.raw,
                    OutboxMessage.attempts,
                )
                .execution_options(synchronize_session=False)
            ).all()
        order = {outbox_id: i for i, outbox_id in enumerate(ids)}
        claimed = [Claimed(*row, lease_until=lease_until) for row in rows]
        return sorted(claimed, key=lambda c: order[c.id])

    def drain(self, now: dt.datetime | None = None, limit: int | None = None) -> DrainResult:
        """Deliver every row due at ``now``; returns what happened."""
        now = now or dt.datetime.now(dt.UTC)
        sent = retried = failed = 0
        batch = limit or self.settings.batch_size
        while True:
            ids = self._due_ids(now, batch)
            if not ids:
                break
            states = self._deliver_batch(self._claim(ids, now), now)
            sent += states.count("sent")
            retried += states.count("pending")
            failed += states.count("failed")
            if len(ids) < batch or limit:
                break
        return DrainResult(sent, retried, failed)

    def _deliver_batch(self, rows: list[Claimed], now: dt.datetime) -> list[str]:
        """Deliver the claimed rows, then record every outcome in one transaction; the
        rows' new states, in order."""
        outcomes, released = self._send(rows)
        if not outcomes and not released:
            return []
        return self._record(outcomes, released, now)

    def _send(self, rows: list[Claimed]) -> tuple[list[_Outcome], list[int]]:
        """Hand each row to the transport: the outcomes, and the rows released unsent.

        A row is only started while at least half its lease is left, so a slow relay can
        never run past the lease and let another sender take a row this one is still
        sending; the rows left over are released untouched for the next pass."""
        outcomes: list[_Outcome] = []
        released: list[int] = []
        half_lease = dt.timedelta(seconds=self.settings.lease_seconds / 2)
        for row in rows:
            if _utcnow() > row.lease_until - half_lease:
                released.append(row.id)
                continue
            error: str | None = None
            permanent = False
            try:
                self.transport.deliver(row.mail_from, list(row.recipients), row.raw)
            except DeliveryError as exc:
                error, permanent = str(exc), exc.permanent
            except Exception as exc:  # a transport bug must not stop the other rows
                error = f"{type(exc).__name__}: {exc}"
            outcomes.append(_Outcome(row, error, permanent, _utcnow()))
        return outcomes, released

    def _failure(self, outcome: _Outcome, now: dt.datetime) -> dict[str, object]:
        """The new values of a row whose attempt failed: retried later, or given up."""
        attempt = outcome.row.attempts + 1
        log.warning(
            "outbox %s (%s) attempt %d failed: %s",
            outcome.row.id, outcome.row.kind, attempt, outcome.error,
        )  # fmt: skip
        values: dict[str, object] = {"attempts": attempt, "last_error": outcome.error}
        if outcome.permanent or attempt >= self.settings.max_attempts:
            return values | {"state": "failed"}
        delay = dt.timedelta(seconds=backoff(self.settings, attempt))
        return values | {"state": "pending", "next_attempt_at": now + delay}

    def _record(self, outcomes: list[_Outcome], released: list[int], now: dt.datetime) -> list[str]:
        states: list[str] = []
        sent: list[dict[str, object]] = []
        mine = OutboxMessage.lease_owner == self.owner
        with self.db.transaction() as session:
            for outcome in outcomes:
                row = outcome.row
                if outcome.error is None:
                    sent.append({"row_id": row.id, "at": outcome.at, "attempts": row.attempts + 1})
                    states.append("sent")
                    log.info(
                        "outbox %s (%s) sent to %s", row.id, row.kind, ", ".join(row.recipients)
                    )
                    continue
                values = self._failure(outcome, now)
                states.append(str(values["state"]))
                session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == row.id, mine)
                    .values(lease_owner=None, lease_until=None, **values)
                    .execution_options(synchronize_session=False)
                )
            if sent:
                # Core executemany (through the connection, not the ORM's bulk-by-key
                # path) so the lease-owner condition stays in the WHERE clause.
                session.connection().execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == bindparam("row_id"), mine)
                    .values(
                        state="sent",
                        sent_at=bindparam("at"),
                        last_error=None,
                        attempts=bindparam("attempts"),
                        lease_owner=None,
                        lease_until=None,
                    ),
                    sent,
                )
            if released:
                session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(released), mine)
                    .values(lease_owner=None, lease_until=None)
                    .execution_options(synchronize_session=False)
                )
            if outcomes:
                session.execute(
                    insert(OutboxAttempt),
                    [
                        {
                            "outbox_id": o.row.id,
                            "at": o.at,
                            "ok": o.error is None,
                            "transport": self.transport.name,
                            "error": o.error,
                            "owner": self.owner,
                        }
                        for o in outcomes
                    ],
                )
        return states
