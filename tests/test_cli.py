"""The ``mailgate`` command: ingest for an MTA pipe (JSON out, exit 0 once stored, 75 when
it could not be stored), check-config (secrets masked, config errors exit 78 naming the
key), and the tickets / outbox / inbox / subscriptions commands.

In-process through ``mailgate.cli.main`` where output is what matters; as a real
subprocess where stdin and the exit status are the point."""

from __future__ import annotations

import datetime as dt
import gc
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mailgate.app import App
from mailgate.cli import EX_CONFIG, EX_DATAERR, EX_TEMPFAIL, main
from mailgate.config import parse_settings
from mailgate.db.models import InboxItem, OutboxMessage, Ticket
from mailgate.ingest import pipeline
from tests.conftest import add_subscription
from tests.support.mailtools import free_port, make_mail, write_config

ROOT = Path(__file__).resolve().parent.parent
MAILGATE = Path(sys.executable).with_name("mailgate")
NOW = "2026-11-23T08:00:00+00:00"  # Monday 09:00 in Paris
KEYS = {"outcome", "ticket", "reason", "severity", "tier", "subscription", "due"}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MAILGATE_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)  # the code under test, whatever is installed
    return env


def _config_data(url: str, tmp_path: Path) -> dict[str, Any]:
    return {
        "database": {"url": url, "auto_migrate": False},
        "outbox": {"maildir": str(tmp_path / "outbox")},
        "logging": {"level": "WARNING"},
    }


@pytest.fixture
def config(tmp_path: Path, app: App) -> Path:
    """A config file on this test's database (SQLite or PostgreSQL), no auto-migration."""
    return write_config(
        tmp_path / "mailgate.toml", _config_data(app.settings.database.url, tmp_path)
    )


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_json_object(out: str) -> dict[str, Any]:
    """stdout holds exactly one JSON object and nothing else."""
    decoder = json.JSONDecoder()
    text = out.strip()
    value, end = decoder.raw_decode(text)
    assert end == len(text), f"more than one JSON value on stdout: {out!r}"
    assert isinstance(value, dict)
    assert set(value) == KEYS
    return value


def _count(app: App, model: Any, *where: Any) -> int:
    with app.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


# ------------------------------------------------------------------ ingest


