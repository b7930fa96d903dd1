"""Launch and session tokens: compact JWS (JWT) signing and verification, no I/O.

Operators sign launch tokens with their own key (HS256 or EdDSA/Ed25519); the service signs
session tokens with its key (HS256), shared by every session process of a deployment. The
format is standard JWT so an operator can produce launch tokens with any JWT library; the
exact rules are in docs/launch-token.md. Algorithms are pinned per key, never taken from the
token alone, so an attacker cannot pick a weaker one (the classic "alg confusion").
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

HS256 = "HS256"
EDDSA = "EdDSA"
LAUNCH_AUDIENCE = "casino.session"
SESSION_ISSUER = "casino.session"
CLOCK_SKEW_S = 30
"""Tolerated difference between the operator's clock and ours, for ``iat`` and ``nbf``."""

_OPERATOR = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_PLAYER = re.compile(r"^[\x21-\x7e]{1,128}$")
_NONCE = re.compile(r"^[\x21-\x7e]{16,128}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_JURISDICTION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
_MAX_TOKEN_CHARS = 4096


class TokenError(Exception):
    """A token was refused; ``expired`` tells an old but otherwise good token from a bad one."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise TokenError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("not base64url") from None


@dataclass(frozen=True)
class VerifyKey:
    """A key that verifies signatures: an HMAC secret or an Ed25519 public key."""

    alg: str
    secret: bytes = b""
    public_key: Ed25519PublicKey | None = None

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        if self.alg == HS256:
            expected = hmac.new(self.secret, signing_input, hashlib.sha256).digest()
            return hmac.compare_digest(expected, signature)
        assert self.public_key is not None
        try:
            self.public_key.verify(signature, signing_input)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SignKey:
    """A key that signs: an HMAC secret or an Ed25519 private key."""

    alg: str
    secret: bytes = b""
    private_key: Ed25519PrivateKey | None = None

    def sign(self, signing_input: bytes) -> bytes:
        if self.alg == HS256:
            return hmac.new(self.secret, signing_input, hashlib.sha256).digest()
        assert self.private_key is not None
        return self.private_key.sign(signing_input)

    def verify_key(self) -> VerifyKey:
        if self.alg == HS256:
            return VerifyKey(HS256, secret=self.secret)
        assert self.private_key is not None
        return VerifyKey(EDDSA, public_key=self.private_key.public_key())


def encode(claims: Mapping[str, Any], key: SignKey) -> str:
    """A compact JWS of ``claims`` signed with ``key``."""
    header = b64url_encode(json.dumps({"alg": key.alg, "typ": "JWT"}).encode())
    payload = b64url_encode(json.dumps(dict(claims), separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    return f"{header}.{payload}.{b64url_encode(key.sign(signing_input))}"


def issue_launch(
    operator_id: str,
    key: SignKey,
    player_id: str,
    *,
    currency: str = "EUR",
    jurisdiction: str = "MT",
    lifetime_s: int = 300,
) -> str:
    """A launch token as an operator's back end signs it (docs/launch-token.md); the demo
    and the benchmarks play the operator with it."""
    now = int(time.time())
    claims = {
        "iss": operator_id,
        "aud": "casino.session",
        "sub": player_id,
        "cur": currency,
        "jur": jurisdiction,
        "iat": now,
        "exp": now + lifetime_s,
        "jti": b64url_encode(secrets.token_bytes(16)),
    }
    return encode(claims, key)


def decode(token: str, key: VerifyKey) -> dict[str, Any]:
    """The claims of a compact JWS whose signature ``key`` verifies; TokenError otherwise."""
    if len(token) > _MAX_TOKEN_CHARS or not token.isascii():
        raise TokenError("malformed token")
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("malformed token")
    header = _json_object(b64url_decode(parts[0]))
    if header.get("alg") != key.alg or "crit" in header:
        raise TokenError("unexpected algorithm")
    if not key.verify(f"{parts[0]}.{parts[1]}".encode("ascii"), b64url_decode(parts[2])):
        raise TokenError("bad signature")
    return _json_object(b64url_decode(parts[1]))


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise TokenError("malformed token") from None
    if not isinstance(value, dict):
        raise TokenError("malformed token")
    return value


def _string(claims: Mapping[str, Any], name: str, pattern: re.Pattern[str]) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise TokenError(f"claim {name} is missing or malformed")
    return value


def _time(claims: Mapping[str, Any], name: str, *, required: bool = True) -> int | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise TokenError(f"claim {name} is missing or not an integer")
    return value


@dataclass(frozen=True)
class LaunchClaims:
    """What a verified launch token says about the player."""

    operator_id: str
    player_id: str
    currency: str
    jurisdiction: str
    nonce: str
    expires_at: int


def verify_launch(
    token: str, operator_id: str, key: VerifyKey, now: float, max_lifetime_s: int
) -> LaunchClaims:
    """Check signature, issuer, audience, times and claims of an operator's launch token.

    The nonce is not checked here: remembering used nonces is state, kept by the caller.
    """
    claims = decode(token, key)
    if claims.get("iss") != operator_id:
        raise TokenError("issuer is not the operator")
    audience = claims.get("aud")
    if audience != LAUNCH_AUDIENCE and not (
        isinstance(audience, list) and LAUNCH_AUDIENCE in audience
    ):
        raise TokenError("audience is not casino.session")
    expires = _time(claims, "exp")
    issued = _time(claims, "iat")
    assert expires is not None and issued is not None
    not_before = _time(claims, "nbf", required=False)
    if issued > now + CLOCK_SKEW_S or (not_before is not None and not_before > now + CLOCK_SKEW_S):
        raise TokenError("issued in the future")
    if expires - issued > max_lifetime_s:
        raise TokenError(f"lifetime above {max_lifetime_s} s")
    if expires <= now:
        raise TokenError("launch token expired", expired=True)
    return LaunchClaims(
        operator_id=operator_id,
        player_id=_string(claims, "sub", _PLAYER),
        currency=_string(claims, "cur", _CURRENCY),
        jurisdiction=_string(claims, "jur", _JURISDICTION),
        nonce=_string(claims, "jti", _NONCE),
        expires_at=expires,
    )


def platform_player_id(operator_id: str, player_id: str) -> str:
    """The id the rest of the platform knows a player by (wallet account, seat, bets,
    streams): operators name their players independently, so two operators' "alice" must
    never share an account. Operators fund this account in the wallet."""
    return f"{operator_id}:{player_id}"


@dataclass(frozen=True)
class SessionClaims:
    """Who a session token speaks for, and until when."""

    session_id: str
    operator_id: str
    player_id: str
    currency: str
    jurisdiction: str
    issued_at: int
    expires_at: int

    @property
    def platform_player_id(self) -> str:
        return platform_player_id(self.operator_id, self.player_id)

    def to_claims(self) -> dict[str, Any]:
        return {
            "iss": SESSION_ISSUER,
            "sid": self.session_id,
            "op": self.operator_id,
            "sub": self.player_id,
            "cur": self.currency,
            "jur": self.jurisdiction,
            "iat": self.issued_at,
            "exp": self.expires_at,
        }


def issue_session(claims: SessionClaims, key: SignKey) -> str:
    """A signed session token; a random ``jti`` makes two tokens of one second differ."""
    return encode({**claims.to_claims(), "jti": secrets.token_urlsafe(12)}, key)


def verify_session(token: str, key: VerifyKey, now: float) -> SessionClaims:
    """The claims of a session token this service signed; TokenError when bad or expired."""
    claims = decode(token, key)
    if claims.get("iss") != SESSION_ISSUER:
        raise TokenError("not a session token")
    expires = _time(claims, "exp")
    issued = _time(claims, "iat")
    assert expires is not None and issued is not None
    fields = {name: claims.get(name) for name in ("sid", "op", "sub", "cur", "jur")}
    if not all(isinstance(v, str) and v for v in fields.values()):
        raise TokenError("malformed session token")
    if expires <= now:
        raise TokenError("session token expired", expired=True)
    return SessionClaims(
        session_id=str(fields["sid"]),
        operator_id=str(fields["op"]),
        player_id=str(fields["sub"]),
        currency=str(fields["cur"]),
        jurisdiction=str(fields["jur"]),
        issued_at=issued,
        expires_at=expires,
    )


def parse_operator_keys(text: str) -> dict[str, VerifyKey]:
    """Operator keys from JSON: ``{"<operator_id>": {"alg": "HS256", "secret": "<b64url>"}}``
    or ``{"alg": "EdDSA", "public_key": "<b64url of the 32-byte raw key>"}`` (a JWK's ``x``).

    Raises ValueError naming the first bad entry, so a broken file stops the service at start.
    """
    try:
        entries = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as error:
        raise ValueError(f"operator keys are not JSON: {error}") from None
    if not isinstance(entries, dict):
        raise ValueError("operator keys must be a JSON object keyed by operator id")
    keys: dict[str, VerifyKey] = {}
    for operator_id, entry in entries.items():
        if not _OPERATOR.match(operator_id):
            raise ValueError(
                f"operator id {operator_id!r}: 1 to 64 letters, digits, '.', '_' or '-' "
                "(it prefixes the operator's player ids: a ':' would make two players one)"
            )
        try:
            keys[operator_id] = _operator_key(entry)
        except (TokenError, ValueError, TypeError, KeyError) as error:
            raise ValueError(f"operator key {operator_id!r}: {error}") from None
    return keys


def _operator_key(entry: Any) -> VerifyKey:
    alg = entry["alg"]
    if alg == HS256:
        secret = b64url_decode(entry["secret"])
        if len(secret) < 32:
            raise ValueError("an HS256 secret needs at least 32 bytes")
        return VerifyKey(HS256, secret=secret)
    if alg == EDDSA:
        raw = b64url_decode(entry["public_key"])
        if len(raw) != 32:
            raise ValueError("an Ed25519 public key is 32 bytes")
        return VerifyKey(EDDSA, public_key=Ed25519PublicKey.from_public_bytes(raw))
    raise ValueError(f"alg must be {HS256} or {EDDSA}")
