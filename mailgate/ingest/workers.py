"""Process stored mail in child processes, beside the intake of the parent.

Classifying a message (parsing, the policy chain, rendering the reply, writing the
ticket) is pure CPU in Python, so in one process it competes with the SMTP listener and
the IMAP pollers for the interpreter lock. ``ProcessPool`` hands inbox ids to child
processes instead; each child builds its own ``App`` and calls the same
``pipeline.process_batch``, so the database stays the only shared state and every claim,
lease and dedupe rule holds as before.

The parent knows which ids each child holds. When a child dies (killed, or crashed in C
code), the claims it held are released and its ids go to a fresh child; an id that has
now been claimed ``MAX_CLAIMS`` times without finishing is quarantined with the exit
code, so one poisonous message cannot kill children forever.

Children are started with ``spawn`` (a fresh interpreter that imports mailgate again, about
half a second) unless the pool is asked to ``fork`` and the parent runs no other thread at
that moment: a forked child starts with everything already imported in a few
milliseconds, which is what a one-shot ``mailgate poll --once`` pays for on every run. A
child started again after a death comes from the collector thread, so it is spawned.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.context import ForkContext, SpawnContext
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from typing import Any

from mailgate.app import process_identity
from mailgate.config import Settings
from mailgate.db import queries
from mailgate.db.engine import Database
from mailgate.ingest.result import Result

log = logging.getLogger("mailgate.workers")

BATCH = 64  # stored messages processed together (by a child, or by serve without children)
_STOP = -1
CHECK_INTERVAL = 0.5  # seconds between looks for a dead child
# Seconds a child waits for more ids after the first: a batch pays one claim, one
# numbering and one write transaction however many messages it holds, and 25 ms is
# nothing against a response deadline.
GATHER = 0.025


def _child_main(
    settings: Settings,
    tasks: Queue[int],
    results: Queue[Any],
    level: int,
    now: dt.datetime | None,
    warm: bool,
) -> None:
    """A child's life: build an App (and warm it up when ``warm``), process the ids it is
    given until told to stop (at ``now`` when the command was given ``--now``)."""
    # What the child inherited (forked) or imported (spawned) lives as long as it does.
    # Frozen, the cyclic collector never walks it again: a full collection of the heap a
    # forked child shares with its parent cost it about 50 ms, and copied every page of it.
    gc.freeze()
    # The parent decides when children stop (it first hands them what it accepted);
    # Ctrl-C and a service manager's SIGTERM reach the whole process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    from mailgate.app import App
    from mailgate.ingest import pipeline

    log.debug("%d objects frozen out of the collector's way", gc.get_freeze_count())
    parent = os.getppid()
    app = App.create(settings, migrate=False)
    if warm:
        pipeline.warm_up(app)
    try:
        while True:
            try:
                first = tasks.get(timeout=1.0)
            except queue.Empty:
                if os.getppid() != parent:  # the parent is gone: nobody will read results
                    return
                continue
            if first == _STOP:
                return
            ids = [first]
            deadline = time.monotonic() + GATHER
            while len(ids) < BATCH:
                remaining = deadline - time.monotonic()
                try:
                    more = tasks.get(timeout=remaining) if remaining > 0 else tasks.get_nowait()
                except queue.Empty:
                    break
                if more == _STOP:
                    tasks.put(_STOP)  # seen after this batch
                    break
                ids.append(more)
            done: list[tuple[int, Result | None]]
            try:
                done = list(zip(ids, pipeline.process_batch(app, ids, now=now), strict=True))
            except Exception:
                # Processing quarantines the messages' own failures; this is the
                # database. The items stay claimed until their lease lapses, and the
                # parent's sweep (or the next start) hands them over again.
                log.exception("processing inbox items %s failed; they stay pending", ids)
                done = [(inbox_id, None) for inbox_id in ids]
            results.put(done)
    finally:
        app.close()


@dataclass
class _Child:
    process: BaseProcess
    tasks: Queue[int]
    owner: str
    holding: set[int] = field(default_factory=set)


class ProcessPool:
    """``processes`` children processing inbox ids; ``on_done`` gets every batch's
    results in the parent (on the pool's collector thread)."""

    def __init__(
        self,
        settings: Settings,
        processes: int,
        *,
        on_done: Callable[[list[Result]], None] | None = None,
        now: dt.datetime | None = None,
        fork: bool = False,
        warm_up: bool = True,
    ) -> None:
        if processes < 1:
            raise ValueError("a process pool needs at least one process")
        self.settings = settings
        self.size = processes
        self.on_done = on_done
        self.now = now
        self.fork = fork
        self.warm_up = warm_up
        # Queues and their locks come from the spawn context: they work with forked
        # children as well, while fork-context locks cannot be handed to a spawned one.
        self._ctx = multiprocessing.get_context("spawn")
        # Made by start(): a spawn-context queue starts multiprocessing's resource
        # tracker, a process of its own, which a pool that is never started must not.
        self._results: Queue[Any]
        self._children: list[_Child] = []
        self._lock = threading.Condition()
        self._stopping = False
        self._collector: threading.Thread | None = None
        self._db: Database | None = None

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        self._results = self._ctx.Queue()
        self._db = Database(self.settings.database.url)
        self._children = [self._spawn() for _ in range(self.size)]
        self._collector = threading.Thread(target=self._collect, name="workers", daemon=True)
        self._collector.start()

    def _spawn(self) -> _Child:
        tasks: Queue[int] = self._ctx.Queue()
        level = logging.getLogger().getEffectiveLevel()
        context = self._context()
        process = context.Process(
            target=_child_main,
            args=(self.settings, tasks, self._results, level, self.now, self.warm_up),
            name="mailgate-worker",
            daemon=True,
        )
        process.start()
        owner = process_identity(process.pid)  # App.owner in the child
        log.info("processing worker %s started (%s)", owner, context.get_start_method())
        return _Child(process, tasks, owner)

    def _context(self) -> ForkContext | SpawnContext:
        """fork when asked to and safe: with another thread running, a lock that thread
        holds (SQLite's, a queue's) would stay locked forever in the child. On macOS the
        system libraries start threads of their own, so fork is unsafe there at all."""
        forkable = sys.platform != "darwin" and "fork" in multiprocessing.get_all_start_methods()
        if self.fork and forkable and threading.active_count() == 1:
            return multiprocessing.get_context("fork")
        return self._ctx

    def stop(self, timeout: float = 30.0) -> bool:
        """Let the children finish what they hold, then end them; False if one had to be
        killed (what it held stays claimed until its lease lapses)."""
        with self._lock:
            self._stopping = True
            children = list(self._children)
        for child in children:
            child.tasks.put(_STOP)
        clean = True
        for child in children:
            child.process.join(timeout)
            if child.process.is_alive():
                clean = False
                log.error(
                    "processing worker %s did not stop in %.0fs; killed", child.owner, timeout
                )
                child.process.kill()
                child.process.join(5)
        if self._collector is not None:
            self._results.put([])  # wake the collector now, not at its next look
            self._collector.join(timeout=5)
            self._drain_results()
        if self._db is not None:
            self._db.dispose()
        return clean

    # -- work -------------------------------------------------------------------------

    def submit(self, ids: Sequence[int]) -> None:
        """Hand ids to the least busy child (thread-safe)."""
        if not ids:
            return
        with self._lock:
            child = min(self._children, key=lambda c: len(c.holding))
            child.holding.update(ids)
            for inbox_id in ids:
                child.tasks.put(inbox_id)

    def held(self) -> set[int]:
        """The ids submitted and not yet done."""
        with self._lock:
            return set().union(*(c.holding for c in self._children))

    def wait_idle(self, timeout: float) -> bool:
        """Block until every submitted id is done; False on timeout."""
        with self._lock:
            return self._lock.wait_for(
                lambda: all(not c.holding for c in self._children), timeout=timeout
            )

    # -- the collector thread ---------------------------------------------------------

    def _collect(self) -> None:
        checked = time.monotonic()
        while True:
            with self._lock:
                if self._stopping and all(not c.process.is_alive() for c in self._children):
                    return
            try:
                self._finish(self._results.get(timeout=CHECK_INTERVAL))
            except queue.Empty:
                pass
            # Also while results keep coming from the others: a dead child sends none.
            if time.monotonic() - checked >= CHECK_INTERVAL:
                self._check_children()
                checked = time.monotonic()

    def _drain_results(self) -> None:
        while True:
            try:
                self._finish(self._results.get_nowait())
            except queue.Empty:
                return

    def _finish(self, done: list[tuple[int, Result | None]]) -> None:
        with self._lock:
            for inbox_id, _ in done:
                for child in self._children:
                    child.holding.discard(inbox_id)
            self._lock.notify_all()
        results = [r for _, r in done if r is not None]
        if self.on_done is not None and results:
            try:
                self.on_done(results)
            except Exception:
                log.exception("handling processed results failed")

    def _check_children(self) -> None:
        with self._lock:
            if self._stopping:
                return
            dead = [c for c in self._children if not c.process.is_alive()]
        for child in dead:
            code = child.process.exitcode
            log.error(
                "processing worker %s died (exit code %s) holding %d message(s); restarting",
                child.owner, code, len(child.holding),
            )  # fmt: skip
            retry = self._release(child, code)
            fresh = self._spawn()
            with self._lock:
                self._children[self._children.index(child)] = fresh
                self._lock.notify_all()
            self.submit(retry)

    def _release(self, child: _Child, exitcode: int | None) -> list[int]:
        """Free the claims a dead child held; quarantine the ones claimed too often.
        Returns the ids to process again."""
        held = sorted(child.holding)
        if not held:
            return []
        assert self._db is not None, "the pool was started"
        error = f"the processing worker died (exit code {exitcode}) while processing this message"
        with self._db.transaction() as session:
            queries.release_claims(session, [child.owner], error, ids=held)
        return held