def test_ingest_file_outcomes_print_one_json_object_and_exit_0(
    app: App, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_subscription(app)
    request = tmp_path / "request.eml"
    request.write_bytes(make_mail(message_id="req-1@acme.example"))
    code, out, err = run(capsys, "-c", str(config), "ingest", str(request), "--now", NOW)
    assert code == 0, err
    created = one_json_object(out)
    assert created == {
        "outcome": "ticket_created",
        "ticket": "IREX-000001",
        "reason": None,
        "severity": 2,
        "tier": "standard",
        "subscription": "SUB-12345",
        # Standard L2 = 8 covered hours: Mon 09:00-16:00 Paris, then Tue 08:00-09:00.
        "due": "2026-11-24T08:00:00+00:00",
    }

    # The same file again: a duplicate, pointing at the same ticket.
    code, out, _ = run(capsys, "-c", str(config), "ingest", str(request), "--now", NOW)
    assert code == 0
    dup = one_json_object(out)
    assert dup["outcome"] == "duplicate" and dup["ticket"] == "IREX-000001"

    unknown = tmp_path / "unknown.eml"
    unknown.write_bytes(make_mail(subject="[SUB-99999] [L2] Upgrade to 7.4.2 fails"))
    code, out, _ = run(capsys, "-c", str(config), "ingest", str(unknown), "--now", NOW)
    assert code == 0
    rejected = one_json_object(out)
    assert rejected["outcome"] == "rejected"
    assert rejected["reason"] == "unknown_subscription"
    assert rejected["ticket"] is None and rejected["subscription"] == "SUB-99999"

    auto = tmp_path / "auto.eml"
    auto.write_bytes(
        make_mail(subject="Automatic reply: away", headers={"Auto-Submitted": "auto-replied"})
    )
    code, out, _ = run(capsys, "-c", str(config), "ingest", str(auto), "--now", NOW)
    assert code == 0
    ignored = one_json_object(out)
    assert ignored["outcome"] == "ignored" and ignored["reason"] == "automatic"

    assert _count(app, Ticket) == 1
    assert _count(app, InboxItem) == 3
    assert _count(app, OutboxMessage) == 2  # the acknowledgement and the refusal


def test_ingest_reads_stdin_and_stores_the_envelope(
    app: App,
    config: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_subscription(app)
    raw = make_mail(message_id="stdin-0@acme.example")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    code, out, err = run(
        capsys,
        "-c",
        str(config),
        "ingest",
        "--now",
        NOW,  # no file: stdin
        "--sender",
        "bounce-jane@acme.example",
        "--recipient",
        "support@irex.example",
    )
    assert code == 0, err
    assert one_json_object(out)["outcome"] == "ticket_created"
    with app.db.transaction() as s:
        item = s.scalar(select(InboxItem))
        assert (item.source, item.origin) == ("pipe", "stdin")
        assert item.raw == raw  # byte for byte
        assert item.envelope_from == "bounce-jane@acme.example"
        assert list(item.envelope_to) == ["support@irex.example"]


def test_ingest_from_stdin_in_a_subprocess(sqlite_url: str, tmp_path: Path) -> None:
    app = App.create(parse_settings(_config_data(sqlite_url, tmp_path), tmp_path), migrate=False)
    try:
        add_subscription(app)
        config = write_config(tmp_path / "c.toml", _config_data(sqlite_url, tmp_path))
        raw = make_mail(message_id="stdin-1@acme.example")
        proc = subprocess.run(
            [str(MAILGATE), "-c", str(config), "ingest", "-", "--now", NOW],
            input=raw,
            capture_output=True,
            env=_env(),
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr.decode()
        result = one_json_object(proc.stdout.decode())
        assert (result["outcome"], result["ticket"]) == ("ticket_created", "IREX-000001")
        with app.db.transaction() as s:
            assert s.scalar(select(InboxItem.raw)) == raw
    finally:
        app.close()


def test_the_command_exits_with_mains_code_after_exit_handlers_and_flushed_output(
    sqlite_url: str, tmp_path: Path
) -> None:
    """``mailgate`` (``cli.run``) skips the interpreter's teardown, nothing else: the exit
    code is main's, exit handlers run, and output waiting in a pipe's buffer is written."""
    script = (
        "import atexit, sys\n"
        "from mailgate import cli\n"
        "atexit.register(print, 'exit handler ran')\n"
        "sys.argv[0] = 'mailgate'\n"
        "cli.run()\n"
    )
    good = write_config(tmp_path / "good.toml", _config_data(sqlite_url, tmp_path))
    bad = write_config(tmp_path / "bad.toml", {"smtp": {"prot": 25}})
    ok, refused = (
        subprocess.run(
            [sys.executable, "-c", script, "-c", str(config), "check-config", "--json"],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=60,
            check=False,
        )
        for config in (good, bad)
    )
    assert ok.returncode == 0, ok.stderr
    printed = ok.stdout.removesuffix("exit handler ran\n")
    assert printed != ok.stdout  # the handler ran, after everything main printed
    assert json.loads(printed)["config"]["database"]["url"] == sqlite_url
    assert (refused.returncode, refused.stdout) == (EX_CONFIG, "exit handler ran\n")
    assert "smtp.prot" in refused.stderr


def test_the_command_freezes_what_start_up_made_and_collects_again_after(
    sqlite_url: str, tmp_path: Path
) -> None:
    """``mailgate`` starts with the cyclic garbage collector off; once the app is open, what
    start-up made is frozen out of its way and it is turned back on."""
    script = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('collector', gc.isenabled(), gc.get_freeze_count()))\n"
        "sys.argv[0] = 'mailgate'\n"
        "from mailgate.__main__ import main\n"
        "main()\n"
    )
    config = write_config(tmp_path / "c.toml", _config_data(sqlite_url, tmp_path))
    proc = subprocess.run(
        [sys.executable, "-c", script, "-c", str(config), "--log-level", "DEBUG", "tick"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    label, enabled, frozen = proc.stdout.splitlines()[-1].split()
    assert (label, enabled) == ("collector", "True")
    assert int(frozen) > 50_000  # modules, classes, the parser, the settings, the app
    assert "start-up done; " in proc.stderr and " objects frozen" in proc.stderr


def test_main_in_a_process_that_collects_leaves_the_collector_alone(
    sqlite_url: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "c.toml", _config_data(sqlite_url, tmp_path))
    frozen = gc.get_freeze_count()
    assert main(["-c", str(config), "tick"]) == 0
    assert gc.isenabled() and gc.get_freeze_count() == frozen


def test_ingest_exits_75_when_postgresql_is_unreachable(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    config = write_config(
        tmp_path / "pg.toml",
        _config_data(f"postgresql+psycopg://postgres@127.0.0.1:{port}/mailgate", tmp_path),
    )
    proc = subprocess.run(
        [str(MAILGATE), "-c", str(config), "ingest", "-"],
        input=make_mail(),
        capture_output=True,
        env=_env(),
        timeout=60,
        check=False,
    )
    assert proc.returncode == EX_TEMPFAIL == 75, proc.stderr.decode()
    assert proc.stdout == b""  # no JSON: nothing was stored
    assert b"could not store" in proc.stderr


@pytest.mark.parametrize("where", ["under_a_file", "is_a_directory", "no_schema"])
def test_ingest_exits_75_when_sqlite_cannot_store(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "a-dir.db").mkdir()
    path = {
        "under_a_file": tmp_path / "a-file" / "mailgate.db",  # its folder cannot be made
        "is_a_directory": tmp_path / "a-dir.db",  # sqlite cannot open it
        "no_schema": tmp_path / "empty.db",  # auto_migrate off: no inbox table
    }[where]
    config = write_config(tmp_path / "c.toml", _config_data(f"sqlite:///{path}", tmp_path))
    message = tmp_path / "m.eml"
    message.write_bytes(make_mail())
    code, out, err = run(capsys, "-c", str(config), "ingest", str(message))
    assert code == EX_TEMPFAIL
    assert out == ""
    assert err


def test_ingest_exits_75_when_the_file_cannot_be_read(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path / "c.toml", _config_data(sqlite_url, tmp_path))
    code, out, err = run(capsys, "-c", str(config), "ingest", str(tmp_path / "missing.eml"))
    assert code == EX_TEMPFAIL and out == "" and "cannot read" in err


# ------------------------------------------------------------------ check-config


def test_check_config_masks_secrets_and_prints_effective_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path / "c.toml",
        {
            "database": {"url": "sqlite:///data/gate.db"},
            "smtp": {"port": 2626, "support_addresses": ["support@irex.example"]},
            "outbox": {
                "transport": "smtp",
                "maildir": "spool/out",
                "max_attempts": 4,
                "relay": {"host": "relay.example", "username": "gw", "password": "hunter2-secret"},
            },
            "conversation": {"hmac_secret": "tok-secret-123"},
        },
    )
    code, out, err = run(capsys, "-c", str(config), "check-config")
    assert code == 0, err
    assert "hunter2-secret" not in out + err
    assert "tok-secret-123" not in out + err
    assert 'password = "********"' in out
    assert "port = 2626" in out
    assert "max_attempts = 4" in out
    assert 'username = "gw"' in out
    # Relative paths are resolved against the config file's folder.
    assert f'maildir = "{tmp_path / "spool" / "out"}"' in out
    assert str(tmp_path / "data" / "gate.db") in out
    # Defaults the file did not mention are printed too: the effective configuration.
    assert 'timezone = "Europe/Paris"' in out

    code, out, _ = run(capsys, "-c", str(config), "check-config", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["source"] == str(config)
    relay = data["config"]["outbox"]["relay"]
    assert relay["password"] == "********" and relay["host"] == "relay.example"
    assert data["config"]["smtp"]["port"] == 2626
    assert data["config"]["smtp"]["support_addresses"] == ["support@irex.example"]
    assert data["config"]["outbox"]["backoff_initial"] == 30.0
    assert "hunter2-secret" not in out


def test_check_config_without_a_file_prints_the_embedded_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MAILGATE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    code, out, _ = run(capsys, "check-config", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["source"] is None
    assert data["config"]["database"]["url"] == f"sqlite:///{tmp_path / 'var' / 'mailgate.db'}"
    assert data["config"]["outbox"]["transport"] == "maildir"
    assert not (tmp_path / "var").exists()  # checking creates nothing


def test_check_config_masks_the_database_url_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(
        tmp_path / "c.toml",
        {"database": {"url": "postgresql+psycopg://gate:db-pass-42@127.0.0.1:1/mailgate"}},
    )
    code, out, _ = run(capsys, "-c", str(config), "check-config")
    assert code == 0
    assert "db-pass-42" not in out


@pytest.mark.parametrize(
    ("toml", "key", "words"),
    [
        ("[smtp]\nprot = 25\n", "smtp.prot", "unknown key"),
        ('[smtp]\nport = "x"\n', "smtp.port", "must be an integer"),
        ("[smtp]\nport = 70000\n", "smtp.port", "0-65535"),
        ("[outbox]\nmax_attempts = 0\n", "outbox.max_attempts", "at least 1"),
        ("[outbox]\nbackoff_initial = 60\nbackoff_max = 30\n", "outbox.backoff_max", "below"),
        ('[outbox.relay]\nsecurity = "ssl"\n', "outbox.relay.security", "starttls"),
        ('[sla]\ntimezone = "Mars/Olympus"\n', "sla.timezone", "Mars/Olympus"),
        ('[sla]\ntimezone = "CET+2"\n', "sla.timezone", "unknown time zone"),
        ('[sla.premier]\nl1 = "soon"\n', "sla.premier.l1", "soon"),
        ('[database]\nurl = "mysql://x/y"\n', "database.url", "sqlite and postgresql"),
        ('[mail]\nsupport_address = "not an address"\n', "mail.support_address", "address"),
        ("nonsense = true\n", "nonsense", "unknown key"),
        ("[smtp\nport = 1\n", "(file)", "not valid TOML"),
    ],
)
def test_config_errors_exit_78_naming_the_full_key(
    toml: str, key: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml, encoding="utf-8")
    for command in (["check-config"], ["ingest", "-"], ["outbox", "flush"]):
        code, out, err = run(capsys, "-c", str(config), *command)
        assert code == EX_CONFIG == 78
        assert out == ""
        assert f"config key '{key}'" in err, err
        assert words in err, err


def test_missing_config_file_exits_78(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "-c", str(tmp_path / "nope.toml"), "check-config")
    assert code == EX_CONFIG and "cannot read" in err


def test_mailgate_config_environment_variable_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path / "env.toml", {"smtp": {"port": 2727}})
    monkeypatch.setenv("MAILGATE_CONFIG", str(config))
    code, out, _ = run(capsys, "check-config", "--json")
    assert code == 0 and json.loads(out)["config"]["smtp"]["port"] == 2727


# ------------------------------------------------------------------ tickets, outbox, inbox


def _ingest(app: App, raw: bytes) -> Any:
    return pipeline.ingest(app, raw, source="pipe", now=dt.datetime.fromisoformat(NOW))


def test_tickets_list_and_show_json(
    app: App, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_subscription(app)
    _ingest(app, make_mail(message_id="t-1@acme.example"))
    _ingest(
        app,
        make_mail(
            subject="[SUB-12345] [STAGING] [L1] export broken", message_id="t-2@acme.example"
        ),
    )

    code, out, err = run(capsys, "-c", str(config), "tickets", "list", "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert [t["ticket"] for t in listed] == ["IREX-000002", "IREX-000001"]  # newest first
    assert listed[1]["severity"] == 2 and listed[1]["subscription"] == "SUB-12345"
    # R-NONPROD: the staging request was capped at Level 4.
    assert (listed[0]["severity"], listed[0]["severity_source"]) == (4, "capped")
    assert listed[0]["environment"] == "staging"

    code, out, err = run(capsys, "-c", str(config), "tickets", "show", "irex-000001", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["ticket"] == "IREX-000001"
    assert shown["requester"] == "jane@acme.example"
    kinds = [(m["direction"], m["kind"]) for m in shown["messages"]]
    assert kinds[0] == ("in", "request")
    assert ("out", "ack") in kinds
    assert shown["messages"][0]["message_id"] == "t-1@acme.example"
    assert "schema lock timeout" in shown["messages"][0]["text"]
    # The stored classification: why this became a ticket, rule by rule.
    classification = shown["classification"]
    assert classification["outcome"] == "ticket_created"
    rules = {r["rule"]: r for r in classification["rules"]}
    assert rules["subscription"]["verdict"] == "pass"
    assert rules["automatic_mail"]["verdict"] == "pass"
    assert all({"rule", "clause", "verdict"} <= set(r) for r in classification["rules"])

    code, out, _ = run(capsys, "-c", str(config), "tickets", "show", "IREX-000002", "--json")
    capped = {r["rule"]: r for r in json.loads(out)["classification"]["rules"]}
    assert capped["non_production_cap"]["verdict"] == "hit"
    assert capped["non_production_cap"]["evidence"]["requested_level"] == 1

    # Human-readable forms name the same things.
    code, out, _ = run(capsys, "-c", str(config), "tickets", "show", "IREX-000001")
    assert code == 0 and "IREX-000001" in out and "classification:" in out and "subscription" in out
    code, out, _ = run(capsys, "-c", str(config), "tickets", "list")
    assert code == 0 and "IREX-000002" in out and "IREX-000001" in out

    code, _, err = run(capsys, "-c", str(config), "tickets", "show", "IREX-999999", "--json")
    assert code == EX_DATAERR and "IREX-999999" in err


def test_outbox_list_and_flush_now(
    app: App, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_subscription(app)
    _ingest(app, make_mail())
    _ingest(app, make_mail(subject="[SUB-99999] [L2] unknown subscription"))

    code, out, _ = run(capsys, "-c", str(config), "outbox", "list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert sorted(r["kind"] for r in rows) == ["ack", "rejection"]
    assert {r["state"] for r in rows} == {"pending"}
    assert all(r["recipients"] == ["jane@acme.example"] for r in rows)
    assert all(r["next_attempt_at"] == NOW for r in rows)

    # --now before the rows are due: nothing is sent.
    code, out, _ = run(
        capsys, "-c", str(config), "outbox", "flush", "--json", "--now", "2026-11-23T07:59:00+00:00"
    )
    assert code == 0 and json.loads(out) == {"sent": 0, "retry_later": 0, "failed": 0}
    assert not (tmp_path / "outbox" / "new").exists() or not any(
        (tmp_path / "outbox" / "new").iterdir()
    )

    code, out, _ = run(
        capsys, "-c", str(config), "outbox", "flush", "--json", "--now", "2026-11-23T08:00:30+00:00"
    )
    assert code == 0 and json.loads(out) == {"sent": 2, "retry_later": 0, "failed": 0}
    files = sorted((tmp_path / "outbox" / "new").iterdir())
    assert len(files) == 2
    subjects = sorted(f.read_bytes().split(b"Subject: ", 1)[1].split(b"\n", 1)[0] for f in files)
    assert subjects[0].startswith(b"Re: [SUB-99999]")
    assert subjects[1].startswith(b"[IREX-000001]")

    code, out, _ = run(capsys, "-c", str(config), "outbox", "list", "--json", "--state", "sent")
    sent = json.loads(out)
    assert len(sent) == 2 and all(r["sent_at"] and r["attempts"] == 1 for r in sent)
    code, out, _ = run(capsys, "-c", str(config), "outbox", "list", "--json", "--state", "pending")
    assert json.loads(out) == []
    code, out, _ = run(
        capsys, "-c", str(config), "outbox", "flush", "--now", "2026-11-23T09:00:00+00:00"
    )
    assert code == 0 and "sent 0" in out


def test_inbox_list_and_retry_a_quarantined_item(
    app: App,
    config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_subscription(app)
    real = pipeline.gather_facts
    calls = {"n": 0}

    def buggy_once(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("simulated bug in processing")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "gather_facts", buggy_once)
    path = tmp_path / "m.eml"
    path.write_bytes(make_mail(message_id="q-1@acme.example"))
    code, out, err = run(capsys, "-c", str(config), "ingest", str(path), "--now", NOW)
    assert code == 0  # stored: the MTA must not retry
    assert one_json_object(out)["outcome"] == "quarantined"

    code, out, _ = run(capsys, "-c", str(config), "inbox", "list", "--json")
    assert code == 0
    listing = json.loads(out)
    assert listing["counts"] == {"quarantined": 1}
    [item] = listing["items"]
    assert item["status"] == "quarantined" and item["message_id"] == "q-1@acme.example"
    assert "simulated bug in processing" in item["error"]
    assert _count(app, Ticket) == 0 and _count(app, OutboxMessage) == 0

    code, out, _ = run(capsys, "-c", str(config), "inbox", "list", "--status", "quarantined")
    assert code == 0 and "quarantined: 1" in out and "simulated bug" in out

    code, out, err = run(capsys, "-c", str(config), "inbox", "retry", "--json")
    assert code == 0, err
    [retried] = json.loads(out)
    assert retried["inbox"] == item["id"]
    assert retried["outcome"] == "ticket_created" and retried["ticket"] == "IREX-000001"
    assert _count(app, Ticket) == 1
    assert _count(app, OutboxMessage, OutboxMessage.kind == "ack") == 1

    code, out, _ = run(capsys, "-c", str(config), "inbox", "list", "--json")
    listing = json.loads(out)
    assert listing["counts"] == {"done": 1}
    assert listing["items"][0]["attempts"] == 2 and listing["items"][0]["error"] is None
    # Nothing left to retry.
    code, out, _ = run(capsys, "-c", str(config), "inbox", "retry")
    assert code == 0 and "retried 0" in out


def test_subscriptions_list_json(
    app: App, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_subscription(
        app,
        "SUB-00001",
        tier="premier",
        contacts=("a@acme.example", "@acme.example"),
        nonprod=("staging",),
    )
    code, out, _ = run(capsys, "-c", str(config), "subscriptions", "list", "--json", "--now", NOW)
    assert code == 0
    assert json.loads(out) == [
        {
            "id": "SUB-00001",
            "organization": "ACME Corp",
            "tier": "premier",
            "valid_from": "2026-01-01",
            "valid_until": "2027-12-31",
            "status": "valid",
            "contacts": ["a@acme.example", "@acme.example"],
            "nonprod_environments": ["staging"],
        }
    ]
