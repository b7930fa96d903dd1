"""The dev overlay's Job script (k8s/overlays/dev/dev-secrets/gen_dev_secrets.py).

It runs in the cluster; here it gets an in-memory Secret store instead of the API server.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID

SCRIPT = Path(__file__).resolve().parents[2] / "k8s/overlays/dev/dev-secrets/gen_dev_secrets.py"
SERVICES = ["session-svc", "game-svc", "rng-svc", "wallet-svc", "ingest-svc", "edge-relay"]
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_dev_secrets", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # no __pycache__ inside k8s/
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = writes_bytecode
    return module


gen = _load()


class MemoryStore:
    """The SecretStore protocol over a dict; `lose_race` makes one create answer 409."""

    def __init__(self, lose_race: str | None = None) -> None:
        self.secrets: dict[str, tuple[str, dict[str, bytes]]] = {}
        self.lose_race = lose_race

    def get(self, name: str) -> dict[str, bytes] | None:
        found = self.secrets.get(name)
        return None if found is None else dict(found[1])

    def create(self, name: str, secret_type: str, data: dict[str, bytes]) -> bool:
        if name == self.lose_race:
            self.lose_race = None
            self.secrets[name] = ("Opaque", gen.ca_secret_data(gen.new_ca(NOW)))
            return False
        if name in self.secrets:
            return False
        self.secrets[name] = (secret_type, dict(data))
        return True


def _cert(data: dict[str, bytes], key: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(data[key])


def test_service_certificate_is_signed_by_the_ca_for_server_and_client() -> None:
    issuer = gen.new_ca(NOW)
    data = gen.issue_service_cert(issuer, "wallet-svc", "casino", NOW)
    leaf, ca = _cert(data, "tls.crt"), _cert(data, "ca.crt")
    assert ca == issuer.cert
    leaf.verify_directly_issued_by(ca)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [
        "wallet-svc",
        "wallet-svc.casino",
        "wallet-svc.casino.svc",
        "wallet-svc.casino.svc.cluster.local",
    ]
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    key = serialization.load_pem_private_key(data["tls.key"], password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key() == leaf.public_key()
    assert leaf.not_valid_before_utc <= NOW < leaf.not_valid_after_utc


def test_first_run_creates_everything_and_second_run_nothing() -> None:
    store = MemoryStore()
    created = gen.ensure_secrets(store, SERVICES, "casino", NOW)
    mtls = [f"casino-mtls-{s}" for s in SERVICES]
    assert sorted(created) == sorted(["casino-dev-ca", "casino-rng-signing", *mtls])
    ca_pem = store.secrets["casino-dev-ca"][1]["ca.crt"]
    ca = x509.load_pem_x509_certificate(ca_pem)
    for name in mtls:
        secret_type, data = store.secrets[name]
        assert secret_type == "kubernetes.io/tls"
        assert set(data) == {"tls.crt", "tls.key", "ca.crt"}
        assert data["ca.crt"] == ca_pem
        _cert(data, "tls.crt").verify_directly_issued_by(ca)
    signing = serialization.load_pem_private_key(
        store.secrets["casino-rng-signing"][1]["signing.key"], password=None
    )
    assert isinstance(signing, ed25519.Ed25519PrivateKey)
    before = dict(store.secrets)
    assert gen.ensure_secrets(store, SERVICES, "casino", NOW) == []
    assert store.secrets == before


def test_a_missing_certificate_is_issued_by_the_existing_ca() -> None:
    store = MemoryStore()
    gen.ensure_secrets(store, SERVICES, "casino", NOW)
    del store.secrets["casino-mtls-game-svc"]
    assert gen.ensure_secrets(store, SERVICES, "casino", NOW) == ["casino-mtls-game-svc"]
    ca = x509.load_pem_x509_certificate(store.secrets["casino-dev-ca"][1]["ca.crt"])
    _cert(store.secrets["casino-mtls-game-svc"][1], "tls.crt").verify_directly_issued_by(ca)


def test_losing_the_race_for_the_ca_uses_the_winners_ca() -> None:
    store = MemoryStore(lose_race="casino-dev-ca")
    created = gen.ensure_secrets(store, SERVICES, "casino", NOW)
    assert "casino-dev-ca" not in created
    ca = x509.load_pem_x509_certificate(store.secrets["casino-dev-ca"][1]["ca.crt"])
    for service in SERVICES:
        data = store.secrets[f"casino-mtls-{service}"][1]
        _cert(data, "tls.crt").verify_directly_issued_by(ca)


def test_a_ca_secret_with_a_foreign_key_is_refused() -> None:
    wrong = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    issuer = gen.new_ca(NOW)
    data = gen.ca_secret_data(issuer) | {"ca.key": wrong}
    with pytest.raises(ValueError, match="not an EC private key"):
        gen.load_ca(data)
