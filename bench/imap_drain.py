"""Benchmark: how close ImapPoller.poll_once() comes to a bare IMAP fetch of the same mail.

Starts its own private Dovecot (tests/support/dovecot.py), appends N messages, then times

1. raw imapclient: connect, log in, SELECT, UID SEARCH, one ``UID FETCH BODY.PEEK[]`` of all N;
2. for reference, the server-side floor of a drain: the same FETCH and a UID MOVE in the
   poller's batch size, no sink;
3. ``ImapPoller.poll_once()``: connect, log in, fetch in batches, store each message in the
   sink, MOVE each batch to the Processed folder, save the cursor.

Both use the same transport (implicit TLS by default). Each round moves the mail back and
gives the poller a fresh sink, so every round drains the same N messages. The median of
the rounds is printed, with messages per second and the ratio.

The sink comes from ``make_sink(workdir)`` below (a SQLite sink by default); point it at
the real mailgate pipeline, or pass ``--sink package.module:function``.

    .venv/bin/python bench/imap_drain.py [--n 1000] [--size 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import importlib
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from imapclient import IMAPClient  # noqa: E402

from mailgate.ingest.imap import ImapPoller, IntakeSink, PollResult  # noqa: E402
from tests.support.dovecot import DovecotServer, MailboxHandle, sample_message  # noqa: E402
from tests.support.imap_sink import SqliteIntakeSink  # noqa: E402


def make_sink(workdir: Path) -> IntakeSink:
    """The sink the poller drains into; called once per round with an empty directory.

    Replace with the real pipeline (store in the inbox, classify, queue acknowledgements).
    """
    return SqliteIntakeSink(workdir / "inbox.sqlite3")


def load_sink_factory(spec: str | None) -> Callable[[Path], IntakeSink]:
    if not spec:
        return make_sink
    module_name, _, attribute = spec.partition(":")
    factory: Callable[[Path], IntakeSink] = getattr(importlib.import_module(module_name), attribute)
    return factory


def raw_fetch(server: DovecotServer, box: MailboxHandle, security: str) -> tuple[float, int]:
    """Seconds for connect + login + SELECT + UID SEARCH + one UID FETCH BODY.PEEK[] of all."""
    started = time.perf_counter()
    if security == "tls":
        client = IMAPClient(
            server.host, server.tls_port, ssl=True, ssl_context=server.client_ssl_context()
        )
    else:
        client = IMAPClient(server.host, server.port, ssl=False)
    try:
        client.login(box.user, box.password)
        client.select_folder(box.folder, readonly=True)
        response = client.fetch(client.search(["ALL"]), [b"BODY.PEEK[]"])
        total = sum(len(data[b"BODY[]"]) for data in response.values())
        count = len(response)
    finally:
        client.logout()
    elapsed = time.perf_counter() - started
    assert total > 0
    return elapsed, count


def raw_fetch_and_move(
    server: DovecotServer, box: MailboxHandle, security: str, batch_size: int
) -> float:
    """Seconds for the server-side floor of a drain: FETCH and MOVE in the poller's batches."""
    started = time.perf_counter()
    with server.connect(box.user, tls=security == "tls") as client:
        if not client.folder_exists(box.move_to):
            client.create_folder(box.move_to)
        client.select_folder(box.folder)
        uids = client.search(["ALL"])
        for start in range(0, len(uids), batch_size):
            batch = uids[start : start + batch_size]
            client.fetch(batch, [b"BODY.PEEK[]"])
            client.move(batch, box.move_to)
    return time.perf_counter() - started


def poller_drain(
    box: MailboxHandle,
    sink_factory: Callable[[Path], IntakeSink],
    settings_overrides: dict[str, Any],
) -> tuple[float, PollResult, str]:
    """Seconds for poll_once() to drain the folder into a fresh sink."""
    with tempfile.TemporaryDirectory(prefix="mg-bench-") as workdir:
        sink = sink_factory(Path(workdir))
        poller = ImapPoller(box.settings(**settings_overrides), sink)
        started = time.perf_counter()
        result = poller.poll_once()
        return time.perf_counter() - started, result, type(sink).__qualname__


def move_back(box: MailboxHandle) -> None:
    with box.connect() as client:
        client.select_folder(box.move_to)
        uids = client.search(["ALL"])
        if uids:
            client.move(uids, box.folder)


def dovecot_version(server: DovecotServer) -> str:
    done = subprocess.run([server.binary, "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="messages to drain (default 1000)")
    parser.add_argument("--size", type=int, default=2000, help="approximate bytes per message")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the median is shown")
    parser.add_argument("--batch-size", type=int, default=100, help="poller batch size")
    parser.add_argument("--security", choices=["tls", "plaintext"], default="tls")
    parser.add_argument("--sink", help="package.module:function returning an IntakeSink")
    args = parser.parse_args(argv)
    sink_factory = load_sink_factory(args.sink)

    with DovecotServer() as server:
        box = MailboxHandle.create(server, "bench")
        raws = [sample_message(i, tag="bench", size=args.size) for i in range(1, args.n + 1)]
        box.append(*raws)
        overrides: dict[str, Any] = {"batch_size": args.batch_size}
        if args.security == "plaintext":
            overrides.update(security="plaintext", port=server.port, ca_file=None)

        raw_times: list[float] = []
        floor_times: list[float] = []
        poll_times: list[float] = []
        sink_name = "?"
        for round_number in range(args.rounds):
            if round_number:
                move_back(box)
            seconds, count = raw_fetch(server, box, args.security)
            if count != args.n:
                raise SystemExit(f"raw fetch saw {count} messages, expected {args.n}")
            raw_times.append(seconds)
            floor_times.append(raw_fetch_and_move(server, box, args.security, args.batch_size))
            move_back(box)
            seconds, result, sink_name = poller_drain(box, sink_factory, overrides)
            if result.fetched != args.n or result.stored != args.n:
                raise SystemExit(f"poller drained {result}, expected {args.n} stored")
            poll_times.append(seconds)

        raw_s, poll_s = statistics.median(raw_times), statistics.median(poll_times)
        floor_s = statistics.median(floor_times)
        mean_size = sum(len(r) for r in raws) / len(raws)
        print(
            f"IMAP drain: N={args.n} messages of {mean_size:,.0f} bytes, transport "
            f"{args.security}, batch {args.batch_size}, {dovecot_version(server)}, "
            f"sink {sink_name}, median of {args.rounds} round(s)"
        )
        print(f"  raw UID FETCH BODY.PEEK[]  {raw_s:8.3f} s  {args.n / raw_s:10,.0f} msg/s")
        print(
            f"  raw FETCH+MOVE, batch {args.batch_size:<4} {floor_s:8.3f} s  "
            f"{args.n / floor_s:10,.0f} msg/s  (server floor, no sink)"
        )
        print(f"  ImapPoller.poll_once()     {poll_s:8.3f} s  {args.n / poll_s:10,.0f} msg/s")
        print(
            f"  ratio poller/raw           {raw_s / poll_s:8.3f}    "
            f"(the poller takes {poll_s / raw_s:.1f}x the raw fetch time)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
