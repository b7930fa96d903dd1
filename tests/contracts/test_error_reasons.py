"""Every ErrorInfo reason a service raises is in the contract's catalogue (`ErrorReason`):
clients, studios' SDKs included, switch on the reason, so one missing there is a reason
they cannot know of."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from casino.common.v1 import error_reason_pb2
from casino_kit import errors

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "casino_kit",
    "session_svc",
    "game_svc",
    "rng_svc",
    "wallet_svc",
    "ingest_svc",
    "edge_relay",
)
REASON = re.compile(r"[A-Z][A-Z0-9_]+")


def _error_classes(trees: list[ast.Module]) -> set[str]:
    """The names of DomainError and its subclasses, the kit's and the services' own."""
    names = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, errors.DomainError)
    }
    classes = [node for tree in trees for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
    while True:
        more = {
            c.name
            for c in classes
            if any(getattr(base, "id", getattr(base, "attr", "")) in names for base in c.bases)
        }
        if more <= names:
            return names
        names |= more


def raised_reasons() -> dict[str, str]:
    """Each reason given as a literal to a DomainError class, and one place that does."""
    files = [path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))]
    trees = [ast.parse(path.read_text(), str(path)) for path in files]
    classes = _error_classes(trees)
    found: dict[str, str] = {}
    for path, tree in zip(files, trees, strict=True):
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            callee = getattr(node.func, "id", getattr(node.func, "attr", ""))
            first = node.args[0]
            if (
                callee in classes
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and REASON.fullmatch(first.value)
            ):
                found.setdefault(first.value, f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_every_raised_reason_is_in_the_catalogue() -> None:
    catalogue = {name.removeprefix("ERROR_REASON_") for name in error_reason_pb2.ErrorReason.keys()}
    raised = raised_reasons()
    assert len(raised) > 30  # the scan sees the services' errors
    missing = {reason: where for reason, where in raised.items() if reason not in catalogue}
    assert not missing, f"add these to proto/casino/common/v1/error_reason.proto: {missing}"
