"""Benchmark: SMTP intake throughput of ``mailgate serve`` against a sink that only counts.

For each connection count (1 and 8 by default) it sends the same N messages from
``bench/corpus.py`` (plain, HTML, attachments of 2-200 KB, replies with quoted history, a
dozen charsets; about 82% become tickets, the rest are refused or ignored) with smtplib,
one thread per connection, each connection reused for many messages, to

(a) a counting aiosmtpd sink in its own process: the baseline, what SMTP on this machine
    costs with nothing behind it (the clock stops at the last 250);
(b) ``mailgate serve`` as a real subprocess on a fresh embedded SQLite database in a
    temporary folder, with the corpus's subscription registry imported by
    ``mailgate subscriptions import`` and the Maildir outbox. Its clock stops when every
    message is stored, classified and its acknowledgement (or refusal) queued: after the
    last 250 the bench polls the SQLite file read-only until no inbox item is pending or
    processing (bounded wait).

Both servers get the same warm-up messages first (not timed). For the gateway it reports
messages per second, the ratio to the sink, the rate of 250s alone, its resident memory
sampled every ``--rss-every`` messages and its peak (``VmHWM``), each summed over serve and
its processing workers, and checks the outcomes against what the corpus expects.

    .venv/bin/python bench/smtp_throughput.py                # --n 2000, 1 and 8 connections
    .venv/bin/python bench/smtp_throughput.py --long         # 10,000 messages, 1 connection
    .venv/bin/python bench/smtp_throughput.py --json         # machine-readable
    .venv/bin/python bench/smtp_throughput.py --profile      # store+process in-process, cProfile

Targets (issue, 2-core machine): gateway >= 0.5 x sink with 1 connection; RSS flat over
10,000 messages. All traffic stays on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import functools
import io
import itertools
import json
import os
import pstats
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.corpus import Corpus, CorpusMessage, summary  # noqa: E402

MAILGATE = REPO / ".venv" / "bin" / "mailgate"
HOST = "127.0.0.1"
WARMUP = 20
WARMUP_BASE = 10_000_000  # corpus indices of warm-up mail, far from the timed ones
PROFILE_BATCH = 16  # --profile: messages stored, then processed together
MAX_MESSAGE_BYTES = 25 * 1024 * 1024


# ------------------------------------------------------------------------------ helpers


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (serve's processing workers and their helpers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                ppid = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, ()))
    return tree


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM in KiB summed over ``pid`` and its descendants (empty when gone).
    The summed VmHWM is the sum of each process's own peak: an upper bound of the peak
    of the whole."""
    out: dict[str, int] = {}
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith(("VmRSS:", "VmHWM:")):
                        key, value = line.split(":", 1)
                        out[key] = out.get(key, 0) + int(value.split()[0])
        except OSError:
            pass
    return out


def code_state() -> dict[str, str]:
    """Which mailgate was measured: HEAD and a digest of uncommitted changes under mailgate/."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, timeout=30,
                                  check=False).stdout.decode("utf-8", "replace")
        except (OSError, subprocess.SubprocessError):
            return ""

    import hashlib

    diff = git("diff", "HEAD", "--", "mailgate", "templates", "migrations")
    untracked = git("ls-files", "--others", "--exclude-standard", "mailgate")
    digest = hashlib.sha256(diff.encode())
    for name in sorted(untracked.split()):
        with contextlib.suppress(OSError):
            digest.update((REPO / name).read_bytes())
    dirty = bool(diff or untracked.strip())
    return {"head": git("rev-parse", "--short", "HEAD").strip(),
            "uncommitted": digest.hexdigest()[:12] if dirty else "none"}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of ``pid`` and its live descendants, plus what its
    finished children used (0 when it is gone)."""
    total = 0
    for member in process_tree(pid):
        try:
            with open(f"/proc/{member}/stat", encoding="ascii") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / os.sysconf("SC_CLK_TCK")


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {HOST}:{port} after {timeout:.0f}s")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """SIGTERM our own child, then SIGKILL it if it does not leave in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


# ----------------------------------------------------------------------- the sink server


