"""Lobby, seats, balance and WatchTable through two real session processes on one Redis,
with real game, wallet and RNG processes: what one node does, the other sees."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
import pytest_asyncio
from google.protobuf.duration_pb2 import Duration

from casino.common.v1 import bet_pb2, common_pb2
from casino.game.v1 import game_pb2, game_service_pb2, game_service_pb2_grpc
from casino.session.v1 import session_pb2, session_service_pb2_grpc
from casino.session.v1 import session_service_pb2 as pb
from casino.wallet.v1 import wallet_service_pb2, wallet_service_pb2_grpc
from casino_cli.platform import Platform, free_port
from casino_kit.errors import ErrorDetails, details_of
from session_svc.bets import BetBook
from session_svc.feed import Feeds, FeedSettings
from session_svc.sessions import Sessions
from session_svc.store import HEALTH_CHECK_S, RedisStore
from session_svc.tables import Seating, SeatingPolicy, Tables
from session_svc.tokens import platform_player_id
from tests.conftest import REDIS_URL
from tests.game_svc.test_service import studio_table
from tests.session_svc.conftest import delete_prefix, drop_connections
from tests.session_svc.operator import Operator, operator_keys_json

pytestmark = pytest.mark.redis
QUEUE_SIZE = 4
RATE_PER_S, RATE_BURST = 2, 40
SEAT_GRACE_S = 1.5


@dataclass
class Deployment:
    """Two session processes on one Redis, over real game, wallet and RNG processes."""

    operator: Operator
    rival: Operator
    """A second operator whose players may share the first one's player ids."""
    prefix: str
    addresses: list[str]
    channels: list[grpc.aio.Channel]
    game: grpc.aio.Channel
    wallet: grpc.aio.Channel
    pids: list[int]
    """The session processes'."""

    def stub(self, node: int) -> session_service_pb2_grpc.SessionServiceStub:
        return session_service_pb2_grpc.SessionServiceStub(self.channels[node])


