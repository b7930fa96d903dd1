"""Client policy files: every unary method has a deadline and retries only UNAVAILABLE;
streams have neither; every name in a file exists in the contract."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf.descriptor import MethodDescriptor

from casino_kit.channels import service_config

PACKAGES = [
    "casino.wallet.v1",
    "casino.rng.v1",
    "casino.game.v1",
    "casino.session.v1",
    "casino.ingest.v1",
    "casino.relay.v1",
]


def _methods(package: str) -> Iterator[tuple[str, MethodDescriptor]]:
    domain = package.split(".")[1]
    module = importlib.import_module(f"{package}.{domain}_service_pb2")
    for service in module.DESCRIPTOR.services_by_name.values():
        for method in service.methods:
            yield service.full_name, method


def _policy(config: dict[str, Any], service: str, method: str) -> dict[str, Any]:
    """The method config gRPC would apply: a method entry beats a service-wide one."""
    best: dict[str, Any] = {}
    entry: dict[str, Any]
    for entry in config["methodConfig"]:
        for name in entry["name"]:
            if name["service"] == service and name.get("method") == method:
                return entry
            if name["service"] == service and "method" not in name:
                best = entry
    return best


@pytest.mark.parametrize("package", PACKAGES)
def test_every_call_has_the_right_policy(package: str) -> None:
    config = json.loads(service_config(package))
    known = {(s, m.name) for s, m in _methods(package)} | {(s, None) for s, _ in _methods(package)}
    for entry in config["methodConfig"]:
        for name in entry["name"]:
            assert (name["service"], name.get("method")) in known, name
    for service, method in _methods(package):
        policy = _policy(config, service, method.name)
        streaming = method.client_streaming or method.server_streaming
        if streaming:
            assert "timeout" not in policy and "retryPolicy" not in policy, method.full_name
        else:
            assert policy.get("timeout"), f"{method.full_name} has no deadline"
            retry = policy.get("retryPolicy", {})
            assert retry.get("retryableStatusCodes", ["UNAVAILABLE"]) == ["UNAVAILABLE"]
