"""Trust in an engineer's From: our own mail server's Authentication-Results header
(RFC 8601) must show DKIM or SPF "pass" for the sender's domain, when configured."""

from __future__ import annotations

import re

from mailgate.model import ParsedMail

_RESULT = re.compile(r"\b(dkim|spf)\s*=\s*(\w+)([^;]*)", re.IGNORECASE)
_DOMAIN = re.compile(
    r"\b(?:header\.d|header\.i|smtp\.mailfrom|envelope-from)\s*=\s*"
    r"\"?(?:[^@\s;\"]*@)?([^\s;\"]+)",
    re.IGNORECASE,
)


def authenticated(mail: ParsedMail, authserv_id: str) -> tuple[bool, str]:
    """(passed, evidence) for the From domain, trusting only headers from ``authserv_id``."""
    if mail.from_ is None:
        return False, "no From address"
    domain = mail.from_.domain
    for header in mail.headers.get("authentication-results", ()):
        server, _, rest = header.partition(";")
        server = server.strip()
        if not server or server.split()[0].lower() != authserv_id.lower():
            continue
        for method, result, props in _RESULT.findall(rest):
            if result.lower() != "pass":
                continue
            m = _DOMAIN.search(props)
            if m and (m.group(1).lower() == domain or m.group(1).lower().endswith("." + domain)):
                return True, f"{method.lower()}=pass for {m.group(1).lower()}"
    return False, f"no dkim/spf pass for {domain} from {authserv_id}"
