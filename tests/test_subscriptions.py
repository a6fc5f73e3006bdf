"""The subscription registry: ``mailgate subscriptions import`` from CSV and TOML, all rows
or none, re-import updating in place; P-PREM-NONPROD enforced at import. On SQLite and
PostgreSQL (every test using ``app`` runs on both)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mailgate.app import App
from mailgate.cli import EX_DATAERR, main
from mailgate.db.models import Subscription, SubscriptionContact
from mailgate.errors import ImportRowError
from mailgate.subscriptions import read_rows
from tests.conftest import add_subscription
from tests.support.mailtools import write_config

HEADER = "id,organization,tier,valid_from,valid_until,contacts,nonprod_environments\n"
GOOD_ROWS = (
    "SUB-00001,ACME Corp,standard,2026-01-01,2026-12-31,admin@acme.example; @ops.acme.example,\n"
    'SUB-00002,"Globex, Inc.",premier,2026-03-01,2027-02-28,@globex.example,staging;uat\n'
    "SUB-00003,Initech,premier,2025-01-01,2025-12-31,Bill@Initech.example,\n"
)
NOW = "2026-06-01T09:00:00+02:00"


@pytest.fixture
def config(tmp_path: Path, app: App) -> Path:
    """A config file on this test's database (the ``app`` fixture's), no auto-migration."""
    return write_config(
        tmp_path / "mailgate.toml",
        {
            "database": {"url": app.settings.database.url, "auto_migrate": False},
            "outbox": {"maildir": str(tmp_path / "outbox")},
            "logging": {"level": "WARNING"},
        },
    )


def _import(
    config: Path, path: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str, str]:
    code = main(["-c", str(config), "subscriptions", "import", str(path), "--now", NOW, *extra])
    out, err = capsys.readouterr()
    return code, out, err


def _list(config: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, Any]]:
    assert main(["-c", str(config), "subscriptions", "list", "--json", "--now", NOW]) == 0
    return {s["id"]: s for s in json.loads(capsys.readouterr().out)}


def _count(app: App, model: Any) -> int:
    with app.db.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ CSV and TOML


def test_csv_import_creates_subscriptions_with_address_and_domain_contacts(
    app: App, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "subs.csv", "\ufeff" + HEADER + GOOD_ROWS)  # Excel's BOM too
    code, out, err = _import(config, path, capsys, "--json")
    assert code == 0, err
    assert json.loads(out) == {"created": 3, "updated": 0}

    subs = _list(config, capsys)
    assert sorted(subs) == ["SUB-00001", "SUB-00002", "SUB-00003"]
    acme = subs["SUB-00001"]
    assert acme["organization"] == "ACME Corp"
    assert acme["tier"] == "standard"
    assert (acme["valid_from"], acme["valid_until"]) == ("2026-01-01", "2026-12-31")
    assert acme["contacts"] == ["admin@acme.example", "@ops.acme.example"]
    assert acme["status"] == "valid"
    globex = subs["SUB-00002"]
    assert globex["organization"] == "Globex, Inc."
    assert globex["tier"] == "premier"
    assert globex["nonprod_environments"] == ["staging", "uat"]
    assert subs["SUB-00003"]["contacts"] == ["bill@initech.example"]  # lower-cased
    assert subs["SUB-00003"]["status"] == "expired"

    # The contacts work: a whole domain, and a single address.
    with app.db.transaction() as s:
        registry = app.registry.current(s)
    by_domain = registry.of_contact("anyone@ops.acme.example")
    by_address = registry.of_contact("ADMIN@acme.example")
    nobody = registry.of_contact("other@acme.example")
    assert [x.id for x in by_domain] == ["SUB-00001"]
    assert [x.id for x in by_address] == ["SUB-00001"]
    assert nobody == ()


def test_toml_import(
    app: App, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path,
        "subs.toml",
        """
[[subscription]]
id = "SUB-00010"
organization = "Umbrella"
tier = "premier"
valid_from = 2026-01-01
valid_until = 2026-12-31
contacts = ["it@umbrella.example", "@lab.umbrella.example"]
nonprod_environments = ["staging"]

