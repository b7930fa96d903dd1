"""Request checks that collect every bad field before failing, so a client fixes all at once."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message

from casino_kit.errors import FieldViolation, InvalidArgument

MAX_AMOUNT_MINOR = 10**15
"""Largest money amount in minor units accepted anywhere: far above any real stake, and far
below int64, so sums of many amounts cannot overflow."""


def _get(message: Message, path: str) -> tuple[bool, Any]:
    """Walk a dotted path; report whether every hop is present (set, non-default)."""
    value: Any = message
    for part in path.split("."):
        descriptor = value.DESCRIPTOR.fields_by_name[part]
        if descriptor.message_type is not None and not descriptor.is_repeated:
            if not value.HasField(part):
                return False, None
        value = getattr(value, part)
    return bool(value) or isinstance(value, Message), value


class Violations:
    """Collects field violations; ``raise_if_any`` raises one InvalidArgument naming them all."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def require(self, message: Message, *paths: str) -> None:
        for path in paths:
            if not _get(message, path)[0]:
                self.add(path, "is required")

    def money(self, message: Message, path: str, *, allow_zero: bool = False) -> None:
        """A Money field: present, with a three-letter currency and a bounded amount."""
        present, money = _get(message, path)
        if not present:
            self.add(path, "is required")
            return
        amount = money.amount_minor
        if amount < 0 or (amount == 0 and not allow_zero):
            rule = "must be >= 0" if allow_zero else "must be positive"
            self.add(f"{path}.amount_minor", rule)
        elif amount > MAX_AMOUNT_MINOR:
            self.add(f"{path}.amount_minor", f"must be at most {MAX_AMOUNT_MINOR}")
        currency = money.currency
        if len(currency) != 3 or not currency.isascii() or not currency.isupper():
            self.add(f"{path}.currency", "must be an ISO-4217 code such as EUR")

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)
