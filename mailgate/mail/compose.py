"""Build the mail mailgate sends: bodies from Jinja2 templates, headers through the
``email`` library only (so no template or subject can inject a header), threading and
RFC 3834 auto-response headers always set."""

from __future__ import annotations

import datetime as dt
import email.utils
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email import policy as email_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from mailgate.model import Attachment
from mailgate.resources import templates_dir

LOOP_HEADER = "X-Mailgate-Loop"
# RFC 5322 allows 998-character lines. At the default 78 the email package folds a long
# "[IREX-000123] ..." subject right after "Subject:", and some clients then show it with
# a leading space.
_POLICY = email_policy.SMTP.clone(max_line_length=998)


@dataclass(frozen=True)
class Outgoing:
    kind: str
    mail_from: str
    recipients: tuple[str, ...]
    subject: str
    message_id: str  # without angle brackets
    raw: bytes


def make_environment(folder: Path | None = None) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(folder or templates_dir())),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["hours"] = _hours
    return env


def _hours(value: dt.timedelta | float | None) -> str:
    if value is None:
        return "-"
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else float(value) * 3600
    minutes = round(seconds / 60)
    h, m = divmod(minutes, 60)
    return f"{h}h{m:02d}" if m else f"{h}h"


def one_line(value: str, limit: int = 250) -> str:
    """Header-safe text: no CR/LF (header injection), no control characters, bounded."""
    cleaned = "".join(" " if (c in "\r\n\t" or ord(c) < 32) else c for c in value)
    cleaned = " ".join(cleaned.split())
    return cleaned[:limit]


class Composer:
    """Renders templates into complete RFC 5322 messages."""

    def __init__(
        self,
        *,
        support_address: str,
        support_name: str,
        id_domain: str,
        environment: Environment | None = None,
    ) -> None:
        self.support_address = support_address
        self.support_name = support_name
        self.id_domain = id_domain
        self.env = environment or make_environment()

    def new_message_id(self, label: str) -> str:
        """A Message-ID we recognise as ours: ``mg.<label>.<random>@<our domain>``."""
        safe = "".join(c for c in label.lower() if c.isalnum() or c in "-_") or "mail"
        return f"mg.{safe}.{uuid.uuid4().hex}@{self.id_domain}"

    def render(self, template: str, context: Mapping[str, Any]) -> tuple[str, str | None]:
        """Text body (required) and HTML body (when ``<template>.html.j2`` exists)."""
        text = self.env.get_template(f"{template}.txt.j2").render(**context)
        try:
            html_template = self.env.get_template(f"{template}.html.j2")
        except Exception:  # jinja2.TemplateNotFound: text-only template
            return text, None
        return text, html_template.render(**context)

    def compose(
        self,
        *,
        kind: str,
        template: str,
        context: Mapping[str, Any],
        to: Sequence[str],
        subject: str,
        label: str = "",
        cc: Sequence[str] = (),
        reply_to: str | None = None,
        from_name: str | None = None,
        in_reply_to: str | None = None,
        references: Iterable[str] = (),
        auto_submitted: str = "auto-replied",
        attachments: Sequence[Attachment] = (),
        now: dt.datetime | None = None,
        body: tuple[str, str | None] | None = None,
    ) -> Outgoing:
        text, html = body if body is not None else self.render(template, context)
        msg = EmailMessage(policy=_POLICY)
        msg["From"] = email.utils.formataddr(
            (one_line(from_name or self.support_name), self.support_address)
        )
        msg["To"] = ", ".join(one_line(a) for a in to)
        if cc:
            msg["Cc"] = ", ".join(one_line(a) for a in cc)
        if reply_to:
            msg["Reply-To"] = one_line(reply_to)
        safe_subject = one_line(subject, 400)
        msg["Subject"] = safe_subject
        msg["Date"] = email.utils.format_datetime(now or dt.datetime.now(dt.UTC))
        message_id = self.new_message_id(label or kind)
        msg["Message-ID"] = f"<{message_id}>"
        refs = [r for r in references if r]
        if in_reply_to:
            msg["In-Reply-To"] = f"<{one_line(in_reply_to, 900)}>"
            if in_reply_to not in refs:
                refs.append(in_reply_to)
        if refs:
            # RFC 5322 3.6.4: keep the chain; trim the middle of very long ones.
            if len(refs) > 20:
                refs = refs[:1] + refs[-19:]
            msg["References"] = " ".join(f"<{one_line(r, 900)}>" for r in refs)
        if auto_submitted:
            msg["Auto-Submitted"] = auto_submitted  # RFC 3834 5
            msg["X-Auto-Response-Suppress"] = "All"  # keeps Exchange from answering
        msg[LOOP_HEADER] = self.id_domain
        msg.set_content(text)
        if html is not None:
            msg.add_alternative(html, subtype="html")
        for att in attachments:
            maintype, _, subtype = att.content_type.partition("/")
            if msg.get_content_type() != "multipart/mixed":
                msg.make_mixed()
            msg.add_attachment(
                att.data,
                maintype=maintype or "application",
                subtype=subtype or "octet-stream",
                filename=att.filename or "attachment",
            )
        return Outgoing(
            kind=kind,
            mail_from=self.support_address,
            recipients=tuple(email.utils.parseaddr(a)[1] for a in (*to, *cc)),
            subject=safe_subject,
            message_id=message_id,
            raw=msg.as_bytes(),
        )