[[subscription]]
id = "sub-00011"
organization = "Hooli"
tier = "Standard"
valid_from = "2026-02-01"
valid_until = "2027-01-31"
contacts = "root@hooli.example; @hooli.example"
""",
    )
    code, out, err = _import(config, path, capsys)
    assert code == 0, err
    assert "2 new, 0 updated" in out
    subs = _list(config, capsys)
    assert subs["SUB-00010"]["contacts"] == ["it@umbrella.example", "@lab.umbrella.example"]
    assert subs["SUB-00010"]["nonprod_environments"] == ["staging"]
    assert subs["SUB-00011"]["tier"] == "standard"
    assert subs["SUB-00011"]["valid_from"] == "2026-02-01"
    assert subs["SUB-00011"]["contacts"] == ["root@hooli.example", "@hooli.example"]


def test_reimport_updates_in_place(
    app: App, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _write(tmp_path, "v1.csv", HEADER + GOOD_ROWS)
    assert _import(config, first, capsys)[0] == 0
    second = _write(
        tmp_path,
        "v2.csv",
        HEADER + "SUB-00001,ACME Corporation,premier,2026-02-01,2028-01-31,"
        "admin@acme.example;new-admin@acme.example,test\n"
        "SUB-00004,Soylent,standard,2026-01-01,2026-12-31,@soylent.example,\n",
    )
    code, out, err = _import(config, second, capsys, "--json")
    assert code == 0, err
    assert json.loads(out) == {"created": 1, "updated": 1}

    subs = _list(config, capsys)
    assert sorted(subs) == ["SUB-00001", "SUB-00002", "SUB-00003", "SUB-00004"]
    acme = subs["SUB-00001"]
    assert acme["organization"] == "ACME Corporation"
    assert acme["tier"] == "premier"
    assert (acme["valid_from"], acme["valid_until"]) == ("2026-02-01", "2028-01-31")
    # Contacts are replaced, not merged: the domain contact is gone.
    assert acme["contacts"] == ["admin@acme.example", "new-admin@acme.example"]
    assert acme["nonprod_environments"] == ["test"]
    # Rows not in the second file are left as they were.
    assert subs["SUB-00002"]["organization"] == "Globex, Inc."
    with app.db.transaction() as s:
        patterns = set(
            s.scalars(
                select(SubscriptionContact.pattern).where(
                    SubscriptionContact.subscription_id == "SUB-00001"
                )
            )
        )
    assert patterns == {"admin@acme.example", "new-admin@acme.example"}
    assert _count(app, Subscription) == 4

    # Importing the same file again changes nothing and creates nothing.
    code, out, _ = _import(config, second, capsys, "--json")
    assert code == 0 and json.loads(out) == {"created": 0, "updated": 2}
    assert _list(config, capsys)["SUB-00001"] == acme


def test_the_registry_snapshot_follows_every_import_and_is_not_reread_otherwise(
    app: App, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The processing path reads the registry from memory; an import by another process
    (here the CLI, with its own App) must be seen by the next mail all the same."""
    assert _import(config, _write(tmp_path, "v1.csv", HEADER + GOOD_ROWS), capsys)[0] == 0
    with app.db.transaction() as s:
        first = app.registry.current(s)
        again = app.registry.current(s)
    assert again is first and app.registry.loads == 1
    assert [x.id for x in first.of_contact("ops1@ops.acme.example")] == ["SUB-00001"]
    # at_domain: registered contacts at the sender's domain (the colleagues' rule).
    assert [x.id for x in first.at_domain("someone@acme.example")] == ["SUB-00001"]
    assert first.at_domain("someone@nowhere.example") == ()

    second = _write(
        tmp_path,
        "v2.csv",
        HEADER + "SUB-00001,ACME Corp,standard,2026-01-01,2026-12-31,admin@acme.example,\n",
    )
    assert _import(config, second, capsys)[0] == 0  # only a contact removed
    with app.db.transaction() as s:
        now = app.registry.current(s)
    assert now is not first and app.registry.loads == 2
    assert now.of_contact("ops1@ops.acme.example") == ()
    assert now.get("SUB-00002") is not None  # rows not in the file stay

    with app.db.transaction() as s:
        s.query(SubscriptionContact).filter_by(subscription_id="SUB-00002").delete()
        s.query(Subscription).filter_by(id="SUB-00002").delete()
        gone = app.registry.current(s)
    assert gone.get("SUB-00002") is None and app.registry.loads == 3


# ------------------------------------------------------------------ all or nothing

