"""The benchmarks ``casino bench`` knows, by name."""

from __future__ import annotations

import asyncio
import importlib
import os

from bench.harness import Report

BENCHMARKS = {
    "bets": "bench.bets",
    "echo": "bench.echo",
    "fanout": "bench.fanout",
    "relay": "bench.relay",
    "rtp": "bench.rtp",
    "rng": "bench.rng",
    "settle": "bench.settle",
    "wallet": "bench.wallet",
}


NETNS = {"relay"}
"""Benchmarks that run inside a private network namespace (scripts/in-test-netns)."""


def describe() -> dict[str, str]:
    return {
        name: (importlib.import_module(module).__doc__ or "").strip().splitlines()[0]
        for name, module in BENCHMARKS.items()
    }


def run(names: list[str], quick: bool) -> int:
    """Run the named benchmarks (``all`` for every one); print tables, write JSON."""
    chosen = list(BENCHMARKS) if names == ["all"] else names
    if names == ["all"] and not os.environ.get("CASINO_TEST_NETNS"):
        # Its WebRTC peers need an address of their own: `make bench` runs it apart.
        chosen = [n for n in chosen if n not in NETNS]
    unknown = [n for n in chosen if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; try: casino bench --list")
        return 2
    for name in chosen:
        report: Report = asyncio.run(importlib.import_module(BENCHMARKS[name]).main(quick))
        path = report.write()
        print(report.table())
        print(f"  -> {path}\n")
    return 0
