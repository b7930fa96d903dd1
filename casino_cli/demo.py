"""``casino demo``: the platform on embedded defaults, two RNG tables and simulated players.

The demo plays the operator: it signs launch tokens with a key it makes at start, funds
each player's wallet, and lets the players do the rest through session_svc only (open a
session, join, watch, bet). For every round it prints one line, with the fairness proof
checked the way a player could: the revealed seed hashes to the commitment published at
opening, and re-deriving the outcome from it gives the result shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import signal
import sys
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from casino.common.v1 import bet_pb2, common_pb2, table_event_pb2
from casino.game.v1 import game_pb2, game_service_pb2, game_service_pb2_grpc
from casino.session.v1 import session_pb2, session_service_pb2, session_service_pb2_grpc
from casino.wallet.v1 import wallet_service_pb2, wallet_service_pb2_grpc
from casino_cli.platform import Platform, StartError
from game_svc import basic_strategy, blackjack
from game_svc.cards import Card
from game_svc.outcomes import Game, from_draw
from game_svc.results import baccarat_result, card_of
from rng_svc import fairness
from session_svc.tokens import HS256, SignKey, b64url_encode, issue_launch, platform_player_id

OPERATOR = "demo-operator"
CURRENCY = "EUR"
DEPOSIT = 100_000  # 1,000.00 EUR per player
RED = {1, 3, 5, 7, 9, 12, 14, 16, 18, 19, 21, 23, 25, 27, 30, 32, 34, 36}
TABLES = {
    "Demo Roulette": common_pb2.GAME_TYPE_ROULETTE,
    "Demo Baccarat": common_pb2.GAME_TYPE_BACCARAT,
    "Demo Blackjack": common_pb2.GAME_TYPE_BLACKJACK,
}
SEATS = 7
DECKS = 8


def eur(amount: int) -> common_pb2.Money:
    return common_pb2.Money(amount_minor=amount, currency=CURRENCY)


BET_TYPES: dict[int, tuple[int, int]] = {
    common_pb2.GAME_TYPE_ROULETTE: (
        bet_pb2.BET_TYPE_ROULETTE_STRAIGHT,
        bet_pb2.BET_TYPE_ROULETTE_HIGH,
    ),
    common_pb2.GAME_TYPE_BACCARAT: (
        bet_pb2.BET_TYPE_BACCARAT_PLAYER,
        bet_pb2.BET_TYPE_BACCARAT_BANKER_PAIR,
    ),
    common_pb2.GAME_TYPE_BLACKJACK: (
        bet_pb2.BET_TYPE_BLACKJACK_SEAT,
        bet_pb2.BET_TYPE_BLACKJACK_BET_BEHIND,
    ),
}


def table_config(
    name: str, game: int, window_s: int, *, infinite: bool = False, decision_s: int = 15
) -> game_pb2.TableConfig:
    """An RNG table with every bet type of its game at 1.00 to 500.00 EUR; blackjack has 7
    seats (or infinite mode), 8 decks and ``decision_s`` per decision."""
    first, last = BET_TYPES[game]
    blackjack = None
    if game == common_pb2.GAME_TYPE_BLACKJACK:
        blackjack = game_pb2.BlackjackOptions(
            decks=8,
            infinite_mode=infinite,
            decision_window_seconds=decision_s,
            double_after_split=True,
            max_hands_per_seat=2,
        )
    return game_pb2.TableConfig(
        blackjack=blackjack,
        seat_count=7 if blackjack and not infinite else 0,
        name=name,
        game_type=game,  # type: ignore[arg-type]
        result_source=game_pb2.RESULT_SOURCE_RNG,
        betting_window_seconds=window_s,
        currency=CURRENCY,
        limits=bet_pb2.TableLimits(
            bet_limits=[
                bet_pb2.BetLimit(bet_type=t, min_stake=eur(100), max_stake=eur(50_000))  # type: ignore[arg-type]
                for t in range(first, last + 1)
            ]
        ),
    )


def random_bet(game: int, seat: int = 0) -> bet_pb2.BetSpot:
    """A bet a casual player might make; at blackjack on its own seat, else behind one."""
    if game == common_pb2.GAME_TYPE_BLACKJACK:
        if seat:
            return bet_pb2.BetSpot(bet_type=bet_pb2.BET_TYPE_BLACKJACK_SEAT, seat=seat)
        return bet_pb2.BetSpot(
            bet_type=bet_pb2.BET_TYPE_BLACKJACK_BET_BEHIND, seat=random.randint(1, SEATS)
        )
    if game == common_pb2.GAME_TYPE_ROULETTE:
        kind = random.choice(["red", "black", "straight", "dozen", "odd"])
        if kind == "straight":
            return bet_pb2.BetSpot(
                bet_type=bet_pb2.BET_TYPE_ROULETTE_STRAIGHT, numbers=[random.randint(0, 36)]
            )
        if kind == "dozen":
            return bet_pb2.BetSpot(
                bet_type=bet_pb2.BET_TYPE_ROULETTE_DOZEN, group=random.randint(1, 3)
            )
        types = {"red": bet_pb2.BET_TYPE_ROULETTE_RED, "black": bet_pb2.BET_TYPE_ROULETTE_BLACK}
        return bet_pb2.BetSpot(bet_type=types.get(kind, bet_pb2.BET_TYPE_ROULETTE_ODD))
    return bet_pb2.BetSpot(
        bet_type=random.choice(
            [
                bet_pb2.BET_TYPE_BACCARAT_PLAYER,
                bet_pb2.BET_TYPE_BACCARAT_BANKER,
                bet_pb2.BET_TYPE_BACCARAT_TIE,
            ]
        )
    )


@dataclass
class Operator:
    """The demo's operator: a launch-token key and the wallet's back office."""

    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def keys_json(self) -> str:
        return json.dumps({OPERATOR: {"alg": "HS256", "secret": b64url_encode(self.secret)}})

    def launch_token(self, player_id: str) -> str:
        return issue_launch(OPERATOR, SignKey(HS256, secret=self.secret), player_id)


class Player:
    """A simulated player: everything through session_svc, as a real client would."""

    def __init__(
        self,
        player_id: str,
        session: session_service_pb2_grpc.SessionServiceStub,
        seat: int = 0,
    ):
        self.player_id = player_id
        self.session = session
        self.token = ""
        self.seat = seat
        """The player's blackjack seat; 0 bets behind."""
        self._errands: set[asyncio.Task[None]] = set()
        """Bets and decisions on their way, held so they finish or are cancelled at stop."""

    def _run_errand(self, errand: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(errand)
        self._errands.add(task)
        task.add_done_callback(self._errands.discard)

    async def stop(self) -> None:
        """Cancel the bets and decisions still on their way (after ``play`` stopped)."""
        for task in self._errands:
            task.cancel()
        await asyncio.gather(*self._errands, return_exceptions=True)

    def _auth(self) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {self.token}"),)

    async def start(self, operator: Operator, tables: dict[str, int]) -> None:
        opened = await self.session.OpenSession(
            session_service_pb2.OpenSessionRequest(
                idempotency_key=uuid.uuid4().hex,
                operator_id=OPERATOR,
                launch_token=operator.launch_token(self.player_id),
            ),
            timeout=10,
        )
        self.token = opened.session_token
        for table_id, game in tables.items():
            seat = self.seat if game == common_pb2.GAME_TYPE_BLACKJACK else 0
            await self.session.JoinTable(
                session_service_pb2.JoinTableRequest(
                    idempotency_key=uuid.uuid4().hex, table_id=table_id, seat=seat
                ),
                metadata=self._auth(),
                timeout=10,
            )

    async def refresh(self) -> None:
        while True:
            await asyncio.sleep(120)
            refreshed = await self.session.RefreshSession(
                session_service_pb2.RefreshSessionRequest(idempotency_key=uuid.uuid4().hex),
                metadata=self._auth(),
                timeout=10,
            )
            self.token = refreshed.session_token

    async def play(self, table_id: str, game: int) -> None:
        """Watch the table; bet on about two rounds in three."""
        while True:
            try:
                stream = self.session.WatchTable(
                    session_service_pb2.WatchTableRequest(table_id=table_id),
                    metadata=self._auth(),
                )
                hand = Hand()
                async for message in stream:
                    if not message.HasField("table_event"):
                        continue
                    event = message.table_event
                    if event.HasField("round_opened"):
                        hand = Hand()
                        if random.random() < 0.67:
                            self._run_errand(self._bet(table_id, event.round_id, game))
                    elif self.seat:
                        asked = hand.follow(event, self.seat)
                        if asked is not None:
                            self._run_errand(self._decide(table_id, event.round_id, asked))
            except grpc.aio.AioRpcError:
                await asyncio.sleep(1)

    async def _bet(self, table_id: str, round_id: str, game: int) -> None:
        await asyncio.sleep(random.uniform(0.2, 3.0))
        count = 1 if game == common_pb2.GAME_TYPE_BLACKJACK else random.randint(1, 2)
        bets = [
            session_pb2.PlayerBet(
                client_bet_id=uuid.uuid4().hex,
                spot=random_bet(game, self.seat),
                stake=eur(random.choice([100, 200, 500, 1_000, 2_500])),
            )
            for _ in range(count)
        ]
        with contextlib.suppress(grpc.aio.AioRpcError):
            await self.session.PlaceBets(
                session_service_pb2.PlaceBetsRequest(
                    idempotency_key=uuid.uuid4().hex,
                    table_id=table_id,
                    round_id=round_id,
                    bets=bets,
                ),
                metadata=self._auth(),
                timeout=10,
            )

    async def _decide(
        self, table_id: str, round_id: str, asked: table_event_pb2.DecisionRequested
    ) -> None:
        await asyncio.sleep(random.uniform(0.3, 1.5))  # a player thinks
        with contextlib.suppress(grpc.aio.AioRpcError):  # too late: STAND was applied
            await self.session.SubmitDecision(
                session_service_pb2.SubmitDecisionRequest(
                    idempotency_key=uuid.uuid4().hex,
                    table_id=table_id,
                    round_id=round_id,
                    seat=asked.seat,
                    hand=asked.hand,
                    action=asked.allowed_actions[0],
                ),
                metadata=self._auth(),
                timeout=10,
            )


@dataclass
class Hand:
    """What a seated player sees of a blackjack round: its cards and the dealer's upcard."""

    hands: dict[int, list[Card]] = field(default_factory=dict)
    upcard: Card | None = None

    def follow(
        self, event: table_event_pb2.TableEvent, seat: int
    ) -> table_event_pb2.DecisionRequested | None:
        """Track the cards; for a decision asked of ``seat``, the same request narrowed to
        the basic-strategy action."""
        if event.HasField("card_dealt") and not event.card_dealt.face_down:
            dealt = event.card_dealt
            if dealt.target == table_event_pb2.CARD_TARGET_DEALER and self.upcard is None:
                self.upcard = card_of(dealt.card)
            elif dealt.target == table_event_pb2.CARD_TARGET_SEAT and dealt.seat == seat:
                self.hands.setdefault(dealt.hand, []).append(card_of(dealt.card))
            return None
        if not event.HasField("decision_requested") or event.decision_requested.seat != seat:
            return None
        asked = event.decision_requested
        action = blackjack.Action.STAND  # basic strategy never insures
        if self.upcard is not None and asked.hand in self.hands:
            split = len(self.hands) > 1
            hands = tuple(
                blackjack.Hand(tuple(cards), split=split) for _, cards in sorted(self.hands.items())
            )
            play = blackjack.SeatPlay(blackjack.Rules(decks=DECKS), hands, active=asked.hand - 1)
            if not play.done:
                action = basic_strategy.decide(play, self.upcard)
        if int(action) not in list(asked.allowed_actions):
            action = blackjack.Action.STAND
        if action is blackjack.Action.SPLIT:  # the new hand takes the second card
            self.hands[len(self.hands) + 1] = [self.hands[asked.hand].pop()]
        narrowed = table_event_pb2.DecisionRequested()
        narrowed.CopyFrom(asked)
        narrowed.allowed_actions[:] = [action]  # type: ignore[list-item]
        return narrowed


def describe(result: table_event_pb2.RoundResult) -> str:
    if result.HasField("roulette"):
        pocket = result.roulette.pocket
        colour = "green" if pocket == 0 else "red" if pocket in RED else "black"
        return f"{pocket:>2} {colour}"
    if result.HasField("blackjack"):
        dealer = result.blackjack
        return f"dealer {'bust' if dealer.dealer_busted else dealer.dealer_total}"
    coup = result.baccarat
    winner = table_event_pb2.BaccaratWinner.Name(coup.winner).removeprefix("BACCARAT_WINNER_")
    return f"{winner.lower()} {coup.player_total}-{coup.banker_total}"


def fair(record: game_pb2.Round) -> str:
    """Check the proof as a player could: the seed matches the commitment published at
    opening, and re-deriving the outcome from the seed gives the result shown."""
    proof = record.proof
    seed = bytes.fromhex(proof.server_seed)
    if fairness.commitment_of(seed) != record.commitment.commitment:
        return "FAILED: the seed does not match the commitment"
    game = Game(record.game_type)
    if game is Game.BLACKJACK:  # every card shown is the shoe's card at its deal index
        shoe = fairness.shoe(seed, record.round_id, proof.client_seed, DECKS)
        shown = {
            e.card_dealt.deal_index: e.card_dealt.card
            for e in record.events
            if e.HasField("card_dealt") and not e.card_dealt.face_down
        } | {
            e.card_revealed.deal_index: e.card_revealed.card
            for e in record.events
            if e.HasField("card_revealed")
        }
        ok = all(
            card_of(card) == Card.from_index(shoe[index - 1], DECKS)
            for index, card in shown.items()
        )
    elif game is Game.ROULETTE:
        derived = from_draw(game, [fairness.roulette(seed, record.round_id, proof.client_seed)])
        ok = derived.pocket == record.result.roulette.pocket
    else:
        derived = from_draw(game, fairness.shoe(seed, record.round_id, proof.client_seed, 8))
        ok = derived.coup is not None and baccarat_result(derived.coup) == record.result.baccarat
    return "verified" if ok else "FAILED: the outcome does not re-derive"


async def report(
    game: game_service_pb2_grpc.GameServiceStub, table_id: str, name: str, rounds: int | None
) -> None:
    """One line per round, from the table's own event stream (the operator's view)."""
    printed = 0
    next_sequence = (
        await game.GetTable(game_service_pb2.GetTableRequest(table_id=table_id))
    ).table.last_sequence + 1
    async for message in game.Subscribe(
        game_service_pb2.SubscribeRequest(table_id=table_id, from_sequence=next_sequence)
    ):
        event = message.event
        settled = event.HasField("round_settled") and (
            event.round_settled.part == event.round_settled.part_count
        )
        if not (settled or event.HasField("round_voided")):
            continue
        record = (
            await game.GetRound(game_service_pb2.GetRoundRequest(round_id=event.round_id))
        ).round
        accepted = [b for b in record.bets if b.status == bet_pb2.BET_STATUS_ACCEPTED]
        if settled:
            line = (
                f"{describe(record.result):<12} bets {len(accepted):>3}  "
                f"staked {record.total_stake.amount_minor / 100:>9.2f}  "
                f"paid {record.total_payout.amount_minor / 100:>9.2f}  fairness {fair(record)}"
            )
        else:
            line = f"VOIDED ({event.round_voided.detail}); {len(accepted)} bets refunded"
        print(f"{name:<14} round {record.round_id[-12:]}  {line}", flush=True)
        printed += 1
        if rounds is not None and printed >= rounds:
            return


async def tables(
    admin: game_service_pb2_grpc.TableAdminServiceStub,
    game: game_service_pb2_grpc.GameServiceStub,
    window_s: int,
) -> dict[str, tuple[str, int]]:
    """The demo tables by id (created on the first run, found again on later ones)."""
    listed = await game.ListTables(game_service_pb2.ListTablesRequest(page_size=500), timeout=10)
    found = {t.name: t.table_id for t in listed.tables if t.name in TABLES}
    for name, game_type in TABLES.items():
        if name not in found:
            created = await admin.CreateTable(
                game_service_pb2.CreateTableRequest(
                    idempotency_key=f"demo-table-{name}",
                    operator_id=OPERATOR,
                    reason="casino demo",
                    config=table_config(name, game_type, window_s),
                ),
                timeout=10,
            )
            found[name] = created.table_id
    return {table_id: (name, TABLES[name]) for name, table_id in found.items()}


async def fund(wallet: wallet_service_pb2_grpc.WalletServiceStub, player_id: str) -> None:
    with contextlib.suppress(grpc.aio.AioRpcError):  # already open from an earlier run
        await wallet.OpenAccount(
            wallet_service_pb2.OpenAccountRequest(
                idempotency_key=f"demo-open-{player_id}", player_id=player_id, currency=CURRENCY
            ),
            timeout=10,
        )
    await wallet.Deposit(
        wallet_service_pb2.DepositRequest(
            idempotency_key=uuid.uuid4().hex, player_id=player_id, amount=eur(DEPOSIT)
        ),
        timeout=10,
    )


async def play(
    platform: Platform, operator: Operator, players: int, rounds: int | None, window_s: int
) -> None:
    addresses = platform.addresses
    async with (
        grpc.aio.insecure_channel(addresses["game_svc"]) as game_channel,
        grpc.aio.insecure_channel(addresses["wallet_svc"]) as wallet_channel,
        grpc.aio.insecure_channel(addresses["session_svc"]) as session_channel,
    ):
        game = game_service_pb2_grpc.GameServiceStub(game_channel)
        admin = game_service_pb2_grpc.TableAdminServiceStub(game_channel)
        wallet = wallet_service_pb2_grpc.WalletServiceStub(wallet_channel)
        session = session_service_pb2_grpc.SessionServiceStub(session_channel)
        demo_tables = await tables(admin, game, window_s)
        crowd = [
            Player(f"demo-player-{n:03d}", session, seat=n if n <= SEATS else 0)
            for n in range(1, players + 1)
        ]
        await asyncio.gather(
            *(fund(wallet, platform_player_id(OPERATOR, p.player_id)) for p in crowd)
        )
        await asyncio.gather(
            *(p.start(operator, {t: g for t, (_, g) in demo_tables.items()}) for p in crowd)
        )
        names = ", ".join(name for name, _ in demo_tables.values())
        print(f"{players} players joined {names}; Ctrl-C stops\n", flush=True)
        background = [asyncio.ensure_future(p.refresh()) for p in crowd] + [
            asyncio.ensure_future(p.play(table_id, game_type))
            for p in crowd
            for table_id, (_, game_type) in demo_tables.items()
        ]
        try:
            await asyncio.gather(
                *(
                    report(game, table_id, name, rounds)
                    for table_id, (name, _) in demo_tables.items()
                )
            )
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await asyncio.gather(*(p.stop() for p in crowd))


async def run(
    data_dir: Path, players: int, rounds: int | None, window_s: int, free_ports: bool
) -> int:
    operator = Operator()
    platform = Platform(
        data_dir=data_dir,
        free_ports=free_ports,
        service_env={"session_svc": {"CASINO_OPERATOR_KEYS": operator.keys_json()}},
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"starting {len(platform.packages)} services (logs in {data_dir / 'logs'}) ...", flush=True
    )
    try:
        await platform.start()
    except StartError as error:
        print(f"casino demo: {error}", file=sys.stderr)
        return 1
    playing = asyncio.ensure_future(play(platform, operator, players, rounds, window_s))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({playing, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if playing.done():
            playing.result()
        return 0
    except grpc.aio.AioRpcError as error:
        print(f"casino demo: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    finally:
        playing.cancel()
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await playing
        print("stopping ...", flush=True)
        await platform.stop()
