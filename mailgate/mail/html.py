"""Turn an HTML mail body into readable plain text, optionally without quoted history.

``html_to_text`` renders what a reader sees: paragraphs, ``<div>`` and ``<br>`` as line
breaks, list items as ``- `` (``1. `` in ordered lists), links as ``text <url>`` when the
address is not already the text, citation blockquotes as ``> `` lines, and nothing of
``<head>``, ``<style>``, ``<script>`` or comments (Outlook's conditional comments included).

``strip_html_reply`` first removes what mail clients mark as quoted history or signature,
then renders, then applies ``quotes.strip_reply`` to what is left (attribution lines sitting
outside the quote container, mobile taglines, closing + contact blocks):

* Gmail ``<div class="gmail_quote">``, ``gmail_signature`` (and its ``-- `` prefix);
* Apple Mail / Thunderbird ``<blockquote type="cite">``, Thunderbird ``moz-cite-prefix`` and
  ``moz-signature``; Yahoo ``yahoo_quoted``; Outlook on the web ``id="Signature"``;
* Outlook, from the marker to the end of the document: ``<div id="divRplyFwdMsg">``,
  ``<div id="appendonsend">``, new Outlook's ``mail-editor-reference-message-container``,
  the header ``<div>`` with ``border-top:solid #E1E1E1`` (``#B5C4DF`` in Outlook 2007-2010),
  and an ``<hr>`` directly followed by a From:/Sent: block.

When that leaves nothing (a bare forward: Gmail wraps forwarded mail in ``gmail_quote``,
Apple Mail in a cite blockquote), the whole document is rendered and handed to
``strip_reply``, which returns the forwarded message's body - the same rule as plain text.

Parsing uses the standard library's tolerant ``html.parser``; input it still rejects is
reduced to its text with a tag-stripping fallback, so no ``str`` input raises.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser

from mailgate.mail.quotes import strip_reply

__all__ = ["html_to_text", "strip_html_reply"]


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML body (no quote or signature removal)."""
    return _render(_tokenize(html))


def strip_html_reply(html: str) -> str:
    """The sender's own text of an HTML body: quote containers and signature removed."""
    events = _tokenize(html)
    own = strip_reply(_render(_without_history(events))).text
    if own:
        return own
    # Nothing of the sender's own: a bare forward, or a reply without new text. The plain
    # text rules decide which from the whole document.
    return strip_reply(_render(_without_signatures(events))).text


# ------------------------------------------------------------------------------ events

_Attrs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Event:
    kind: str  # "start", "end", "startend" or "data"
    tag: str = ""
    attrs: _Attrs = ()
    data: str = ""

    def attr(self, name: str) -> str:
        for key, value in self.attrs:
            if key == name:
                return value
        return ""

    def classes(self) -> set[str]:
        return set(self.attr("class").lower().split())


