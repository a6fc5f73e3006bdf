"""R-VERSION / P-OUT-VERSION: the latest official release and the previous major build
are supported (latest 7.4.2: 7.x and 6.x). The version is read from what the sender
writes, not from pasted logs: "7.4.2" in a log line says nothing about the server they
run. A request that names no version is accepted and asked for it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mailgate.model import ParsedMail, Reason
from mailgate.policy.facts import Facts
from mailgate.policy.rule import Hit
from mailgate.policy.settings import VersionSettings

_VERSION = r"v?(\d{1,2})\.(\d{1,3})(?:\.(\d{1,4}))?(?:\.\d+)?"
# Other products whose versions appear in support mail.
_OTHER = (
    r"java|jdk|jre|openjdk|postgres(?:ql)?|mysql|mariadb|oracle|sql server|mssql|windows"
    r"(?: server)?|ubuntu|debian|rhel|red hat|centos|rocky|alma(?:linux)?|suse|sles|kernel"
    r"|linux|python|node(?:\.js)?|nginx|apache|tomcat|openssl|docker|kubernetes|k8s|helm"
    r"|chrome|firefox|edge|safari|\.net|dotnet|iis|vmware|esxi|hyper-v|php|ruby|perl|go|rust"
    r"|elasticsearch|redis|rabbitmq|kafka|openshift|ansible|terraform|powershell|tls|ssl|http"
    r"|ldap|kerberos|smb|nfs|ios|android|macos|office|outlook|exchange"
)
_UPGRADE = re.compile(
    r"\b(?:upgrad\w*|updat\w*|migrat\w*|mov\w*|go\w*)\b[^.\n]{0,40}?\bfrom\s+(?:irex\s+)?"
    + _VERSION + r"\s+(?:to|->|→)\s+(?:irex\s+)?" + _VERSION,
    re.IGNORECASE,
)
_IREX = re.compile(
    r"\birex(?:\s+(?:server|platform|appliance))?\s*(?:version|release|build|v)?\s*[:=]?\s*"
    + _VERSION,
    re.IGNORECASE,
)
_WORD = re.compile(
    r"(?<![\w.])(?:(?P<product>" + _OTHER + r")\s+)?(?:version|release|build|ver\.?)\s*[:=]?\s*"
    + _VERSION,
    re.IGNORECASE,
)
_RUNNING = re.compile(
    r"\b(?:we(?:'re| are)?|i(?:'m| am)?|currently|still|server is|servers are)\s+"
    r"(?:running|using|on|at)\s+(?:irex\s+)?(?:version\s+)?" + _VERSION + r"\b",
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
    for line in text.splitlines():
        if _MACHINE.match(line) or line.strip().startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept)


@dataclass(frozen=True)
class FoundVersion:
    major: int
    text: str
    how: str


def find_version(text: str) -> FoundVersion | None:
    """The IREX version the sender says they run (or are upgrading to)."""
    m = _UPGRADE.search(text)
    if m:
        return FoundVersion(int(m.group(4)), ".".join(g for g in m.groups()[3:6] if g), "upgrade")
    for pattern, how in ((_IREX, "named"), (_RUNNING, "running")):
        m = pattern.search(text)
        if m:
            return FoundVersion(int(m.group(1)), ".".join(g for g in m.groups()[:3] if g), how)
    for m in _WORD.finditer(text):
        if m.group("product"):
            continue  # "PostgreSQL version 13.4" is not the IREX version
        return FoundVersion(int(m.group(2)), ".".join(g for g in m.groups()[1:4] if g), "version")
    return None


@dataclass(frozen=True)
class VersionRule:
    settings: VersionSettings
    name: str = "server_version"
    clause: str = "R-VERSION"

    def check(self, mail: ParsedMail, facts: Facts) -> Hit | None:
        text = facts.tags.clean + "\n" + sender_lines(facts.own_text)
        found = find_version(text)
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
            return None
        if found.major < min(supported):
            return Hit("reject", Reason.UNSUPPORTED_VERSION, evidence)
        # Newer than the latest official release: not ours to refuse blind; an engineer looks.
        return Hit("flag", Reason.UNSUPPORTED_VERSION, evidence, tag="triage:version")
