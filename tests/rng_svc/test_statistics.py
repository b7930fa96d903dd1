"""Uniformity of draws and shuffles at 99 % confidence, and proof the tests can fail.

Seeds are fixed, so each test is deterministic: it passes or fails the same way every run
instead of failing 1 % of runs by chance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from rng_svc import fairness
from tests.rng_svc.stats import ALPHA, chi2_sf, chi2_statistic

SEED = bytes.fromhex("5eed" * 16)
CLIENT = "statistics"

Shuffler = Callable[[list[int], Iterator[int]], object]


def roulette_counts(draws: int, pocket: Callable[[str], int]) -> list[int]:
    counts = [0] * 37
    for i in range(draws):
        counts[pocket(f"round-{i}")] += 1
    return counts


def roulette_p_value(counts: list[int]) -> float:
    statistic = chi2_statistic(counts, sum(counts) / 37)
    return chi2_sf(statistic, 36)


def test_one_million_roulette_draws_are_uniform() -> None:
    counts = roulette_counts(10**6, lambda r: fairness.roulette(SEED, r, CLIENT))
    assert min(counts) > 0
    assert roulette_p_value(counts) > ALPHA


def test_the_uniformity_test_rejects_modulo_bias() -> None:
    """A byte taken mod 37 favours pockets 0..33 (256 = 6 * 37 + 34): the test must see it."""

    def biased(round_id: str) -> int:
        return next(fairness.blocks(SEED, round_id, CLIENT))[0] % 37

    counts = roulette_counts(10**5, biased)
    assert roulette_p_value(counts) < ALPHA


def position_p_value(
    shuffles: int, size: int, shuffler: Shuffler, positions: range | list[int] | None = None
) -> float:
    """Chi-square over the (position, card) count table of ``shuffles`` shuffles.

    With every position counted both margins are fixed: (size - 1)^2 degrees of freedom.
    With a subset of positions only the rows are fixed: rows * (size - 1).
    """
    rows = list(range(size)) if positions is None else list(positions)
    table = {position: [0] * size for position in rows}
    for i in range(shuffles):
        cards = list(range(size))
        shuffler(cards, fairness.words(SEED, f"shoe-{i}", CLIENT))
        for position in rows:
            table[position][cards[position]] += 1
    statistic = sum(chi2_statistic(row, shuffles / size) for row in table.values())
    df = (size - 1) ** 2 if positions is None else len(rows) * (size - 1)
    return chi2_sf(statistic, df)


def test_each_card_is_equally_likely_in_each_position_of_a_deck() -> None:
    assert position_p_value(20_000, 52, fairness.shuffle) > ALPHA


def test_each_card_is_equally_likely_at_the_ends_of_an_eight_deck_shoe() -> None:
    size = 52 * 8
    ends = [0, 1, 2, 3, size // 2, size - 3, size - 2, size - 1]
    assert position_p_value(3_000, size, fairness.shuffle, ends) > ALPHA


def naive_shuffle(items: list[int], stream: Iterator[int]) -> None:
    """The classic mistake: swap with any position, not only the unshuffled ones."""
    for i in range(len(items)):
        j = fairness.uniform(stream, len(items))
        items[i], items[j] = items[j], items[i]


def sattolo_shuffle(items: list[int], stream: Iterator[int]) -> None:
    """The off-by-one mistake: j in [0, i) never leaves a card where it was."""
    for i in range(len(items) - 1, 0, -1):
        j = fairness.uniform(stream, i)
        items[i], items[j] = items[j], items[i]


def test_the_position_test_rejects_biased_shuffles() -> None:
    assert position_p_value(20_000, 52, naive_shuffle) < ALPHA
    assert position_p_value(5_000, 52, sattolo_shuffle) < ALPHA
