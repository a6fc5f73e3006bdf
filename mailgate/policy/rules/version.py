"""R-VERSION / P-OUT-VERSION: the latest official release and the previous major build
are supported (latest 7.4.2: 7.x and 6.x). The version is read from what the sender
writes, not from pasted logs: "7.4.2" in a log line says nothing about the server they
run. A request that names no version is accepted and asked for it.

Where the sender says it, in order of how much it tells (the first that is found wins):

1. an upgrade "from X to Y": the request is about reaching Y, so Y is what counts (an
   upgrade problem towards a supported release is P-IN-3, whatever the old release was);
2. a bug-report form line such as ``Version: 7.3.0`` or ``IREX version: 5.2.1``;
3. a statement about their server: "we run 5.1", "our server is still on 6.2";
4. an upgrade "to Y" without the old release: "since the upgrade to 7.4.2";
5. "IREX 7.4.2", "IREX server version 7.4.2";
6. "version 7.4" not preceded by another product's name ("PostgreSQL version 12.3").

Numbers that are measurements ("at 95.5%", "2.5 GB", "1.5 seconds") are never versions.
The version found is recorded with the decision for accepted requests too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailgate.model import ParsedMail, Reason
from mailgate.policy.facts import Facts
from mailgate.policy.rule import Hit
from mailgate.policy.scope import ScopePattern, ScopeText
from mailgate.policy.settings import VersionSettings

# A release number: major.minor[.patch[.build]], not followed by a unit or a percent sign.
_VERSION = (
    r"v?(\d{1,2})\.(\d{1,3})(?:\.(\d{1,4}))?(?:\.\d+)?"
    r"(?![\d.]*\s*(?:%|[kmgt]i?b\b|[kmg]bit|ms\b|s\b|sec(?:ond)?s?\b|min(?:ute)?s?\b|h\b"
    r"|hours?\b|days?\b|x\b))"
)
# What every pattern below needs somewhere (the start of _VERSION): text without it is
# not searched pattern by pattern. (Written \d\.\d, re would try every position; from the
# dot, it jumps from one dot to the next.)
_RELEASE_NUMBER = re.compile(r"\.(?<=\d\.)\d")
# Other products whose versions appear in support mail.
_OTHER = (
    r"java|jdk|jre|openjdk|postgres(?:ql)?|mysql|mariadb|oracle|sql server|mssql|windows"
    r"(?: server)?|ubuntu|debian|rhel|red hat|centos|rocky|alma(?:linux)?|suse|sles|kernel"
    r"|linux|python|node(?:\.js)?|nginx|apache|tomcat|openssl|docker|kubernetes|k8s|helm"
    r"|chrome|firefox|edge|safari|\.net|dotnet|iis|vmware|esxi|hyper-v|php|ruby|perl|go|rust"
    r"|elasticsearch|redis|rabbitmq|kafka|openshift|ansible|terraform|powershell|tls|ssl|http"
    r"|ldap|kerberos|smb|nfs|ios|android|macos|office|outlook|exchange|browser|os|database"
)
# 1. "upgrading from 7.3.1 to 7.4.2", "moving from IREX 5.4 -> 7.4.2"
_UPGRADE = ScopePattern.sequence(
    r"\b(?:upgrad\w*|updat\w*|migrat\w*|mov\w*|go\w*)\b[^.\n]{0,40}?\b",
    r"from\s+(?:irex\s+)?" + _VERSION,
    r"\s+(?:to|->|→)\s+(?:irex\s+)?" + _VERSION,
    re.IGNORECASE,
)
# 2. A form line: "Version: 7.3.0", "IREX version = 5.2.1", "Server release: 6.1".
_FORM_LINE = ScopePattern.of(
    re.compile(
        r"^\s*(?:(?:irex|server|product|irex server|application)\s+)?(?:version|release|build)"
        r"\s*[:=]\s*(?:irex\s+)?" + _VERSION + r"\b",
        re.IGNORECASE | re.MULTILINE,
    )
)
# 3. "we run 5.1", "we're still on 6.2", "our IREX server is on 7.4.0", "currently 7.4.1"
_RUNNING = ScopePattern.sequence(
    r"\b(?:we(?:'re| are)?|i(?:'m| am)?|currently|(?:our )?(?:irex )?(?:server|servers|"
    r"installation|instance|cluster|system)(?: is| are|'s)?)\s+(?:still\s+|currently\s+|now\s+)?",
    r"(?:running|using|run|use|on|at)\s+(?:irex\s+)?(?:version\s+|release\s+)?" + _VERSION + r"\b",
    "",
    re.IGNORECASE,
)
# 4. "since the upgrade to 7.4.2", "after we upgraded the cluster to IREX 7.4.1"
_UPGRADED_TO = ScopePattern.sequence(
    r"\b(?:upgrad\w*|updat\w*|migrat\w*|mov\w*)\s+(?:[\w-]+\s+){0,3}?",
    r"to\s+(?:irex\s+)?(?:version\s+|release\s+)?" + _VERSION,
    "",
    re.IGNORECASE,
)
# 5. "IREX 7.4.2", "IREX server version 7.4.2", "IREX v6.9"
_IREX = ScopePattern.of(
    re.compile(
        r"\birex(?:\s+(?:server|platform|appliance))?\s*(?:version|release|build|v)?\s*[:=]?\s*"
        + _VERSION,
        re.IGNORECASE,
    )
)
# 6. "version 7.4" / "release 6.2", unless another product's name comes right before.
_WORD = ScopePattern.sequence(
    r"(?<![\w.])(?:(?P<product>" + _OTHER + r")\s+)?",
    r"(?:version|release|build|ver\.?)\s*[:=]?\s*" + _VERSION,
    "",
    re.IGNORECASE,
)
# Lines that are machine output rather than the sender's words.
_MACHINE = re.compile(
    r"^\s*(?:\d{4}-\d\d-\d\d[ T]\d|\[?\d\d:\d\d:\d\d|\w{3} [ \d]\d \d\d:\d\d|at [\w$.<>]+\(|"
    r"caused by:|traceback|file \"|\w+(?:\.\w+)+(?:exception|error)\b|[A-Z]+ \[|"
    r"(?:error|warn(?:ing)?|info|debug|trace|fatal)\b[\s:\]|]|[\w.\-/]+\s*[:=]\s*\S+$|[$#>] )",
    re.IGNORECASE,
)


def sender_lines(text: str) -> str:
    """The sender's own lines: log, stack-trace, prompt and config lines removed."""
    kept = []
    dropped: dict[str, bool] = {}  # a line that comes again is judged once
    for line in text.splitlines():
        drop = dropped.get(line)
        if drop is None:
            drop = dropped[line] = bool(_MACHINE.match(line)) or line.strip().startswith(">")
        if not drop:
            kept.append(line)
    return "\n".join(kept)