BAD_ROWS = {
    "bad_tier": ("SUB-00009,Bad,gold,2026-01-01,2026-12-31,a@bad.example,", "tier 'gold'"),
    "bad_date": ("SUB-00009,Bad,standard,2026-02-30,2026-12-31,a@bad.example,", "valid_from"),
    "until_before_from": (
        "SUB-00009,Bad,standard,2026-06-01,2026-05-31,a@bad.example,",
        "valid_until is before valid_from",
    ),
    "bad_contact": ("SUB-00009,Bad,standard,2026-01-01,2026-12-31,not-an-address,", "contact"),
    "bad_domain_contact": (
        "SUB-00009,Bad,standard,2026-01-01,2026-12-31,a@bad.example;@localhost,",
        "'@localhost'",
    ),
    "duplicate_id": (
        "SUB-00001,Again,standard,2026-01-01,2026-12-31,a@bad.example,",
        "SUB-00001 already appears on line 2",
    ),
    "duplicate_id_other_case": (
        "sub-00002,Again,standard,2026-01-01,2026-12-31,a@bad.example,",
        "SUB-00002 already appears on line 3",
    ),
    "missing_value": ("SUB-00009,,standard,2026-01-01,2026-12-31,a@bad.example,", "organization"),
    "missing_fields": ("SUB-00009,Bad,standard", "missing"),
    "empty_contacts": ("SUB-00009,Bad,standard,2026-01-01,2026-12-31, ; ,", "contacts"),
    "id_not_matching_pattern": (
        "ACME-1,Bad,standard,2026-01-01,2026-12-31,a@bad.example,",
        "subscription ID pattern",
    ),
    "too_many_fields": (
        "SUB-00009,Bad,standard,2026-01-01,2026-12-31,a@bad.example,,extra",
        "more fields than columns",
    ),
}


def test_one_bad_row_imports_nothing_and_names_its_line(
    app: App,
    config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    subtests: pytest.Subtests,
) -> None:
    add_subscription(app, "SUB-00001", organization="Before", contacts=("old@acme.example",))
    # One database for every case (nothing is imported, so each starts from the same state).
    for case, (bad, fragment) in sorted(BAD_ROWS.items()):
        with subtests.test(case=case):
            # The bad row is the 4th data row: line 5 of the file (the header is line 1),
            # followed by a good row, so neither the rows before nor after it may land.
            text = (
                HEADER
                + GOOD_ROWS
                + bad
                + "\nSUB-00005,Good After,standard,2026-01-01,2026-12-31,x@y.example,\n"
            )
            path = _write(tmp_path, f"{case}.csv", text)
            code, out, err = _import(config, path, capsys)
            assert code == EX_DATAERR
            assert out == ""
            assert "line 5:" in err, err
            assert fragment in err, err
            assert "nothing was imported" in err
            # Nothing: not the good rows, not the update of SUB-00001, not the row after.
            assert _count(app, Subscription) == 1
            subs = _list(config, capsys)
            assert subs["SUB-00001"]["organization"] == "Before"
            assert subs["SUB-00001"]["contacts"] == ["old@acme.example"]


def test_header_missing_a_column_is_line_1(
    app: App, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path,
        "nocol.csv",
        "id,organization,tier,valid_from,contacts\nSUB-00001,A,standard,2026-01-01,a@b.example\n",
    )
    code, _, err = _import(config, path, capsys)
    assert code == EX_DATAERR
    assert "line 1:" in err and "valid_until" in err
    assert _count(app, Subscription) == 0


def test_whitespace_only_value_counts_as_missing(
    app: App, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path,
        "blank.csv",
        HEADER + "SUB-00009,   ,standard,2026-01-01,2026-12-31,a@b.example,\n",
    )
    code, _, err = _import(config, path, capsys)
    assert code == EX_DATAERR, "an organization of blanks was imported as ''"
    assert "line 2:" in err and "organization" in err
    assert _count(app, Subscription) == 0


def test_bad_toml_entry_imports_nothing(
    app: App, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path,
        "bad.toml",
        """[[subscription]]
id = "SUB-00010"
organization = "Fine"
tier = "standard"
valid_from = 2026-01-01
valid_until = 2026-12-31
contacts = ["a@fine.example"]

[[subscription]]
id = "SUB-00011"
organization = "Broken"
tier = "platinum"
valid_from = 2026-01-01
valid_until = 2026-12-31
contacts = ["a@broken.example"]
""",
    )
    code, _, err = _import(config, path, capsys)
    assert code == EX_DATAERR
    assert "tier 'platinum'" in err and "nothing was imported" in err
    assert _count(app, Subscription) == 0


