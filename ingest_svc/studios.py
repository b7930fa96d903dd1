"""Studio credentials: which studio is calling, and which streams it may publish.

Studios are third parties reaching the ingest from outside (DESIGN invariant 8), so every
Publish carries the studio's own bearer token in the gRPC metadata
``authorization: Bearer <studio_id>.<secret>``. The keys are configured like the session
service's operator keys, as JSON keyed by studio id (``CASINO_STUDIO_KEYS`` or the file
``CASINO_STUDIO_KEYS_FILE``)::

    {"studio-riga": {"secret": "<base64url of >= 32 random bytes>",
                     "streams": ["table-7", "table-8-*"]}}

``streams`` are the stream ids (shell patterns) the studio may publish: a studio cannot
publish, or take over, another studio's table. See docs/studio-credentials.md.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase

from casino_kit.errors import PermissionDenied, Unauthenticated

MIN_SECRET_BYTES = 32
_DUMMY = bytes(MIN_SECRET_BYTES)


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Studio:
    """One studio: its secret and the stream ids it may publish."""

    studio_id: str
    secret: bytes
    streams: tuple[str, ...]

    def may_publish(self, stream_id: str) -> bool:
        return any(fnmatchcase(stream_id, pattern) for pattern in self.streams)


def parse_studio_keys(text: str) -> dict[str, Studio]:
    """Studios from their JSON configuration; ValueError says what is wrong."""
    if not text.strip():
        return {}
    entries = json.loads(text)
    if not isinstance(entries, dict):
        raise ValueError("must be a JSON object keyed by studio id")
    studios = {}
    for studio_id, entry in entries.items():
        if not studio_id or not isinstance(entry, dict):
            raise ValueError(f"studio {studio_id!r}: needs an object with secret and streams")
        try:
            secret = b64url_decode(str(entry.get("secret", "")))
        except (binascii.Error, ValueError):
            raise ValueError(f"studio {studio_id!r}: secret is not base64url") from None
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"studio {studio_id!r}: secret needs {MIN_SECRET_BYTES} bytes")
        streams = entry.get("streams")
        if not isinstance(streams, list) or not all(isinstance(s, str) and s for s in streams):
            raise ValueError(f"studio {studio_id!r}: streams must be a list of stream ids")
        studios[studio_id] = Studio(studio_id, secret, tuple(streams))
    return studios


class StudioAuth:
    """Checks a call's studio token, then the stream the studio names."""

    def __init__(self, studios: dict[str, Studio]) -> None:
        self.studios = studios

    def authenticate(self, metadata: Iterable[tuple[str, str | bytes]]) -> Studio:
        """The calling studio, or UNAUTHENTICATED (the message never says which part failed)."""
        header = next((str(v) for k, v in metadata if k == "authorization"), "")
        scheme, _, token = header.partition(" ")
        studio_id, _, encoded = token.rpartition(".")
        try:
            given = b64url_decode(encoded) if scheme == "Bearer" and studio_id else b""
        except (binascii.Error, ValueError):
            given = b""
        studio = self.studios.get(studio_id)
        # Compared even for an unknown studio, so timing does not tell which ids exist.
        if not hmac.compare_digest(given, studio.secret if studio else _DUMMY) or not studio:
            raise Unauthenticated(
                "STUDIO_CREDENTIALS_INVALID",
                "studio credentials are missing or invalid: "
                "authorization: Bearer <studio_id>.<secret>",
            )
        return studio

    @staticmethod
    def authorize(studio: Studio, stream_id: str) -> None:
        if not studio.may_publish(stream_id):
            raise PermissionDenied(
                "STUDIO_NOT_AUTHORIZED",
                f"studio {studio.studio_id} may not publish stream {stream_id}",
                metadata={"studio_id": studio.studio_id, "stream_id": stream_id},
            )
