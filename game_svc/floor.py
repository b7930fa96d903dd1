"""Which tables this replica drives: it takes free leases, renews its own, and runs one
round loop per owned table.

Taking a table means a new fencing token first, so the previous owner, if it still runs
somewhere, is refused by the wallet and the event log from that moment.
"""

from __future__ import annotations

import asyncio
import contextlib

from casino.game.v1 import game_pb2
from casino_kit.errors import Unavailable
from casino_kit.logs import get_logger
from game_svc.blackjack_loop import BlackjackLoop
from game_svc.clock import Clock
from game_svc.events import EventLog
from game_svc.leases import Leases
from game_svc.outcomes import Game
from game_svc.peers import Peers
from game_svc.round_loop import TableLoop
from game_svc.store import Store, TableRow
from game_svc.studio import StudioLoop
from game_svc.studio_blackjack import StudioBlackjackLoop
from game_svc.upstreams import Rng, Wallet

log = get_logger(__name__)


def loop_class(table: TableRow) -> type[TableLoop]:
    """The round loop of a table: by who deals (the RNG or a studio) and the game."""
    blackjack = Game(table.config.game_type) is Game.BLACKJACK
    if table.config.result_source == game_pb2.RESULT_SOURCE_STUDIO:
        return StudioBlackjackLoop if blackjack else StudioLoop
    return BlackjackLoop if blackjack else TableLoop


class Floor:
    def __init__(
        self,
        store: Store,
        log_: EventLog,
        rng: Rng,
        wallet: Wallet,
        leases: Leases,
        peers: Peers,
        clock: Clock,
        *,
        sweep_s: float,
        pause_s: float,
    ) -> None:
        self.store = store
        self.log = log_
        self.rng = rng
        self.wallet = wallet
        self.leases = leases
        self.peers = peers
        self.clock = clock
        self.sweep_s = sweep_s
        self.pause_s = pause_s
        self._loops: dict[str, tuple[TableLoop, asyncio.Task[None]]] = {}
        self._patrol: asyncio.Task[None] | None = None
        self._sweeping = asyncio.Lock()

    def loop(self, table_id: str) -> TableLoop | None:
        """The loop of a table this replica drives, if it does."""
        running = self._loops.get(table_id)
        return None if running is None or running[1].done() else running[0]

    async def owner(self, table_id: str) -> str | None:
        """The address of the replica that drives the table, when it is another one."""
        holder = await self.leases.holder(table_id)
        return None if holder in (None, self.peers.own_address) else holder

    def start(self) -> None:
        self._patrol = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Unavailable:
                pass  # logged where it failed; the tables driven here go on, fenced
            except Exception:
                log.exception("lease sweep failed")
            await asyncio.sleep(self.sweep_s)

    async def sweep(self) -> None:
        """Renew owned leases (stopping loops that lost theirs) and take free tables."""
        async with self._sweeping:
            for table in await self.store.all_tables():
                running = self._loops.get(table.table_id)
                if running is not None and not running[1].done():
                    if not await self.leases.renew(table.table_id):
                        log.warning("lease lost", table_id=table.table_id)
                        await self._stop(table.table_id)
                    continue
                if await self.leases.acquire(table.table_id):
                    fence = await self.store.take_fence(table.table_id)
                    loop = loop_class(table)(
                        table,
                        fence,
                        self.store,
                        self.log,
                        self.rng,
                        self.wallet,
                        self.clock,
                        self.pause_s,
                    )
                    task = asyncio.get_running_loop().create_task(loop.run())
                    self._loops[table.table_id] = (loop, task)
                    log.info("table taken", table_id=table.table_id, fence=fence)

    async def _stop(self, table_id: str) -> None:
        _, task = self._loops.pop(table_id)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def stop(self) -> None:
        if self._patrol is not None:
            self._patrol.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._patrol
        for table_id in list(self._loops):
            await self._stop(table_id)
            with contextlib.suppress(Unavailable):  # then the lease runs out on its own
                await self.leases.release(table_id)
        await self.leases.close()
        await self.peers.close()
