"""Transport security: TLS or mTLS from certificate files, plaintext only on loopback."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

import grpc

from casino_kit.settings import SettingsError


@dataclass(frozen=True)
class TlsSettings:
    """Certificate files of this process; ``insecure`` is an explicit, loopback-only opt-out.

    With ``tls_ca`` set, servers require client certificates signed by it (mTLS) and clients
    verify servers against it. The public edges (players, studios) set ``tls_client_auth``
    off: their callers authenticate with tokens, not certificates.
    """

    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    tls_client_auth: bool = True
    insecure: bool = False


def is_loopback(host: str) -> bool:
    """True for localhost and 127.0.0.0/8 or ::1 literals (brackets and ports allowed)."""
    host = host.strip().split("///", 1)[-1]
    if host.startswith("["):
        host = host[1 : host.index("]")]
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path else None


def _check_plaintext(tls: TlsSettings, host: str, role: str) -> None:
    if not tls.insecure:
        raise SettingsError(
            f"{role} {host!r} has no TLS: set CASINO_TLS_CERT and CASINO_TLS_KEY "
            "(and CASINO_TLS_CA for mTLS), or CASINO_INSECURE=1 on loopback"
        )
    if not is_loopback(host):
        raise SettingsError(f"plaintext is allowed only on loopback, not for {role} {host!r}")


def server_credentials(tls: TlsSettings, host: str) -> grpc.ServerCredentials | None:
    """Credentials for a listening port, or None for (loopback-only) plaintext."""
    if tls.tls_cert and tls.tls_key:
        return grpc.ssl_server_credentials(
            [(tls.tls_key.read_bytes(), tls.tls_cert.read_bytes())],
            root_certificates=_read(tls.tls_ca),
            require_client_auth=tls.tls_ca is not None and tls.tls_client_auth,
        )
    _check_plaintext(tls, host, "listen address")
    return None


def channel_credentials(tls: TlsSettings, target: str) -> grpc.ChannelCredentials | None:
    """Credentials for a client channel, or None for (loopback-only) plaintext."""
    if tls.tls_ca or tls.tls_cert:
        return grpc.ssl_channel_credentials(
            root_certificates=_read(tls.tls_ca),
            private_key=_read(tls.tls_key),
            certificate_chain=_read(tls.tls_cert),
        )
    _check_plaintext(tls, target, "target")
    return None
