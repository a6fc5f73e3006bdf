"""R-VERSION's reading of the version a sender runs: the quick look for a release number
before the patterns are tried one by one changes no answer."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailgate.policy.rules import version
from mailgate.policy.rules.version import find_version
from tests.support.mailtools import run_python

_FRAGMENTS = [
    "we run", "we are still on", "IREX", "IREX server version", "version", "release",
    "upgrading from", "to", "after the upgrade to", "PostgreSQL", "v", "7", "7.4", "7.4.2",
    "6.1", "12.0.1", "5.2 GB", "3.5%", "build", "Version:", "=", ".", ",", "\n", "node 18.2",
    "the cluster", "is on", "currently", "moving from", "->", "no number here", "v7.4",
]  # fmt: skip


def _without_prefilter(text: str, form: str) -> object:
    real = version._RELEASE_NUMBER
    version._RELEASE_NUMBER = re.compile("")  # every text passes: each pattern is tried
    try:
        return find_version(text, form)
    finally:
        version._RELEASE_NUMBER = real


@settings(max_examples=500, deadline=None)
@given(
    st.lists(st.sampled_from(_FRAGMENTS), max_size=12).map(" ".join),
    st.lists(st.sampled_from(_FRAGMENTS), max_size=4).map(" ".join),
)
def test_the_release_number_prefilter_changes_no_answer(text: str, form: str) -> None:
    assert find_version(text, form) == _without_prefilter(text, form)


@pytest.mark.parametrize(
    ("text", "form", "found"),
    [
        ("we run 7.4.2 in production", "", "7.4.2"),
        ("nothing to see", "Version: 6.1", "6.1"),
        ("the disk has 5.2 GB free", "", None),
        ("no release number at all, just IREX", "", None),
    ],
)
def test_versions_are_still_found(text: str, form: str, found: str | None) -> None:
    result = find_version(text, form)
    assert (result.text if result else None) == found


def test_the_patterns_are_read_at_their_first_search_not_at_import() -> None:
    """Each command imports the version rule; a pattern's prefilter and lower-case twins
    (reading its parsed form, compiling twins: milliseconds each) wait for a search."""
    code = (
        "from mailgate.policy.rules import version as v\n"
        "patterns = [v._UPGRADE, v._FORM_LINE, v._RUNNING, v._UPGRADED_TO, v._IREX, v._WORD]\n"
        "ready = lambda: sum('prefilter' in vars(p) for p in patterns)\n"
        "before = ready()\n"
        "found = v.find_version('we are moving to the new building next week, on IREX 7.4.2')\n"
        "print(before, ready(), found.text)\n"
    )
    output = run_python(code)
    before, after, found = output.split()
    assert (before, found) == ("0", "7.4.2") and int(after) >= 2
