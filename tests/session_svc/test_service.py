"""The player API of real session_svc processes, on the in-process store and on Redis.

With Redis, two session processes share one Redis: a session opened on one is usable,
revocable and rate-limited on the other.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
import pytest_asyncio
from google.protobuf.duration_pb2 import Duration

from casino.common.v1 import limits_pb2
from casino.session.v1 import session_service_pb2 as pb
from casino.session.v1 import session_service_pb2_grpc
from casino_cli.platform import Platform, ServiceProcess, free_port
from casino_kit.errors import ErrorDetails, details_of
from tests.conftest import REDIS_URL
from tests.session_svc.conftest import STORES, delete_prefix
from tests.session_svc.operator import Operator, operator_keys_json

HOUR = 3600
DAY = 24 * HOUR
RATE_BURST = 15


@dataclass
class Nodes:
    """The running session processes (two on Redis, one in-process) and the test operators."""

    addresses: list[str]
    operator: Operator
    ed_operator: Operator
    channels: list[grpc.aio.Channel]

    def stub(self, node: int = 0) -> session_service_pb2_grpc.SessionServiceStub:
        return session_service_pb2_grpc.SessionServiceStub(self.channels[node])


@pytest_asyncio.fixture(scope="module", params=STORES)
async def nodes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Nodes]:
    operator, ed_operator = Operator("op-hs"), Operator("op-ed", alg="EdDSA")
    prefix = f"test:session:{uuid.uuid4().hex}:"
    env = {
        "CASINO_OPERATOR_KEYS": operator_keys_json(operator, ed_operator),
        "CASINO_KEY_PREFIX": prefix,
        "CASINO_RATE_PER_S": "2",
        "CASINO_RATE_BURST": str(RATE_BURST),
        "CASINO_RG_COOLING_S": str(DAY),
    }
    if request.param == "redis":
        env["CASINO_REDIS_URL"] = REDIS_URL
        env["CASINO_SESSION_KEY"] = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    running = Platform(
        data_dir=tmp_path_factory.mktemp(f"session-{request.param}"),
        packages=("rng_svc", "wallet_svc", "game_svc", "session_svc"),
        free_ports=True,
        env=env,
    )
    await running.start()
    extra: list[ServiceProcess] = []
    addresses = [running.addresses["session_svc"]]
    try:
        if request.param == "redis":
            second = await running.spawn("session_svc", port=free_port())
            extra.append(second)
            await second.wait_serving(60)
            addresses.append(second.address)
        channels = [grpc.aio.insecure_channel(a) for a in addresses]
        yield Nodes(addresses, operator, ed_operator, channels)
        for channel in channels:
            await channel.close()
    finally:
        for process in extra:
            await process.terminate()
        await running.stop()
        if request.param == "redis":
            await delete_prefix(prefix)


def player() -> str:
    return f"player-{uuid.uuid4().hex[:12]}"


def auth(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def key() -> str:
    return uuid.uuid4().hex


async def open_session(
    nodes: Nodes, player_id: str, node: int = 0, operator: Operator | None = None
) -> pb.OpenSessionResponse:
    op = operator or nodes.operator
    reply: pb.OpenSessionResponse = await nodes.stub(node).OpenSession(
        pb.OpenSessionRequest(
            idempotency_key=key(),
            operator_id=op.operator_id,
            launch_token=op.launch_token(player_id),
        ),
        timeout=5,
    )
    return reply


async def failure(call: object) -> ErrorDetails:
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call  # type: ignore[misc]
    return details_of(failed.value)


async def limits(nodes: Nodes, token: str, node: int = 0) -> pb.GetResponsibleGamingLimitsResponse:
    reply: pb.GetResponsibleGamingLimitsResponse = await nodes.stub(
        node
    ).GetResponsibleGamingLimits(
        pb.GetResponsibleGamingLimitsRequest(), metadata=auth(token), timeout=5
    )
    return reply


async def set_limit(
    nodes: Nodes, token: str, seconds: int, node: int = 0
) -> pb.SetResponsibleGamingLimitsResponse:
    reply: pb.SetResponsibleGamingLimitsResponse = await nodes.stub(
        node
    ).SetResponsibleGamingLimits(
        pb.SetResponsibleGamingLimitsRequest(
            idempotency_key=key(), session_time_limit=Duration(seconds=seconds)
        ),
        metadata=auth(token),
        timeout=5,
    )
    return reply


# -- tokens -----------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["HS256", "EdDSA"])
async def test_open_session_with_either_operator_key(nodes: Nodes, alg: str) -> None:
    operator = nodes.operator if alg == "HS256" else nodes.ed_operator
    player_id = player()
    opened = await open_session(nodes, player_id, operator=operator)
    assert (opened.player_id, opened.currency, opened.jurisdiction) == (player_id, "EUR", "MT")
    assert 0 < opened.expires_at.seconds - time.time() <= 300
    assert opened.session_id and opened.session_token
    reply = await limits(nodes, opened.session_token)
    assert reply.session_started_at == opened.opened_at


async def test_an_expired_launch_token_is_refused(nodes: Nodes) -> None:
    now = int(time.time())
    token = nodes.operator.launch_token(player(), iat=now - 100, exp=now - 1)
    details = await failure(
        nodes.stub().OpenSession(
            pb.OpenSessionRequest(idempotency_key=key(), operator_id="op-hs", launch_token=token),
            timeout=5,
        )
    )
    assert details.code == grpc.StatusCode.UNAUTHENTICATED
    assert details.reason == "LAUNCH_TOKEN_INVALID"


async def test_a_forged_launch_token_is_refused(nodes: Nodes) -> None:
    forger = Operator("op-hs")
    details = await failure(
        nodes.stub().OpenSession(
            pb.OpenSessionRequest(
                idempotency_key=key(), operator_id="op-hs", launch_token=forger.launch_token("x")
            ),
            timeout=5,
        )
    )
    assert details.code == grpc.StatusCode.UNAUTHENTICATED
    assert details.reason == "LAUNCH_TOKEN_INVALID"


async def test_a_replayed_launch_token_is_refused_on_every_node(nodes: Nodes) -> None:
    token = nodes.operator.launch_token(player())
    request = pb.OpenSessionRequest(idempotency_key=key(), operator_id="op-hs", launch_token=token)
    first = await nodes.stub(0).OpenSession(request, timeout=5)
    for node in range(len(nodes.addresses)):
        # Same key: the retry of a lost answer gets the same session back.
        assert await nodes.stub(node).OpenSession(request, timeout=5) == first
        replay = pb.OpenSessionRequest(
            idempotency_key=key(), operator_id="op-hs", launch_token=token
        )
        details = await failure(nodes.stub(node).OpenSession(replay, timeout=5))
        assert details.code == grpc.StatusCode.UNAUTHENTICATED
        assert details.reason == "LAUNCH_TOKEN_INVALID"


async def test_missing_fields_are_named(nodes: Nodes) -> None:
    details = await failure(nodes.stub().OpenSession(pb.OpenSessionRequest(), timeout=5))
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {v.field for v in details.violations} == {
        "idempotency_key",
        "operator_id",
        "launch_token",
    }


@pytest.mark.parametrize("metadata", [(), (("authorization", "Bearer nonsense"),)])
async def test_calls_without_a_valid_token_are_refused(
    nodes: Nodes, metadata: tuple[tuple[str, str], ...]
) -> None:
    details = await failure(
        nodes.stub().GetResponsibleGamingLimits(
            pb.GetResponsibleGamingLimitsRequest(), metadata=metadata, timeout=5
        )
    )
    assert details.code == grpc.StatusCode.UNAUTHENTICATED
    assert details.reason == "SESSION_INVALID"


async def test_a_token_altered_to_name_another_player_changes_nothing(nodes: Nodes) -> None:
    alice, bob = await open_session(nodes, player()), await open_session(nodes, player())
    header, payload, signature = alice.session_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = bob.player_id
    altered = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    details = await failure(set_limit(nodes, f"{header}.{altered}.{signature}", 5 * 60))
    assert details.code == grpc.StatusCode.UNAUTHENTICATED
    assert not (await limits(nodes, bob.session_token)).HasField("session_time_limit")


async def test_refresh_then_close_revokes_every_token_on_every_node(nodes: Nodes) -> None:
    opened = await open_session(nodes, player())
    last = len(nodes.addresses) - 1
    refreshed = await nodes.stub(last).RefreshSession(
        pb.RefreshSessionRequest(idempotency_key=key()),
        metadata=auth(opened.session_token),
        timeout=5,
    )
    assert refreshed.session_token != opened.session_token
    await limits(nodes, refreshed.session_token, node=0)
    close_key = key()
    closed = await nodes.stub(last).CloseSession(
        pb.CloseSessionRequest(idempotency_key=close_key),
        metadata=auth(refreshed.session_token),
        timeout=5,
    )
    assert closed.total_staked.currency == "EUR" and closed.total_staked.amount_minor == 0
    retried = await nodes.stub(0).CloseSession(
        pb.CloseSessionRequest(idempotency_key=close_key),
        metadata=auth(refreshed.session_token),
        timeout=5,
    )
    assert retried == closed  # the retry of a lost answer gets the first one
    for node in range(len(nodes.addresses)):
        for token in (opened.session_token, refreshed.session_token):
            details = await failure(limits(nodes, token, node))
            assert (details.code, details.reason) == (
                grpc.StatusCode.UNAUTHENTICATED,
                "SESSION_INVALID",
            )


async def test_a_repeated_idempotency_key_gets_the_first_answer(nodes: Nodes) -> None:
    opened = await open_session(nodes, player())
    request = pb.RefreshSessionRequest(idempotency_key=key())
    first = await nodes.stub().RefreshSession(
        request, metadata=auth(opened.session_token), timeout=5
    )
    again = await nodes.stub(len(nodes.addresses) - 1).RefreshSession(
        request, metadata=auth(opened.session_token), timeout=5
    )
    assert again == first


async def test_reusing_a_key_for_another_payload_is_refused(nodes: Nodes) -> None:
    opened = await open_session(nodes, player())
    same = key()
    stub = nodes.stub()
    await stub.SetResponsibleGamingLimits(
        pb.SetResponsibleGamingLimitsRequest(
            idempotency_key=same, session_time_limit=Duration(seconds=HOUR)
        ),
        metadata=auth(opened.session_token),
        timeout=5,
    )
    details = await failure(
        stub.SetResponsibleGamingLimits(
            pb.SetResponsibleGamingLimitsRequest(
                idempotency_key=same, session_time_limit=Duration(seconds=30 * 60)
            ),
            metadata=auth(opened.session_token),
            timeout=5,
        )
    )
    assert details.code == grpc.StatusCode.ALREADY_EXISTS
    assert details.reason == "IDEMPOTENCY_KEY_REUSED"
    assert (await limits(nodes, opened.session_token)).session_time_limit.seconds == HOUR


async def test_the_rate_limit_is_per_player_and_shared_by_every_node(nodes: Nodes) -> None:
    opened = await open_session(nodes, player())
    other = await open_session(nodes, player())
    count = len(nodes.addresses)
    results = await asyncio.gather(
        *(limits(nodes, opened.session_token, i % count) for i in range(RATE_BURST + 5)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(results) - len(refused) == RATE_BURST
    details = details_of(refused[0])
    assert details.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details.reason == "RATE_LIMITED"
    assert 0 < int(details.metadata["retry_after_ms"]) <= 1000
    await limits(nodes, other.session_token)  # another player is not limited
    await asyncio.sleep(int(details.metadata["retry_after_ms"]) / 1000 + 0.1)
    await limits(nodes, opened.session_token, count - 1)


# -- responsible gaming -----------------------------------------------------------------------


async def test_session_time_limit_lowered_at_once_raised_after_cooling(nodes: Nodes) -> None:
    opened = await open_session(nodes, player())
    token = opened.session_token
    added = await set_limit(nodes, token, 2 * HOUR)
    assert added.session_time_limit.status == limits_pb2.LIMIT_CHANGE_STATUS_EFFECTIVE
    lowered = await set_limit(nodes, token, HOUR)
    assert lowered.session_time_limit.status == limits_pb2.LIMIT_CHANGE_STATUS_EFFECTIVE
    raised = await set_limit(nodes, token, 3 * HOUR, node=len(nodes.addresses) - 1)
    change = raised.session_time_limit
    assert change.status == limits_pb2.LIMIT_CHANGE_STATUS_PENDING
    assert abs(change.effective_at.seconds - (time.time() + DAY)) < 60
    state = await limits(nodes, token)
    assert state.session_time_limit.seconds == HOUR
    assert state.session_time_limit_pending.value.seconds == 3 * HOUR
    assert state.session_time_limit_pending.effective_at == change.effective_at
    same = await set_limit(nodes, token, HOUR)
    assert same.session_time_limit.status == limits_pb2.LIMIT_CHANGE_STATUS_UNCHANGED
    assert not (await limits(nodes, token)).HasField("session_time_limit_pending")


async def test_reality_check_interval_changes_at_once(nodes: Nodes) -> None:
    opened = await open_session(nodes, player())
    for seconds in (30 * 60, 2 * HOUR, 15 * 60):
        reply = await nodes.stub().SetResponsibleGamingLimits(
            pb.SetResponsibleGamingLimitsRequest(
                idempotency_key=key(), reality_check_interval=Duration(seconds=seconds)
            ),
            metadata=auth(opened.session_token),
            timeout=5,
        )
        assert reply.reality_check_interval.status == limits_pb2.LIMIT_CHANGE_STATUS_EFFECTIVE
        assert (await limits(nodes, opened.session_token)).reality_check_interval.seconds == (
            seconds
        )


@pytest.mark.parametrize(
    ("field", "seconds"),
    [
        ("session_time_limit", 60),
        ("session_time_limit", 25 * HOUR),
        ("reality_check_interval", 5 * HOUR),
    ],
)
async def test_limits_out_of_range_are_refused_and_change_nothing(
    nodes: Nodes, field: str, seconds: int
) -> None:
    opened = await open_session(nodes, player())
    request = pb.SetResponsibleGamingLimitsRequest(idempotency_key=key())
    getattr(request, field).CopyFrom(Duration(seconds=seconds))
    details = await failure(
        nodes.stub().SetResponsibleGamingLimits(
            request, metadata=auth(opened.session_token), timeout=5
        )
    )
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in details.violations] == [field]
    assert (await limits(nodes, opened.session_token)) == (
        pb.GetResponsibleGamingLimitsResponse(session_started_at=opened.opened_at)
    )


async def test_money_limits_are_refused_until_the_wallet_is_wired(nodes: Nodes) -> None:
    opened = await open_session(nodes, player())
    details = await failure(
        nodes.stub().SetResponsibleGamingLimits(
            pb.SetResponsibleGamingLimitsRequest(
                idempotency_key=key(),
                money_limits=[
                    limits_pb2.MoneyLimit(
                        kind=limits_pb2.MONEY_LIMIT_KIND_LOSS,
                        period=limits_pb2.LIMIT_PERIOD_DAY,
                    )
                ],
            ),
            metadata=auth(opened.session_token),
            timeout=5,
        )
    )
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in details.violations] == ["money_limits"]


async def test_self_exclusion_closes_every_session_and_blocks_new_ones(nodes: Nodes) -> None:
    player_id = player()
    first = await open_session(nodes, player_id)
    second = await open_session(nodes, player_id, node=len(nodes.addresses) - 1)
    request = pb.SelfExcludeRequest(
        idempotency_key=key(), duration=Duration(seconds=200 * DAY), reason="test"
    )
    reply = await nodes.stub().SelfExclude(request, metadata=auth(first.session_token), timeout=5)
    assert reply.ends_at.seconds - reply.starts_at.seconds == 200 * DAY
    again = await nodes.stub().SelfExclude(request, metadata=auth(first.session_token), timeout=5)
    assert again == reply  # a retry gets its answer although the session is revoked
    for node in range(len(nodes.addresses)):
        for token in (first.session_token, second.session_token):
            details = await failure(limits(nodes, token, node))
            assert (details.code, details.reason) == (
                grpc.StatusCode.UNAUTHENTICATED,
                "SESSION_INVALID",
            )
    details = await failure(open_session(nodes, player_id))
    assert details.code == grpc.StatusCode.FAILED_PRECONDITION
    assert details.reason == "SELF_EXCLUDED"
    assert details.metadata["until"].startswith(
        time.strftime("%Y-%m-%d", time.gmtime(reply.ends_at.seconds))
    )


async def test_permanent_self_exclusion(nodes: Nodes) -> None:
    player_id = player()
    opened = await open_session(nodes, player_id)
    reply = await nodes.stub().SelfExclude(
        pb.SelfExcludeRequest(idempotency_key=key(), permanent=True),
        metadata=auth(opened.session_token),
        timeout=5,
    )
    assert not reply.HasField("ends_at")
    details = await failure(open_session(nodes, player_id))
    assert details.reason == "SELF_EXCLUDED" and "until" not in details.metadata


@pytest.mark.parametrize(
    "request_",
    [
        pb.SelfExcludeRequest(idempotency_key="k", duration=Duration(seconds=30 * DAY)),
        pb.SelfExcludeRequest(idempotency_key="k"),
        pb.SelfExcludeRequest(
            idempotency_key="k", duration=Duration(seconds=200 * DAY), permanent=True
        ),
    ],
)
async def test_bad_self_exclusions_are_refused_and_change_nothing(
    nodes: Nodes, request_: pb.SelfExcludeRequest
) -> None:
    opened = await open_session(nodes, player())
    details = await failure(
        nodes.stub().SelfExclude(request_, metadata=auth(opened.session_token), timeout=5)
    )
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    await limits(nodes, opened.session_token)  # still playing


async def test_cool_off_blocks_until_its_end(nodes: Nodes) -> None:
    player_id = player()
    opened = await open_session(nodes, player_id)
    for bad in (HOUR, 43 * DAY):
        details = await failure(
            nodes.stub().CoolOff(
                pb.CoolOffRequest(idempotency_key=key(), duration=Duration(seconds=bad)),
                metadata=auth(opened.session_token),
                timeout=5,
            )
        )
        assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    await limits(nodes, opened.session_token)
    reply = await nodes.stub().CoolOff(
        pb.CoolOffRequest(idempotency_key=key(), duration=Duration(seconds=2 * DAY)),
        metadata=auth(opened.session_token),
        timeout=5,
    )
    assert reply.ends_at.seconds - reply.starts_at.seconds == 2 * DAY
    details = await failure(limits(nodes, opened.session_token))
    assert details.reason == "SESSION_INVALID"
    details = await failure(open_session(nodes, player_id, node=len(nodes.addresses) - 1))
    assert (details.code, details.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "COOLING_OFF")
    assert "until" in details.metadata
