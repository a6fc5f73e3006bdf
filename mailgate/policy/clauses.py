"""The sentences of the IREX support policy (POLICY.md) that refusals quote, by reason."""

from __future__ import annotations

from mailgate.model import Reason

_SUB = ("Support does not include organisations without a valid IREX subscription.",)

CLAUSES: dict[str, tuple[str, str]] = {
    Reason.NON_ENGLISH: (
        "P-OUT-LANG",
        "Support does not include support in languages other than English.",
    ),
    Reason.END_USER: (
        "P-OUT-ENDUSER",
        "Support does not include support for end users; "
        "support is provided to the IT administrators who deploy and run IREX.",
    ),
    Reason.NO_SUBSCRIPTION: ("P-OUT-SUB", _SUB[0]),
    Reason.UNKNOWN_SUBSCRIPTION: ("P-OUT-SUB", _SUB[0]),
    Reason.EXPIRED_SUBSCRIPTION: ("P-OUT-SUB", _SUB[0]),
    Reason.NOT_STARTED_SUBSCRIPTION: ("P-OUT-SUB", _SUB[0]),
    Reason.DEVELOPMENT: (
        "P-OUT-DEV",
        "Support does not include development questions or requests.",
    ),
    Reason.THIRD_PARTY: (
        "P-OUT-3P",
        "Support does not include third-party integrations, installers, images and plug-ins.",
    ),
    Reason.REMOTE_ADMIN: ("P-OUT-REMOTE", "Support does not include remote administration."),
    Reason.UNSUPPORTED_VERSION: (
        "P-OUT-VERSION",
        "Support covers the latest official release "
        "of the IREX server and the previous major build, and no "
        "other versions.",
    ),
    Reason.PROFESSIONAL_SERVICES: (
        "P-OUT-PS",
        "Support does not include professional "
        "services: security system design, hardware and network "
        "administration, custom integrations and UX "
        "customisation.",
    ),
    Reason.HARDWARE: (
        "P-HW",
        "Support covers IREX deployments that meet the hardware "
        "requirements in the product documentation.",
    ),
}
