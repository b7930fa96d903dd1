"""Return to player of each game's rules, simulated and compared with published figures.

Plays at least 10^6 rounds per game (``--quick``: 10^5) through the pure rules of game_svc
(the same functions that settle real rounds) with a fast seeded PRNG on every core, and
checks each figure against its published reference within a 99% confidence interval
computed from the run's own per-round variance. This is a statistics benchmark, not the
fairness path: real rounds draw from rng_svc.

- Roulette: each spin carries one bet of every type (13 types, a random position each);
  reference 36/37 = 97.297%.
- Baccarat, 8 decks: Player, Banker (0.95:1), Tie (8:1) and Player Pair (11:1) on every
  coup; references 98.7649%, 98.9421%, 85.6404%, 89.6386% (exact by enumeration, see
  tests/game_svc/test_exact_rtp.py).
- Blackjack, 8 decks, S17, DAS, one split, one card to split aces, peek, no surrender,
  3:2: one seat through game_svc.blackjack_round playing basic strategy
  (game_svc.basic_strategy); the return is per unit of
  initial stake (doubles and splits add risk, not rounds). Reference 99.53%: the usual
  additive estimates (8 decks 0.55%, no resplit 0.03%, DAS -0.13%, baseline 0.02%) give a
  house edge of about 0.47%; the 99% interval of 10^6 rounds (+-0.3%) dwarfs that error.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from bench.harness import Report
from game_svc import baccarat, basic_strategy, roulette
from game_svc.bets import BetType, Spot
from game_svc.blackjack import Action, Rules
from game_svc.blackjack_round import BlackjackRound, Stage
from game_svc.cards import Card, Shoe

Z_99 = 2.5758
DECKS = 8
RESHUFFLE_BELOW = 104  # the cut card: two decks from the end
STAKE = 100

REFERENCES = {
    "roulette": 100 * 36 / 37,
    "baccarat_banker": 98.9421,
    "baccarat_player": 98.7649,
    "baccarat_tie": 85.6404,
    "baccarat_player_pair": 89.6386,
    "blackjack": 99.53,
}


@dataclass(frozen=True)
class Tally:
    """Per-round returns (payout over stake) as count, sum and sum of squares."""

    rounds: int = 0
    total: float = 0.0
    squares: float = 0.0

    def __add__(self, other: Tally) -> Tally:
        return Tally(
            self.rounds + other.rounds, self.total + other.total, self.squares + other.squares
        )

    @property
    def mean(self) -> float:
        return self.total / self.rounds

    @property
    def half_width_99(self) -> float:
        """Half the 99% confidence interval of the mean (normal approximation)."""
        variance = (self.squares - self.total * self.mean) / (self.rounds - 1)
        return Z_99 * math.sqrt(max(variance, 0.0) / self.rounds)


class _Tallies:
    def __init__(self, names: list[str]) -> None:
        self.rounds = 0
        self.totals = dict.fromkeys(names, 0.0)
        self.squares = dict.fromkeys(names, 0.0)

    def add(self, name: str, ratio: float) -> None:
        self.totals[name] += ratio
        self.squares[name] += ratio * ratio

    def result(self) -> dict[str, Tally]:
        return {n: Tally(self.rounds, self.totals[n], self.squares[n]) for n in self.totals}


class _Shoe:
    """An 8-deck shoe reshuffled at the cut card, from a seeded PRNG."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._order = [Card.from_index(i, DECKS) for i in range(52 * DECKS)]
        self._shoe = self._shuffle()

    def _shuffle(self) -> Shoe:
        self._rng.shuffle(self._order)
        return Shoe(self._order)

    def next_round(self) -> Callable[[], Card]:
        if self._shoe.remaining < RESHUFFLE_BELOW:
            self._shoe = self._shuffle()
        return self._shoe.deal


def simulate_roulette(rounds: int, seed: int) -> dict[str, Tally]:
    rng = random.Random(seed)
    spots = [Spot(t, numbers) for t in roulette.INSIDE for numbers in sorted(roulette.INSIDE[t])]
    spots += [
        Spot(t, group=g)
        for t in (BetType.ROULETTE_COLUMN, BetType.ROULETTE_DOZEN)
        for g in (1, 2, 3)
    ]
    spots += [Spot(t) for t in roulette.BET_TYPES if t not in roulette.INSIDE and t.value >= 8]
    by_type: dict[BetType, list[roulette.RouletteBet]] = {}
    for spot in spots:
        by_type.setdefault(spot.bet_type, []).append(roulette.validate(spot))
    choices = list(by_type.values())
    staked = STAKE * len(choices)
    tallies = _Tallies(["roulette"])
    for _ in range(rounds):
        pocket = rng.randrange(37)
        paid = sum(rng.choice(bets).settle(STAKE, pocket).payout for bets in choices)
        tallies.add("roulette", paid / staked)
    tallies.rounds = rounds
    return tallies.result()


