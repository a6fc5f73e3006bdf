"""``mailgate serve``: the SMTP listener, processing and the outbox sender.

The listener and the outbox sender share one asyncio loop, with blocking database work
on threads. Stored mail is classified by ``[processing] workers`` child processes (see
``ingest/workers.py``), or on a thread of this process when that is 0.

On SIGTERM (or SIGINT) it stops accepting mail, finishes the messages in hand, processes
what was stored, delivers what is due, and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import logging
import signal
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from mailgate.app import App
from mailgate.config import processing_children
from mailgate.db import queries
from mailgate.ingest import pipeline
from mailgate.ingest.result import Result
from mailgate.ingest.smtp import GatewayHandler, GatewaySMTP
from mailgate.ingest.store import Stored, store_raw
from mailgate.ingest.workers import BATCH, ProcessPool
from mailgate.outbox import OutboxSender, Transport, make_transport
from mailgate.sla.escalation import periodic_jobs

log = logging.getLogger("mailgate.serve")

SWEEP_INTERVAL = 60.0  # seconds between looks for pending mail no child holds


class Gateway:
    def __init__(self, app: App, *, transport: Transport | None = None) -> None:
        self.app = app
        self.settings = app.settings
        self.transport = transport or make_transport(app.settings.outbox)
        self.sender = OutboxSender(app.db, app.settings.outbox, self.transport, app.owner)
        self.queue: asyncio.Queue[Stored] = asyncio.Queue()
        self.store_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="store")
        self.work_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="process")
        self.send_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        # Periodic jobs (the SLA pass, digests, the inbox sweep) get a thread of their own:
        # a pass over many tickets due at once takes seconds, and on the outbox's thread
        # every acknowledgement queued meanwhile waited for it.
        self.periodic_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="periodic")
        workers = processing_children(app.settings)
        self.pool = (
            ProcessPool(app.settings, workers, on_done=self._on_processed) if workers else None
        )
        self.outbox_wakeup = asyncio.Event()
        self.stopping = asyncio.Event()
        self.handler = GatewayHandler(
            self._store,
            self._on_stored,
            support_addresses=app.settings.smtp.support_addresses,
            executor=self.store_pool,
        )
        self.server: asyncio.Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ready = threading.Event()
        self.port: int | None = None
        # Periodic jobs added by other parts (SLA ticks, digests): (name, interval, fn).
        self.periodic: list[tuple[str, float, Callable[[], object]]] = []
        self.background: list[Callable[[threading.Event], None]] = []
        self._thread_stop = threading.Event()

    def _store(
        self,
        raw: bytes,
        peer: str,
        mail_from: str | None,
        rcpt_tos: tuple[str, ...],
        now: dt.datetime,
    ) -> Stored:
        return store_raw(
            self.app.db,
            raw,
            source="smtp",
            received_at=now,
            origin=peer,
            envelope_from=mail_from,
            envelope_to=rcpt_tos,
        )

    def _on_stored(self, stored: Stored) -> None:
        if self.pool is not None and not stored.duplicate:
            self.pool.submit([stored.inbox_id])
        else:  # a duplicate is only logged with its original's outcome: no child needed
            self.queue.put_nowait(stored)

    def submit(self, ids: list[int]) -> None:
        """Hand stored inbox items to processing (thread-safe; for other intakes)."""
        if self.pool is not None:
            self.pool.submit(ids)
            return
        assert self.loop is not None
        for inbox_id in ids:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, Stored(inbox_id, False))

    def _on_processed(self, results: list[Result]) -> None:
        """A child finished a batch (on the pool's thread): its replies are queued, so
        wake the outbox sender (one pass delivers whatever is due by then)."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.outbox_wakeup.set)

    def _sweep(self) -> None:
        """Hand the children what is pending but not in their hands: mail an intake stored
        while no child ran, or whose claim lapsed (a periodic job with a pool)."""
        assert self.pool is not None
        with self.app.db.transaction() as session:
            queries.release_dead_claims(session, self.app.host)
            ids = queries.pending_inbox_ids(session, pipeline.utcnow(), 1000)
        held = self.pool.held()
        unheld = [i for i in ids if i not in held]
        if unheld:
            log.info("handing %d stored message(s) no child held to processing", len(unheld))
        self.pool.submit(unheld)

    async def _process_loop(self) -> None:
        """Without children: process what is queued in batches on the work thread (a
        duplicate is only logged, with its original's outcome)."""
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty() and len(batch) < BATCH:
                batch.append(self.queue.get_nowait())
            new = [s.inbox_id for s in batch if not s.duplicate]
            try:
                for stored in batch:
                    if stored.duplicate:
                        await loop.run_in_executor(
                            self.work_pool, pipeline.process_stored, self.app, stored, None, "smtp"
                        )
                if new:
                    await loop.run_in_executor(
                        self.work_pool, functools.partial(pipeline.process_batch, self.app, new)
                    )
            except Exception:
                log.exception("processing inbox items %s failed", [s.inbox_id for s in batch])
            finally:
                for _ in batch:
                    self.queue.task_done()
            if self.queue.empty():  # deliver in batches, not a wake-up per message
                self.outbox_wakeup.set()

    async def _outbox_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(self.send_pool, self.sender.drain)
            except Exception:
                log.exception("outbox pass failed")
            self.outbox_wakeup.clear()
            # Sleep until woken (new mail queued) or the poll interval passes. asyncio.wait
            # rather than wait_for: on 3.11 a cancelled wait_for can hang on its inner task.
            waiter = asyncio.ensure_future(self.outbox_wakeup.wait())
            try:
                await asyncio.wait({waiter}, timeout=self.settings.outbox.poll_interval)
            finally:
                waiter.cancel()

    async def _periodic_loop(self, name: str, interval: float, fn: Callable[[], object]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(self.periodic_pool, fn)
            except Exception:
                log.exception("%s failed", name)
            self.outbox_wakeup.set()
            await asyncio.sleep(interval)

    async def _recover(self) -> None:
        """Process what an earlier run stored but did not finish."""
        loop = asyncio.get_running_loop()
        if self.pool is not None:
            self.pool.start()  # its children warm up as they start
            await loop.run_in_executor(self.periodic_pool, self._sweep)
            return
        # Before the first mail, which would wait for it (the work pool is first in, first out).
        self.work_pool.submit(pipeline.warm_up, self.app)
        results = await loop.run_in_executor(self.work_pool, pipeline.process_pending, self.app)
        if results:
            log.info("recovered %d stored message(s) from an earlier run", len(results))

    async def run(self, stop: asyncio.Event | None = None) -> None:
        loop = self.loop = asyncio.get_running_loop()
        self.stopping = stop or asyncio.Event()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stopping.set)
        smtp = self.settings.smtp
        await self._recover()
        if smtp.enabled:
            self.server = await loop.create_server(
                lambda: GatewaySMTP(
                    self.handler,
                    hostname=smtp.hostname,
                    ident="mailgate",
                    data_size_limit=smtp.max_message_bytes,
                    enable_SMTPUTF8=True,
                    decode_data=False,
                ),
                host=smtp.host,
                port=smtp.port,
            )
            self.port = self.server.sockets[0].getsockname()[1]
            log.info("SMTP listener on %s:%s", smtp.host, self.port)
        tasks = [
            asyncio.create_task(self._process_loop(), name="process"),
            asyncio.create_task(self._outbox_loop(), name="outbox"),
        ]
        periodic = list(self.periodic)
        if self.pool is not None:
            periodic.append(("inbox sweep", SWEEP_INTERVAL, self._sweep))
        tasks += [asyncio.create_task(self._periodic_loop(n, i, f), name=n) for n, i, f in periodic]
        threads = [
            threading.Thread(target=fn, args=(self._thread_stop,), daemon=True)
            for fn in self.background
        ]
        for t in threads:
            t.start()
        self.ready.set()
        await self.stopping.wait()
        log.info("stopping: no new mail accepted; finishing the messages in hand")
        await self._shutdown(tasks, threads)

    async def _shutdown(
        self, tasks: list[asyncio.Task[None]], threads: list[threading.Thread]
    ) -> None:
        self.handler.accepting = False
        if self.server is not None:
            self.server.close()
        self._thread_stop.set()
        grace = self.settings.smtp.shutdown_grace
        deadline = asyncio.get_running_loop().time() + grace
        while self.handler.in_flight and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        await _bounded(self.queue.join(), max(deadline - asyncio.get_running_loop().time(), 1))
        if self.pool is not None:
            remaining = max(deadline - asyncio.get_running_loop().time(), 1)
            await asyncio.get_running_loop().run_in_executor(None, self.pool.wait_idle, remaining)
        for t in threads:
            t.join(timeout=max(deadline - asyncio.get_running_loop().time(), 1))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # From here a session that was mid-DATA gets 421 (its sender retries); anything
        # that got 250 before this point is processed now, before the process exits.
        self.handler.closed = True
        loop = asyncio.get_running_loop()
        while self.handler.in_flight and loop.time() < deadline + 5:
            await asyncio.sleep(0.05)
        if self.pool is not None:
            await loop.run_in_executor(None, self.pool.stop)
        with contextlib.suppress(Exception):
            await loop.run_in_executor(self.work_pool, pipeline.process_pending, self.app)
        with contextlib.suppress(Exception):
            await loop.run_in_executor(self.send_pool, self.sender.drain)
        for pool in (self.store_pool, self.work_pool, self.send_pool, self.periodic_pool):
            pool.shutdown(wait=True)
        self.transport.close()
        log.info("stopped")


async def _bounded(awaitable: Awaitable[object], timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(awaitable, timeout)


def serve(app: App) -> int:
    gateway = Gateway(app)
    gateway.periodic.extend(periodic_jobs(app))  # SLA escalation pass, daily digest
    if app.settings.imap.mailboxes:  # one IMAP poller thread per mailbox
        from mailgate.ingest.imap_service import attach_pollers

        attach_pollers(gateway)
    asyncio.run(gateway.run())
    return 0
