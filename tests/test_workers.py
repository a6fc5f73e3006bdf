"""Processing in child processes (``[processing] workers``): mail stored by the parent is
classified by a child; a child that dies loses nothing, and a message that keeps killing
children is quarantined instead of killing them forever."""

from __future__ import annotations

import datetime as dt
import os
import signal
import smtplib
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update

from mailgate.app import App, process_identity
from mailgate.config import parse_settings
from mailgate.db import queries
from mailgate.db.models import InboxItem, OutboxMessage, Ticket
from mailgate.db.queries import MAX_CLAIMS
from mailgate.errors import ConfigError
from mailgate.ingest import workers
from mailgate.ingest.result import Result
from mailgate.ingest.store import store_raw
from mailgate.ingest.workers import ProcessPool, _Child
from tests.conftest import add_subscription
from tests.support.mailtools import make_mail, run_python, wait_until


def _store(app: App, count: int, tag: str) -> list[int]:
    now = dt.datetime.now(dt.UTC)
    return [
        store_raw(
            app.db, make_mail(message_id=f"{tag}-{i}@acme.example"), source="pipe", received_at=now
        ).inbox_id
        for i in range(count)
    ]


def _statuses(app: App, ids: list[int]) -> Counter[str]:
    with app.db.transaction() as s:
        return Counter(s.scalars(select(InboxItem.status).where(InboxItem.id.in_(ids))))


def _count(app: App, model: Any) -> int:
    with app.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_serve_with_a_worker_process_classifies_in_the_child(
    make_app: Any, run_gateway: Any
) -> None:
    app = make_app({"processing": {"workers": 1}})
    add_subscription(app)
    gw = run_gateway(app)
    with smtplib.SMTP("127.0.0.1", gw.port, timeout=10) as client:
        for i in range(5):
            client.sendmail(
                "jane@acme.example",
                ["support@irex.example"],
                make_mail(message_id=f"child-{i}@acme.example"),
            )
    wait_until(lambda: _count(app, OutboxMessage) == 5 and _count(app, Ticket) == 5, 30)
    gw.stop()
    with app.db.transaction() as s:
        owners = set(s.scalars(select(InboxItem.claimed_by)))
        states = Counter(s.scalars(select(OutboxMessage.state)))
    # Claimed by another process than this one: the child did the work.
    assert len(owners) == 1 and owners != {app.owner}
    assert owners.pop().rpartition(":")[2] != str(os.getpid())
    assert states == {"sent": 5}  # and the parent's sender delivered what it queued


@pytest.mark.parametrize("processes", [1, 2])
def test_a_killed_child_loses_and_repeats_nothing(make_app: Any, processes: int) -> None:
    """With two children the survivor keeps sending results while the other is dead:
    the death must be noticed all the same."""
    app = make_app()
    add_subscription(app)
    ids = _store(app, 60, "kill")
    finished: list[Result] = []
    pool = ProcessPool(app.settings, processes, on_done=finished.extend)
    pool.start()
    try:
        victim = pool._children[0]
        for half in (ids[:30], ids[30:]):  # with two children, one half each
            pool.submit(half)

        def holding_a_claim() -> bool:
            return _statuses(app, ids)["processing"] > 0

        wait_until(holding_a_claim, 30, 0.002)
        assert victim.process.pid is not None
        os.kill(victim.process.pid, signal.SIGKILL)
        assert pool.wait_idle(60), "the pool did not finish after the child was replaced"
        assert victim not in pool._children
        assert all(c.process.is_alive() for c in pool._children)
    finally:
        assert pool.stop(30)
    assert _statuses(app, ids) == {"done": 60}
    assert _count(app, Ticket) == 60
    with app.db.transaction() as s:
        per_item = Counter(s.scalars(select(OutboxMessage.dedupe_key)))
    assert len(per_item) == 60 and set(per_item.values()) == {1}
    assert {r.inbox_id for r in finished} == set(ids)


