"""config.example.toml documents every key: it loads, and each key of the settings
classes appears in it (uncommented, or commented out for optional ones)."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

from mailgate.config import Settings, load_config

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def _keys(cls: type, prefix: str = "") -> list[str]:
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        args = typing.get_args(tp)
        inner = args[0] if args and typing.get_origin(tp) is tuple else tp
        if dataclasses.is_dataclass(inner) and isinstance(inner, type):
            out += _keys(inner, f"{prefix}{f.name}.")
        else:
            out.append(f"{prefix}{f.name}")
    return out


def test_example_config_loads_and_equals_the_defaults() -> None:
    loaded = load_config(EXAMPLE).settings
    default = load_config(None).settings
    # Paths resolve against different folders; everything else is the embedded default.
    assert (
        dataclasses.replace(
            loaded,
            database=default.database,
            outbox=dataclasses.replace(loaded.outbox, maildir=default.outbox.maildir),
            conversation=dataclasses.replace(
                loaded.conversation, secret_file=default.conversation.secret_file
            ),
        )
        == default
    )


def test_example_config_mentions_every_key() -> None:
    text = EXAMPLE.read_text()
    missing = [
        key
        for key in _keys(Settings)
        if not re.search(rf"^#?\s*{re.escape(key.rsplit('.', 1)[-1])}\s*=", text, re.MULTILINE)
    ]
    assert missing == []
