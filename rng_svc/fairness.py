"""The published derivation (FAIRNESS_ALGORITHM_HMAC_SHA256_V1): seeds in, outcomes out.

Pure and deterministic, so anyone holding the revealed server seed and the client seed can
re-derive an outcome; ``docs/fairness.md`` specifies it for re-implementation without this
code. Nothing here reads a clock or a random source except ``new_server_seed``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import struct
from collections.abc import Iterator, MutableSequence
from dataclasses import dataclass
from typing import TypeVar

ALGORITHM = "FAIRNESS_ALGORITHM_HMAC_SHA256_V1"
"""The one algorithm this module implements, by its ``casino.common.v1`` enum value name."""

SEED_BYTES = 32
WORD_RANGE = 1 << 32
DECK_SIZE = 52
MAX_DECKS = 8
MAX_INTEGERS = 1000
ROULETTE_POCKETS = 37

T = TypeVar("T")
_WORDS = struct.Struct(">8I")


def new_server_seed() -> bytes:
    """32 bytes from the operating system's CSPRNG (the HSM provider has its own source)."""
    return os.urandom(SEED_BYTES)


def commitment_of(server_seed: bytes) -> str:
    """The published commitment: lowercase hex SHA-256 of the seed bytes."""
    return hashlib.sha256(server_seed).hexdigest()


def blocks(server_seed: bytes, round_id: str, client_seed: str) -> Iterator[bytes]:
    """Block k = HMAC-SHA256(key=server seed, msg=UTF-8 "<client_seed>:<round_id>:<k>")."""
    prefix = f"{client_seed}:{round_id}:".encode()
    for k in itertools.count():
        yield hmac.digest(server_seed, prefix + str(k).encode(), "sha256")


def words(server_seed: bytes, round_id: str, client_seed: str) -> Iterator[int]:
    """The stream as 32-bit big-endian words, eight per block, in order."""
    for block in blocks(server_seed, round_id, client_seed):
        yield from _WORDS.unpack(block)


def uniform(stream: Iterator[int], n: int) -> int:
    """A uniform integer in [0, n) by rejection sampling: words at or above the largest
    multiple of n below 2^32 are discarded, so no residue is favoured (2^32 mod 37 != 0)."""
    if not 1 <= n <= WORD_RANGE:
        raise ValueError(f"n must be in [1, 2^32], got {n}")
    limit = WORD_RANGE - WORD_RANGE % n
    for word in stream:
        if word < limit:
            return word % n
    raise AssertionError("the word stream is infinite")


def shuffle(items: MutableSequence[T], stream: Iterator[int]) -> MutableSequence[T]:
    """Fisher-Yates (Durstenfeld) in place: for i from the end down to 1, swap i with a
    uniform j in [0, i]. Every one of the len! orders is equally likely."""
    for i in range(len(items) - 1, 0, -1):
        j = uniform(stream, i + 1)
        items[i], items[j] = items[j], items[i]
    return items


@dataclass(frozen=True)
class Roulette:
    """One European roulette pocket, 0 to 36."""

    def text(self) -> str:
        return "roulette"


@dataclass(frozen=True)
class Shuffle:
    """A shoe of ``decks`` whole 52-card decks, as shuffled card indexes."""

    decks: int

    def text(self) -> str:
        return f"shuffle:{self.decks}"


@dataclass(frozen=True)
class Integers:
    """``count`` independent integers, each uniform in [0, n)."""

    n: int
    count: int

    def text(self) -> str:
        return f"integers:{self.n}:{self.count}"


Draw = Roulette | Shuffle | Integers


class BadDraw(ValueError):
    """A draw outside the published ranges; ``field`` names the offending part."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_draw(draw: Draw) -> None:
    """Enforce the published ranges, so every recorded draw can be re-derived by others."""
    if isinstance(draw, Shuffle) and not 1 <= draw.decks <= MAX_DECKS:
        raise BadDraw("decks", f"must be 1 to {MAX_DECKS}")
    if isinstance(draw, Integers):
        if not 2 <= draw.n <= WORD_RANGE - 1:
            raise BadDraw("n", "must be 2 to 2^32 - 1")
        if not 1 <= draw.count <= MAX_INTEGERS:
            raise BadDraw("count", f"must be 1 to {MAX_INTEGERS}")


def parse_draw(text: str) -> Draw:
    """The inverse of ``Draw.text()``, as stored in the audit record."""
    kind, _, rest = text.partition(":")
    try:
        if kind == "roulette" and not rest:
            return Roulette()
        if kind == "shuffle":
            return Shuffle(int(rest))
        if kind == "integers":
            n, count = rest.split(":")
            return Integers(int(n), int(count))
    except ValueError:
        pass
    raise ValueError(f"not a draw: {text!r}")


def roulette(server_seed: bytes, round_id: str, client_seed: str) -> int:
    """The pocket: one draw in [0, 37)."""
    return uniform(words(server_seed, round_id, client_seed), ROULETTE_POCKETS)


def shoe(server_seed: bytes, round_id: str, client_seed: str, decks: int) -> list[int]:
    """Card indexes 0..52*decks-1 shuffled by Fisher-Yates; the first is dealt first."""
    cards = list(range(DECK_SIZE * decks))
    shuffle(cards, words(server_seed, round_id, client_seed))
    return cards


def integers(server_seed: bytes, round_id: str, client_seed: str, n: int, count: int) -> list[int]:
    """``count`` draws in [0, n) from one stream, in draw order."""
    stream = words(server_seed, round_id, client_seed)
    return [uniform(stream, n) for _ in range(count)]


def derive(draw: Draw, server_seed: bytes, round_id: str, client_seed: str) -> tuple[int, ...]:
    """The outcome of ``draw``: what the audit record stores and verifiers recompute."""
    check_draw(draw)
    if isinstance(draw, Roulette):
        return (roulette(server_seed, round_id, client_seed),)
    if isinstance(draw, Shuffle):
        return tuple(shoe(server_seed, round_id, client_seed, draw.decks))
    return tuple(integers(server_seed, round_id, client_seed, draw.n, draw.count))


@dataclass(frozen=True)
class Card:
    """What a card index means: deck 0.., suit 1..4 (CardSuit), rank 1..13 (CardRank)."""

    deck: int
    suit: int
    rank: int


def card_of(index: int) -> Card:
    """Card index c is deck c // 52, suit (c mod 52) // 13 + 1, rank (c mod 13) + 1."""
    return Card(deck=index // DECK_SIZE, suit=(index % DECK_SIZE) // 13 + 1, rank=index % 13 + 1)