def test_a_message_that_kept_killing_children_is_quarantined(lite_app: Any) -> None:
    app = lite_app()
    poisonous, unlucky, elsewhere = _store(app, 3, "poison")
    dead = "deadhost:999999"
    with app.db.transaction() as s:
        s.execute(
            update(InboxItem)
            .where(InboxItem.id.in_([poisonous, unlucky]))
            .values(status="processing", claimed_by=dead, claimed_until=dt.datetime.now(dt.UTC))
        )
        s.execute(update(InboxItem).where(InboxItem.id == poisonous).values(attempts=MAX_CLAIMS))
        s.execute(update(InboxItem).where(InboxItem.id == unlucky).values(attempts=1))
        # Another live process's claim on an id the dead child also held is left alone.
        s.execute(
            update(InboxItem)
            .where(InboxItem.id == elsewhere)
            .values(status="processing", claimed_by="otherhost:1", attempts=1)
        )
    pool = ProcessPool(app.settings, 1)
    pool._db = app.db
    child = _Child(process=None, tasks=None, owner=dead, holding={poisonous, unlucky, elsewhere})  # type: ignore[arg-type]
    retry = pool._release(child, -9)
    assert retry == sorted([poisonous, unlucky, elsewhere])
    with app.db.transaction() as s:
        rows = {r.id: r for r in s.scalars(select(InboxItem))}
    assert rows[poisonous].status == "quarantined"
    assert "died (exit code -9)" in (rows[poisonous].error or "")
    assert (rows[unlucky].status, rows[unlucky].claimed_by) == ("pending", None)
    assert (rows[elsewhere].status, rows[elsewhere].claimed_by) == ("processing", "otherhost:1")


@pytest.mark.parametrize("workers", [-1, 65, "all", 2.5])
def test_a_bad_workers_setting_stops_start_up_naming_the_key(
    tmp_path: Path, workers: object
) -> None:
    with pytest.raises(ConfigError, match=r"processing\.workers"):
        parse_settings({"processing": {"workers": workers}}, tmp_path)


@pytest.mark.parametrize(("cores", "serve", "drain"), [(1, 1, 1), (2, 1, 2), (8, 7, 8)])
def test_auto_workers_are_a_core_each_for_a_drain_and_one_fewer_for_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cores: int, serve: int, drain: int
) -> None:
    """serve's listener needs a core of its own; poll --once only fetches and stores."""
    from mailgate import config

    monkeypatch.setattr(config, "usable_cores", lambda: cores)
    url = f"sqlite:///{tmp_path / 'm.db'}"
    auto = parse_settings({"database": {"url": url}}, tmp_path)
    assert auto.processing.workers == "auto"  # the default
    assert config.processing_children(auto) == serve
    assert config.processing_children(auto, drain=True) == drain
    fixed = parse_settings({"database": {"url": url}, "processing": {"workers": 3}}, tmp_path)
    assert (config.processing_children(fixed), config.processing_children(fixed, drain=True)) == (
        3,
        3,
    )


