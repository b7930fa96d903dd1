"""Sessions: launch-token exchange, session tokens, revocation, rate limits, RG state in the store.

Every player call is authenticated here: the token's signature and expiry are checked
without I/O, then one store read confirms the session is open and the player is not
excluded, and the player's token bucket is charged. Everything shared lives in the store,
so any session process can serve any player.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from casino_kit.errors import (
    AlreadyExists,
    FailedPrecondition,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from session_svc import responsible
from session_svc.responsible import Block, RgState
from session_svc.store import Store
from session_svc.tokens import (
    CLOCK_SKEW_S,
    SessionClaims,
    SignKey,
    TokenError,
    VerifyKey,
    issue_session,
    platform_player_id,
    verify_launch,
    verify_session,
)

MAX_SESSION_TOKEN_S = 300
"""Session tokens live at most five minutes: a stolen one is soon worthless."""
VERIFIED_TOKENS = 100_000
"""Tokens whose signature this process remembers as checked; forgotten all at once when full."""


@dataclass(frozen=True)
class Policy:
    """The tunable numbers of sessions, from settings."""

    token_ttl_s: int = MAX_SESSION_TOKEN_S
    launch_max_lifetime_s: int = 600
    rate_per_s: float = 20.0
    rate_burst: int = 40
    rg_cooling_s: int = 24 * 3600
    self_exclusion_min_s: int = responsible.SELF_EXCLUSION_MIN_S
    allowed_jurisdictions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Session:
    """An open session as stored: who, where, since when."""

    session_id: str
    operator_id: str
    player_id: str
    currency: str
    jurisdiction: str
    opened_at: float
    locale: str = ""
    closed_at: float | None = None

    @property
    def platform_player_id(self) -> str:
        return platform_player_id(self.operator_id, self.player_id)

    def to_json(self) -> str:
        return json.dumps(self.__dict__)

    @classmethod
    def from_json(cls, text: str) -> Session:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: int


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a player RPC."""

    session: Session
    claims: SessionClaims
    record: str
    """The session record as stored, for compare-and-set."""
    rg: RgState
    """The player's responsible-gaming state, read with the session."""


def rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def blocked_error(block: Block) -> FailedPrecondition:
    metadata = {} if block.until is None else {"until": rfc3339(block.until)}
    what = "self-excluded" if block.reason == "SELF_EXCLUDED" else "cooling off"
    return FailedPrecondition(block.reason, f"the player is {what}", metadata=metadata)


