"""Chi-square p-values in pure Python (regularised incomplete gamma), for the RNG tests."""

from __future__ import annotations

import math
from collections.abc import Sequence

CONFIDENCE = 0.99
ALPHA = 1 - CONFIDENCE


def _lower_series(a: float, x: float) -> float:
    """P(a, x) by its series; converges fast for x < a + 1."""
    term = total = 1.0 / a
    n = a
    while abs(term) > abs(total) * 1e-15:
        n += 1
        term *= x / n
        total += term
    return total * math.exp(-x + a * math.log(x) - math.lgamma(a))


def _upper_fraction(a: float, x: float) -> float:
    """Q(a, x) by its continued fraction (modified Lentz); for x >= a + 1."""
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - math.lgamma(a)) * h


def chi2_sf(statistic: float, df: int) -> float:
    """The p-value: probability that a chi-square variable with ``df`` exceeds ``statistic``."""
    a, x = df / 2, statistic / 2
    if x <= 0:
        return 1.0
    if x < a + 1:
        return 1.0 - _lower_series(a, x)
    return _upper_fraction(a, x)


def chi2_statistic(observed: Sequence[int], expected: float) -> float:
    return sum((o - expected) ** 2 / expected for o in observed)
