"""What every benchmark shares: closed-loop load, percentiles, the table and the JSON file."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
WARMUP_S = 0.5
"""A closed loop's unmeasured start."""


@dataclass(frozen=True)
class Load:
    """One closed-loop measurement: calls per second and latency percentiles."""

    calls_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def percentile(samples: list[float], fraction: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def closed_loop(
    call: Callable[[int], Awaitable[object]],
    concurrency: int,
    duration_s: float,
    warmup_s: float = WARMUP_S,
) -> Load:
    """``concurrency`` workers call ``call(worker)`` back to back; the warm-up is not counted."""
    latencies: list[float] = []
    errors = 0
    start = time.perf_counter()
    measure_from = start + warmup_s
    stop_at = measure_from + duration_s

    async def worker(index: int) -> None:
        nonlocal errors
        while (now := time.perf_counter()) < stop_at:
            try:
                await call(index)
            except Exception:
                errors += 1
                continue
            if now >= measure_from:
                latencies.append((time.perf_counter() - now) * 1000)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    return Load(
        calls_per_s=len(latencies) / duration_s,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        errors=errors,
    )


def median_of(runs: list[Load]) -> Load:
    """The run with the median throughput: one coherent set of figures, not a blend."""
    ordered = sorted(runs, key=lambda r: r.calls_per_s)
    return ordered[len(ordered) // 2]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    return _cpu(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split())


def _cpu(fields: list[str]) -> float:
    """utime + stime from the fields of /proc/PID/stat after the command name."""
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pid_of(*words: str) -> int:
    """The process whose command line holds all ``words``."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if all(w in command for w in words):
                return int(entry.name)
    raise LookupError(f"no process runs {words}")


def cpu_by_role() -> dict[str, float]:
    """CPU seconds used so far by what serves a benchmark: this process ("client"), its
    children by the package they run (``python -m <package>``), and the machine's PostgreSQL
    and Redis (all their processes: nothing else uses them while a benchmark runs)."""
    me = os.getpid()
    used: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, tail = (entry / "stat").read_text().rsplit(")", 1)
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # it ended meanwhile
        fields = tail.split()
        name = head.split("(", 1)[1]
        role = None
        if int(entry.name) == me:
            role = "client"
        elif int(fields[1]) == me and b"-m" in argv[:-1]:
            role = argv[argv.index(b"-m") + 1].decode()
        elif name in ("postgres", "redis-server"):
            role = name
        if role is not None:
            used[role] = used.get(role, 0.0) + _cpu(fields)
    return used


def cpu_us_per_call(
    before: Mapping[str, float], after: Mapping[str, float], calls: float
) -> dict[str, float]:
    """Each role's CPU microseconds per call between two ``cpu_by_role`` readings."""
    return {
        role: round((after[role] - before.get(role, 0.0)) / calls * 1e6, 1)
        for role in sorted(after)
        if calls > 0 and after[role] > before.get(role, 0.0)
    }


@dataclass
class Report:
    """A benchmark's figures (flat, units in the names) and the targets its issue sets."""

    name: str
    figures: dict[str, float] = field(default_factory=dict)
    targets: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def met(self) -> dict[str, bool]:
        checks = {">=": float.__ge__, "<=": float.__le__}
        return {
            name: all(checks[op](float(self.figures[name]), bound) for op, bound in rule.items())
            for name, rule in self.targets.items()
            if name in self.figures
        }

    def as_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "figures": self.figures,
            "targets": self.targets,
            "notes": self.notes,
        }

    def write(self, results: Path = RESULTS) -> Path:
        results.mkdir(parents=True, exist_ok=True)
        path = results / f"{self.name}.json"
        path.write_text(json.dumps(self.as_json(), indent=2) + "\n")
        return path

    def table(self) -> str:
        met = self.met()
        rows = [f"{self.name}", f"  {'figure':<32} {'value':>12}  target"]
        for name, value in self.figures.items():
            rule = self.targets.get(name)
            target = ""
            if rule:
                bounds = " ".join(f"{op} {bound:g}" for op, bound in rule.items())
                target = f"{bounds}  {'met' if met[name] else 'MISSED'}"
            rows.append(f"  {name:<32} {value:>12.2f}  {target}")
        rows += [f"  note: {note}" for note in self.notes]
        return "\n".join(rows)


def figures_of(prefix: str, load: Load, suffix: str) -> Mapping[str, float]:
    """``calls/s``, p50 and p99 of one load under names such as ``echo_per_s_c256``."""
    return {
        f"{prefix}_per_s_{suffix}": round(load.calls_per_s, 1),
        f"{prefix}_p50_ms_{suffix}": round(load.p50_ms, 2),
        f"{prefix}_p99_ms_{suffix}": round(load.p99_ms, 2),
    }
