"""The derivation's building blocks: stream, rejection sampling, shuffles, draws."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from rng_svc import fairness
from rng_svc.fairness import Integers, Roulette, Shuffle

SEED = bytes(range(32))
ROUND = "0193a5c0-0000-7000-8000-000000000001"
CLIENT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_commitment_is_sha256_hex_of_the_seed() -> None:
    assert fairness.commitment_of(SEED) == (
        "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
    )


def test_new_seeds_are_32_fresh_bytes() -> None:
    seeds = {fairness.new_server_seed() for _ in range(100)}
    assert len(seeds) == 100
    assert all(len(seed) == 32 for seed in seeds)


def test_words_are_big_endian_block_words_in_order() -> None:
    block0, block1 = itertools.islice(fairness.blocks(SEED, ROUND, CLIENT), 2)
    words = list(itertools.islice(fairness.words(SEED, ROUND, CLIENT), 16))
    expected = [
        int.from_bytes(b[i : i + 4], "big") for b in (block0, block1) for i in range(0, 32, 4)
    ]
    assert words == expected


def test_stream_depends_on_every_input() -> None:
    first = next(fairness.blocks(SEED, ROUND, CLIENT))
    assert next(fairness.blocks(bytes(32), ROUND, CLIENT)) != first
    assert next(fairness.blocks(SEED, ROUND + "x", CLIENT)) != first
    assert next(fairness.blocks(SEED, ROUND, CLIENT + "x")) != first


def _stream(values: list[int]) -> Iterator[int]:
    yield from values
    raise AssertionError("stream exhausted")


def test_uniform_rejects_words_at_or_above_the_limit() -> None:
    limit = 2**32 - 2**32 % 37
    assert limit == 4294967289
    # The 7 top words would favour pockets 0..6: they are skipped, 40 is taken.
    assert fairness.uniform(_stream([limit, 2**32 - 1, 40]), 37) == 40 % 37
    assert fairness.uniform(_stream([limit - 1]), 37) == (limit - 1) % 37


def test_uniform_with_power_of_two_never_rejects() -> None:
    assert fairness.uniform(_stream([2**32 - 1]), 2**32) == 2**32 - 1
    assert fairness.uniform(_stream([2**32 - 1]), 16) == 15


@pytest.mark.parametrize("n", [0, -1, 2**32 + 1])
def test_uniform_refuses_impossible_ranges(n: int) -> None:
    with pytest.raises(ValueError):
        fairness.uniform(iter([1]), n)


def test_shuffle_is_fisher_yates_from_the_top() -> None:
    # j for i = 3, 2, 1 comes from words 0, 1, 2 taken mod 4, 3, 2.
    items = ["a", "b", "c", "d"]
    fairness.shuffle(items, _stream([1, 2, 1]))
    # i=3: j=1 -> a d c b; i=2: j=2 -> unchanged; i=1: j=1 -> unchanged.
    assert items == ["a", "d", "c", "b"]


def test_shoe_is_a_permutation_of_all_card_indexes() -> None:
    for decks in (1, 6, 8):
        cards = fairness.shoe(SEED, ROUND, CLIENT, decks)
        assert sorted(cards) == list(range(52 * decks))


def test_card_index_meaning() -> None:
    assert fairness.card_of(0) == fairness.Card(deck=0, suit=1, rank=1)
    assert fairness.card_of(12) == fairness.Card(deck=0, suit=1, rank=13)
    assert fairness.card_of(13) == fairness.Card(deck=0, suit=2, rank=1)
    assert fairness.card_of(51) == fairness.Card(deck=0, suit=4, rank=13)
    assert fairness.card_of(52 * 7 + 25) == fairness.Card(deck=7, suit=2, rank=13)


def test_derive_is_deterministic_and_matches_the_published_vectors() -> None:
    assert fairness.derive(Roulette(), SEED, ROUND, CLIENT) == (26,)
    assert fairness.derive(Integers(6, 10), SEED, ROUND, CLIENT) == (2, 4, 4, 2, 1, 2, 4, 1, 0, 5)
    assert fairness.derive(Shuffle(8), SEED, ROUND, CLIENT)[:10] == (
        238, 166, 250, 57, 235, 52, 189, 1, 354, 50,
    )  # fmt: skip
    assert fairness.derive(Shuffle(1), SEED, ROUND, CLIENT) == fairness.derive(
        Shuffle(1), SEED, ROUND, CLIENT
    )


@pytest.mark.parametrize(
    ("draw", "field"),
    [
        (Shuffle(0), "decks"),
        (Shuffle(9), "decks"),
        (Integers(1, 1), "n"),
        (Integers(2**32, 1), "n"),
        (Integers(10, 0), "count"),
        (Integers(10, 1001), "count"),
    ],
)
def test_draws_outside_the_published_ranges_are_refused(draw: fairness.Draw, field: str) -> None:
    with pytest.raises(fairness.BadDraw) as error:
        fairness.derive(draw, SEED, ROUND, CLIENT)
    assert error.value.field == field


@pytest.mark.parametrize("draw", [Roulette(), Shuffle(8), Integers(4294967295, 1000)])
def test_draw_text_round_trips(draw: fairness.Draw) -> None:
    assert fairness.parse_draw(draw.text()) == draw


@pytest.mark.parametrize("text", ["", "roulette:1", "shuffle", "shuffle:x", "integers:5", "dice:6"])
def test_parse_draw_refuses_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        fairness.parse_draw(text)