class _CountingHandler:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.count += 1
        return "250 2.0.0 OK"


def run_sink(port: int) -> int:
    """The baseline server (a child process): aiosmtpd with the gateway's options, counting."""
    from aiosmtpd.smtp import SMTP

    handler = _CountingHandler()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        server = await loop.create_server(
            lambda: SMTP(handler, hostname="sink", ident="sink",
                         data_size_limit=MAX_MESSAGE_BYTES, enable_SMTPUTF8=True,
                         decode_data=False),
            host=HOST, port=port,
        )
        await stop.wait()
        server.close()

    asyncio.run(main())
    print(json.dumps({"count": handler.count}), flush=True)
    return 0


# -------------------------------------------------------------------------- the sender


@dataclass
class Progress:
    sent: int = 0
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def send(port: int, messages: Sequence[CorpusMessage], connections: int, progress: Progress,
         timeout: float) -> float:
    """Send all ``messages`` over ``connections`` reused connections; seconds to last 250."""
    cursor = itertools.count()
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            with smtplib.SMTP(HOST, port, local_hostname="bench.local", timeout=60) as client:
                client.ehlo()
                while (i := next(cursor)) < len(messages):
                    m = messages[i]
                    try:
                        client.sendmail(m.mail_from, list(m.rcpt_tos), m.raw)
                    except smtplib.SMTPResponseException as exc:
                        with progress.lock:
                            progress.refused.append(
                                f"{m.index}: {exc.smtp_code} {exc.smtp_error!r}")
                        client.rset()
                    with progress.lock:
                        progress.sent += 1
        except BaseException as exc:  # reported by the caller
            failures.append(exc)

    threads = [threading.Thread(target=worker, name=f"smtp-{k}", daemon=True)
               for k in range(connections)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(deadline - time.monotonic(), 0.1))
    elapsed = time.perf_counter() - started
    if any(t.is_alive() for t in threads):
        raise RuntimeError(f"sending did not finish within {timeout:.0f}s "
                           f"({progress.sent}/{len(messages)} sent)")
    if failures:
        raise RuntimeError(f"a connection failed: {failures[0]!r}") from failures[0]
    return elapsed


# -------------------------------------------------------------------------- the runs


@dataclass
class SinkRun:
    seconds: float
    msgs_per_s: float
    mbytes_per_s: float
    counted: int
    peak_rss_kb: int
    cpu_ms_per_msg: float  # the sink process's CPU (user+system) per message
    cpu_utilization: float  # its CPU seconds / wall seconds (1.0 = one core busy)


@dataclass
class RssSample:
    sent: int
    processed: int
    seconds: float
    rss_kb: int


@dataclass
class GatewayRun:
    seconds: float  # first message sent -> nothing pending or processing
    msgs_per_s: float
    accept_seconds: float  # first message sent -> last 250
    accept_msgs_per_s: float
    peak_rss_kb: int
    rss: list[RssSample]
    cpu_ms_per_msg: float  # serve's CPU (user+system) per message: all threads and processes
    cpu_utilization: float  # its CPU seconds / wall seconds (1.0 = one core busy)
    outcomes: dict[str, int]
    outbox: dict[str, int]
    expected: dict[str, int]
    refused_at_smtp: int


def run_sink_bench(messages: Sequence[CorpusMessage], warmup: Sequence[CorpusMessage],
                   connections: int, timeout: float) -> SinkRun:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--_sink", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc, 30)
        send(port, warmup, min(connections, len(warmup)), Progress(), timeout)
        cpu0 = cpu_seconds(proc.pid)
        elapsed = send(port, messages, connections, Progress(), timeout)
        cpu = cpu_seconds(proc.pid) - cpu0
        peak = proc_status(proc.pid).get("VmHWM", 0)
    finally:
        stop_process(proc, 30)
    out = proc.stdout.read() if proc.stdout else b""
    counted = json.loads(out or b'{"count": -1}')["count"] - len(warmup)
    size = sum(m.size for m in messages)
    return SinkRun(elapsed, len(messages) / elapsed, size / elapsed / 1e6, counted, peak,
                   cpu / len(messages) * 1000, cpu / elapsed)


