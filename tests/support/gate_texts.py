"""Texts for the tests that prove a fast path's gates sound.

A gate lets code skip a check whose answer it knows; its test runs the gate and the check
over many texts and random mutations of their lines, and the gate may never say "cannot"
where the check says "can". These are the texts such tests share: every fixture file, the
string constants of a test module, and mutated windows of any texts.
"""

from __future__ import annotations

import ast
import random
import string
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path

from mailgate.mail.html import html_to_text
from mailgate.mail.parse import parse_message

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@cache
def fixture_texts() -> tuple[str, ...]:
    """Every fixture file as text; mails also parsed, HTML also rendered."""
    texts = []
    for path in sorted(FIXTURES.rglob("*")):
        if not path.is_file():
            continue
        raw = path.read_bytes()
        text = raw.decode("utf-8", errors="replace")
        texts.append(text)
        if path.suffix == ".eml":
            mail = parse_message(raw)
            texts.append(mail.text)
            if mail.html:
                texts.append(html_to_text(mail.html))
        elif path.suffix == ".html":
            texts.append(html_to_text(text))
    return tuple(texts)


def strings_of(module: Path) -> set[str]:
    """Every string constant of a Python file (a test module's requests, lines, samples)."""
    tree = ast.parse(module.read_text(encoding="utf-8"))
    return {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def mutate(rng: random.Random, line: str, alphabet: Sequence[str], tokens: Sequence[str]) -> str:
    """``line`` with one to three random insertions, replacements or deletions of a run of
    capitals, one of ``tokens`` or a character of ``alphabet``."""
    for _ in range(rng.randint(1, 3)):
        choice = rng.random()
        if choice < 0.15:
            piece = "".join(rng.choices(string.ascii_uppercase, k=rng.randint(2, 8)))
        elif choice < 0.35:
            piece = rng.choice(tokens)
        else:
            piece = rng.choice(alphabet)
        # Where anchored patterns and line-end checks look: the start and the end; and
        # anywhere.
        at = rng.choice([0, len(line), rng.randint(0, len(line))])
        operation = rng.random()
        if operation < 0.5:
            line = line[:at] + piece + line[at:]
        elif operation < 0.85:
            line = line[:at] + piece + line[at + 1 :]
        else:
            line = line[:at] + line[at + 1 :]
    return line


def mutated_windows(
    texts: Iterable[str],
    *,
    seed: int,
    count: int,
    alphabet: Sequence[str],
    tokens: Sequence[str],
    window: int = 12,
) -> tuple[str, ...]:
    """``count`` windows of about ``window`` lines of ``texts``, each with one or two of
    its lines mutated (or a mutated line put in)."""
    rng = random.Random(seed)
    sources = [lines for text in texts if (lines := text.splitlines())]
    mutated = []
    for _ in range(count):
        lines = rng.choice(sources)
        start = rng.randrange(len(lines))
        part = lines[max(0, start - 3) : start + window]
        for _ in range(rng.randint(1, 2)):
            k = rng.randrange(len(part) + 1)
            if k == len(part) or rng.random() < 0.2:
                part.insert(k, mutate(rng, "", alphabet, tokens))
            else:
                part[k] = mutate(rng, part[k], alphabet, tokens)
        mutated.append("\n".join(part))
    return tuple(mutated)
