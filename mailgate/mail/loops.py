"""Recognise automatic mail, so that no reply ever goes to it (RFC 3834 section 2, and
the conventions mail servers and Exchange use). Answering such mail makes mail loops."""

from __future__ import annotations

import re

from mailgate.model import ParsedMail

_DAEMON_LOCALPARTS = frozenset(
    {
        "mailer-daemon",
        "postmaster",
        "mail-daemon",
        "maildaemon",
        "noreply",
        "no-reply",
        "do-not-reply",
        "donotreply",
        "bounce",
        "bounces",
    }
)
_AUTO_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto(?:matic)?[- ]?reply|out of (?:the )?office|autoreply|"
    r"abwesenheitsnotiz|réponse automatique|respuesta automática|risposta automatica|"
    r"undeliverable|delivery status notification|mail delivery failed|returned mail)\b",
    re.IGNORECASE,
)


def automatic_reason(mail: ParsedMail) -> str | None:
    """Why this message is automatic (and must get no reply), or None for a person's mail."""
    auto = (mail.header("auto-submitted") or "").strip().lower()
    if auto and not auto.startswith("no"):
        return f"Auto-Submitted: {auto}"  # RFC 3834 5.1
    precedence = (mail.header("precedence") or "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    if mail.header("x-autoreply") or mail.header("x-autorespond"):
        return "X-Autoreply/X-Autorespond header"
    if mail.header("list-id") or mail.header("list-unsubscribe"):
        return "mailing-list message (List-Id/List-Unsubscribe)"
    if mail.envelope_from is not None and mail.envelope_from.strip() in ("", "<>"):
        return "empty envelope sender (bounce)"
    return_path = mail.header("return-path")
    if return_path is not None and return_path.strip() in ("<>", ""):
        return "empty Return-Path (bounce)"
    if mail.content_type == "multipart/report":
        return "delivery or disposition report (multipart/report)"
    if mail.header("x-failed-recipients"):
        return "bounce (X-Failed-Recipients)"
    if mail.from_ is None:
        return "no sender address"
    local = mail.from_.lower.partition("@")[0]
    if local in _DAEMON_LOCALPARTS or local.startswith(("mailer-daemon", "postmaster")):
        return f"sender {mail.from_.lower} is a mail system address"
    if mail.header("x-mailgate-loop"):
        return "our own automatic mail came back"
    if _AUTO_SUBJECT.match(mail.subject):
        return f"automatic subject: {mail.subject[:60]!r}"
    return None
