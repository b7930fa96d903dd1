"""``casino``: the platform's command line."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from casino_cli import demo, verify
from casino_cli.platform import Platform, StartError

FREE_PORTS_HELP = "listen on free ports instead of 50051-50056 and 8890 (printed at start)"


async def _up(data_dir: Path, free_ports: bool) -> int:
    platform = Platform(data_dir=data_dir, free_ports=free_ports)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"starting {len(platform.packages)} services (logs in {data_dir / 'logs'}) ...")
    starting = asyncio.ensure_future(platform.start())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()
        await platform.stop()
        return 130
    try:
        starting.result()
    except StartError as error:
        print(f"casino up: {error}", file=sys.stderr)
        return 1
    print(f"\n  {'service':<12} {'address':<18} state")
    for package, address in platform.addresses.items():
        print(f"  {package:<12} {address:<18} SERVING")
    print(f"\n  players watch by WHEP: http://127.0.0.1:{platform.whep_port}/whep/<stream_id>")
    print("\nall services SERVING; Ctrl-C stops them")
    await stopping
    print("stopping ...")
    codes = await platform.stop()
    failed = {name: code for name, code in codes.items() if code != 0}
    print("stopped" if not failed else f"stopped; non-zero exits: {failed}")
    return 0 if not failed else 1


def _bench(names: list[str], quick: bool, list_only: bool) -> int:
    from bench import registry

    if list_only or not names:
        for name, doc in registry.describe().items():
            print(f"  {name:<10} {doc}")
        return 0
    return registry.run(names, quick=quick)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="casino", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    up = commands.add_parser("up", help="run every service locally on embedded defaults")
    up.add_argument("--data-dir", type=Path, default=Path(".data"), help="storage and logs")
    up.add_argument("--free-ports", action="store_true", help=FREE_PORTS_HELP)
    play = commands.add_parser(
        "demo", help="the platform with two RNG tables and simulated players, a line per round"
    )
    play.add_argument("--data-dir", type=Path, default=Path(".data"), help="storage and logs")
    play.add_argument("--free-ports", action="store_true", help=FREE_PORTS_HELP)
    play.add_argument("--players", type=int, default=50, help="simulated players")
    play.add_argument("--rounds", type=int, default=None, help="stop after N rounds per table")
    play.add_argument("--window", type=int, default=10, help="betting window, 5 to 120 s")
    bench = commands.add_parser("bench", help="run benchmarks (bench/results/NAME.json)")
    bench.add_argument("names", nargs="*", metavar="NAME", help="benchmark names, or 'all'")
    bench.add_argument("--list", action="store_true", help="list the benchmarks")
    bench.add_argument("--quick", action="store_true", help="a reduced run, under a minute")
    verify.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "verify":
        sys.exit(verify.run(args))
    if args.command == "demo":
        sys.exit(
            asyncio.run(
                demo.run(args.data_dir, args.players, args.rounds, args.window, args.free_ports)
            )
        )
    if args.command == "up":
        sys.exit(asyncio.run(_up(args.data_dir, args.free_ports)))
    sys.exit(_bench(args.names, args.quick, args.list))