def write_gateway_config(workdir: Path, port: int, workers: int | None = None) -> Path:
    conf = workdir / "mailgate.toml"
    processing = "" if workers is None else f"\n[processing]\nworkers = {workers}\n"
    conf.write_text(
        f"""# written by bench/smtp_throughput.py
[database]
url = "sqlite:///{workdir / 'mailgate.db'}"

[smtp]
host = "{HOST}"
port = {port}
support_addresses = ["support@irex.example"]
shutdown_grace = 10.0

[outbox]
maildir = "{workdir / 'outbox'}"

[logging]
level = "WARNING"
{processing}""",
        encoding="utf-8",
    )
    return conf


class InboxWatch:
    """Read-only view of the gateway's SQLite file (WAL: never blocks the writer)."""

    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10,
                                  check_same_thread=False)
        self.lock = threading.Lock()

    def statuses(self) -> dict[str, int]:
        with self.lock:
            rows = self.db.execute("SELECT status, count(*) FROM inbox GROUP BY status").fetchall()
        return {status: n for status, n in rows}

    def unfinished(self) -> tuple[int, int]:
        """(items pending or processing, all items)."""
        counts = self.statuses()
        return counts.get("pending", 0) + counts.get("processing", 0), sum(counts.values())

    def max_id(self) -> int:
        with self.lock:
            return int(self.db.execute("SELECT coalesce(max(id), 0) FROM inbox").fetchone()[0])

    def outcomes(self, after_id: int) -> dict[str, int]:
        """What became of the items after ``after_id``: refusal reason, else outcome."""
        with self.lock:
            rows = self.db.execute(
                "SELECT coalesce(reason, outcome, status), count(*) FROM inbox WHERE id > ? "
                "GROUP BY 1 ORDER BY 2 DESC", (after_id,)).fetchall()
        return dict(rows)

    def outbox(self) -> dict[str, int]:
        with self.lock:
            rows = self.db.execute(
                "SELECT kind || ':' || state, count(*) FROM outbox GROUP BY 1 ORDER BY 2 DESC"
            ).fetchall()
        return dict(rows)

    def close(self) -> None:
        self.db.close()