def test_bad_toml_entry_names_its_real_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "bad.toml",
        '[[subscription]]\nid = "SUB-00010"\norganization = "Fine"\ntier = "standard"\n'
        'valid_from = 2026-01-01\nvalid_until = 2026-12-31\ncontacts = ["a@fine.example"]\n\n'
        '[[subscription]]\nid = "SUB-00011"\norganization = "Broken"\ntier = "platinum"\n'
        'valid_from = 2026-01-01\nvalid_until = 2026-12-31\ncontacts = ["a@broken.example"]\n',
    )
    with pytest.raises(ImportRowError) as err:
        read_rows(path)
    assert err.value.line == 9 or "SUB-00011" in str(err.value), str(err.value)


def test_overlong_value_is_refused_naming_its_line(
    app: App, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path,
        "long.csv",
        HEADER + f"SUB-00009,{'x' * 300},standard,2026-01-01,2026-12-31,a@b.example,\n",
    )
    try:
        code, _, err = _import(config, path, capsys)
    except Exception as exc:  # the bug on PostgreSQL: the database's error escapes
        pytest.fail(f"import raised {type(exc).__name__}")
    assert code == EX_DATAERR and "line 2:" in err
    assert _count(app, Subscription) == 0


# ------------------------------------------------------------------ P-PREM-NONPROD


def test_P_PREM_NONPROD_premier_with_three_nonprod_environments_is_refused(
    app: App, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path,
        "prem.csv",
        HEADER
        + GOOD_ROWS
        + "SUB-00007,Wayne Enterprises,premier,2026-01-01,2026-12-31,it@wayne.example,"
        "staging;uat;dev\n",
    )
    code, _, err = _import(config, path, capsys)
    assert code == EX_DATAERR
    assert "line 5:" in err
    assert "SUB-00007" in err and "3 non-production environments" in err
    assert "P-PREM-NONPROD" in err
    assert _count(app, Subscription) == 0


def test_P_PREM_NONPROD_premier_with_two_nonprod_environments_is_accepted(
    app: App, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path,
        "prem.csv",
        HEADER + "SUB-00007,Wayne Enterprises,premier,2026-01-01,2026-12-31,it@wayne.example,"
        "staging; uat\n",
    )
    code, _, err = _import(config, path, capsys)
    assert code == 0, err
    assert _list(config, capsys)["SUB-00007"]["nonprod_environments"] == ["staging", "uat"]


def test_P_PREM_NONPROD_standard_rows_with_nonprod_environments_are_refused(
    app: App, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(
        tmp_path,
        "std.csv",
        HEADER
        + GOOD_ROWS
        + "SUB-00008,Stark,standard,2026-01-01,2026-12-31,it@stark.example,staging\n",
    )
    code, _, err = _import(config, path, capsys)
    assert code == EX_DATAERR
    assert "line 5:" in err and "Premier only" in err and "P-PREM-NONPROD" in err
    assert _count(app, Subscription) == 0
    # The same in TOML.
    toml = _write(
        tmp_path,
        "std.toml",
        '[[subscription]]\nid = "SUB-00008"\norganization = "Stark"\ntier = "standard"\n'
        'valid_from = 2026-01-01\nvalid_until = 2026-12-31\ncontacts = ["it@stark.example"]\n'
        'nonprod_environments = ["staging"]\n',
    )
    code, _, err = _import(config, toml, capsys)
    assert code == EX_DATAERR and "Premier only" in err
    assert _count(app, Subscription) == 0


def test_subscription_status_follows_now(
    app: App, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "subs.csv", HEADER + GOOD_ROWS)
    assert _import(config, path, capsys)[0] == 0
    assert (
        main(
            ["-c", str(config), "subscriptions", "list", "--json", "--now", "2026-02-15T12:00:00Z"]
        )
        == 0
    )
    status = {s["id"]: s["status"] for s in json.loads(capsys.readouterr().out)}
    assert status == {"SUB-00001": "valid", "SUB-00002": "not_started", "SUB-00003": "expired"}
    # The table form lists the same, one line each.
    assert main(["-c", str(config), "subscriptions", "list", "--now", "2026-02-15T12:00:00Z"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["ID", "ORGANIZATION", "TIER"]
    assert len(table) == 2 + 3
