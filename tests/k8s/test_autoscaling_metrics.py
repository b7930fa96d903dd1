"""The metrics the autoscalers under k8s/ divide among pods are ones the services export.

An HPA whose custom metric no pod exports never scales on it (and never scales down), and
nothing in Kubernetes says so: this test reads the metric names from the rendered HPAs and
finds each on the Prometheus endpoint of the service the HPA scales, with a player watching
a table so the session's figure is seen to count.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import grpc

from casino.game.v1 import game_service_pb2_grpc
from casino.session.v1 import session_service_pb2_grpc
from casino.wallet.v1 import wallet_service_pb2_grpc
from casino_cli import demo
from casino_cli.platform import Platform, free_port
from session_svc.tokens import platform_player_id
from tests.k8s.test_manifests import SERVICES, TARGETS, of_kind, render


def pods_metrics() -> dict[str, set[str]]:
    """Service package -> the per-pod metric names its HPAs scale on, in every target."""
    wanted: dict[str, set[str]] = {}
    for target in TARGETS:
        for hpa in of_kind(render(target), "HorizontalPodAutoscaler"):
            package = SERVICES[hpa["spec"]["scaleTargetRef"]["name"]][0]
            for metric in hpa["spec"]["metrics"]:
                if metric["type"] == "Pods":
                    wanted.setdefault(package, set()).add(metric["pods"]["metric"]["name"])
    return wanted


def value_of(exported: str, name: str) -> float | None:
    """The value of the first sample of ``name`` in Prometheus text, if there is one."""
    for line in exported.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_every_autoscaling_metric_is_exported_by_the_pods_it_scales(
    tmp_path: Path,
) -> None:
    wanted = pods_metrics()
    assert wanted.keys() == {"session_svc", "edge_relay"}, wanted
    metrics_ports = {package: free_port() for package in wanted}
    service_env = {
        package: {"CASINO_METRICS_PORT": str(port)} for package, port in metrics_ports.items()
    }
    operator = demo.Operator()
    service_env["session_svc"]["CASINO_OPERATOR_KEYS"] = operator.keys_json()
    platform = Platform(data_dir=tmp_path, free_ports=True, service_env=service_env)
    await platform.start()
    try:
        async with (
            grpc.aio.insecure_channel(platform.addresses["game_svc"]) as game_channel,
            grpc.aio.insecure_channel(platform.addresses["wallet_svc"]) as wallet_channel,
            grpc.aio.insecure_channel(platform.addresses["session_svc"]) as session_channel,
            aiohttp.ClientSession() as http,
        ):
            tables = await demo.tables(
                game_service_pb2_grpc.TableAdminServiceStub(game_channel),
                game_service_pb2_grpc.GameServiceStub(game_channel),
                window_s=5,
            )
            table_id, (_, game_type) = next(iter(tables.items()))
            player = demo.Player(
                "watcher", session_service_pb2_grpc.SessionServiceStub(session_channel)
            )
            await demo.fund(
                wallet_service_pb2_grpc.WalletServiceStub(wallet_channel),
                platform_player_id(demo.OPERATOR, player.player_id),
            )
            await player.start(operator, {table_id: game_type})
            watching = asyncio.ensure_future(player.play(table_id, game_type))
            try:
                exported: dict[str, str] = {}
                for _ in range(50):
                    for package, port in metrics_ports.items():
                        async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                            exported[package] = await response.text()
                    if value_of(exported["session_svc"], "session_active_players") == 1:
                        break
                    await asyncio.sleep(0.2)
            finally:
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)
                await player.stop()
    finally:
        await platform.stop()
    for package, names in wanted.items():
        for name in names:
            assert value_of(exported[package], name) is not None, (
                f"{package} does not export {name}, which its HPA scales on"
            )
    assert value_of(exported["session_svc"], "session_active_players") == 1  # one watcher
    assert value_of(exported["edge_relay"], "relay_viewers") == 0  # nobody plays video
