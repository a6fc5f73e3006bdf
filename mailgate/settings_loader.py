"""Turn parsed TOML into typed, frozen settings dataclasses, naming the key of any error.

Every settings section is a frozen dataclass whose fields all have defaults. The loader
walks the TOML table against the dataclass's type hints: an unknown key, a value of the
wrong type, or an impossible value (a ``ConfigValueError`` raised by ``__post_init__``)
becomes a ``ConfigError`` carrying the full dotted key, e.g. ``sla.premier.l1``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

from mailgate.errors import ConfigError, ConfigValueError

T = TypeVar("T")

SECRET_FIELDS = frozenset({"password", "secret", "hmac_secret", "api_key", "token"})


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " or ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin in (tuple, list):
        return "array"
    if origin in (dict, Mapping):
        return "table"
    if dataclasses.is_dataclass(tp):
        return "table"
    if tp is type(None):
        return "nothing"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, path: str) -> Any:
    """Check ``value`` against ``tp`` and return it in the dataclass's own form."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in get_args(tp):
            raise ConfigError(path, f"must be one of {_type_name(tp)}, got {value!r}")
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, path)
            except ConfigError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]
        raise ConfigError(path, f"must be {_type_name(tp)}, got {value!r}")
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(path, f"must be an array, got {type(value).__name__}")
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(path, f"must have exactly {len(args)} items")
        return tuple(
            _convert(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(args, value, strict=True))
        )
    if origin in (dict, Mapping):
        if not isinstance(value, dict):
            raise ConfigError(path, f"must be a table, got {type(value).__name__}")
        _, vtp = get_args(tp)
        return types.MappingProxyType(
            {str(k): _convert(v, vtp, _join(path, str(k))) for k, v in value.items()}
        )
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(path, f"must be a table, got {type(value).__name__}")
        return build(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(path, f"must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"must be a string, got {value!r}")
        return value
    if tp is dt.date:
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            if isinstance(value, str):
                try:
                    return dt.date.fromisoformat(value)
                except ValueError:
                    pass
            raise ConfigError(path, f"must be a date like 2026-12-25, got {value!r}")
        return value
    if tp is dt.time:
        if isinstance(value, dt.time):
            return value
        if isinstance(value, str):
            try:
                return dt.time.fromisoformat(value)
            except ValueError:
                pass
        raise ConfigError(path, f"must be a time like 08:00, got {value!r}")
    raise ConfigError(path, f"unsupported setting type {tp!r}")  # a programming error


def build(cls: type[T], data: Mapping[str, Any], path: str = "") -> T:
    """Build settings dataclass ``cls`` from a TOML table, raising ConfigError on the key."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(_join(path, unknown[0]), f"unknown key (known keys here: {known})")
    kwargs = {name: _convert(value, hints[name], _join(path, name)) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigValueError as exc:
        raise ConfigError(_join(path, exc.field), exc.message) from None


def describe(obj: Any, path: str = "") -> dict[str, Any]:
    """The effective settings as a plain dict, secrets masked (for ``check-config``)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = _describe_value(f.name, value)
    return out


def mask_url(url: str) -> str:
    """A database URL with its password hidden."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def _describe_value(name: str, value: Any) -> Any:
    if name in SECRET_FIELDS and value:
        return "********"
    if name == "url" and isinstance(value, str):
        return mask_url(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return describe(value)
    if isinstance(value, Mapping):
        return {k: _describe_value(k, v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_describe_value("", v) for v in value]
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return value
