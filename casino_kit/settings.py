"""Typed settings read once from environment variables.

A settings class is a frozen dataclass; each field reads ``<PREFIX><FIELD_NAME>`` (upper
case). Fields without a default are required: every missing one is reported at once, at
start-up, instead of failing later in the middle of a request.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class SettingsError(ValueError):
    """Raised when the environment does not describe a runnable service."""


def _parse(raw: str, kind: Any, name: str) -> Any:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        return None if raw == "" else _parse(raw, inner[0], name)
    if kind is bool:
        value = raw.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise SettingsError(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")
    if kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not a {kind.__name__}") from None
    if kind is Path:
        return Path(raw)
    if typing.get_origin(kind) is tuple:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw


def load(cls: type[T], prefix: str = "CASINO_", environ: Mapping[str, str] | None = None) -> T:
    """Build ``cls`` from the environment; raise SettingsError naming every missing variable."""
    env = os.environ if environ is None else environ
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    missing: list[str] = []
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = f"{prefix}{field.name.upper()}"
        kind = hints[field.name]
        if dataclasses.is_dataclass(kind):
            values[field.name] = load(kind, prefix, env)  # type: ignore[arg-type]
        elif name in env:
            values[field.name] = _parse(env[name], kind, name)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            missing.append(name)
    if missing:
        raise SettingsError("missing required environment variables: " + ", ".join(missing))
    return cls(**values)
