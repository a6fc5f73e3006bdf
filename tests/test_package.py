"""The wheel is self-contained: templates and migrations ship inside it, so an installed
gateway works from any folder with no checkout beside it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.support.mailtools import make_mail

ROOT = Path(__file__).resolve().parent.parent
SUBSCRIPTIONS = ROOT / "tests" / "fixtures" / "subscriptions" / "acme.csv"


def _run(argv: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [str(a) for a in argv], capture_output=True, timeout=120, check=False, **kwargs
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        import hatchling  # noqa: F401
    except ImportError:
        pytest.fail(
            "hatchling is missing from the virtual environment: run scripts/setup.sh test "
            "(it is in the 'test' extra)",
            pytrace=False,
        )
    out = tmp_path_factory.mktemp("wheel")
    proc = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "-q",
            "-w",
            out,
            ROOT,
        ]
    )
    assert proc.returncode == 0, proc.stderr.decode()
    [built] = out.glob("mailgate-*.whl")
    return built


def test_wheel_ships_templates_and_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mailgate/_data/templates/ack.txt.j2" in names
    assert "mailgate/_data/migrations/env.py" in names
    assert any(n.startswith("mailgate/_data/migrations/versions/") for n in names)
    assert "mailgate/_data/templates/refusal/no_subscription.txt.j2" in names
    assert "mailgate/cli.py" in names
    assert not any(n.startswith("tests/") for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "mailgate = mailgate.__main__:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_creates_a_ticket_from_an_empty_folder(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    proc = _run([sys.executable, "-m", "venv", "--without-pip", venv])
    assert proc.returncode == 0, proc.stderr.decode()
    python = venv / "bin" / "python"
    proc = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            "-q",
            wheel,
        ]
    )
    assert proc.returncode == 0, proc.stderr.decode()
    # The dependencies live in the project's environment: put its site-packages on the
    # new environment's path (after its own, so the installed mailgate wins).
    site = Path(
        _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
        .stdout.decode()
        .strip()
    )
    (site / "zz_project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    workdir = tmp_path / "empty"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MAILGATE_CONFIG")}

    where = _run(
        [
            python,
            "-c",
            "import mailgate.resources as r; print(r.templates_dir()); print(r.migrations_dir())",
        ],
        cwd=workdir,
        env=env,
    )
    assert where.returncode == 0, where.stderr.decode()
    templates, migrations = where.stdout.decode().split()
    assert templates.startswith(str(site)) and templates.endswith("mailgate/_data/templates")
    assert migrations.startswith(str(site)) and migrations.endswith("mailgate/_data/migrations")

    mailgate = venv / "bin" / "mailgate"
    imported = _run([mailgate, "subscriptions", "import", SUBSCRIPTIONS], cwd=workdir, env=env)
    assert imported.returncode == 0, imported.stderr.decode()
    message = tmp_path / "request.eml"
    message.write_bytes(make_mail(message_id="wheel-1@acme.example"))
    ingested = _run(
        [mailgate, "ingest", message, "--now", "2026-11-23T08:00:00Z"], cwd=workdir, env=env
    )
    assert ingested.returncode == 0, ingested.stderr.decode()
    result = json.loads(ingested.stdout)
    assert result["outcome"] == "ticket_created", result
    assert result["ticket"] == "IREX-000001"

    # The embedded defaults: the database was migrated in ./var, and the acknowledgement,
    # rendered from the shipped template, waits in the outbox.
    db_file = workdir / "var" / "mailgate.db"
    assert db_file.is_file()
    engine = create_engine(f"sqlite:///{db_file}")
    try:
        with engine.connect() as conn:
            raw = conn.execute(text("SELECT raw FROM outbox WHERE kind = 'ack'")).scalar_one()
    finally:
        engine.dispose()
    ack = message_from_bytes(raw, policy=email_policy.default)
    assert ack["Subject"].startswith("[IREX-000001] ")
    assert ack["In-Reply-To"] == "<wheel-1@acme.example>"
    body = ack.get_body(("plain",))
    assert body is not None and "IREX-000001" in body.get_content()