def wait_drained(watch: InboxWatch, total: int, timeout: float) -> float:
    """Poll until all ``total`` items are stored and none is pending/processing."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        unfinished, stored = watch.unfinished()
        if stored >= total and unfinished == 0:
            return time.perf_counter()
        time.sleep(0.02)
    unfinished, stored = watch.unfinished()
    raise RuntimeError(f"gateway not drained after {timeout:.0f}s: {stored}/{total} stored, "
                       f"{unfinished} pending or processing")


def start_gateway(workdir: Path, corpus: Corpus, command: Sequence[str],
                  workers: int | None = None) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    conf = write_gateway_config(workdir, port, workers)
    registry = corpus.write_registry(workdir / "registry.csv")
    subprocess.run([*command, "--config", str(conf), "subscriptions", "import",
                    str(registry)], check=True, capture_output=True, timeout=120)
    log = (workdir / "serve.log").open("wb")
    proc = subprocess.Popen([*command, "--config", str(conf), "serve"],
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    wait_for_port(port, proc, 60)
    return proc, port, workdir / "mailgate.db"


def run_gateway_bench(corpus: Corpus, messages: Sequence[CorpusMessage],
                      warmup: Sequence[CorpusMessage], connections: int, rss_every: int,
                      timeout: float, keep: bool, command: Sequence[str],
                      workers: int | None = None) -> GatewayRun:
    workdir = Path(tempfile.mkdtemp(prefix=f"mailgate-bench-{connections}c-"))
    proc, port, db_path = start_gateway(workdir, corpus, command, workers)
    watch: InboxWatch | None = None
    try:
        send(port, warmup, min(connections, len(warmup)), Progress(), timeout)
        watch = InboxWatch(db_path)
        wait_drained(watch, len(warmup), timeout)
        warm_id = watch.max_id()
        progress = Progress()
        samples: list[RssSample] = []
        stop_sampling = threading.Event()
        started = time.perf_counter()

        def sample() -> None:
            assert watch is not None
            unfinished, stored = watch.unfinished()
            samples.append(RssSample(progress.sent, stored - unfinished - len(warmup),
                                     round(time.perf_counter() - started, 2),
                                     proc_status(proc.pid).get("VmRSS", 0)))

        def sampler() -> None:
            # Every rss_every messages *processed*: processing is the slow stage, and the
            # series must go on while the gateway drains after the last 250.
            next_mark = rss_every
            while not stop_sampling.wait(0.1):
                if samples_processed() >= next_mark:
                    sample()
                    next_mark += rss_every

        def samples_processed() -> int:
            assert watch is not None
            unfinished, stored = watch.unfinished()
            return stored - unfinished - len(warmup)

        sample()
        cpu0 = cpu_seconds(proc.pid)
        watcher = threading.Thread(target=sampler, daemon=True)
        watcher.start()
        accept = send(port, messages, connections, progress, timeout)
        done = wait_drained(watch, len(warmup) + len(messages) - len(progress.refused), timeout)
        elapsed = done - started
        cpu = cpu_seconds(proc.pid) - cpu0
        stop_sampling.set()
        watcher.join(5)
        if samples[-1].processed < len(messages) - len(progress.refused):
            sample()
        peak = proc_status(proc.pid).get("VmHWM", 0)
        outcomes, outbox = watch.outcomes(warm_id), watch.outbox()
    finally:
        if watch is not None:
            watch.close()
        stop_process(proc, 60)
    if proc.returncode not in (0, -signal.SIGTERM):
        print(f"warning: mailgate serve exited with {proc.returncode}; see {workdir}/serve.log",
              file=sys.stderr)
    if not keep:
        _rmtree(workdir)
    return GatewayRun(
        seconds=elapsed,
        msgs_per_s=len(messages) / elapsed,
        accept_seconds=accept,
        accept_msgs_per_s=len(messages) / accept,
        peak_rss_kb=peak,
        rss=samples,
        cpu_ms_per_msg=cpu / len(messages) * 1000,
        cpu_utilization=cpu / elapsed,
        outcomes=outcomes,
        outbox=outbox,
        expected=dict(Counter(m.expect for m in messages).most_common()),
        refused_at_smtp=len(progress.refused),
    )


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


# ------------------------------------------------------------------------------ profile


class StageTimer:
    """Inclusive wall time of named functions, by wrapping them where they are looked up."""

    def __init__(self) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._undo: list[tuple[Any, str, Any, bool]] = []

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        fn = getattr(owner, attr, None)
        if fn is None:  # the code moved on; time what is still there
            return
        seconds, calls = self.seconds, self.calls
        own = isinstance(owner, type(sys)) or attr in getattr(owner, "__dict__", {})
        self._undo.append((owner, attr, fn, own))

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[label] += time.perf_counter() - started
                calls[label] += 1

        setattr(owner, attr, timed)

    def unwrap(self) -> None:
        """Put every wrapped function back (so cProfile sees the code as it is)."""
        for owner, attr, fn, own in reversed(self._undo):
            if own:
                setattr(owner, attr, fn)
            else:  # it was the class's method: drop the instance attribute
                delattr(owner, attr)
        self._undo.clear()


class _TimedRule:
    """A policy rule whose ``check`` is timed; everything else is the rule's own."""

    def __init__(self, rule: Any, timer: StageTimer) -> None:
        self._rule = rule
        self._label = f"  rule {getattr(rule, 'name', type(rule).__name__)}"
        self._timer = timer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rule, name)

    def check(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self._rule.check(*args, **kwargs)
        finally:
            self._timer.seconds[self._label] += time.perf_counter() - started
            self._timer.calls[self._label] += 1


def profile(corpus: Corpus, n: int, top: int) -> dict[str, Any]:
    """store_raw one by one + process_batch in chunks, in this process: what serve's listener
    and a processing child do.

    Three passes over different slices of the corpus: plain (the rate), with stage timers
    (where the milliseconds go, little overhead), under cProfile (which functions).
    """
    from mailgate.app import App
    from mailgate.config import parse_settings
    from mailgate.ingest import pipeline
    from mailgate.ingest.store import store_raw
    from mailgate.subscriptions import apply_rows, read_rows

    workdir = Path(tempfile.mkdtemp(prefix="mailgate-bench-profile-"))
    settings = parse_settings({
        "database": {"url": f"sqlite:///{workdir / 'mailgate.db'}"},
        "outbox": {"maildir": str(workdir / "outbox")},
        "smtp": {"support_addresses": ["support@irex.example"]},
        "logging": {"level": "WARNING"},
    }, workdir)
    app = App.create(settings)
    rows = read_rows(corpus.write_registry(workdir / "registry.csv"), app.subscription_re)
    with app.db.transaction() as session:
        apply_rows(session, rows, dt.datetime.now(dt.UTC))
    timer = StageTimer()

    def run(messages: Sequence[CorpusMessage]) -> float:
        # Stored one by one as the listener does, processed in batches as a child does.
        started = time.perf_counter()
        for first in range(0, len(messages), PROFILE_BATCH):
            chunk = messages[first:first + PROFILE_BATCH]
            t0 = time.perf_counter()
            ids = [store_raw(app.db, m.raw, source="smtp", received_at=dt.datetime.now(dt.UTC),
                             origin=HOST, envelope_from=m.mail_from,
                             envelope_to=m.rcpt_tos).inbox_id for m in chunk]
            t1 = time.perf_counter()
            pipeline.process_batch(app, ids)
            timer.seconds["store_raw (SMTP store thread)"] += t1 - t0
            timer.seconds["process_batch (worker)"] += time.perf_counter() - t1
            timer.calls["store_raw (SMTP store thread)"] += len(chunk)
            timer.calls["process_batch (worker)"] += len(chunk)
        return time.perf_counter() - started

    run(list(corpus.messages(WARMUP, WARMUP_BASE)))
    timer.seconds.clear()
    timer.calls.clear()
    plain = run(list(corpus.messages(n)))

    # Pass 2: stage timers. Nested labels (indented) are included in the one above them.
    timer.seconds.clear()
    timer.calls.clear()
    dialect = app.db.engine.dialect
    for attr in ("do_execute", "do_execute_no_params", "do_executemany"):
        timer.wrap(dialect, attr, "  sqlite3 execute (C, all statements)")
    timer.wrap(dialect, "do_commit", "  sqlite3 commit (C)")
    for attr, label in (
        ("parse_message", "parse_message"),
        ("gather_facts", "gather_facts (lookups, quote strip, prose)"),
        ("own_text", "  own_text (quotes.strip_reply)"),
        ("strip_html_reply", "  strip_html_reply"),
        ("prose_only", "  prose_only (language prep)"),
        ("match_ticket", "match_ticket (conversation)"),
        ("decide", "decide (policy chain)"),
        ("response_due", "response_due (SLA)"),
    ):
        timer.wrap(pipeline, attr, label)
    timer.wrap(app.composer, "compose", "composer.compose (ack/refusal render)")
    chain = app.chain
    app.__dict__["chain"] = tuple(_TimedRule(r, timer) for r in chain)
    staged = run(list(corpus.messages(n, n)))
    stage_seconds, stage_calls = defaultdict(float, timer.seconds), Counter(timer.calls)
    timer.unwrap()
    app.__dict__["chain"] = chain
    # What the outbox sender thread then spends per message (Maildir transport, as serve).
    from mailgate.outbox import OutboxSender, make_transport

    transport = make_transport(app.settings.outbox)
    sender = OutboxSender(app.db, app.settings.outbox, transport, app.owner)
    drain_timer = StageTimer()
    drain_timer.wrap(sender, "_due_ids", "  _due_ids (select a batch)")
    drain_timer.wrap(sender, "_claim", "  _claim (lease txn)")
    drain_timer.wrap(transport, "deliver", "  transport.deliver (Maildir write+fsync)")
    drain_timer.wrap(sender, "_deliver_batch", "  _deliver_batch (deliver + state txn)")
    started = time.perf_counter()
    sender.drain()
    stage_seconds["outbox drain (sender thread)"] = time.perf_counter() - started
    for label, secs in drain_timer.seconds.items():
        stage_seconds[label] += secs
    drain_timer.unwrap()
    transport.close()

    profiled_batch = list(corpus.messages(n, 2 * n))
    profiler = cProfile.Profile()
    profiler.enable()
    with_profiler = run(profiled_batch)
    profiler.disable()
    app.close()
    _rmtree(workdir)

    stats = pstats.Stats(profiler)
    report: dict[str, Any] = {
        "messages": n,
        "msgs_per_s": n / plain,
        "ms_per_message": plain / n * 1000,
        "msgs_per_s_with_stage_timers": n / staged,
        "msgs_per_s_under_profiler": n / with_profiler,
        "stages_ms_per_message": {
            label: round(secs / n * 1000, 2)
            for label, secs in _stage_order(stage_seconds)
        },
        "stage_calls": dict(stage_calls),
    }
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(profiler, stream=buf).sort_stats(key).print_stats(
            top if key == "cumulative" else 20)
        report[f"top_{key}"] = buf.getvalue()
    report["by_area"] = _by_area(stats)
    return report


_STAGE_ORDER = (
    "store_raw", "process_batch", "  sqlite3 execute", "  sqlite3 commit", "parse_message",
    "gather_facts", "  own_text", "  strip_html_reply", "  prose_only", "match_ticket",
    "decide", "  rule", "response_due", "composer", "outbox drain", "  _due_ids", "  _claim",
    "  _deliver", "  transport",
)


def _stage_order(seconds: Mapping[str, float]) -> list[tuple[str, float]]:
    def rank(label: str) -> int:
        return next((i for i, p in enumerate(_STAGE_ORDER) if label.startswith(p)), 99)

    return sorted(seconds.items(), key=lambda kv: (rank(kv[0]), kv[0]))


_AREAS = (  # (area, substring of the function's file) - first match wins
    ("mailgate.mail.quotes (own_text)", "mailgate/mail/quotes.py"),
    ("mailgate.mail.html", "mailgate/mail/html.py"),
    ("mailgate.mail.parse", "mailgate/mail/parse.py"),
    ("mailgate.mail.compose", "mailgate/mail/compose.py"),
    ("mailgate (other)", "/mailgate/"),
    ("sqlalchemy", "sqlalchemy"),
    ("jinja2 / markupsafe", "jinja2"),
    ("jinja2 / markupsafe", "markupsafe"),
    ("email (stdlib)", "/email/"),
    ("html.parser (stdlib)", "html/parser.py"),
    ("re (stdlib)", "/re/"),
    ("zoneinfo / datetime", "zoneinfo"),
)


def _by_area(stats: pstats.Stats) -> dict[str, float]:
    """Own time (tottime) summed by library or mailgate module, in seconds."""
    totals: Counter[str] = Counter()
    for (filename, _line, func), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        area = next((a for a, key in _AREAS if key in filename), None)
        if area is None:
            if filename == "~":  # built-ins: name them (sqlite3 execute, regex match, ...)
                if "sqlite3" in func or "execute" in func or "commit" in func:
                    area = "sqlite3 C calls (execute/commit)"
                elif "Pattern" in func or "re." in func:
                    area = "regex C calls"
                else:
                    area = "other built-ins"
            else:
                area = "other Python"
        totals[area] += tottime
    return {a: round(s, 3) for a, s in totals.most_common()}


# ------------------------------------------------------------------------------ report


def _kb(kb: int) -> str:
    return f"{kb / 1024:.1f} MiB"


def print_report(result: dict[str, Any]) -> None:
    c = result["corpus"]
    print(f"corpus: seed {result['seed']}, {c['messages']} messages, "
          f"{c['bytes'] / 1e6:.1f} MB (mean {c['size_mean'] / 1024:.1f} KiB, "
          f"p50 {c['size_p50'] / 1024:.1f} KiB, p90 {c['size_p90'] / 1024:.1f} KiB, "
          f"max {c['size_max'] / 1024:.0f} KiB)")
    print(f"  kinds {c['kind']}")
    print(f"  expected {c['expect']}")
    print(f"machine: {os.cpu_count()} CPUs, load average at start {result['loadavg_start']}, "
          f"at end {result['loadavg_end']}; python {sys.version.split()[0]}")
    print(f"mailgate: HEAD {result['code']['head']}, uncommitted changes "
          f"{result['code']['uncommitted']}")
    print()
    header = (f"{'conns':>5}  {'sink msg/s':>10}  {'gateway msg/s':>13}  {'ratio':>5}  "
              f"{'250s msg/s':>10}  {'gw seconds':>10}  {'peak RSS':>10}")
    print(header)
    print("-" * len(header))
    for run in result["runs"]:
        s, g = run["sink"], run["gateway"]
        sink_rate = f"{s['msgs_per_s']:>10.1f}" if s else f"{'-':>10}"
        ratio = f"{run['ratio']:>5.2f}" if s else f"{'-':>5}"
        print(f"{run['connections']:>5}  {sink_rate}  {g['msgs_per_s']:>13.1f}  {ratio}  "
              f"{g['accept_msgs_per_s']:>10.1f}  {g['seconds']:>10.2f}  "
              f"{_kb(g['peak_rss_kb']):>10}")
    for run in result["runs"]:
        s, g = run["sink"], run["gateway"]
        print()
        print(f"{run['connections']} connection(s): gateway RSS over the run "
              f"(sent / processed -> RSS):")
        for smp in g["rss"]:
            print(f"  {smp['sent']:>6} / {smp['processed']:>6}  t={smp['seconds']:>7.2f}s  "
                  f"{_kb(smp['rss_kb'])}")
        print(f"  peak (VmHWM) {_kb(g['peak_rss_kb'])}"
              + (f"; sink peak {_kb(s['peak_rss_kb'])}" if s else ""))
        print(f"  CPU per message: gateway {g['cpu_ms_per_msg']:.1f} ms "
              f"({g['cpu_utilization']:.2f} cores busy)"
              + (f", sink {s['cpu_ms_per_msg']:.2f} ms ({s['cpu_utilization']:.2f} cores busy)"
                 if s else ""))
        print(f"  outcomes {g['outcomes']}")
        print(f"  expected {g['expected']}")
        print(f"  outbox   {g['outbox']}")
        if g["refused_at_smtp"]:
            print(f"  refused at SMTP: {g['refused_at_smtp']}")
        if s and s["counted"] != result["corpus"]["messages"]:
            print(f"  warning: the sink counted {s['counted']}")
    print()
    for line in result["verdict"]:
        print(line)


def verdict(runs: list[dict[str, Any]], long: bool) -> list[str]:
    lines = []
    one = next((r for r in runs if r["connections"] == 1 and r["ratio"] is not None), None)
    if one:
        ok = one["ratio"] >= 0.5
        lines.append(f"target gateway >= 0.5 x sink (1 connection): ratio {one['ratio']:.2f} "
                     f"-> {'MET' if ok else 'NOT MET'}")
    for r in runs:
        series = r["gateway"]["rss"]
        if len(series) < 4:
            continue
        # Flat: the second half of the run (by messages processed) adds (almost) nothing.
        mid, last = series[len(series) // 2], series[-1]
        growth = last["rss_kb"] - mid["rss_kb"]
        per_1000 = growth / max(last["processed"] - mid["processed"], 1) * 1000
        flat = growth <= max(0.05 * mid["rss_kb"], 4 * 1024)
        lines.append(
            f"memory ({r['connections']} conn., {last['processed']} msgs): RSS "
            f"{_kb(series[0]['rss_kb'])} at start, {_kb(mid['rss_kb'])} after "
            f"{mid['processed']}, {_kb(last['rss_kb'])} at the end ({growth / 1024:+.1f} MiB "
            f"over the second half, {per_1000 / 1024:+.2f} MiB per 1,000 msgs; peak "
            f"{_kb(r['gateway']['peak_rss_kb'])}) -> {'flat' if flat else 'GROWING'}"
            + ("" if long or last["processed"] >= 8000 else " (--long for the 10k figure)"))
    return lines


# --------------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="SMTP intake throughput: mailgate serve vs a counting aiosmtpd sink.")
    parser.add_argument("--n", type=int, default=2000, help="messages per run (default 2000)")
    parser.add_argument("--connections", default="1,8",
                        help="comma-separated connection counts (default 1,8)")
    parser.add_argument("--long", action="store_true",
                        help="10,000 messages over 1 connection (memory flatness)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None,
                        help="[processing] workers for serve (default: its own default)")
    parser.add_argument("--rss-every", type=int, default=None,
                        help="sample the gateway's RSS every this many messages processed "
                        "(default 1000, or N/8 below 8000 messages)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="bound on each send/drain phase in seconds (default scales with N)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--keep", action="store_true", help="keep the gateway's temp folders")
    parser.add_argument("--mailgate", default=str(MAILGATE),
                        help="the mailgate command to run, split on spaces (default: the "
                        "venv's; e.g. to try a patched tree or interpreter options)")
    parser.add_argument("--skip-sink", action="store_true",
                        help="gateway only (the ratio column is then left out)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile store+process in-process for --profile-n messages")
    parser.add_argument("--profile-n", type=int, default=500)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--_sink", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._sink is not None:
        return run_sink(args._sink)

    corpus = Corpus(args.seed)
    if args.profile:
        report = profile(corpus, args.profile_n, args.top)
        if args.json:
            print(json.dumps(report, indent=2))
        else:
            print(f"store_raw + process_batch in-process, {report['messages']} messages: "
                  f"{report['msgs_per_s']:.1f} msg/s ({report['ms_per_message']:.2f} ms each) "
                  f"without the profiler, {report['msgs_per_s_with_stage_timers']:.1f} with "
                  f"stage timers, {report['msgs_per_s_under_profiler']:.1f} under cProfile\n")
            print("where the time goes (ms per message, inclusive; indented lines are part "
                  "of the line above; sqlite3 lines span all stages):")
            for label, ms in report["stages_ms_per_message"].items():
                print(f"  {ms:8.2f}  {label}")
            print()
            print(report["top_cumulative"])
            print(report["top_tottime"])
            print("own time by area (s, under the profiler):")
            for area, seconds in report["by_area"].items():
                print(f"  {seconds:8.3f}  {area}")
        return 0

    n = 10_000 if args.long else args.n
    connections = [1] if args.long else [int(c) for c in args.connections.split(",")]
    timeout = args.timeout or max(300.0, n * 0.3)
    rss_every = args.rss_every or (1000 if n >= 8000 else max(n // 8, 10))
    messages = list(corpus.messages(n))
    warmup = list(corpus.messages(WARMUP, WARMUP_BASE))
    loadavg = os.getloadavg()
    runs = []
    for conns in connections:
        if not args.json:
            print(f"... {conns} connection(s): sink", file=sys.stderr, flush=True)
        sink = None if args.skip_sink else run_sink_bench(messages, warmup, conns, timeout)
        if not args.json:
            print(f"... {conns} connection(s): gateway", file=sys.stderr, flush=True)
        gateway = run_gateway_bench(corpus, messages, warmup, conns, rss_every, timeout,
                                    args.keep, args.mailgate.split(), args.workers)
        runs.append({
            "connections": conns,
            "sink": asdict(sink) if sink else None,
            "gateway": asdict(gateway),
            "ratio": gateway.msgs_per_s / sink.msgs_per_s if sink else None,
        })
    result = {
        "code": code_state(),
        "loadavg_end": [round(x, 2) for x in os.getloadavg()],
        "seed": args.seed,
        "n": n,
        "loadavg_start": [round(x, 2) for x in loadavg],
        "corpus": summary(messages),
        "runs": runs,
        "verdict": verdict(runs, args.long),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