def new_id() -> str:
    """A time-sortable id: 48 bits of milliseconds, then 80 random bits (ULID layout, hex)."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


def _invalid(message: str) -> Unauthenticated:
    return Unauthenticated("SESSION_INVALID", message)


class Sessions:
    """The session domain over a store; ``clock`` is wall time in seconds (tests move it)."""

    def __init__(
        self,
        store: Store,
        *,
        prefix: str,
        operator_keys: Mapping[str, VerifyKey],
        session_key: SignKey,
        policy: Policy,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.operator_keys = dict(operator_keys)
        self.session_key = session_key
        self.verify_key = session_key.verify_key()
        self.policy = policy
        self.clock = clock
        self._verified: dict[str, SessionClaims] = {}

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def _rg_key(self, operator_id: str, player_id: str) -> str:
        return self.key("rg", operator_id, player_id)

    # -- launch -------------------------------------------------------------------------------

    async def open(
        self, operator_id: str, launch_token: str, idempotency_key: str, locale: str = ""
    ) -> tuple[Session, IssuedToken]:
        """Exchange a launch token for a session; a retry with the same key gets it back."""
        now = self.clock()
        key = self.operator_keys.get(operator_id)
        if key is None:
            raise Unauthenticated("LAUNCH_TOKEN_INVALID", "unknown operator")
        try:
            launch = verify_launch(
                launch_token, operator_id, key, now, self.policy.launch_max_lifetime_s
            )
        except TokenError as error:
            reason = f"launch token refused: {error}"
            raise Unauthenticated("LAUNCH_TOKEN_INVALID", reason) from None
        allowed = self.policy.allowed_jurisdictions
        if allowed and launch.jurisdiction not in allowed:
            raise PermissionDenied(
                "JURISDICTION_BLOCKED", f"jurisdiction {launch.jurisdiction} is not served"
            )
        state = RgState.from_json(await self.store.get(self._rg_key(operator_id, launch.player_id)))
        block = state.block(now)
        if block is not None:
            raise blocked_error(block)
        nonce_key = self.key("nonce", operator_id, launch.nonce)
        fingerprint = {"idem": idempotency_key, "token": _digest(launch_token)}
        if await self.store.get(nonce_key) is not None:
            return await self._replayed(nonce_key, fingerprint)
        session = Session(
            session_id=new_id(),
            operator_id=operator_id,
            player_id=launch.player_id,
            currency=launch.currency,
            jurisdiction=launch.jurisdiction,
            opened_at=now,
            locale=locale,
        )
        issued = await self._issue(session, now, previous=None)
        answer = {**fingerprint, "session": session.to_json(), "issued": issued.__dict__}
        # The nonce is claimed with the complete answer in one atomic write, so a retry always
        # finds the answer and a crash before it leaves the token unused. It is remembered
        # until the launch token expires; after that the token is refused for its age.
        ttl = launch.expires_at - now + CLOCK_SKEW_S
        if await self.store.set_if_absent(nonce_key, json.dumps(answer), ttl):
            return session, issued
        await self.store.delete(self.key("session", session.session_id))  # lost the race
        return await self._replayed(nonce_key, fingerprint)

    async def _replayed(
        self, nonce_key: str, fingerprint: Mapping[str, str]
    ) -> tuple[Session, IssuedToken]:
        """A used nonce: the first answer again for a retry of the same call, else refused."""
        raw = await self.store.get(nonce_key)
        first = json.loads(raw) if raw else {}
        if any(first.get(name) != value for name, value in fingerprint.items()):
            raise Unauthenticated("LAUNCH_TOKEN_INVALID", "launch token already used")
        return Session.from_json(first["session"]), IssuedToken(**first["issued"])

    async def _issue(self, session: Session, now: float, previous: str | None) -> IssuedToken:
        """A new token; the session record's life is extended only if it is still
        ``previous`` (None: a new session), so a refresh racing a close cannot reopen it."""
        issued_at = int(now)
        expires_at = issued_at + min(self.policy.token_ttl_s, MAX_SESSION_TOKEN_S)
        claims = SessionClaims(
            session_id=session.session_id,
            operator_id=session.operator_id,
            player_id=session.player_id,
            currency=session.currency,
            jurisdiction=session.jurisdiction,
            issued_at=issued_at,
            expires_at=expires_at,
        )
        # The record outlives the newest token by the clock skew only: once no token is valid
        # the session cannot be refreshed, so it is gone.
        key, ttl = self.key("session", session.session_id), expires_at - now + CLOCK_SKEW_S
        if previous is None:
            await self.store.set(key, session.to_json(), ttl)
        elif not await self.store.compare_and_set(key, previous, session.to_json(), ttl):
            raise _invalid("session closed")
        return IssuedToken(issue_session(claims, self.session_key), expires_at)

    # -- every player call --------------------------------------------------------------------

    async def authenticate(
        self,
        authorization: str | None,
        *,
        allow_blocked: bool = False,
        allow_closed: bool = False,
    ) -> Principal:
        """The caller of a player RPC, from ``authorization: Bearer <token>``; charges its
        rate limit. ``allow_blocked`` lets an excluded player extend an exclusion and
        ``allow_closed`` reach a closed session, so a retry of SelfExclude or CloseSession
        still finds its first answer."""
        claims = self.verify(authorization)
        return await self.admit(claims, allow_blocked=allow_blocked, allow_closed=allow_closed)

    def verify(self, authorization: str | None) -> SessionClaims:
        """The claims of a bearer session token, checked without I/O. A player sends the same
        token with every call until it is refreshed, so its signature is checked once and
        only its expiry every time."""
        now = self.clock()
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _invalid("missing bearer token")
        claims = self._verified.get(token)
        if claims is None:
            try:
                claims = verify_session(token, self.verify_key, now)
            except TokenError as error:
                if error.expired:
                    raise Unauthenticated("SESSION_EXPIRED", "session token expired") from None
                raise _invalid(f"session token refused: {error}") from None
            if len(self._verified) >= VERIFIED_TOKENS:
                self._verified.clear()
            self._verified[token] = claims
        if claims.expires_at <= now:
            raise Unauthenticated("SESSION_EXPIRED", "session token expired")
        return claims

    async def admit(
        self, claims: SessionClaims, *, allow_blocked: bool = False, allow_closed: bool = False
    ) -> Principal:
        """The caller of verified ``claims``: its session still open and the player not
        excluded, read in one round trip with the charge of its rate limit."""
        now = self.clock()
        stored, bucket = await asyncio.gather(
            self.store.get_many(
                [
                    self.key("session", claims.session_id),
                    self._rg_key(claims.operator_id, claims.player_id),
                ]
            ),
            self.store.take_token(
                self.key("rate", claims.platform_player_id),
                self.policy.rate_per_s,
                self.policy.rate_burst,
            ),
        )
        raw_session, raw_rg = stored
        if raw_session is None:
            raise _invalid("session closed or unknown")
        session = Session.from_json(raw_session)
        if session.closed_at is not None and not allow_closed:
            raise _invalid("session closed")
        if (session.operator_id, session.player_id) != (claims.operator_id, claims.player_id):
            raise PermissionDenied("SESSION_INVALID", "the token does not belong to this session")
        rg = RgState.from_json(raw_rg)
        if not allow_blocked and rg.block(now) is not None:
            # Exclusion revokes every session of the player, on every node, at once.
            raise _invalid("session revoked: the player is excluded")
        if not bucket.allowed:
            raise ResourceExhausted(
                "RATE_LIMITED",
                "too many calls",
                metadata={"retry_after_ms": str(bucket.retry_after_ms)},
            )
        return Principal(session, claims, raw_session, rg)

    async def refresh(self, principal: Principal) -> IssuedToken:
        now = self.clock()
        state = RgState.from_json(
            await self.store.get(
                self._rg_key(principal.session.operator_id, principal.session.player_id)
            )
        )
        left = state.session_time_left(principal.session.opened_at, now)
        if left is not None and left <= 0:
            raise FailedPrecondition(
                "LIMIT_EXCEEDED_SESSION_TIME", "the session time limit is used up"
            )
        return await self._issue(principal.session, now, previous=principal.record)

    async def close(self, principal: Principal) -> float:
        """Revoke the session (all its tokens, on every node); returns when it closed.

        The record stays, marked closed, while a token of it could still be valid, so a
        retried CloseSession finds its first answer instead of an unknown session."""
        if principal.session.closed_at is not None:
            return principal.session.closed_at
        now = self.clock()
        closed = replace(principal.session, closed_at=now)
        ttl = min(self.policy.token_ttl_s, MAX_SESSION_TOKEN_S) + CLOCK_SKEW_S
        await self.store.set(self.key("session", closed.session_id), closed.to_json(), ttl)
        return now

    # -- responsible gaming -------------------------------------------------------------------

    async def rg_state(self, principal: Principal) -> RgState:
        key = self._rg_key(principal.session.operator_id, principal.session.player_id)
        return RgState.from_json(await self.store.get(key)).at(self.clock())

    async def update_rg(
        self, principal: Principal, change: Callable[[RgState, float], RgState]
    ) -> RgState:
        """Apply ``change`` to the player's RG state, atomically against every other node.

        Compare-and-set, retried on a lost race: a self-exclusion written by one node can
        never be overwritten by a limit change computed on another from the older state.
        """
        key = self._rg_key(principal.session.operator_id, principal.session.player_id)
        while True:
            raw = await self.store.get(key)
            updated = change(RgState.from_json(raw), self.clock())
            if await self.store.compare_and_set(key, raw, updated.to_json()):
                return updated


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def once(
    store: Store,
    key: str,
    fingerprint: str,
    run: Callable[[], Awaitable[bytes]],
    ttl_s: float = 24 * 3600,
) -> bytes:
    """Run a mutating call once per idempotency ``key``: a repeat gets the first answer, the
    same key with another payload (``fingerprint``) is refused."""

    def check(raw: str) -> bytes:
        first = json.loads(raw)
        if first["fp"] != fingerprint:
            raise AlreadyExists("IDEMPOTENCY_KEY_REUSED", "idempotency key used for another call")
        return bytes.fromhex(first["body"])

    existing = await store.get(key)
    if existing is not None:
        return check(existing)
    body = await run()
    record = json.dumps({"fp": fingerprint, "body": body.hex()})
    if await store.set_if_absent(key, record, ttl_s):
        return body
    winner = await store.get(key)
    return body if winner is None else check(winner)
