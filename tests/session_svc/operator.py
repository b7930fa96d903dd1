"""An operator's side of the launch-token exchange, written from docs/launch-token.md alone.

It deliberately shares no code with session_svc.tokens: it proves the documented format is
enough to produce tokens the service accepts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class Operator:
    """An operator with an HS256 secret or an Ed25519 key pair."""

    operator_id: str
    alg: str = "HS256"
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    private_key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    def key_entry(self) -> dict[str, str]:
        """This operator's entry in the service's CASINO_OPERATOR_KEYS JSON."""
        if self.alg == "HS256":
            return {"alg": "HS256", "secret": b64url(self.secret)}
        raw = self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"alg": "EdDSA", "public_key": b64url(raw)}

    def claims(self, player_id: str, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.operator_id,
            "aud": "casino.session",
            "sub": player_id,
            "cur": "EUR",
            "jur": "MT",
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_urlsafe(16),
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def sign(self, claims: dict[str, Any], alg: str | None = None) -> str:
        alg = alg or self.alg
        header = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
        payload = b64url(json.dumps(claims).encode())
        signing_input = f"{header}.{payload}".encode("ascii")
        if alg == "HS256":
            signature = hmac.new(self.secret, signing_input, hashlib.sha256).digest()
        else:
            signature = self.private_key.sign(signing_input)
        return f"{header}.{payload}.{b64url(signature)}"

    def launch_token(self, player_id: str, **overrides: Any) -> str:
        return self.sign(self.claims(player_id, **overrides))


def operator_keys_json(*operators: Operator) -> str:
    return json.dumps({op.operator_id: op.key_entry() for op in operators})