class _Collector(HTMLParser):
    """Flattens a document into start/end/data events; entities are already decoded."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.events: list[_Event] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append(_Event("start", tag, _attrs(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.events.append(_Event("startend", tag, _attrs(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.events.append(_Event("end", tag))

    def handle_data(self, data: str) -> None:
        self.events.append(_Event("data", data=data))


def _attrs(attrs: list[tuple[str, str | None]]) -> _Attrs:
    return tuple((key.lower(), value or "") for key, value in attrs)


_TAG = re.compile(r"<[^>]*>?")


def _tokenize(html: str) -> list[_Event]:
    collector = _Collector()
    try:
        collector.feed(html)
        collector.close()
    except Exception:  # html.parser still asserts on some malformed declarations
        # Keep what a reader would see rather than fail the whole message.
        text = html_lib.unescape(_TAG.sub(" ", html))
        return [_Event("data", data=text)]
    return collector.events


# ---------------------------------------------------------------------------- history


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Elements whose whole content is quoted history.
_QUOTE_CLASSES = frozenset({"gmail_quote", "moz-cite-prefix", "yahoo_quoted"})
#: Elements whose whole content is a signature.
_SIGNATURE_CLASSES = frozenset({"gmail_signature", "gmail_signature_prefix", "moz-signature"})
_SIGNATURE_IDS = frozenset({"signature"})
#: Outlook markers after which the rest of the document is the quoted message.
_OUTLOOK_IDS = _names("divrplyfwdmsg appendonsend mail-editor-reference-message-container")
_OUTLOOK_BORDER = re.compile(r"border-top:\s*solid\s+#(?:e1e1e1|b5c4df)", re.IGNORECASE)
#: "From:" and a second header field soon after, as Outlook renders them under an <hr>.
_HEADER_TEXT = re.compile(
    r"\s*(?:from|von|de|da|van|od|från|fra)\s*:.{1,200}?"
    r"\b(?:sent|date|gesendet|datum|envoyé|enviado|fecha|inviato|verzonden|wysłano|skickat"
    r"|sendt|to|an|à|para|aan|do|till|til)\s*:",
    re.IGNORECASE | re.DOTALL,
)
_VOID = _names("area base br col embed hr img input link meta source track wbr")


def _is_signature(event: _Event) -> bool:
    return bool(event.classes() & _SIGNATURE_CLASSES) or event.attr("id").lower() in _SIGNATURE_IDS


def _is_quote_container(event: _Event) -> bool:
    if event.tag == "blockquote" and event.attr("type").lower() == "cite":
        return True
    classes = event.classes()
    return bool(classes & _QUOTE_CLASSES) or event.attr("id").lower().startswith("yahoo_quoted")


def _text_after(events: Sequence[_Event], start: int, limit: int = 300) -> str:
    """Up to ``limit`` characters of text following ``events[start]``."""
    text: list[str] = []
    size = 0
    for event in events[start + 1 : start + 200]:
        if event.kind == "data":
            text.append(event.data[:limit])
            size += len(text[-1])
            if size >= limit:
                break
    # Pieces joined by a space: "<b>From:</b> IREX<br><b>Sent:</b>" must not read "IREXSent:".
    return " ".join(" ".join(text).split())[:limit]


def _starts_outlook_history(events: Sequence[_Event], k: int) -> bool:
    event = events[k]
    if event.kind not in ("start", "startend"):
        return False
    if event.attr("id").lower() in _OUTLOOK_IDS:
        return True
    if event.tag == "div" and _OUTLOOK_BORDER.search(event.attr("style")):
        return True
    return event.tag == "hr" and _HEADER_TEXT.match(_text_after(events, k)) is not None


def _drop(events: Sequence[_Event], *, quotes: bool) -> list[_Event]:
    """The events without signature elements, and without quoted history if ``quotes``."""
    kept: list[_Event] = []
    skip_tag = ""  # tag of the element being skipped
    depth = 0
    for k, event in enumerate(events):
        if skip_tag:
            if event.tag == skip_tag and event.kind == "start":
                depth += 1
            elif event.tag == skip_tag and event.kind == "end":
                depth -= 1
                if depth == 0:
                    skip_tag = ""
            continue
        if quotes and _starts_outlook_history(events, k):
            break
        if (
            event.kind == "start"
            and event.tag not in _VOID
            and (_is_signature(event) or (quotes and _is_quote_container(event)))
        ):
            skip_tag, depth = event.tag, 1
            continue
        kept.append(event)
    return kept


def _without_history(events: Sequence[_Event]) -> list[_Event]:
    return _drop(events, quotes=True)


def _without_signatures(events: Sequence[_Event]) -> list[_Event]:
    return _drop(events, quotes=False)


# ----------------------------------------------------------------------------- render

_SKIP_CONTENT = frozenset({"head", "style", "script", "title", "template", "noscript"})
_LINE_BLOCKS = _names(
    """html body div tr table section article header footer address center form fieldset
    figure figcaption nav aside main caption dl dt dd"""
)
_PARAGRAPHS = _names("p h1 h2 h3 h4 h5 h6 pre blockquote hr")
_CELLS = frozenset({"td", "th"})
_WHITESPACE = re.compile(r"[ \t\n\r\f\v]+")
_LINKABLE = re.compile(r"(?:https?|ftp)://|mailto:", re.IGNORECASE)


@dataclass
class _List:
    ordered: bool
    count: int = 0


@dataclass
class _Writer:
    """Accumulates rendered lines; ``> `` prefixes are fixed when a line gets its first text."""

    lines: list[str] = field(default_factory=list)
    line: list[str] = field(default_factory=list)
    quote_depth: int = 0
    pending_space: bool = False

    def _begin_line(self) -> None:
        if not self.line and self.quote_depth:
            self.line.append("> " * self.quote_depth)

    def _space(self) -> None:
        if self.pending_space and self.line and not self.line[-1].endswith(" "):
            self.line.append(" ")
        self.pending_space = False

    def text(self, data: str) -> None:
        """Flowing text: whitespace runs are one space, none at the start of a line."""
        if not data:
            return
        collapsed = _WHITESPACE.sub(" ", data)
        if collapsed.startswith(" "):
            self.pending_space = True
            collapsed = collapsed[1:]
        if not collapsed:
            return
        ends_with_space = collapsed.endswith(" ")
        collapsed = collapsed.rstrip(" ")
        self._space()
        self._begin_line()
        self.line.append(collapsed)
        self.pending_space = ends_with_space

    def raw(self, data: str) -> None:
        """Preformatted text: spaces and line breaks as they are."""
        parts = data.replace("\r\n", "\n").split("\n")
        for index, part in enumerate(parts):
            if index:
                self.newline()
            if part:
                self._space()
                self._begin_line()
                self.line.append(part)
                self.pending_space = False

    def newline(self) -> None:
        """A line break (``<br>``): always ends the current line, even an empty one."""
        self.lines.append("".join(self.line).rstrip())
        self.line = []
        self.pending_space = False

    def block(self) -> None:
        """Start of a block: end the current line if it has text."""
        if self.line:
            self.newline()
        self.pending_space = False

    def paragraph(self) -> None:
        """Start of a paragraph: a blank line between it and earlier text."""
        self.block()
        if self.lines and self.lines[-1] != "":
            self.lines.append("")

    def position(self) -> tuple[int, int]:
        return len(self.lines), len(self.line)

    def text_since(self, position: tuple[int, int]) -> str | None:
        """Text written since ``position`` on the same line (``None`` if lines ended)."""
        lines, parts = position
        if lines != len(self.lines):
            return None
        return "".join(self.line[parts:]).strip()

    def result(self) -> str:
        lines = [*self.lines, "".join(self.line)]
        text = "\n".join(line.replace("\xa0", " ").rstrip() for line in lines)
        return re.sub(r"\n{3,}", "\n\n", text).strip()


def _link_suffix(href: str, text: str | None) -> str:
    """`` <url>`` after a link's text, unless the text already says where it goes.

    ``text`` is ``None`` when the link spanned lines, ``""`` for an image-only link (a logo:
    its address is noise).
    """
    href = href.strip()
    if not href or not _LINKABLE.match(href) or text == "":
        return ""
    target = href
    if href.lower().startswith("mailto:"):
        target = href[len("mailto:") :].split("?", 1)[0]
    if text is not None:
        shown = text.strip().rstrip("/").lower()
        bare = re.sub(r"^(?:https?|ftp)://", "", target, flags=re.IGNORECASE)
        if shown in {target.rstrip("/").lower(), bare.rstrip("/").lower(), href.lower()}:
            return ""
    return f" <{target}>"


def _is_citation(event: _Event) -> bool:
    """A blockquote that quotes a mail, not Gmail's "indent" (margin only, no border)."""
    if event.attr("type").lower() == "cite" or "gmail_quote" in event.classes():
        return True
    return "border-left" in event.attr("style").lower()


