"""The SMTP listener (aiosmtpd): answers 250 only once the raw message is committed.

Replies follow RFC 3463 enhanced status codes: 451 4.3.0 when storage fails (the
sending server keeps the message and retries), 552 5.3.4 above the size limit, 550 5.1.1
for a recipient that is not a support address. Processing happens after the commit, on a
worker, so a slow or failing classification never makes a sender retry.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from mailgate.errors import StoreError
from mailgate.ingest.store import Stored

log = logging.getLogger("mailgate.smtp")

StoreFn = Callable[[bytes, str, str | None, tuple[str, ...], dt.datetime], Stored]


class GatewaySMTP(SMTP):
    """aiosmtpd's server with enhanced status codes on its own size refusals."""

    async def push(self, status: str) -> None:  # type: ignore[override]
        if status.startswith("552 Error"):
            status = "552 5.3.4 Message too big for this system"
        await super().push(status)


class GatewayHandler:
    """aiosmtpd handler: checks recipients, commits the raw bytes, queues processing."""

    def __init__(
        self,
        store: StoreFn,
        on_stored: Callable[[Stored], None],
        *,
        support_addresses: tuple[str, ...] = (),
        executor: Any = None,
    ) -> None:
        self.store = store
        self.on_stored = on_stored
        self.addresses = {a.lower() for a in support_addresses if not a.startswith("@")}
        self.domains = {a.lower() for a in support_addresses if a.startswith("@")}
        self.executor = executor
        self.in_flight = 0
        self.accepting = True  # False: new transactions get 421 (shutting down)
        self.closed = False  # True: even a message already being sent gets 421

    def _accepts(self, address: str) -> bool:
        if not self.addresses and not self.domains:
            return True  # no list configured: accept any recipient (loopback default)
        address = address.lower()
        if address in self.addresses:
            return True
        # Plus-addressing (support+IREX-000123.sig@...) reaches the same mailbox.
        local, _, domain = address.rpartition("@")
        base = local.split("+", 1)[0] + "@" + domain
        return base in self.addresses or "@" + domain in self.domains

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not self.accepting:
            return "421 4.3.2 Service shutting down, try again later"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if not self._accepts(address):
            return "550 5.1.1 No such support address here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.closed:
            return "421 4.3.2 Service shutting down; please send again later"
        self.in_flight += 1
        try:
            raw = envelope.original_content
            if not isinstance(raw, bytes):
                content = envelope.content or b""
                raw = (
                    content.encode("utf-8", "surrogateescape")
                    if isinstance(content, str)
                    else content
                )
            peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
            loop = asyncio.get_running_loop()
            now = dt.datetime.now(dt.UTC)
            try:
                stored = await loop.run_in_executor(
                    self.executor,
                    self.store,
                    raw,
                    peer,
                    envelope.mail_from,
                    tuple(envelope.rcpt_tos),
                    now,
                )
            except StoreError as exc:
                log.error("could not store message from %s: %s", peer, exc)
                return "451 4.3.0 Could not store the message; please try again later"
            except Exception:
                log.exception("unexpected error storing message from %s", peer)
                return "451 4.3.0 Could not store the message; please try again later"
            self.on_stored(stored)
            return f"250 2.0.0 OK: queued as {stored.inbox_id}"
        finally:
            self.in_flight -= 1
