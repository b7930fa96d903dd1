from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from casino_kit.server import ServerSettings
from casino_kit.settings import SettingsError, load


@dataclass(frozen=True)
class Example:
    server: ServerSettings
    database_url: str
    upstream: str
    pool: int = 4
    strict: bool = False
    key_file: Path | None = None


def test_reads_types_and_nested_server_settings() -> None:
    env = {
        "CASINO_DATABASE_URL": "sqlite:///x.db",
        "CASINO_UPSTREAM": "127.0.0.1:1",
        "CASINO_POOL": "8",
        "CASINO_STRICT": "yes",
        "CASINO_KEY_FILE": "/keys/k.pem",
        "CASINO_PORT": "5005",
        "CASINO_INSECURE": "1",
        "CASINO_GRACE_S": "2.5",
    }
    settings = load(Example, environ=env)
    assert settings.pool == 8 and settings.strict is True
    assert settings.key_file == Path("/keys/k.pem")
    assert settings.server.port == 5005 and settings.server.insecure is True
    assert settings.server.grace_s == 2.5 and settings.server.metrics_port is None


def test_every_missing_required_value_is_named_at_once() -> None:
    with pytest.raises(SettingsError) as error:
        load(Example, environ={})
    assert "CASINO_DATABASE_URL" in str(error.value) and "CASINO_UPSTREAM" in str(error.value)


@pytest.mark.parametrize(("name", "value"), [("CASINO_POOL", "many"), ("CASINO_STRICT", "maybe")])
def test_malformed_values_fail_fast(name: str, value: str) -> None:
    env = {"CASINO_DATABASE_URL": "x", "CASINO_UPSTREAM": "y", name: value}
    with pytest.raises(SettingsError, match=name):
        load(Example, environ=env)