def _form_lines(text: str) -> str:
    """Lines of a bug-report form ("Version: 7.3.0"), which ``sender_lines`` drops as
    config lines; log lines (timestamped, prompts, quotes) stay out."""
    return "\n".join(
        line
        for line in text.splitlines()
        if _FORM_LINE.regex.match(line) and not line.lstrip().startswith((">", "$", "#"))
    )


@dataclass(frozen=True)
class FoundVersion:
    major: int
    text: str
    how: str


def _found(text: str, match: re.Match[str], first_group: int, how: str) -> FoundVersion:
    """The version in the three groups after ``first_group``, read from ``text`` at the
    spans of ``match`` (which may come from the lower-cased text)."""
    spans = [match.span(g) for g in range(first_group + 1, first_group + 4)]
    groups = [text[start:end] for start, end in spans if start >= 0]
    return FoundVersion(int(groups[0]), ".".join(g for g in groups if g), how)


def find_version(text: str | ScopeText, form: str = "") -> FoundVersion | None:
    """The IREX version the sender says they run (or are upgrading to).

    ``text`` is the sender's own lines (``sender_lines``), or the subject and them as
    the scope rules searched them; ``form`` holds their form lines ("Version: 7.3.0"),
    if any.
    """
    raw = text.text if isinstance(text, ScopeText) else text
    if not (_RELEASE_NUMBER.search(raw) or _RELEASE_NUMBER.search(form)):
        return None
    searched = text if isinstance(text, ScopeText) else ScopeText(text)
    m = _UPGRADE.search(searched)
    if m:
        return _found(raw, m, 3, "upgrade")
    m = _FORM_LINE.search(ScopeText(form)) if form else None
    if m:
        return _found(form, m, 0, "form")
    for pattern, how in ((_RUNNING, "running"), (_UPGRADED_TO, "upgrade"), (_IREX, "named")):
        m = pattern.search(searched)
        if m:
            return _found(raw, m, 0, how)
    for m in _WORD.finditer(searched):
        if m.group("product"):
            continue  # "PostgreSQL version 13.4" is not the IREX version
        return _found(raw, m, 1, "version")
    return None


@dataclass(frozen=True)
class VersionRule:
    settings: VersionSettings
    name: str = "server_version"
    clause: str = "R-VERSION"

    def warm_up(self) -> None:
        for pattern in (_UPGRADE, _FORM_LINE, _RUNNING, _UPGRADED_TO, _IREX, _WORD):
            pattern.warm_up()

    def check(self, mail: ParsedMail, facts: Facts) -> Hit | None:
        own = facts.own_text
        # The subject and the sender's lines of the own text (Facts.prose), as the scope
        # rules searched them. A form line holds a release number: without one in the
        # mail there is none.
        form = _form_lines(own) if _RELEASE_NUMBER.search(own) else ""
        found = find_version(facts.scope_text, form)
        supported = self.settings.supported_majors
        if found is None:
            if self.settings.ask_when_missing:
                return Hit("note", evidence={"version": None, "ask": True})
            return None
        evidence = {
            "version": found.text,
            "how": found.how,
            "supported_majors": list(supported),
            "latest": self.settings.latest,
        }
        if found.major in supported:
            # Accepted; the version is kept in the decision record ("which version?").
            return Hit("note", evidence=evidence | {"ask": False})
        if found.major < min(supported):
            return Hit("reject", Reason.UNSUPPORTED_VERSION, evidence)
        # Newer than the latest official release: not ours to refuse blind; an engineer looks.
        return Hit("flag", Reason.UNSUPPORTED_VERSION, evidence, tag="triage:version")