@pytest_asyncio.fixture(scope="module")
async def deployment(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    operator, rival = Operator("op-tables"), Operator("op-rival")
    prefix = f"test:session:{uuid.uuid4().hex}:"
    running = Platform(
        data_dir=tmp_path_factory.mktemp("tables"),
        packages=("rng_svc", "wallet_svc", "game_svc", "session_svc"),
        free_ports=True,
        env={
            "CASINO_OPERATOR_KEYS": operator_keys_json(operator, rival),
            "CASINO_KEY_PREFIX": prefix,
            "CASINO_REDIS_URL": REDIS_URL,
            "CASINO_SESSION_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "CASINO_RATE_PER_S": str(RATE_PER_S),
            "CASINO_RATE_BURST": str(RATE_BURST),
            "CASINO_WATCH_QUEUE_SIZE": str(QUEUE_SIZE),
            "CASINO_SEAT_GRACE_S": str(SEAT_GRACE_S),
        },
    )
    await running.start()
    second = await running.spawn("session_svc", port=free_port())
    try:
        await second.wait_serving(60)
        addresses = [running.addresses["session_svc"], second.address]
        channels = [grpc.aio.insecure_channel(a) for a in addresses]
        game = grpc.aio.insecure_channel(running.addresses["game_svc"])
        wallet = grpc.aio.insecure_channel(running.addresses["wallet_svc"])
        pids = [running.processes["session_svc"].process.pid, second.process.pid]
        yield Deployment(operator, rival, prefix, addresses, channels, game, wallet, pids)
        for channel in [*channels, game, wallet]:
            await channel.close()
    finally:
        await second.terminate()
        await running.stop()
        await delete_prefix(prefix)


# -- helpers ----------------------------------------------------------------------------------


def key() -> str:
    return uuid.uuid4().hex


def auth(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


async def failure(call: object) -> ErrorDetails:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call  # type: ignore[misc]
    return details_of(failed.value)


@dataclass
class Player:
    token: str
    account: str
    """The id the platform knows the player by (operator:player): wallet account, seat, bets."""


async def player(
    d: Deployment,
    node: int = 0,
    jurisdiction: str = "MT",
    operator: Operator | None = None,
    player_id: str = "",
) -> Player:
    """A player with an open session, of ``operator`` (default: the deployment's own)."""
    operator = operator or d.operator
    player_id = player_id or f"player-{uuid.uuid4().hex[:12]}"
    opened = await d.stub(node).OpenSession(
        pb.OpenSessionRequest(
            idempotency_key=key(),
            operator_id=operator.operator_id,
            launch_token=operator.launch_token(player_id, jur=jurisdiction),
        ),
        timeout=10,
    )
    return Player(opened.session_token, platform_player_id(operator.operator_id, player_id))


async def table(d: Deployment, config: game_pb2.TableConfig) -> str:
    reply = await game_service_pb2_grpc.TableAdminServiceStub(d.game).CreateTable(
        game_service_pb2.CreateTableRequest(
            idempotency_key=key(), operator_id="op", reason="test", config=config
        ),
        timeout=10,
    )
    return str(reply.table_id)


def blackjack_table(name: str) -> game_pb2.TableConfig:
    config = studio_table(name)
    config.game_type = common_pb2.GAME_TYPE_BLACKJACK
    config.seat_count = 7
    config.blackjack.CopyFrom(
        game_pb2.BlackjackOptions(decks=6, max_hands_per_seat=1, decision_window_seconds=10)
    )
    for limit in config.limits.bet_limits:
        limit.bet_type = bet_pb2.BET_TYPE_BLACKJACK_SEAT
    return config


async def toggle(d: Deployment, table_id: str, count: int) -> None:
    """``count`` table events: the operator suspends and resumes the table in turn."""
    admin = game_service_pb2_grpc.TableAdminServiceStub(d.game)
    for _ in range(count // 2):
        await admin.SuspendTable(
            game_service_pb2.SuspendTableRequest(
                idempotency_key=key(), operator_id="op", reason="pause", table_id=table_id
            ),
            timeout=10,
        )
        await admin.ResumeTable(
            game_service_pb2.ResumeTableRequest(
                idempotency_key=key(), operator_id="op", reason="go", table_id=table_id
            ),
            timeout=10,
        )


async def join(d: Deployment, who: Player, table_id: str, seat: int = 0, node: int = 0) -> None:
    await d.stub(node).JoinTable(
        pb.JoinTableRequest(idempotency_key=key(), table_id=table_id, seat=seat),
        metadata=auth(who.token),
        timeout=10,
    )


def watch(
    d: Deployment, who: Player, table_id: str, node: int, from_sequence: int = 0
) -> grpc.aio.UnaryStreamCall:
    return d.stub(node).WatchTable(
        pb.WatchTableRequest(table_id=table_id, from_sequence=from_sequence),
        metadata=auth(who.token),
    )


async def take(call: grpc.aio.UnaryStreamCall, count: int) -> list[pb.WatchTableResponse]:
    return [await asyncio.wait_for(call.read(), 10) for _ in range(count)]


# -- lobby and seats --------------------------------------------------------------------------


async def test_the_lobby_lists_open_tables_with_live_counts_for_the_jurisdiction(
    d: Deployment,
) -> None:
    mine = await table(d, blackjack_table(f"BJ {key()[:6]}"))
    elsewhere = studio_table(f"GB only {key()[:6]}")
    elsewhere.jurisdictions.append("GB")
    hidden = await table(d, elsewhere)
    seated, watcher = await player(d, 0), await player(d, 1)
    await join(d, seated, mine, seat=3, node=0)
    await join(d, watcher, mine, node=1)
    for node in (0, 1):
        reply = await d.stub(node).ListTables(
            pb.ListTablesRequest(page_size=500), metadata=auth(watcher.token), timeout=10
        )
        listed = {t.table_id: t for t in reply.tables}
        assert hidden not in listed
        entry = listed[mine]
        assert (entry.player_count, entry.seat_count, entry.free_seats) == (2, 7, 6)
        assert entry.game_type == common_pb2.GAME_TYPE_BLACKJACK


async def test_a_seat_taken_through_one_node_is_taken_through_the_other(d: Deployment) -> None:
    table_id = await table(d, blackjack_table("Seats"))
    first, second = await player(d, 0), await player(d, 1)
    await join(d, first, table_id, seat=2, node=0)
    details = await failure(
        d.stub(1).JoinTable(
            pb.JoinTableRequest(idempotency_key=key(), table_id=table_id, seat=2),
            metadata=auth(second.token),
            timeout=10,
        )
    )
    assert details.code == grpc.StatusCode.FAILED_PRECONDITION
    assert details.reason == "SEAT_TAKEN"
    await join(d, second, table_id, seat=0, node=1)  # bet behind is unlimited
    # The first player leaves through the other node: the seat is free for the second.
    await d.stub(1).LeaveTable(
        pb.LeaveTableRequest(idempotency_key=key(), table_id=table_id),
        metadata=auth(first.token),
        timeout=10,
    )
    await join(d, second, table_id, seat=2, node=0)


async def test_a_seat_is_kept_while_watching_and_freed_after_the_grace_period(
    d: Deployment,
) -> None:
    table_id = await table(d, blackjack_table("Grace"))
    holder, other = await player(d, 0), await player(d, 1)
    await join(d, holder, table_id, seat=1, node=0)
    call = watch(d, holder, table_id, node=1)
    (snapshot,) = await take(call, 1)
    assert snapshot.table_snapshot.seat == 1
    await asyncio.sleep(SEAT_GRACE_S * 2)  # the stream renews the seat
    details = await failure(
        d.stub(0).JoinTable(
            pb.JoinTableRequest(idempotency_key=key(), table_id=table_id, seat=1),
            metadata=auth(other.token),
            timeout=10,
        )
    )
    assert details.reason == "SEAT_TAKEN"
    call.cancel()
    await asyncio.sleep(SEAT_GRACE_S * 2)  # disconnected beyond the grace period
    await join(d, other, table_id, seat=1, node=0)


async def test_the_rate_limit_spent_on_one_node_holds_on_the_other(d: Deployment) -> None:
    table_id = await table(d, studio_table("Busy"))
    who = await player(d, 0)
    calls = [
        d.stub(0).GetResponsibleGamingLimits(
            pb.GetResponsibleGamingLimitsRequest(), metadata=auth(who.token), timeout=10
        )
        for _ in range(RATE_BURST + 5)
    ]
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    refused = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert refused and all(o.code() == grpc.StatusCode.RESOURCE_EXHAUSTED for o in refused)
    details = await failure(
        d.stub(1).JoinTable(
            pb.JoinTableRequest(idempotency_key=key(), table_id=table_id),
            metadata=auth(who.token),
            timeout=10,
        )
    )
    assert (details.code, details.reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED")
    details = await failure(watch(d, who, table_id, node=1).read())
    assert details.reason == "RATE_LIMITED"


async def test_a_self_excluded_or_cooling_off_player_cannot_join(d: Deployment) -> None:
    table_id = await table(d, studio_table("Exclusion"))
    excluded, cooling = await player(d, 0), await player(d, 0)
    await d.stub(0).SelfExclude(
        pb.SelfExcludeRequest(idempotency_key=key(), permanent=True),
        metadata=auth(excluded.token),
        timeout=10,
    )
    await d.stub(1).CoolOff(
        pb.CoolOffRequest(idempotency_key=key(), duration=Duration(seconds=86400)),
        metadata=auth(cooling.token),
        timeout=10,
    )
    for who in (excluded, cooling):
        for node in (0, 1):
            details = await failure(
                d.stub(node).JoinTable(
                    pb.JoinTableRequest(idempotency_key=key(), table_id=table_id),
                    metadata=auth(who.token),
                    timeout=10,
                )
            )
            # The contract: an excluded player's sessions are revoked at once.
            assert details.code == grpc.StatusCode.UNAUTHENTICATED


async def test_bad_input_is_refused_with_field_violations(d: Deployment) -> None:
    who = await player(d)
    roulette = await table(d, studio_table("No seats"))
    cases = [
        (d.stub(0).JoinTable(pb.JoinTableRequest(), metadata=auth(who.token), timeout=10),
         {"idempotency_key", "table_id"}),
        (d.stub(1).JoinTable(
            pb.JoinTableRequest(idempotency_key=key(), table_id=roulette, seat=3),
            metadata=auth(who.token), timeout=10), {"seat"}),
        (d.stub(0).ListTables(
            pb.ListTablesRequest(page_size=501), metadata=auth(who.token), timeout=10),
         {"page_size"}),
        (d.stub(1).LeaveTable(
            pb.LeaveTableRequest(idempotency_key=key()), metadata=auth(who.token), timeout=10),
         {"table_id"}),
    ]  # fmt: skip
    for call, fields in cases:
        details = await failure(call)
        assert details.code == grpc.StatusCode.INVALID_ARGUMENT
        assert {v.field for v in details.violations} == fields
    watch_call = watch(d, who, "", node=0)
    details = await failure(watch_call.read())
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in details.violations} == {"table_id"}
    # Nothing changed: the player is at no table.
    details = await failure(watch(d, who, roulette, node=1).read())
    assert details.reason == "NOT_AT_TABLE"


async def test_unknown_tables_and_blocked_jurisdictions_are_refused(d: Deployment) -> None:
    config = studio_table("GB only")
    config.jurisdictions.append("GB")
    gb_table = await table(d, config)
    who = await player(d)
    details = await failure(
        d.stub(0).JoinTable(
            pb.JoinTableRequest(idempotency_key=key(), table_id=gb_table),
            metadata=auth(who.token),
            timeout=10,
        )
    )
    assert (details.code, details.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "JURISDICTION_BLOCKED",
    )
    details = await failure(watch(d, who, "no-such-table", node=1).read())
    assert (details.code, details.reason) == (grpc.StatusCode.NOT_FOUND, "TABLE_NOT_FOUND")


# -- balance ----------------------------------------------------------------------------------


async def test_the_balance_is_the_callers_own(d: Deployment) -> None:
    rich, poor = await player(d, 0), await player(d, 1)
    wallet = wallet_service_pb2_grpc.WalletServiceStub(d.wallet)
    await wallet.OpenAccount(
        wallet_service_pb2.OpenAccountRequest(
            idempotency_key=key(), player_id=rich.account, currency="EUR"
        ),
        timeout=10,
    )
    await wallet.Deposit(
        wallet_service_pb2.DepositRequest(
            idempotency_key=key(),
            player_id=rich.account,
            amount=common_pb2.Money(amount_minor=12_345, currency="EUR"),
            external_ref=key(),
        ),
        timeout=10,
    )
    reply = await d.stub(1).GetBalance(pb.GetBalanceRequest(), metadata=auth(rich.token))
    assert (reply.balance.amount_minor, reply.balance.currency) == (12_345, "EUR")
    details = await failure(
        d.stub(0).GetBalance(pb.GetBalanceRequest(), metadata=auth(poor.token), timeout=10)
    )
    assert (details.code, details.reason) == (grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_FOUND")


# -- WatchTable -------------------------------------------------------------------------------


async def test_watch_starts_with_a_snapshot_then_streams_table_events_in_order(
    d: Deployment,
) -> None:
    table_id = await table(d, studio_table("Watch"))
    who = await player(d, 0)
    await join(d, who, table_id, node=0)
    call = watch(d, who, table_id, node=1)
    (first,) = await take(call, 1)
    assert first.sequence == 1
    assert first.table_snapshot.table.table_id == table_id
    assert first.table_snapshot.table.player_count == 1
    start = first.table_snapshot.table_sequence
    await toggle(d, table_id, 4)
    events = await take(call, 4)
    assert [m.sequence for m in events] == [2, 3, 4, 5]
    assert [m.table_event.sequence for m in events] == [start + i for i in range(1, 5)]
    kinds = [m.table_event.WhichOneof("payload") for m in events]
    assert kinds == ["table_suspended", "table_resumed"] * 2
    call.cancel()


async def test_a_client_resumes_with_no_gap_and_no_duplicate(d: Deployment) -> None:
    table_id = await table(d, studio_table("Resume"))
    who = await player(d, 1)
    await join(d, who, table_id, node=1)
    call = watch(d, who, table_id, node=0)
    received = await take(call, 1)
    await toggle(d, table_id, 2)
    received += await take(call, 2)
    call.cancel()
    await toggle(d, table_id, 4)  # published while the player is away
    resumed = watch(d, who, table_id, node=0, from_sequence=received[-1].sequence + 1)
    received += await take(resumed, 4)
    resumed.cancel()
    assert [m.sequence for m in received] == list(range(1, 8))
    assert sum(1 for m in received if m.HasField("table_snapshot")) == 1
    table_sequences = [m.table_event.sequence for m in received[1:]]
    first = received[0].table_snapshot.table_sequence + 1
    assert table_sequences == list(range(first, first + 6))


async def test_a_slow_player_gets_a_snapshot_and_does_not_stall_the_others(
    d: Deployment,
) -> None:
    table_id = await table(d, studio_table("Slow"))
    slow, fast = await player(d, 0), await player(d, 0)
    for who in (slow, fast):
        await join(d, who, table_id, node=0)
    # A receive window of a few messages: the slow player's unread events back up into
    # the server's bounded queue instead of the sockets.
    slow_channel = grpc.aio.insecure_channel(
        d.addresses[0],
        options=[("grpc.http2.lookahead_bytes", 256), ("grpc.http2.bdp_probe", 0)],
    )
    slow_call = session_service_pb2_grpc.SessionServiceStub(slow_channel).WatchTable(
        pb.WatchTableRequest(table_id=table_id), metadata=auth(slow.token)
    )
    fast_call = watch(d, fast, table_id, node=0)
    (slow_snapshot,) = await take(slow_call, 1)
    (fast_snapshot,) = await take(fast_call, 1)
    count = 60
    started = time.monotonic()
    publishing = asyncio.create_task(toggle(d, table_id, count))
    fast_events = await take(fast_call, count)
    await publishing
    assert time.monotonic() - started < 30
    base = fast_snapshot.table_snapshot.table_sequence
    assert [m.table_event.sequence for m in fast_events] == list(range(base + 1, base + 61))
    # The slow player now reads: a snapshot replaced the backlog, with no gap anywhere.
    last = base + count
    seen, covered, snapshots = [slow_snapshot], slow_snapshot.table_snapshot.table_sequence, 0
    while covered < last:
        message = await asyncio.wait_for(slow_call.read(), 10)
        seen.append(message)
        if message.HasField("table_snapshot"):
            snapshots += 1
            covered = max(covered, message.table_snapshot.table_sequence)
        else:
            assert message.table_event.sequence == covered + 1
            covered = message.table_event.sequence
    assert snapshots >= 1
    assert [m.sequence for m in seen] == list(range(1, len(seen) + 1))
    assert len(seen) < count
    slow_call.cancel()
    fast_call.cancel()
    await slow_channel.close()


async def test_another_players_stream_and_table_are_refused(d: Deployment) -> None:
    table_id = await table(d, studio_table("Private"))
    owner, intruder = await player(d, 0), await player(d, 1)
    await join(d, owner, table_id, node=0)
    details = await failure(watch(d, intruder, table_id, node=0).read())
    assert (details.code, details.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NOT_AT_TABLE")
    call = watch(d, owner, table_id, node=0)
    await take(call, 1)
    await toggle(d, table_id, 2)
    await take(call, 2)
    # The intruder joins and asks for the owner's next sequence: it gets its own stream,
    # which starts with its own snapshot, never the owner's messages.
    await join(d, intruder, table_id, node=1)
    theirs = watch(d, intruder, table_id, node=0, from_sequence=3)
    (first,) = await take(theirs, 1)
    assert first.HasField("table_snapshot")
    assert first.sequence == 3
    call.cancel()
    theirs.cancel()


async def test_personal_messages_reach_the_stream_from_any_node(d: Deployment) -> None:
    table_id, who, call = await watching_after_two_events(d, "Personal")
    # A third session node (this test process) tells the player of a bet it accepted.
    async with third_node(d) as feeds:
        accepted = session_pb2.BetAccepted(bet_id="b-1", client_bet_id="c-1", round_id="r-1")
        await feeds.tell(table_id, who.account, pb.WatchTableResponse(bet_accepted=accepted))
        (message,) = await take(call, 1)
    assert message.sequence == 4
    assert message.bet_accepted == accepted
    call.cancel()


async def test_a_redis_outage_costs_a_stream_a_snapshot_never_a_silent_gap(d: Deployment) -> None:
    """Redis drops every connection of both session nodes (a restart, a failover): what the
    personal channel carried meanwhile is gone, so the stream goes on from a snapshot (its
    bets and balance), then personal messages flow again, and calls succeed."""
    table_id, who, call = await watching_after_two_events(d, "Redis outage")
    mine = {f":{pid}" for pid in d.pids}
    assert await drop_connections(lambda name: name[name.rfind(":") :] in mine) >= 3
    (resynced,) = await take(call, 1)
    assert resynced.sequence == 4 and resynced.HasField("table_snapshot")
    assert resynced.table_snapshot.table_sequence >= 2
    await asyncio.sleep(HEALTH_CHECK_S * 1.2)  # idle connections are checked before use
    async with third_node(d) as feeds:
        accepted = session_pb2.BetAccepted(bet_id="b-2", client_bet_id="c-2", round_id="r-2")
        await feeds.tell(table_id, who.account, pb.WatchTableResponse(bet_accepted=accepted))
        (message,) = await take(call, 1)
    assert message.sequence == 5 and message.bet_accepted == accepted
    other = await player(d, 1)
    await join(d, other, table_id, node=0)
    call.cancel()


async def watching_after_two_events(
    d: Deployment, name: str
) -> tuple[str, Player, grpc.aio.UnaryStreamCall]:
    """A new table, a player who joined it through node 0 and watches it through node 1,
    past the snapshot and two table events (so the node's upstream and its personal channel
    are up)."""
    table_id = await table(d, studio_table(name))
    who = await player(d, 0)
    await join(d, who, table_id, node=0)
    call = watch(d, who, table_id, node=1)
    await take(call, 1)
    await toggle(d, table_id, 2)
    await take(call, 2)
    return table_id, who, call


@contextlib.asynccontextmanager
async def third_node(d: Deployment) -> AsyncIterator[Feeds]:
    """This test process as one more session node on the deployment's Redis."""
    store = RedisStore.from_url(REDIS_URL)
    sessions_key = Sessions.__new__(Sessions)
    sessions_key.prefix = d.prefix
    seating = Seating(store, sessions_key.key, SeatingPolicy())
    feeds = Feeds(
        game_service_pb2_grpc.GameServiceStub(d.game),
        wallet_service_pb2_grpc.WalletServiceStub(d.wallet),
        store,
        sessions_key.key,
        Tables(game_service_pb2_grpc.GameServiceStub(d.game), seating),
        BetBook(store, sessions_key.key),
        FeedSettings(),
    )
    try:
        yield feeds
    finally:
        await feeds.close()
        await store.close()


@pytest.fixture
def d(deployment: Deployment) -> Deployment:
    return deployment


async def test_a_settled_bet_reaches_its_player_with_the_client_bet_id(d: Deployment) -> None:
    """The path a bet takes once accepted: recorded by the session service, staked through
    game_svc, settled by the round loop; the player's stream turns the RoundSettled into
    BetSettled and the new balance, and the RoundSettled lists only the player's bets."""
    config = studio_table("RNG Roulette")
    config.result_source = game_pb2.RESULT_SOURCE_RNG
    config.studio_id = ""
    config.betting_window_seconds = 5
    config.limits.bet_limits[0].bet_type = bet_pb2.BET_TYPE_ROULETTE_RED
    table_id = await table(d, config)
    who = await player(d, 0)
    wallet = wallet_service_pb2_grpc.WalletServiceStub(d.wallet)
    await wallet.OpenAccount(
        wallet_service_pb2.OpenAccountRequest(
            idempotency_key=key(), player_id=who.account, currency="EUR"
        ),
        timeout=10,
    )
    await wallet.Deposit(
        wallet_service_pb2.DepositRequest(
            idempotency_key=key(),
            player_id=who.account,
            amount=common_pb2.Money(amount_minor=10_000, currency="EUR"),
            external_ref=key(),
        ),
        timeout=10,
    )
    await join(d, who, table_id, node=0)
    call = watch(d, who, table_id, node=1)

    async def next_with(kind: str) -> pb.WatchTableResponse:
        while True:
            message: pb.WatchTableResponse = await asyncio.wait_for(call.read(), 30)
            if kind in (message.WhichOneof("event"), message.table_event.WhichOneof("payload")):
                return message

    round_id = (await next_with("round_opened")).table_event.round_id
    stake = common_pb2.Money(amount_minor=500, currency="EUR")
    spot = bet_pb2.BetSpot(bet_type=bet_pb2.BET_TYPE_ROULETTE_RED)
    bet_id = f"bet-{key()}"
    store = RedisStore.from_url(REDIS_URL)
    try:
        book = BetBook(store, lambda *parts: d.prefix + ":".join(parts))
        await book.record(
            who.account,
            [
                session_pb2.BetAccepted(
                    bet_id=bet_id, client_bet_id="mine-1", round_id=round_id, spot=spot, stake=stake
                )
            ],
        )
    finally:
        await store.close()
    placing = game_service_pb2_grpc.GameServiceStub(d.game).PlaceBets()
    await placing.write(
        game_service_pb2.PlaceBetsRequest(
            idempotency_key=key(),
            batch_id="batch-1",
            table_id=table_id,
            round_id=round_id,
            bets=[game_pb2.Bet(bet_id=bet_id, player_id=who.account, spot=spot, stake=stake)],
        )
    )
    (result,) = (await asyncio.wait_for(placing.read(), 10)).results
    assert result.status == bet_pb2.BET_STATUS_ACCEPTED, result.reason
    await placing.done_writing()
    settled = await next_with("round_settled")
    assert [b.bet_id for b in settled.table_event.round_settled.bets] == [bet_id]
    mine = (await next_with("bet_settled")).bet_settled
    assert (mine.bet_id, mine.client_bet_id, mine.round_id) == (bet_id, "mine-1", round_id)
    balance = (await next_with("balance_changed")).balance_changed
    assert balance.cause == session_pb2.BALANCE_CHANGE_CAUSE_BET_SETTLED
    assert balance.balance.amount_minor == 10_000 - 500 + mine.payout.amount_minor
    call.cancel()