class _Renderer:
    """Walks the events once, writing text through a ``_Writer``."""

    def __init__(self) -> None:
        self.out = _Writer()
        self.skip = ""  # element whose content is not shown (<head>, <style>, …)
        self.lists: list[_List] = []
        self.citations: list[bool] = []  # per open blockquote: does it add a "> " level?
        self.paragraphs: list[bool] = []  # per open <p>: is it an Outlook line (MsoNormal)?
        self.links: list[tuple[str, tuple[int, int]]] = []
        self.pre = 0

    def render(self, events: Sequence[_Event]) -> str:
        for event in events:
            if self.skip:
                ends_head = self.skip == "head" and event.kind == "start" and event.tag == "body"
                if (event.kind == "end" and event.tag == self.skip) or ends_head:
                    self.skip = ""  # (a <head> that is never closed ends at <body>)
            elif event.kind == "data":
                (self.out.raw if self.pre else self.out.text)(event.data)
            elif event.kind == "start" and event.tag in _SKIP_CONTENT:
                self.skip = event.tag
            else:
                if event.kind in ("start", "startend"):
                    self.open(event)
                if event.kind in ("end", "startend"):
                    self.close(event)
        return self.out.result()

    def open(self, event: _Event) -> None:
        out, tag = self.out, event.tag
        if tag == "br":
            out.newline()
        elif tag == "p":
            mso = any(c.startswith("mso") for c in event.classes())
            self.paragraphs.append(mso)
            out.block() if mso else out.paragraph()  # Outlook writes each line as a <p>
        elif tag in _PARAGRAPHS:
            out.paragraph()
            if tag == "pre":
                self.pre += 1
            elif tag == "blockquote":
                cites = _is_citation(event)
                self.citations.append(cites)
                out.quote_depth += cites
        elif tag in _LINE_BLOCKS:
            out.block()
        elif tag in ("ul", "ol"):
            out.block()
            self.lists.append(_List(ordered=tag == "ol"))
        elif tag == "li":
            out.block()
            current = self.lists[-1] if self.lists else _List(ordered=False)
            current.count += 1
            indent = "  " * max(len(self.lists) - 1, 0)
            out.raw(indent + (f"{current.count}. " if current.ordered else "- "))
        elif tag in _CELLS:
            out.pending_space = True
        elif tag == "a" and event.kind == "start":
            self.links.append((event.attr("href"), out.position()))

    def close(self, event: _Event) -> None:
        out, tag = self.out, event.tag
        if tag == "p":
            mso = self.paragraphs.pop() if self.paragraphs else False
            out.block() if mso else out.paragraph()
        elif tag in _PARAGRAPHS:
            out.block()
            if tag == "pre" and self.pre:
                self.pre -= 1
            elif tag == "blockquote" and self.citations:
                out.quote_depth -= self.citations.pop()
            out.paragraph()
        elif tag in _LINE_BLOCKS or tag == "li":
            out.block()
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            out.block()
        elif tag == "a" and self.links:
            href, position = self.links.pop()
            suffix = _link_suffix(href, out.text_since(position))
            if suffix:
                out.text(suffix)


def _render(events: Sequence[_Event]) -> str:
    return _Renderer().render(events)