def _started_with(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The start method of each child a pool started, from its log lines."""
    started = [r.getMessage() for r in caplog.records if "processing worker" in r.getMessage()]
    return [m.rsplit("(", 1)[1].rstrip(")") for m in started if m.endswith(")")]


def test_a_pool_asked_to_fork_spawns_while_another_thread_runs(
    lite_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A forked child inherits every lock as it was: one held by another thread (SQLite's,
    a queue's) would never be released in it. So with a second thread running, a pool
    asked to fork spawns, and so does one not asked to. (The forked children of
    ``poll --once``, a single thread, are tested in test_imap_pipeline.py.)"""
    caplog.set_level("INFO", logger="mailgate.workers")
    app = lite_app({"processing": {"workers": 1}})
    add_subscription(app)
    ids = _store(app, 2, "fork")
    busy = threading.Event()
    other = threading.Thread(target=busy.wait, args=(60,), daemon=True)
    other.start()
    try:
        for fork, inbox_id in ((True, ids[0]), (False, ids[1])):
            pool = ProcessPool(app.settings, 1, fork=fork)
            pool.start()
            try:
                pool.submit([inbox_id])
                assert pool.wait_idle(60)
            finally:
                assert pool.stop(30)
    finally:
        busy.set()
        other.join(5)
    assert _started_with(caplog) == ["spawn", "spawn"]
    assert _statuses(app, ids) == {"done": 2}


def test_claims_of_a_dead_process_on_this_host_are_taken_over_at_once(lite_app: Any) -> None:
    app = lite_app()
    dead_pid = _a_dead_pid()
    dead, alive = process_identity(dead_pid), process_identity()
    elsewhere = "otherhost/1:" + str(dead_pid)  # another host or PID namespace: not ours
    ids = _store(app, 3, "claims")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    with app.db.transaction() as s:
        for inbox_id, owner in zip(ids, (dead, alive, elsewhere), strict=True):
            s.execute(
                update(InboxItem)
                .where(InboxItem.id == inbox_id)
                .values(status="processing", claimed_by=owner, claimed_until=later)
            )
    with app.db.transaction() as s:
        assert queries.release_dead_claims(s, app.host) == 1
    with app.db.transaction() as s:
        rows = {r.id: (r.status, r.claimed_by) for r in s.scalars(select(InboxItem))}
    assert rows == {
        ids[0]: ("pending", None),
        ids[1]: ("processing", alive),
        ids[2]: ("processing", elsewhere),
    }


def _a_dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""

    probe = subprocess.Popen([sys.executable, "-c", "pass"])
    probe.wait(30)
    return probe.pid


def test_an_in_memory_database_is_processed_in_the_main_process(tmp_path: Path) -> None:
    """No other process can open ``sqlite://`` (in memory): no children then."""
    from mailgate.config import processing_children

    one = {"processing": {"workers": 1}}
    memory = parse_settings({"database": {"url": "sqlite://"}} | one, tmp_path)
    on_disk = parse_settings(
        {"database": {"url": f"sqlite:///{tmp_path / 'm.db'}"}} | one, tmp_path
    )
    assert (processing_children(memory), processing_children(on_disk)) == (0, 1)
    memory_file = parse_settings({"database": {"url": "sqlite:///:memory:"}}, tmp_path)
    assert processing_children(memory_file) == processing_children(memory_file, drain=True) == 0


def test_a_host_name_with_like_wildcards_matches_only_itself(lite_app: Any) -> None:
    """'_' in a host name is a LIKE wildcard: it must not make another host's claims ours."""
    app = lite_app()
    [inbox_id] = _store(app, 1, "wildcard")
    foreign = f"mailXgate/1:{_a_dead_pid()}"
    with app.db.transaction() as s:
        s.execute(
            update(InboxItem)
            .where(InboxItem.id == inbox_id)
            .values(status="processing", claimed_by=foreign)
        )
    with app.db.transaction() as s:
        assert queries.release_dead_claims(s, "mail_gate/1") == 0
    with app.db.transaction() as s:
        assert s.get(InboxItem, inbox_id).claimed_by == foreign  # type: ignore[union-attr]


@pytest.mark.parametrize("workers", [0, 1])
def test_serve_processes_at_start_what_an_earlier_run_left(
    make_app: Any, run_gateway: Any, workers: int
) -> None:
    """Stored and never processed, or claimed by a process that died: both become tickets
    when serve starts, with or without processing children."""
    app = make_app({"processing": {"workers": workers}})
    add_subscription(app)
    ids = _store(app, 4, f"left-{workers}")
    with app.db.transaction() as s:
        s.execute(
            update(InboxItem)
            .where(InboxItem.id == ids[0])
            .values(
                status="processing",
                claimed_by=process_identity(_a_dead_pid()),
                claimed_until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
            )
        )
    gw = run_gateway(app)
    wait_until(lambda: _statuses(app, ids) == {"done": 4}, 30)
    gw.stop()
    assert _count(app, Ticket) == 4


def test_a_message_whose_processes_keep_dying_is_quarantined_not_released(
    lite_app: Any,
) -> None:
    """The same rule as for children: poll --once or serve killed by the same message
    over and over must not be restarted into it forever."""
    app = lite_app()
    [inbox_id] = _store(app, 1, "poison-run")
    with app.db.transaction() as s:
        s.execute(
            update(InboxItem)
            .where(InboxItem.id == inbox_id)
            .values(
                status="processing",
                claimed_by=process_identity(_a_dead_pid()),
                attempts=MAX_CLAIMS,
            )
        )
    with app.db.transaction() as s:
        assert queries.release_dead_claims(s, app.host) == 0
    with app.db.transaction() as s:
        item = s.get(InboxItem, inbox_id)
        assert item is not None and item.status == "quarantined"
        assert "died" in (item.error or "")


def test_stopping_the_pool_ends_its_collector_at_once(
    lite_app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """stop() wakes the collector thread instead of waiting for its next look at the
    children (every CHECK_INTERVAL): poll --once paid that wait on every run. With the
    look an hour away, the collector must still be gone when stop() returns."""
    monkeypatch.setattr(workers, "CHECK_INTERVAL", 3600.0)
    app = lite_app({"processing": {"workers": 1}})
    pool = ProcessPool(app.settings, 1)
    pool.start()
    assert pool.stop()
    assert pool._collector is not None and not pool._collector.is_alive()


def test_a_pool_that_is_not_started_starts_no_process(tmp_path: Path) -> None:
    """poll --once makes its pool before it knows whether there is mail: making it must not
    start a process, not even multiprocessing's resource tracker (which a spawn-context
    queue starts). Started, the pool has its child and the tracker."""
    code = f"""
import os, pathlib
from mailgate.config import parse_settings
from mailgate.ingest.workers import ProcessPool

def children():
    found = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            found.append(int(stat.parent.name))
    return len(found)

folder = pathlib.Path("{tmp_path}")
settings = parse_settings({{"database": {{"url": f"sqlite:///{{folder / 'm.db'}}"}}}}, folder)
pool = ProcessPool(settings, 1)
print(children())
pool.start()
print(children())
pool.stop(30)
"""
    output = run_python(code)
    assert output.split() == ["0", "2"]
