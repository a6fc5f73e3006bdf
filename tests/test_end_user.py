"""R-ENDUSER beyond the subject: a colleague of a registered administrator is pointed to
that administrator, and an accepted request records which contact entry let it in."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from mailgate.db.models import Decision
from mailgate.ingest.pipeline import ingest
from tests.conftest import add_subscription
from tests.support.mailtools import make_mail

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


def test_R_ENDUSER_colleague_of_an_address_contact_gets_the_end_user_reply(make_app):
    app = make_app()
    add_subscription(
        app, "SUB-20001", contacts=("it-admin@contoso.example",), organization="Contoso"
    )
    raw = make_mail(subject="[L3] The dashboard is slow", sender="Bob <bob@contoso.example>")
    result = ingest(app, raw, source="pipe", now=NOW)
    assert (result.outcome, result.reason) == ("rejected", "end_user")
    assert result.subscription == "SUB-20001"


def test_R_ENDUSER_stranger_domain_still_gets_no_subscription(make_app):
    app = make_app()
    add_subscription(app, "SUB-20001", contacts=("it-admin@contoso.example",))
    raw = make_mail(subject="[L3] The dashboard is slow", sender="eve@elsewhere.example")
    assert ingest(app, raw, source="pipe", now=NOW).reason == "no_subscription"


def test_R_ENDUSER_accepted_request_records_the_matching_contact_entry(make_app):
    app = make_app()
    add_subscription(app, "SUB-20001", contacts=("@contoso.example",))
    raw = make_mail(
        subject="[SUB-20001] [L3] Upgrade to 7.4.2 fails", sender="it-admin@contoso.example"
    )
    assert ingest(app, raw, source="pipe", now=NOW).outcome == "ticket_created"
    with app.db.transaction() as s:
        record = s.scalar(select(Decision.record))
    [end_user] = [r for r in record if r["rule"] == "end_user"]
    assert end_user["evidence"] == {"contact": "@contoso.example", "subscription": "SUB-20001"}
