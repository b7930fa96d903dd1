"""The ``CASINO_*`` variables each service reads, against what sets and documents them.

A misspelt or retired variable is not an error anywhere: the service starts on its default
(a TLS file not used, a Redis not shared) and nothing says so; an undocumented one is a
setting nobody finds. The names a service reads come from its settings class, as
``casino_kit.settings.load`` derives them.
"""

from __future__ import annotations

import dataclasses
import importlib
import typing
from pathlib import Path

import pytest

from casino_cli.platform import SERVICES as PACKAGES
from tests.k8s.test_manifests import SERVICES, TARGETS, env_of, main_container, render

README = Path(__file__).resolve().parents[1] / "README.md"


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


def read_by(package: str) -> set[str]:
    return variables(importlib.import_module(f"{package}.app").Settings)


def test_the_settings_reader_sees_nested_settings() -> None:
    assert {"CASINO_REDIS_URL", "CASINO_PORT", "CASINO_TLS_CERT"} <= read_by("session_svc")


@pytest.mark.parametrize("package", [info.package for info in PACKAGES])
def test_every_variable_a_service_reads_is_in_the_readme(package: str) -> None:
    documented = README.read_text()
    missing = sorted(name for name in read_by(package) if f"`{name}`" not in documented)
    assert not missing, f"{package} reads {missing}, which the README's configuration omits"


@pytest.mark.parametrize("target", TARGETS)
def test_the_manifests_set_only_variables_the_services_read(target: str) -> None:
    docs = render(target)
    for name, (package, _) in SERVICES.items():
        given = {v for v in env_of(main_container(docs, name)) if v.startswith("CASINO_")}
        read = read_by(package)
        assert given <= read, f"{target}: {name} is given {sorted(given - read)}, never read"
