"""The ISO-4217 currencies the wallet keeps accounts in, with their minor-unit exponents.

A closed list, not "any three capital letters": an account in a made-up currency could never
be paid out, and a typo (``EUROS``, ``EUr``) must fail at the edge, not open a new ledger.
"""

from __future__ import annotations

EXPONENTS: dict[str, int] = {
    "AED": 2,
    "ARS": 2,
    "AUD": 2,
    "BGN": 2,
    "BHD": 3,
    "BRL": 2,
    "CAD": 2,
    "CHF": 2,
    "CLP": 0,
    "CNY": 2,
    "COP": 2,
    "CZK": 2,
    "DKK": 2,
    "EUR": 2,
    "GBP": 2,
    "HKD": 2,
    "HUF": 2,
    "IDR": 2,
    "ILS": 2,
    "INR": 2,
    "ISK": 0,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "MXN": 2,
    "MYR": 2,
    "NOK": 2,
    "NZD": 2,
    "PEN": 2,
    "PHP": 2,
    "PLN": 2,
    "RON": 2,
    "RSD": 2,
    "SEK": 2,
    "SGD": 2,
    "THB": 2,
    "TRY": 2,
    "TWD": 2,
    "UAH": 2,
    "USD": 2,
    "VND": 0,
    "ZAR": 2,
}
"""Accepted codes and their ISO-4217 exponent (digits after the decimal point)."""


def is_supported(code: str) -> bool:
    """Whether the wallet keeps accounts in ``code``."""
    return code in EXPONENTS


def exponent(code: str) -> int:
    """The number of minor-unit digits of ``code`` (2 for EUR, 0 for JPY, 3 for KWD)."""
    return EXPONENTS[code]


def format_amount(amount_minor: int, code: str) -> str:
    """``1050, "EUR"`` -> ``"10.50 EUR"``: for messages and logs, never for arithmetic."""
    digits = exponent(code)
    sign = "-" if amount_minor < 0 else ""
    whole, fraction = divmod(abs(amount_minor), 10**digits)
    text = f"{whole}.{fraction:0{digits}d}" if digits else str(whole)
    return f"{sign}{text} {code}"
