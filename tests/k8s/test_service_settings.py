"""Every ``CASINO_*`` variable the manifests give a service is one that service reads.

A misspelt or retired variable is not an error anywhere: the service starts on its default
(a TLS file not used, a Redis not shared) and nothing says so. The names a service reads
come from its settings class, as ``casino_kit.settings.load`` derives them.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing

import pytest

from tests.k8s.test_manifests import SERVICES, TARGETS, env_of, main_container, render


def variables(settings: type, prefix: str = "CASINO_") -> set[str]:
    """The environment variables ``load(settings)`` reads: one per field, nested ones too."""
    hints = typing.get_type_hints(settings)
    names: set[str] = set()
    for field in dataclasses.fields(settings):
        kind = hints[field.name]
        if dataclasses.is_dataclass(kind):
            names |= variables(typing.cast(type, kind), prefix)
        else:
            names.add(f"{prefix}{field.name.upper()}")
    return names


@pytest.mark.parametrize("target", TARGETS)
def test_the_manifests_set_only_variables_the_services_read(target: str) -> None:
    docs = render(target)
    for name, (package, _) in SERVICES.items():
        read = variables(importlib.import_module(f"{package}.app").Settings)
        given = {v for v in env_of(main_container(docs, name)) if v.startswith("CASINO_")}
        assert given <= read, f"{target}: {name} is given {sorted(given - read)}, never read"


def test_the_settings_reader_sees_nested_settings() -> None:
    from session_svc.app import Settings

    read = variables(Settings)
    assert {"CASINO_REDIS_URL", "CASINO_PORT", "CASINO_TLS_CERT"} <= read
