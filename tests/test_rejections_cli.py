"""`mailgate rejections list/show`: "why was this refused?" answered from the database."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from mailgate.app import App
from mailgate.cli import EX_DATAERR, main
from mailgate.ingest.pipeline import ingest
from tests.conftest import add_subscription
from tests.support.mailtools import make_mail, write_config

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def config(tmp_path: Path, app: App) -> Path:
    return write_config(
        tmp_path / "mailgate.toml",
        {
            "database": {"url": app.settings.database.url, "auto_migrate": False},
            "outbox": {"maildir": str(tmp_path / "outbox")},
            "logging": {"level": "WARNING"},
        },
    )


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_rejections_list_and_show_give_the_rule_and_its_evidence(
    app: App, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_subscription(app, "SUB-12345", contacts=("@acme.example",))
    ingest(app, make_mail(subject="[SUB-99999] [L1] down"), source="pipe", now=NOW)
    ingest(app, make_mail(subject="[SUB-12345] Upgrade to 7.4.2"), source="pipe", now=NOW)
    ingest(
        app,
        make_mail(subject="[SUB-12345] Old server", body="We run IREX 5.1 and it crashes daily."),
        source="pipe",
        now=NOW,
    )
    code, out = _run(capsys, "-c", str(config), "rejections", "list", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["reason"] for r in rows] == ["unsupported_version", "unknown_subscription"]
    code, out = _run(
        capsys, "-c", str(config), "rejections", "list", "--reason", "unknown_subscription"
    )
    assert code == 0 and "unknown_subscription" in out and "unsupported_version" not in out

    code, out = _run(capsys, "-c", str(config), "rejections", "show", str(rows[0]["id"]), "--json")
    shown = json.loads(out)
    [version] = [r for r in shown["rules"] if r["rule"] == "server_version"]
    assert version["verdict"] == "hit" and version["evidence"]["version"] == "5.1"
    assert shown["reply"]["to"] == ["jane@acme.example"] and shown["reply"]["state"] == "pending"

    code, out = _run(capsys, "-c", str(config), "rejections", "show", str(rows[1]["id"]))
    assert code == 0
    assert "[HIT ] subscription (R-SUB) reject unknown_subscription" in out
    assert '"subscription": "SUB-99999"' in out


def test_rejections_show_of_an_accepted_request_is_an_error(
    app: App, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_subscription(app)
    ingest(app, make_mail(), source="pipe", now=NOW)
    assert main(["-c", str(config), "rejections", "show", "1"]) == EX_DATAERR
