"""Wires the session service: settings, store, keys, upstream channels, servicers, lifecycle."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from casino.common.v1 import common_pb2
from casino.game.v1 import game_service_pb2_grpc
from casino.session.v1 import session_service_pb2
from casino.wallet.v1 import wallet_service_pb2, wallet_service_pb2_grpc
from casino_kit.channels import upstream
from casino_kit.logs import get_logger
from casino_kit.server import ServerSettings, Servicer, ServiceSpec
from casino_kit.settings import SettingsError
from session_svc import metrics
from session_svc.bet_stream import GameBets
from session_svc.bets import BetBook
from session_svc.decisions import Decisions
from session_svc.feed import Feeds, FeedSettings
from session_svc.intake import Intake
from session_svc.responsible import SELF_EXCLUSION_MIN_S
from session_svc.server import SessionServicer, add_to_server
from session_svc.sessions import MAX_SESSION_TOKEN_S, Policy, Sessions
from session_svc.store import open_store
from session_svc.tables import Seating, SeatingPolicy, Tables
from session_svc.tokens import HS256, SignKey, TokenError, b64url_decode, parse_operator_keys
from session_svc.upstream import relayed

log = get_logger(__name__)


@dataclass(frozen=True)
class Settings:
    """``CASINO_*`` variables of the session service.

    ``redis_url`` empty means the in-process store (one node). With Redis, every node must
    share ``session_key`` (base64url, at least 32 bytes) so any node verifies any token.
    Operator keys come from ``operator_keys`` (JSON, see docs/launch-token.md) or from the
    JSON file ``operator_keys_file``.
    """

    server: ServerSettings
    game_addr: str = "127.0.0.1:50052"
    wallet_addr: str = "127.0.0.1:50054"
    redis_url: str = ""
    key_prefix: str = "casino:session:"
    session_key: str = ""
    operator_keys: str = ""
    operator_keys_file: Path | None = None
    session_ttl_s: int = MAX_SESSION_TOKEN_S
    launch_max_lifetime_s: int = 600
    rate_per_s: float = 20.0
    rate_burst: int = 40
    rg_cooling_s: int = 24 * 3600
    self_exclusion_min_s: int = SELF_EXCLUSION_MIN_S
    allowed_jurisdictions: tuple[str, ...] = ()
    seat_grace_s: float = 60.0
    watch_queue_size: int = 256
    table_capacity: int = 10_000

    def __post_init__(self) -> None:
        if self.redis_url and not self.session_key:
            raise SettingsError(
                "CASINO_SESSION_KEY is required with CASINO_REDIS_URL: every node must share it"
            )
        if not 0 < self.session_ttl_s <= MAX_SESSION_TOKEN_S:
            raise SettingsError(f"CASINO_SESSION_TTL_S must be 1 to {MAX_SESSION_TOKEN_S}")
        if self.rate_per_s <= 0 or self.rate_burst < 1:
            raise SettingsError("CASINO_RATE_PER_S and CASINO_RATE_BURST must be positive")
        if self.seat_grace_s <= 0 or self.watch_queue_size < 1 or self.table_capacity < 1:
            raise SettingsError(
                "CASINO_SEAT_GRACE_S, CASINO_WATCH_QUEUE_SIZE and CASINO_TABLE_CAPACITY must be"
                " positive"
            )


def session_key(settings: Settings) -> SignKey:
    if not settings.session_key:
        # One node with the in-process store: a key that lives as long as the process, like
        # the sessions it signs.
        log.warning("no CASINO_SESSION_KEY: using a random per-process key")
        return SignKey(HS256, secret=secrets.token_bytes(32))
    try:
        secret = b64url_decode(settings.session_key.rstrip("="))
    except TokenError:
        raise SettingsError("CASINO_SESSION_KEY is not base64url") from None
    if len(secret) < 32:
        raise SettingsError("CASINO_SESSION_KEY needs at least 32 bytes")
    return SignKey(HS256, secret=secret)


def operator_keys_text(settings: Settings) -> str:
    if settings.operator_keys_file is not None:
        return settings.operator_keys_file.read_text()
    return settings.operator_keys


def build(settings: Settings) -> ServiceSpec:
    try:
        operators = parse_operator_keys(operator_keys_text(settings))
    except (ValueError, OSError) as error:
        raise SettingsError(f"CASINO_OPERATOR_KEYS: {error}") from None
    if not operators:
        log.warning("no operator keys configured: every launch token will be refused")
    store = open_store(settings.redis_url)
    sessions = Sessions(
        store,
        prefix=settings.key_prefix,
        operator_keys=operators,
        session_key=session_key(settings),
        policy=Policy(
            token_ttl_s=settings.session_ttl_s,
            launch_max_lifetime_s=settings.launch_max_lifetime_s,
            rate_per_s=settings.rate_per_s,
            rate_burst=settings.rate_burst,
            rg_cooling_s=settings.rg_cooling_s,
            self_exclusion_min_s=settings.self_exclusion_min_s,
            allowed_jurisdictions=settings.allowed_jurisdictions,
        ),
    )

    game_channel = upstream(settings.game_addr, settings.server, "casino.game.v1")
    wallet_channel = upstream(settings.wallet_addr, settings.server, "casino.wallet.v1")
    game = game_service_pb2_grpc.GameServiceStub(game_channel)
    seating = Seating(
        store,
        sessions.key,
        SeatingPolicy(grace_s=settings.seat_grace_s, capacity=settings.table_capacity),
    )
    tables = Tables(game, seating)
    feeds = Feeds(
        game,
        wallet_service_pb2_grpc.WalletServiceStub(wallet_channel),
        store,
        sessions.key,
        tables,
        BetBook(store, sessions.key),
        # A watching player's seat is renewed well within its grace period.
        FeedSettings(queue_size=settings.watch_queue_size, touch_s=settings.seat_grace_s / 3),
    )

    metrics.register(feeds.hub)
    wallet = wallet_service_pb2_grpc.WalletServiceStub(wallet_channel)
    game_bets = GameBets(game)

    async def balance(player_id: str, currency: str) -> common_pb2.Money:
        with relayed():
            reply: wallet_service_pb2.GetBalanceResponse = await wallet.GetBalance(
                wallet_service_pb2.GetBalanceRequest(player_id=player_id, currency=currency)
            )
        return reply.balance

    intake = Intake(
        game_bets,
        BetBook(store, sessions.key),
        sessions,
        seating,
        balance,
        feeds.tell,
    )
    decisions = Decisions(game, seating, balance, feeds.tell)

    async def start() -> None:
        await store.get(settings.key_prefix + "ping")  # fail at start-up if Redis is unreachable

    async def stop() -> None:
        await game_bets.close()
        await feeds.close()
        await store.close()

    return ServiceSpec(
        name="session_svc",
        servicers=[
            Servicer(
                session_service_pb2.DESCRIPTOR.services_by_name["SessionService"],
                SessionServicer(sessions, tables, feeds, intake, decisions),
                add_to_server,
            )
        ],
        dependencies={"game": game_channel, "wallet": wallet_channel},
        on_start=start,
        on_stop=stop,
        quiet_gc=True,
    )