BACCARAT_BETS = {
    "baccarat_player": BetType.BACCARAT_PLAYER,
    "baccarat_banker": BetType.BACCARAT_BANKER,
    "baccarat_tie": BetType.BACCARAT_TIE,
    "baccarat_player_pair": BetType.BACCARAT_PLAYER_PAIR,
}


def simulate_baccarat(rounds: int, seed: int) -> dict[str, Tally]:
    shoe = _Shoe(random.Random(seed))
    tallies = _Tallies(list(BACCARAT_BETS))
    for _ in range(rounds):
        coup, _order = baccarat.deal(shoe.next_round())
        for name, bet_type in BACCARAT_BETS.items():
            tallies.add(name, baccarat.settle(bet_type, STAKE, coup).payout / STAKE)
    tallies.rounds = rounds
    return tallies.result()


def play_blackjack_round(rules: Rules, draw: Callable[[], Card]) -> float:
    """One seat through a table round, basic strategy, never insuring: the round's return
    per unit of initial stake."""
    round_ = BlackjackRound(rules, {1: STAKE}, draw)
    while round_.stage is not Stage.FINISHED:
        if round_.stage is Stage.INSURANCE:
            action = Action.STAND  # declines insurance
        else:
            action = basic_strategy.decide(round_.plays[1], round_.upcard)
        round_.decide(1, action, draw)
    net = sum(hand.settlement.payout - hand.stake for hand in round_.result(1).hands)
    return 1 + net / STAKE


def simulate_blackjack(rounds: int, seed: int) -> dict[str, Tally]:
    rules = Rules(decks=DECKS)
    shoe = _Shoe(random.Random(seed))
    tallies = _Tallies(["blackjack"])
    for _ in range(rounds):
        tallies.add("blackjack", play_blackjack_round(rules, shoe.next_round()))
    tallies.rounds = rounds
    return tallies.result()


SIMULATIONS: dict[str, Callable[[int, int], dict[str, Tally]]] = {
    "roulette": simulate_roulette,
    "baccarat": simulate_baccarat,
    "blackjack": simulate_blackjack,
}


def run_chunk(game: str, rounds: int, seed: int) -> dict[str, Tally]:
    return SIMULATIONS[game](rounds, seed)


async def simulate(rounds: int, workers: int, seed: int = 20261122) -> dict[str, Tally]:
    """Every game's tallies, each game split into chunks shared by ``workers`` processes."""
    chunks = 4 * workers
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")  # no fork of a process that may run grpc
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        jobs = [
            loop.run_in_executor(
                pool, run_chunk, game, rounds // chunks + (i < rounds % chunks), seed + 1000 * i
            )
            for game in SIMULATIONS
            for i in range(chunks)
        ]
        parts = await asyncio.gather(*jobs)
    merged: dict[str, Tally] = {}
    for part in parts:
        for name, tally in part.items():
            merged[name] = merged.get(name, Tally()) + tally
    return merged


async def main(quick: bool) -> Report:
    rounds = 10**5 if quick else 10**6
    workers = max(1, min(2, os.cpu_count() or 1))
    started = time.perf_counter()
    tallies = await simulate(rounds, workers)
    report = Report("rtp")
    for name, tally in tallies.items():
        figure = f"rtp_{name}_pct"
        rtp, half = 100 * tally.mean, 100 * tally.half_width_99
        reference = REFERENCES[name]
        report.figures[figure] = round(rtp, 4)
        report.targets[figure] = {
            ">=": round(reference - half, 4),
            "<=": round(reference + half, 4),
        }
        report.notes.append(
            f"{name}: {rtp:.4f}% simulated vs {reference:.4f}% published "
            f"(99% interval +-{half:.4f}, {tally.rounds} rounds)"
        )
    report.figures["rounds_per_game"] = float(rounds)
    report.figures["elapsed_s"] = round(time.perf_counter() - started, 1)
    report.notes.append(f"{workers} worker processes")
    return report
