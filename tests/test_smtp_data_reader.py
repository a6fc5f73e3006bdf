"""GatewaySMTP's bulk DATA reader, over real sockets on 127.0.0.1, against aiosmtpd's own
line-by-line reader: the same stored bytes and the same replies, whatever the chunking.
And its reading of MAIL FROM / RCPT TO paths, against aiosmtpd's."""

from __future__ import annotations

import random
import smtplib
import socket
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from mailgate.ingest.smtp import _SIMPLE_PATH, GatewaySMTP
from tests.support.mailtools import free_port

TIMEOUT = 10.0
TOO_BIG = "552 5.3.4 Message too big for this system"
TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"


class StockSMTP(SMTP):
    """aiosmtpd's own smtp_DATA, with GatewaySMTP's rewording of its 552 reply."""

    async def push(self, status: str) -> None:  # type: ignore[override]
        if status.startswith("552 Error"):
            status = TOO_BIG
        await super().push(status)


class Recorder:
    """Keeps what each accepted message looked like to the handler."""

    def __init__(self) -> None:
        self.messages: list[tuple[Any, Any]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append((envelope.original_content, envelope.content))
        return "250 OK"


class LegacyRecorder:
    """A handler on aiosmtpd's deprecated process_message API."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    def process_message(self, peer: Any, mail_from: str, rcpt_tos: list[str], data: Any) -> None:
        self.messages.append(data)


class _Controller(Controller):
    def __init__(self, server_class: type[SMTP], handler: Any, **kwargs: Any) -> None:
        self.server_class = server_class
        super().__init__(handler, hostname="127.0.0.1", port=free_port(), **kwargs)

    def factory(self) -> SMTP:
        return self.server_class(self.handler, **self.SMTP_kwargs)


class Server:
    def __init__(self, server_class: type[SMTP], handler: Any, **kwargs: Any) -> None:
        self.handler = handler
        self.controller = _Controller(server_class, handler, **kwargs)
        self.controller.start()
        self.port = self.controller.port

    @property
    def messages(self) -> list[Any]:
        return list(self.handler.messages)


Pair = tuple[Server, Server]


@pytest.fixture
def start_pair() -> Iterator[Callable[..., Pair]]:
    """start_pair(**SMTP kwargs) -> (ours, stock), both on 127.0.0.1."""
    started: list[Server] = []

    def start(handler_class: type = Recorder, **kwargs: Any) -> Pair:
        kwargs.setdefault("enable_SMTPUTF8", True)
        kwargs.setdefault("decode_data", False)
        ours = Server(GatewaySMTP, handler_class(), **kwargs)
        started.append(ours)
        stock = Server(StockSMTP, handler_class(), **kwargs)
        started.append(stock)
        return ours, stock

    yield start
    for server in started:
        server.controller.stop()


class Client:
    """A raw SMTP client that controls exactly how the bytes go out."""

    def __init__(self, port: int, *, ehlo: bool = True) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        assert self.reply().startswith("220 ")
        if ehlo:
            assert self.cmd(b"EHLO client.test").startswith("250")

    def reply(self) -> str:
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)  # bounded by the socket timeout
                if not chunk:
                    raise ConnectionError("server closed the connection")
                self.buf += chunk
            line, _, self.buf = self.buf.partition(b"\r\n")
            lines.append(line.decode("utf-8", "replace"))
            if line[3:4] != b"-":
                return "\n".join(lines)

    def cmd(self, line: bytes) -> str:
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def send_parts(self, parts: list[bytes], pause: float = 0.0) -> None:
        for i, part in enumerate(parts):
            if i and pause:
                time.sleep(pause)
            self.sock.sendall(part)

    def nothing_pending(self, wait: float = 0.05) -> bool:
        """True when the server has not answered anything within ``wait`` seconds."""
        if self.buf:
            return False
        self.sock.settimeout(wait)
        try:
            chunk = self.sock.recv(65536)
        except TimeoutError:
            return True
        finally:
            self.sock.settimeout(TIMEOUT)
        self.buf += chunk
        return False

    def start_data(self) -> list[str]:
        replies = [
            self.cmd(b"RSET"),
            self.cmd(b"MAIL FROM:<jane@acme.example>"),
            self.cmd(b"RCPT TO:<support@irex.example>"),
            self.cmd(b"DATA"),
        ]
        return replies

    def transaction(
        self,
        stream: bytes,
        parts: int = 1,
        then: bytes = b"",
        rng: random.Random | None = None,
    ) -> list[str]:
        """RSET, MAIL, RCPT, DATA, then the already-stuffed ``stream`` including the end
        mark, cut in ``parts`` pieces at random; ``then`` is pipelined right behind the
        mark. Returns all the replies."""
        replies = self.start_data()
        if not replies[-1].startswith("354"):
            return replies
        payload = stream + then
        rng = rng or random.Random(0)
        cuts = sorted(rng.sample(range(1, len(payload)), min(parts, len(payload)) - 1))
        pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)], strict=True)]
        self.send_parts(pieces, pause=0.002 if parts > 1 else 0.0)
        replies.append(self.reply())
        replies += [self.reply() for _ in range(then.count(b"\r\n"))]
        return replies

    def close(self) -> None:
        self.sock.close()


def stuff(body: bytes) -> bytes:
    """The client side of RFC 5321 4.5.2 plus the end mark (body: CRLF-ended lines)."""
    return (b"\r\n" + body).replace(b"\r\n.", b"\r\n..")[2:] + b".\r\n"


def line_of(total: int, fill: bytes = b"x") -> bytes:
    """A line of ``total`` bytes including its CRLF."""
    return fill * (total - 2) + b"\r\n"


def random_body(rng: random.Random, size_limit: int) -> bytes:
    lines: list[bytes] = []
    for _ in range(rng.choice([0, 1, 2, 5, 20, 60])):
        kind = rng.randrange(14)
        text = bytes(rng.randrange(32, 127) for _ in range(rng.randrange(0, 90)))
        if kind == 0:
            line = b""
        elif kind == 1:
            line = b"." + text
        elif kind == 2:
            line = b".." + text
        elif kind == 3:
            line = b"."
        elif kind == 4:
            line = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 60)))  # 8-bit
        elif kind == 5:
            line = text[:10] + b"\n" + text[10:]  # bare LF
        elif kind == 6:
            line = text[:10] + b"\r" + text[10:]  # bare CR
        elif kind == 7:
            line = rng.choice([b"\r", b"\n", b".\r", b"\n.", b"\r.", text + b"\r"])
        elif kind == 8:
            line = line_of(1001, rng.choice([b"x", b"."]))[:-2]  # exactly the limit
        elif kind == 9 and rng.random() < 0.15:
            line = line_of(rng.choice([1002, 1003, 1004, 1005, 5000]))[:-2]  # too long
        elif kind == 10 and rng.random() < 0.15:
            # over (or right at) the size limit, possibly inside a long line
            line = b"y" * rng.randrange(size_limit - 1100, size_limit + 10)
            line = b"\r\n".join(line[i : i + 998] for i in range(0, len(line), 998))
        elif kind == 11:
            line = "caf\u00e9 cr\u00e8me \u2014 ok".encode()
        else:
            line = text
        lines.append(line + b"\r\n")
    return b"".join(lines)


@pytest.mark.parametrize(
    "config",
    [
        {"decode_data": False, "enable_SMTPUTF8": True},  # as `mailgate serve` runs it
        {"decode_data": True, "enable_SMTPUTF8": False},
        {"decode_data": True, "enable_SMTPUTF8": True},
    ],
    ids=["bytes", "ascii", "utf8"],
)
def test_random_messages_match_aiosmtpd_over_raw_sockets(start_pair, config):
    size_limit = 20_000
    ours, stock = start_pair(data_size_limit=size_limit, **config)
    rng = random.Random(5321)
    bodies = [random_body(rng, size_limit) for _ in range(200)]
    plans = [(rng.choice([1, 1, 2, 3, 6]), rng.random() < 0.1) for _ in bodies]
    results = []
    for server in (ours, stock):
        client = Client(server.port)
        replies = []
        cut_rng = random.Random(4552)
        for body, (parts, pipelined) in zip(bodies, plans, strict=True):
            then = b"NOOP\r\n" if pipelined else b""
            replies.append(client.transaction(stuff(body), parts, then, cut_rng))
        client.close()
        results.append((replies, server.messages))
    (our_replies, our_messages), (stock_replies, stock_messages) = results
    for i, (a, b) in enumerate(zip(our_replies, stock_replies, strict=True)):
        assert a == b, f"message {i}"
    assert our_messages == stock_messages
    # The generator covers the interesting outcomes, and accepted data is the body.
    finals = [r[4].split(" ")[0] for r in our_replies if len(r) > 4]
    assert {"250", "552", "500"} <= set(finals)
    if not config["decode_data"]:
        accepted = [b for b, r in zip(bodies, our_replies, strict=True) if r[4] == "250 OK"]
        assert [m[0] for m in our_messages] == accepted
        assert all(m[0] == m[1] for m in our_messages)


def test_random_messages_match_aiosmtpd_through_smtplib(start_pair):
    size_limit = 20_000
    ours, stock = start_pair(data_size_limit=size_limit)
    rng = random.Random(2920)
    bodies = [random_body(rng, size_limit) for _ in range(60)]
    outcomes = []
    for server in (ours, stock):
        results: list[Any] = []
        with smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as client:
            client.ehlo("client.test")
            for body in bodies:
                try:
                    refused = client.sendmail("jane@acme.example", ["support@irex.example"], body)
                    results.append(("ok", refused))
                except smtplib.SMTPResponseException as exc:
                    results.append((type(exc).__name__, exc.smtp_code, exc.smtp_error))
        outcomes.append((results, server.messages))
    assert outcomes[0] == outcomes[1]
    assert any(r[0] == "ok" for r in outcomes[0][0])


@pytest.mark.parametrize(
    "body",
    [b"", b"\r\n", b"one line\r\n", b"first\r\n.dot\r\n\r\n..two\r\nlast\r\n"],
    ids=["empty", "empty-line", "one-line", "mixed"],
)
def test_end_mark_split_at_every_offset(start_pair, body):
    ours, stock = start_pair()
    stream = stuff(body)
    mark_start = len(stream) - (5 if body else 3)
    for server in (ours, stock):
        client = Client(server.port)
        for cut in range(1, len(stream)):
            assert client.start_data()[-1].startswith("354")
            client.sock.sendall(stream[:cut])
            if cut >= mark_start:
                # A partial end mark must not end the data.
                assert client.nothing_pending(), f"cut {cut}"
            else:
                time.sleep(0.003)
            client.sock.sendall(stream[cut:])
            assert client.reply() == "250 OK", f"cut {cut}"
        client.close()
        assert server.messages == [(body, body)] * (len(stream) - 1)


def test_message_sent_byte_by_byte(start_pair):
    ours, stock = start_pair()
    body = b".a\r\n\r\nb\r\n.\r\n..\r\nc\rd\ne\r\n"
    stream = stuff(body)
    for server in (ours, stock):
        client = Client(server.port)
        assert client.start_data()[-1].startswith("354")
        client.send_parts([stream[i : i + 1] for i in range(len(stream))], pause=0.001)
        assert client.reply() == "250 OK"
        client.close()
        assert server.messages == [(body, body)]


def test_empty_message(start_pair):
    ours, stock = start_pair()
    for server in (ours, stock):
        client = Client(server.port)
        assert client.start_data()[-1].startswith("354")
        client.sock.sendall(b".\r\n")
        assert client.reply() == "250 OK"
        # The empty message pipelined with the next command (nothing read past the mark).
        assert client.start_data()[-1].startswith("354")
        client.sock.sendall(b".\r\nNOOP\r\n")
        assert [client.reply(), client.reply()] == ["250 OK", "250 OK"]
        client.close()
        assert server.messages == [(b"", b"")] * 2


def test_commands_pipelined_behind_the_end_mark_are_answered(start_pair):
    ours, stock = start_pair(data_size_limit=3000)
    cases = [
        (b"hello\r\n", b"RSET\r\nNOOP\r\n", ["250 OK", "250 OK", "250 OK"]),
        (line_of(1000) * 4, b"NOOP\r\n", [TOO_BIG, "250 OK"]),
        (line_of(2000), b"NOOP\r\nRSET\r\n", [TOO_LONG, "250 OK", "250 OK"]),
        (b"x" * 5000 + b"\r\n", b"NOOP\r\n", [TOO_LONG, "250 OK"]),
        (b"last\r\n", b"QUIT\r\n", ["250 OK", "221 Bye"]),
    ]
    for server in (ours, stock):
        client = Client(server.port)
        for body, then, expected in cases:
            assert client.start_data()[-1].startswith("354")
            client.sock.sendall(stuff(body) + then)
            assert [client.reply() for _ in expected] == expected
        client.close()
        assert server.messages == [(b"hello\r\n", b"hello\r\n"), (b"last\r\n", b"last\r\n")]


def _replies_for(server: Server, bodies: list[bytes]) -> list[str]:
    client = Client(server.port)
    replies = [client.transaction(stuff(body))[-1] for body in bodies]
    client.close()
    return replies


def test_size_limit_boundary_matches_aiosmtpd(start_pair):
    limit = 1000
    ours, stock = start_pair(data_size_limit=limit)
    # Counted as sent, before unstuffing, with CRLFs, without the end mark: a line
    # ".dot" goes out as "..dot\r\n", 7 bytes.
    head = b".dot\r\n"
    at_limit = head + line_of(limit - 7)
    over = head + line_of(limit - 7 + 1)
    assert len(stuff(at_limit)) - 3 == limit
    fine = b"next message\r\n"
    bodies = [at_limit, over, fine, over + fine, fine]
    expected = ["250 OK", TOO_BIG, "250 OK", TOO_BIG, "250 OK"]
    for server in (ours, stock):
        assert _replies_for(server, bodies) == expected
        assert server.messages == [(at_limit, at_limit), (fine, fine), (fine, fine)]


@pytest.mark.parametrize(
    ("long_line", "expected"),
    # aiosmtpd counts a line before checking its length, except when it overruns the
    # StreamReader limit (1001 + CRLF): then "too long" is decided first.
    [(1001, TOO_BIG), (1002, TOO_BIG), (1003, TOO_BIG), (1004, TOO_LONG), (9000, TOO_LONG)],
)
def test_size_and_line_limits_in_the_same_line(start_pair, long_line, expected):
    ours, stock = start_pair(data_size_limit=1500)
    body = line_of(600) + line_of(long_line) + b"after\r\n"
    for server in (ours, stock):
        assert _replies_for(server, [body, b"ok\r\n"]) == [expected, "250 OK"]
        assert server.messages == [(b"ok\r\n", b"ok\r\n")]


def test_too_long_lines_match_aiosmtpd(start_pair):
    ours, stock = start_pair()
    ok = b"ok\r\n"
    bodies = [
        line_of(1001),
        line_of(1002),
        ok,
        b"a\r\n" + line_of(1003) + b"b\r\n",
        b"a\r\n" + line_of(1004) + line_of(1001),
        b"." + line_of(1000),  # 1001 bytes, but 1002 as sent (stuffed): too long
        line_of(1001, b".")[1:],  # 1000 bytes of dots, stuffed to exactly 1001: fine
        b"x" * 300_000 + b"\r\n" + ok,
        b"a\rb\n" * 300 + b"\r\n",  # 1201 bytes without CRLF inside
        ok,
    ]
    expected = ["250 OK", TOO_LONG, "250 OK", TOO_LONG, TOO_LONG, TOO_LONG, "250 OK"]
    expected += [TOO_LONG, TOO_LONG, "250 OK"]
    for server in (ours, stock):
        assert _replies_for(server, bodies) == expected
        assert [m[0] for m in server.messages] == [bodies[0], ok, bodies[6], ok]


def test_oversize_data_does_not_pile_up_in_memory(start_pair):
    ours, _ = start_pair(data_size_limit=10_000)
    big = stuff(line_of(1000) * 8000)  # 8 MB, too big
    long_line = stuff(b"z" * 8_000_000 + b"\r\n")  # 8 MB in one line, too long
    client = Client(ours.port)
    tracemalloc.start()
    try:
        for payload, expected in ((big, TOO_BIG), (long_line, TOO_LONG)):
            assert client.start_data()[-1].startswith("354")
            tracemalloc.reset_peak()
            client.sock.sendall(payload)
            assert client.reply() == expected
            _, peak = tracemalloc.get_traced_memory()
            assert peak < 3_000_000, (expected, peak)
    finally:
        tracemalloc.stop()
    assert client.transaction(stuff(b"small\r\n"))[-1] == "250 OK"
    client.close()


@pytest.mark.parametrize(
    "sent",
    [b"", b"Subject: x\r\n\r\nbody\r\n", b"line\r\n.", b"line\r\n.\r", b"partial line"],
    ids=["nothing", "lines", "dot", "dot-cr", "partial"],
)
@pytest.mark.parametrize("how", ["close", "half-close"])
def test_client_gone_mid_data(start_pair, sent, how):
    ours, stock = start_pair()
    for server in (ours, stock):
        client = Client(server.port)
        assert client.start_data()[-1].startswith("354")
        if sent:
            client.sock.sendall(sent)
        time.sleep(0.02)
        if how == "close":
            client.close()
        else:
            client.sock.shutdown(socket.SHUT_WR)
            # The server drops the connection without a reply.
            assert client.sock.recv(100) == b""
            client.close()
        cpu = time.process_time()
        time.sleep(0.3)
        assert time.process_time() - cpu < 0.15  # nothing spinning
        assert server.messages == []
        again = Client(server.port)
        assert again.transaction(stuff(b"hello\r\n"))[-1] == "250 OK"
        again.close()
        assert server.messages == [(b"hello\r\n", b"hello\r\n")]


def test_multi_megabyte_message_arrives_intact(start_pair):
    ours, stock = start_pair()
    rng = random.Random(7)
    lines = []
    size = 0
    while size < 5_000_000:
        line = bytes(rng.randrange(32, 127) for _ in range(rng.randrange(0, 77)))
        if rng.random() < 0.05:
            line = b"." + line
        lines.append(line + b"\r\n")
        size += len(line) + 2
    body = b"".join(lines)
    for server in (ours, stock):
        client = Client(server.port)
        assert client.transaction(stuff(body))[-1] == "250 OK"
        client.close()
        with smtplib.SMTP("127.0.0.1", server.port, timeout=TIMEOUT) as smtp:
            assert smtp.sendmail("jane@acme.example", ["support@irex.example"], body) == {}
        assert [m[0] for m in server.messages] == [body, body]


def test_data_preamble_matches_aiosmtpd(start_pair):
    ours, stock = start_pair()
    for server in (ours, stock):
        client = Client(server.port)
        assert client.cmd(b"DATA") == "503 Error: need RCPT command"
        assert client.cmd(b"HELP DATA") == "250 Syntax: DATA"
        assert client.cmd(b"MAIL FROM:<jane@acme.example>").startswith("250")
        assert client.cmd(b"RCPT TO:<support@irex.example>").startswith("250")
        assert client.cmd(b"DATA now") == "501 Syntax: DATA"
        assert client.cmd(b"DATA") == "354 End data with <CR><LF>.<CR><LF>"
        client.sock.sendall(b"x\r\n.\r\n")
        assert client.reply() == "250 OK"
        client.close()
        plain = Client(server.port, ehlo=False)
        assert plain.cmd(b"DATA") == "503 Error: send HELO first"
        plain.close()


def test_strict_ascii_refusal_matches_aiosmtpd(start_pair):
    ours, stock = start_pair(decode_data=True, enable_SMTPUTF8=False)
    for server in (ours, stock):
        client = Client(server.port)
        replies = client.transaction(stuff("caf\u00e9\r\n".encode()))
        # aiosmtpd keeps the envelope after this refusal: MAIL is then "nested".
        replies += [client.cmd(b"MAIL FROM:<a@b.example>"), client.cmd(b"RSET")]
        client.close()
        assert replies[4:] == [
            "500 Error: strict ASCII mode",
            "503 Error: nested MAIL command",
            "250 OK",
        ]
        assert server.messages == []
    assert _replies_for(ours, [b"plain\r\n"]) == ["250 OK"]
    assert ours.messages == [(b"plain\r\n", "plain\r\n")]


@pytest.mark.filterwarnings("ignore:Use handler.handle_DATA:DeprecationWarning")
def test_legacy_process_message_handler(start_pair):
    ours, stock = start_pair(handler_class=LegacyRecorder)
    for server in (ours, stock):
        assert _replies_for(server, [b".x\r\n"]) == ["250 OK"]
        assert server.messages == [b".x\r\n"]  # sent as "..x", unstuffed


def _path_argument(rnd: random.Random) -> str:
    """A MAIL FROM / RCPT TO argument: mostly what clients send, sometimes odd."""
    local = rnd.choice(["jean", "j.dupont", "ops+irex", "a_b", "x-y", "o'brien", "A1"])
    domain = rnd.choice(["acme.example", "mail.irex.example", "localhost"])
    if rnd.random() < 0.1:
        local = rnd.choice(['"j dupont"', "a..b", ".a", "a.", '"x"', "(c)a", "é"])
    if rnd.random() < 0.1:
        domain = rnd.choice(["[192.0.2.1]", "a..b", ".x", "é.example"])
    path = f"{local}@{domain}"
    if rnd.random() < 0.05:
        path = rnd.choice(["", "@a.example:j@b.example", "j", "j@", "@b"])
    arg = f"<{path}>"
    arg += rnd.choice(
        [
            "",
            "",
            " SIZE=28000",
            "  BODY=8BITMIME SMTPUTF8",
            "\tSIZE=1",
            "SIZE=1",
            " (comment) SIZE=2",
            " ",
            "> x",
        ]
    )
    return rnd.choice(["", "", " "]) + arg if rnd.random() < 0.1 else arg


def test_paths_are_read_as_aiosmtpd_reads_them() -> None:
    """Plain ``<local@domain>`` paths are read by a regular expression instead of the
    email package's header parser: the same address, parameters and refusals (or the
    same exception) as aiosmtpd for every argument, with and without a local-part
    limit."""

    class Handler:
        pass

    stock, ours = SMTP(Handler()), GatewaySMTP(Handler())
    rnd = random.Random(11)

    def outcome(read: Callable[[str], Any], arg: str) -> Any:
        try:
            return read(arg)
        except Exception as exc:  # aiosmtpd itself raises on some odd paths
            return type(exc)

    plain = 0
    for _ in range(3000):
        arg = _path_argument(rnd)
        for limit in (0, 4):
            stock.local_part_limit = ours.local_part_limit = limit
            assert outcome(ours._getaddr, arg) == outcome(stock._getaddr, arg), (arg, limit)
        plain += _SIMPLE_PATH.fullmatch(arg) is not None
    assert 1000 < plain < 3000  # both ways of reading were tried, the quick one often
