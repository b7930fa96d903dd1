"""TLS and mTLS from certificate files, and plaintext refused off loopback."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from casino_kit.channels import open_channel
from casino_kit.settings import SettingsError
from casino_kit.tls import TlsSettings, channel_credentials, is_loopback, server_credentials


def _issue(
    name: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, issuer_key = issuer or (subject, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            False,
        )
    return builder.sign(issuer_key, hashes.SHA256()), key


def _write(
    directory: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> tuple[Path, Path]:
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, TlsSettings]:
    ca_cert, ca_key = _issue("casino test CA", None)
    ca_path, _ = _write(tmp_path, "ca", ca_cert, ca_key)
    out = {}
    for name in ("server", "client"):
        cert, key = _issue(name, (ca_cert.subject, ca_key))
        cert_path, key_path = _write(tmp_path, name, cert, key)
        out[name] = TlsSettings(tls_cert=cert_path, tls_key=key_path, tls_ca=ca_path)
    out["anonymous"] = TlsSettings(tls_ca=ca_path)
    return out


async def _health_server(tls: TlsSettings) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    credentials = server_credentials(tls, "127.0.0.1")
    assert credentials is not None
    port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    return server, port


async def _check(tls: TlsSettings, port: int) -> int:
    channel = open_channel(
        f"localhost:{port}", tls, options=[("grpc.ssl_target_name_override", "localhost")]
    )
    async with channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
        status: int = reply.status
        return status


async def test_mtls_admits_a_client_certificate_and_refuses_none(
    pki: dict[str, TlsSettings],
) -> None:
    server, port = await _health_server(pki["server"])
    try:
        assert await _check(pki["client"], port) == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _check(pki["anonymous"], port)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(None)


async def test_public_edge_takes_tls_without_client_certificates(
    pki: dict[str, TlsSettings],
) -> None:
    edge = pki["server"]
    server, port = await _health_server(
        TlsSettings(
            tls_cert=edge.tls_cert, tls_key=edge.tls_key, tls_ca=edge.tls_ca, tls_client_auth=False
        )
    )
    try:
        assert await _check(pki["anonymous"], port) == health_pb2.HealthCheckResponse.SERVING
    finally:
        await server.stop(None)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.1:50051", True),
        ("localhost:1", True),
        ("[::1]:50051", True),
        ("dns:///localhost:50051", True),
        ("0.0.0.0", False),
        ("10.0.0.7:50051", False),
        ("wallet-svc:50054", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_plaintext_needs_the_explicit_switch_and_loopback() -> None:
    with pytest.raises(SettingsError, match="CASINO_INSECURE"):
        server_credentials(TlsSettings(), "127.0.0.1")
    with pytest.raises(SettingsError, match="only on loopback"):
        server_credentials(TlsSettings(insecure=True), "0.0.0.0")
    with pytest.raises(SettingsError, match="only on loopback"):
        channel_credentials(TlsSettings(insecure=True), "wallet-svc:50054")
    assert server_credentials(TlsSettings(insecure=True), "127.0.0.1") is None
