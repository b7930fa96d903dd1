"""Signing keys behind one interface: a software Ed25519 key file, or a key inside a PKCS#11 HSM.

The service only ever asks a provider to sign a record hash and for random seed bytes; it
never sees the HSM's private key. Verification needs only the 32-byte public key, so it
lives here as plain functions usable by anyone (``casino verify``, tests, auditors).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

ALGORITHM = "SIGNATURE_ALGORITHM_ED25519"
PUBLIC_KEY_BYTES = 32
ED25519_OID = "1.3.101.112"


class KeyUnavailable(RuntimeError):
    """The configured key cannot be used (missing file, missing token or key, bad PIN)."""


class KeyProvider(Protocol):
    """Signs with a private key it may never reveal; supplies seed randomness."""

    @property
    def key_id(self) -> str: ...

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte Ed25519 public key."""
        ...

    async def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``message``."""
        ...

    async def random_bytes(self, count: int) -> bytes:
        """``count`` bytes from the provider's CSPRNG (the HSM's own, for PKCS#11)."""
        ...

    def close(self) -> None: ...


def key_id_of(public_key: bytes) -> str:
    """A key's id: the first 32 hex digits of SHA-256 over the raw public key."""
    return hashlib.sha256(public_key).hexdigest()[:32]


def public_pem(public_key: bytes) -> str:
    """The key as a PEM SubjectPublicKeyInfo block, for tools such as openssl."""
    pem = Ed25519PublicKey.from_public_bytes(public_key).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem.decode()


def load_public_key(data: bytes) -> bytes:
    """A raw public key from a PEM block, 64 hex digits or the 32 raw bytes."""
    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(text)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if len(text) == 2 * PUBLIC_KEY_BYTES:
        return bytes.fromhex(text.decode())
    if len(data) == PUBLIC_KEY_BYTES:
        return data
    raise ValueError("expected a PEM public key, 64 hex digits or 32 raw bytes")


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``message`` by ``public_key``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


class SoftwareKey:
    """An Ed25519 key held in this process, loaded from a PKCS#8 PEM file."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private = private_key
        self._public = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self._id = key_id_of(self._public)

    @property
    def key_id(self) -> str:
        return self._id

    @property
    def public_key(self) -> bytes:
        return self._public

    @classmethod
    def load(cls, path: Path) -> SoftwareKey:
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as error:
            raise KeyUnavailable(f"cannot load the signing key {path}: {error}") from error
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyUnavailable(f"{path} is not an Ed25519 private key")
        return cls(key)

    @classmethod
    def generate(cls, path: Path) -> SoftwareKey:
        """A new key written to ``path`` (mode 0600); refuses to overwrite an existing file."""
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
            file.flush()
            os.fsync(file.fileno())
        return cls(key)

    async def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    async def random_bytes(self, count: int) -> bytes:
        return os.urandom(count)

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class Pkcs11Config:
    """Where the HSM key lives: the module (.so), the token, its user PIN, the key label."""

    module: str
    token_label: str
    pin: str
    key_label: str


def _open_session(config: Pkcs11Config, rw: bool = False) -> Any:
    import pkcs11
    from pkcs11.exceptions import NoSuchToken, PinIncorrect, UserAlreadyLoggedIn

    if not Path(config.module).exists():
        raise KeyUnavailable(f"PKCS#11 module {config.module} not found (install its package)")
    library = pkcs11.lib(config.module)
    try:
        token = library.get_token(token_label=config.token_label)
    except NoSuchToken:
        raise KeyUnavailable(f"no PKCS#11 token labelled {config.token_label!r}") from None
    try:
        return token.open(user_pin=config.pin, rw=rw)
    except UserAlreadyLoggedIn:
        # PKCS#11 logins are per application: another session of this process logged in.
        return token.open(rw=rw)
    except PinIncorrect:
        raise KeyUnavailable(f"wrong PIN for PKCS#11 token {config.token_label!r}") from None


def _raw_point(ec_point: bytes) -> bytes:
    """CKA_EC_POINT holds the 32 key bytes, usually DER-wrapped as an OCTET STRING."""
    if len(ec_point) == PUBLIC_KEY_BYTES + 2 and ec_point[:2] == b"\x04\x20":
        return ec_point[2:]
    if len(ec_point) == PUBLIC_KEY_BYTES:
        return ec_point
    raise KeyUnavailable("the HSM public key is not a 32-byte Ed25519 point")


def provision_pkcs11_key(config: Pkcs11Config) -> bytes:
    """Generate a non-extractable Ed25519 pair labelled ``key_label`` unless one exists;
    return its raw public key. An operator's set-up step (and the tests'), never automatic."""
    from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
    from pkcs11.util.ec import encode_named_curve_parameters

    with _open_session(config, rw=True) as session:
        found = list(
            session.get_objects(
                {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.LABEL: config.key_label}
            )
        )
        if found:
            return _raw_point(found[0][Attribute.EC_POINT])
        parameters = session.create_domain_parameters(
            KeyType.EC_EDWARDS,
            {Attribute.EC_PARAMS: encode_named_curve_parameters(ED25519_OID)},
            local=True,
        )
        public, _ = parameters.generate_keypair(
            mechanism=Mechanism.EC_EDWARDS_KEY_PAIR_GEN,
            store=True,
            label=config.key_label,
            private_template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False},
        )
        return _raw_point(public[Attribute.EC_POINT])


class Pkcs11Key:
    """An Ed25519 key inside a PKCS#11 token; signing and randomness happen in the HSM.

    One session serves every call; PKCS#11 sessions are not safe for concurrent use, so calls
    take a lock and run in a worker thread, keeping a slow HSM off the event loop.
    """

    def __init__(self, config: Pkcs11Config) -> None:
        from pkcs11 import Attribute, ObjectClass

        self._config = config
        self._lock = threading.Lock()
        self._session = _open_session(config)
        try:
            public = self._find(ObjectClass.PUBLIC_KEY)
            self._private = self._find(ObjectClass.PRIVATE_KEY)
            self._public = _raw_point(public[Attribute.EC_POINT])
        except BaseException:
            self._session.close()
            raise
        self._id = key_id_of(self._public)

    def _find(self, object_class: Any) -> Any:
        from pkcs11 import Attribute

        found = list(
            self._session.get_objects(
                {Attribute.CLASS: object_class, Attribute.LABEL: self._config.key_label}
            )
        )
        if len(found) != 1:
            raise KeyUnavailable(
                f"expected one {object_class.name} labelled {self._config.key_label!r} on "
                f"token {self._config.token_label!r}, found {len(found)}"
            )
        return found[0]

    @property
    def key_id(self) -> str:
        return self._id

    @property
    def public_key(self) -> bytes:
        return self._public

    def sign_now(self, message: bytes) -> bytes:
        """Sign on the calling thread (benchmarks, scripts)."""
        from pkcs11 import Mechanism

        with self._lock:
            signature: bytes = self._private.sign(message, mechanism=Mechanism.EDDSA)
        return signature

    async def sign(self, message: bytes) -> bytes:
        return await asyncio.to_thread(self.sign_now, message)

    def _random(self, count: int) -> bytes:
        with self._lock:
            data: bytes = self._session.generate_random(count * 8)
        return data

    async def random_bytes(self, count: int) -> bytes:
        return await asyncio.to_thread(self._random, count)

    def close(self) -> None:
        with self._lock:
            self._session.close()
