"""Client channels: TLS or loopback plaintext, tracing, and client policy from service-config JSON.

Client policy is data (the googleapis habit): each contract package ships a
``<domain>_grpc_service_config.json`` beside its generated code that sets a deadline on
every unary method and retries only UNAVAILABLE, only for idempotent methods.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib import resources

import grpc

from casino_kit.telemetry import client_tracing
from casino_kit.tls import TlsSettings, channel_credentials

KEEPALIVE_OPTIONS = (
    # Reconnect quickly to a peer that is starting up, instead of backing off to minutes.
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2_000),
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.keepalive_permit_without_calls", 1),
)


def service_config(package: str) -> str:
    """The service-config JSON shipped with contract package ``package`` (``casino.wallet.v1``)."""
    domain = package.split(".")[1]
    text = resources.files(package).joinpath(f"{domain}_grpc_service_config.json").read_text()
    json.loads(text)  # fail at start-up, not on the first call, if the file is broken
    return text


def open_channel(
    target: str,
    tls: TlsSettings,
    *,
    config: str | None = None,
    options: Sequence[tuple[str, int | str]] = (),
) -> grpc.aio.Channel:
    """A traced channel to ``target``; ``config`` is a service-config JSON string."""
    all_options: list[tuple[str, int | str]] = [*KEEPALIVE_OPTIONS, *options]
    if config is not None:
        all_options += [("grpc.service_config", config), ("grpc.enable_retries", 1)]
    credentials = channel_credentials(tls, target)
    interceptors = client_tracing()
    if credentials is None:
        return grpc.aio.insecure_channel(target, all_options, interceptors=interceptors)
    return grpc.aio.secure_channel(target, credentials, all_options, interceptors=interceptors)


def upstream(target: str, tls: TlsSettings, package: str) -> grpc.aio.Channel:
    """A channel to the service of contract ``package`` with that contract's client policy."""
    return open_channel(target, tls, config=service_config(package))
