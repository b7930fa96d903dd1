"""DEV ONLY: create the key-material Secrets that the dev overlay cannot generate from literals.

The Job `casino-dev-secrets` runs this inside the dev namespace. It creates each Secret
only if it is missing, so re-running it changes nothing:

- `casino-dev-ca`: a throwaway CA for the dev cluster (`ca.crt`, `ca.key`);
- `casino-mtls-<service>` for every name in `CASINO_DEV_MTLS_SERVICES`: `tls.crt`,
  `tls.key` and `ca.crt`, an ECDSA P-256 certificate signed by that CA, valid for the
  service's in-cluster DNS names, usable as server and as client (mTLS);
- `casino-rng-signing`: `signing.key`, an Ed25519 private key (PKCS#8 PEM).

The production overlay never runs this: there the operator provides the Secrets.
It talks to the API server with its service account token (a Role to get and create
Secrets in this namespace only) and needs nothing beyond the standard library and
`cryptography`, both in the casino image.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
API_URL = "https://kubernetes.default.svc"
CA_SECRET = "casino-dev-ca"
RNG_SECRET = "casino-rng-signing"
VALIDITY = dt.timedelta(days=365)
LABELS = {"app.kubernetes.io/part-of": "casino", "dev-only": "true"}

SecretData = dict[str, bytes]


class SecretStore(Protocol):
    """The two Secret operations this script needs."""

    def get(self, name: str) -> SecretData | None:
        """Return the Secret's data, or None if it does not exist."""
        ...

    def create(self, name: str, secret_type: str, data: SecretData) -> bool:
        """Create the Secret; False if one with that name already exists."""
        ...


@dataclass(frozen=True)
class Issuer:
    """A CA certificate and its key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _pem_key(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def new_ca(now: dt.datetime) -> Issuer:
    """A self-signed CA, for signing the dev service certificates only."""
    key = ec.generate_private_key(ec.SECP256R1())
    common_name = "casino dev CA (not for production)"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issuer(cert=cert, key=key)


def load_ca(data: SecretData) -> Issuer:
    """The CA stored in the `casino-dev-ca` Secret."""
    key = serialization.load_pem_private_key(data["ca.key"], password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{CA_SECRET}: ca.key is not an EC private key")
    return Issuer(cert=x509.load_pem_x509_certificate(data["ca.crt"]), key=key)


def ca_secret_data(issuer: Issuer) -> SecretData:
    return {"ca.crt": _pem_cert(issuer.cert), "ca.key": _pem_key(issuer.key)}


def dns_names(service: str, namespace: str) -> list[str]:
    """The names a client may dial the service by inside the cluster."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


def issue_service_cert(
    issuer: Issuer, service: str, namespace: str, now: dt.datetime
) -> SecretData:
    """tls.crt, tls.key and ca.crt for one service: server and client auth."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, service)]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names(service, namespace)]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
        .sign(issuer.key, hashes.SHA256())
    )
    return {"tls.crt": _pem_cert(cert), "tls.key": _pem_key(key), "ca.crt": _pem_cert(issuer.cert)}


def rng_signing_key() -> SecretData:
    return {"signing.key": _pem_key(ed25519.Ed25519PrivateKey.generate())}


def ensure_secrets(
    store: SecretStore, services: list[str], namespace: str, now: dt.datetime
) -> list[str]:
    """Create whichever dev Secrets are missing; return the names created."""
    created: list[str] = []
    missing = [s for s in services if store.get(f"casino-mtls-{s}") is None]
    if missing:
        issuer = _ensure_ca(store, now, created)
        for service in missing:
            name = f"casino-mtls-{service}"
            data = issue_service_cert(issuer, service, namespace, now)
            if store.create(name, "kubernetes.io/tls", data):
                created.append(name)
    if store.get(RNG_SECRET) is None and store.create(RNG_SECRET, "Opaque", rng_signing_key()):
        created.append(RNG_SECRET)
    return created


def _ensure_ca(store: SecretStore, now: dt.datetime, created: list[str]) -> Issuer:
    existing = store.get(CA_SECRET)
    if existing is not None:
        return load_ca(existing)
    issuer = new_ca(now)
    if store.create(CA_SECRET, "Opaque", ca_secret_data(issuer)):
        created.append(CA_SECRET)
        return issuer
    # Another run created it first: use theirs, so every certificate shares one CA.
    raced = store.get(CA_SECRET)
    if raced is None:
        raise RuntimeError(f"{CA_SECRET} exists and then does not")
    return load_ca(raced)


class KubernetesSecrets:
    """SecretStore over the Kubernetes API with the pod's service account."""

    def __init__(self, api_url: str, namespace: str, token: str, context: ssl.SSLContext) -> None:
        self._base = f"{api_url}/api/v1/namespaces/{namespace}/secrets"
        self._namespace = namespace
        self._token = token
        self._context = context

    @classmethod
    def in_cluster(cls) -> KubernetesSecrets:
        namespace = (SA_DIR / "namespace").read_text().strip()
        token = (SA_DIR / "token").read_text().strip()
        context = ssl.create_default_context(cafile=str(SA_DIR / "ca.crt"))
        return cls(API_URL, namespace, token, context)

    @property
    def namespace(self) -> str:
        return self._namespace

    def get(self, name: str) -> SecretData | None:
        try:
            body = self._call("GET", f"{self._base}/{name}")
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return None
            raise
        data = body.get("data") or {}
        if not isinstance(data, dict):
            raise ValueError(f"secret {name}: data is not a mapping")
        return {str(k): base64.b64decode(str(v)) for k, v in data.items()}

    def create(self, name: str, secret_type: str, data: SecretData) -> bool:
        manifest = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": self._namespace, "labels": LABELS},
            "type": secret_type,
            "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
        }
        try:
            self._call("POST", self._base, manifest)
        except urllib.error.HTTPError as err:
            if err.code == 409:
                return False
            raise
        return True

    def _call(self, method: str, url: str, body: object | None = None) -> dict[str, object]:
        request = urllib.request.Request(
            url,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, context=self._context, timeout=30) as response:
            result: dict[str, object] = json.load(response)
            return result


def main() -> int:
    services = os.environ["CASINO_DEV_MTLS_SERVICES"].split()
    store = KubernetesSecrets.in_cluster()
    created = ensure_secrets(store, services, store.namespace, dt.datetime.now(dt.UTC))
    print("created: " + (", ".join(created) if created else "nothing, all present"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
