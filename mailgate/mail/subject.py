"""Read the tags customers put in subjects: severity, subscription ID, environment, and
the ticket tag mailgate itself adds; and strip reply/forward prefixes in many languages."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Reply and forward prefixes: English, German (AW/WG), French (TR), Nordic (SV/VS),
# Dutch (Antw), Polish (Odp/PD), Italian (R/RIF/I), Spanish (RV), and their stacks
# ("RE: RE: Fwd:"), optionally numbered ("Re[2]:") or bracketed by some clients.
_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|tr|sv|vs|antw|odp|pd|rif|r|i|rv|enc|res|vb|fs)"
    r"\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*)+",
    re.IGNORECASE,
)

# [L1], [P1], [SEV1], [Sev 2], [Severity-3], [Level 4], [Niveau 1], [Prio 2] ...
_SEVERITY_BRACKETED = re.compile(
    r"\[\s*(?:l|p|s|sev|severity|level|niveau|prio|priority)\s*[-_:#]?\s*([1-4])\s*\]",
    re.IGNORECASE,
)
# Unbracketed forms only with a word that cannot be mistaken: "Sev 2", "Level 3",
# "Niveau 1", "Severity: 1", "SEV1", "Priority 2". ("L2" alone could be a cache level.)
_SEVERITY_WORD = re.compile(
    r"(?<![\w-])(?:sev|severity|level|niveau|prio|priority)\s*[-_:#]?\s*([1-4])(?!\w)",
    re.IGNORECASE,
)
# "P1:" or "P1 -" at the start of the subject is a common unbracketed form.
_SEVERITY_LEADING_P = re.compile(r"^\s*[PL]([1-4])\s*[:\-–]\s", re.IGNORECASE)

# Bracketed environment tags -> canonical environment name.
ENVIRONMENTS = {
    "prod": "production",
    "production": "production",
    "prd": "production",
    "live": "production",
    "staging": "staging",
    "stage": "staging",
    "stg": "staging",
    "preprod": "preproduction",
    "pre-prod": "preproduction",
    "preproduction": "preproduction",
    "pre-production": "preproduction",
    "test": "test",
    "testing": "test",
    "uat": "uat",
    "qa": "qa",
    "dev": "development",
    "development": "development",
    "sandbox": "sandbox",
    "nonprod": "nonproduction",
    "non-prod": "nonproduction",
    "non-production": "nonproduction",
    "nonproduction": "nonproduction",
    "lab": "lab",
    "demo": "demo",
    "training": "training",
}
_ENV = re.compile(r"\[\s*(" + "|".join(re.escape(k) for k in ENVIRONMENTS) + r")\s*\]", re.I)


@dataclass(frozen=True)
class SubjectTags:
    severity: int | None
    severity_text: str | None  # the matched tag, as evidence
    subscription_id: str | None
    environment: str | None  # canonical name, e.g. "production", "staging"
    environment_text: str | None
    ticket_id: str | None  # our own tag, e.g. IREX-000123
    clean: str  # subject without reply prefixes

    @property
    def production(self) -> bool | None:
        """True/False when an environment tag says so; None when the subject is silent."""
        if self.environment is None:
            return None
        return self.environment == "production"


def strip_prefixes(subject: str) -> str:
    return _PREFIX.sub("", subject).strip()


def find_severity(subject: str) -> tuple[int | None, str | None]:
    for pattern in (_SEVERITY_BRACKETED, _SEVERITY_LEADING_P, _SEVERITY_WORD):
        m = pattern.search(subject)
        if m:
            return int(m.group(1)), m.group(0).strip()
    return None, None


def compile_subscription_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-])(?:{pattern})(?![\w-])", re.IGNORECASE)


def ticket_tag_pattern(prefix: str, digits: int) -> re.Pattern[str]:
    return re.compile(rf"\[\s*({re.escape(prefix)}\d{{{digits},}})\s*\]", re.IGNORECASE)


def read_tags(
    subject: str, subscription_re: re.Pattern[str], ticket_re: re.Pattern[str]
) -> SubjectTags:
    clean = strip_prefixes(subject)
    severity, severity_text = find_severity(clean)
    sub = subscription_re.search(clean)
    env = _ENV.search(clean)
    ticket = ticket_re.search(subject)
    return SubjectTags(
        severity=severity,
        severity_text=severity_text,
        subscription_id=sub.group(0).upper() if sub else None,
        environment=ENVIRONMENTS[env.group(1).lower()] if env else None,
        environment_text=env.group(0) if env else None,
        ticket_id=ticket.group(1).upper() if ticket else None,
        clean=clean,
    )
