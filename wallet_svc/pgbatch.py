"""A batch on PostgreSQL in two statements: one reads and locks, one writes.

Every round trip of a batch is latency that each of its requests waits for, so the batch
reads everything it needs in one statement (CTEs, ``FOR UPDATE`` in id order, each kind of row
back as one array of rows) and writes everything it changed in one statement
(data-modifying CTEs fed by ``unnest`` of one array per column). A batch is then BEGIN, read,
write, COMMIT, whatever its size.

Arrays go in as text literals: the driver checks every element of a list parameter one by
one, while PostgreSQL parses a literal in C.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import BigInteger, Boolean, Integer, LargeBinary, Table, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect

from wallet_svc import rows
from wallet_svc.idempotency import Stored
from wallet_svc.limits import Window
from wallet_svc.state import State, TableRow
from wallet_svc.tables import (
    accounts,
    audit,
    bets,
    game_tables,
    idempotency,
    money_limits,
    players,
    postings,
    rounds,
)

_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]
DriverError = asyncpg.PostgresError | asyncpg.InterfaceError | OSError
"""What a batch's statements raise when the database refuses them or the connection is lost
(they bypass SQLAlchemy, which would wrap these in ``DBAPIError``)."""
_PG_ARRAY = {BigInteger: "bigint[]", Integer: "integer[]", Boolean: "boolean[]"}


def _array_type(column: Any) -> str:
    for kind, name in _PG_ARRAY.items():
        if isinstance(column.type, kind):
            return name
    return "bytea[]" if isinstance(column.type, LargeBinary) else "text[]"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_literal(values: Sequence[Any], kind: str) -> str:
    """A PostgreSQL array literal of ``values`` for an array of type ``kind``."""
    if kind in ("bigint[]", "integer[]"):
        if None not in values:
            return "{" + ",".join(map(str, values)) + "}"
        items: Any = ("NULL" if v is None else str(int(v)) for v in values)
    elif kind == "boolean[]":
        items = ("NULL" if v is None else "t" if v else "f" for v in values)
    elif kind == "bytea[]":
        items = ("NULL" if v is None else '"\\\\x' + v.hex() + '"' for v in values)
    elif None not in values:
        together = "".join(values)
        if '"' not in together and "\\" not in together:
            return '{"' + '","'.join(values) + '"}'
        items = (_quote(v) for v in values)
    else:
        present = "".join(v for v in values if v is not None)
        plain = '"' not in present and "\\" not in present
        items = ("NULL" if v is None else '"' + v + '"' if plain else _quote(v) for v in values)
    return "{" + ",".join(items) + "}"


def _unnest(
    table: Table, names: Sequence[str], values: list[tuple[Any, ...]], tag: str
) -> tuple[str, dict[str, str]]:
    """``unnest(...)`` arguments for ``values`` and their parameters, one per column."""
    columns = list(zip(*values, strict=True))
    kinds = [_array_type(table.c[n]) for n in names]
    arrays = ", ".join(f"CAST(CAST(:{tag}{i} AS text) AS {k})" for i, k in enumerate(kinds))
    params = {
        f"{tag}{i}": array_literal(column, k)
        for i, (k, column) in enumerate(zip(kinds, columns, strict=True))
    }
    return arrays, params


_ACCOUNT = [c.name for c in accounts.c]
_PLAYER = [c.name for c in players.c]
_SMALL = 6  # idempotency, game_tables, rounds, bets, players, money_limits: arrays of rows

# The locked accounts come back as plain rows (with their owner's player row beside them):
# they are most of what a batch reads. The few other rows ride along in one extra row, as
# arrays (joined ``FULL JOIN ... ON false``: the same rows as a UNION ALL, which PostgreSQL 15
# turns twenty times slower here). Account values must come from the locking scan itself:
# FOR UPDATE may return a version newer than the statement's snapshot, which a second scan
# would not see.
LOAD = f"""
WITH
  i AS (SELECT x FROM idempotency x WHERE x.key = ANY(CAST(:keys AS text[]))),
  t AS (SELECT x FROM game_tables x WHERE x.table_id = ANY(CAST(:tables AS text[]))
        ORDER BY x.table_id FOR UPDATE),
  r AS (SELECT x FROM rounds x WHERE x.round_id = ANY(CAST(:rounds AS text[]))
        ORDER BY x.round_id FOR UPDATE),
  b AS (SELECT x FROM bets x WHERE x.bet_id = ANY(CAST(:bets AS text[]))
        OR x.round_id = ANY(CAST(:closing AS text[]))),
  a AS (SELECT x.* FROM accounts x WHERE x.id IN (
          SELECT y.id FROM accounts y WHERE y.key = ANY(CAST(:accounts AS text[]))
          UNION SELECT (b.x).account_id FROM b
          UNION SELECT (r.x).escrow_account_id FROM r)
        ORDER BY x.id FOR UPDATE),
  p AS (SELECT x FROM players x WHERE x.player_id = ANY(CAST(:players AS text[]))),
  l AS (SELECT x FROM money_limits x WHERE x.account_id IN
        (SELECT a.id FROM a WHERE a.player_id IS NOT NULL))
SELECT {", ".join(f"a.{n}" for n in _ACCOUNT)}, {", ".join(f"pl.{n}" for n in _PLAYER)},
       e.i, e.t, e.r, e.b, e.p, e.l
FROM (a LEFT JOIN players pl ON pl.player_id = a.player_id)
FULL JOIN (
  SELECT (SELECT array_agg(i.x) FROM i) AS i, (SELECT array_agg(t.x) FROM t) AS t,
         (SELECT array_agg(r.x) FROM r) AS r, (SELECT array_agg(b.x) FROM b) AS b,
         (SELECT array_agg(p.x) FROM p) AS p, (SELECT array_agg(l.x) FROM l) AS l
) e ON false
"""


@functools.lru_cache(maxsize=256)
def _statement(sql: str) -> tuple[str, tuple[str, ...]]:
    """``sql`` with its named parameters made positional for asyncpg, and their names in
    order; kept, as a batch's write has one of few shapes."""
    compiled = text(sql).compile(dialect=_DIALECT)
    return compiled.string, tuple(compiled.positiontup or ())


async def _fetch(driver: Any, sql: str, params: dict[str, Any]) -> list[Any]:
    """Run ``sql`` straight on the asyncpg connection: SQLAlchemy's layers above the driver
    cost as much as the statement itself for a batch of a few requests."""
    positional, names = _statement(sql)
    rows: list[Any] = await driver.fetch(positional, *(params[n] for n in names))
    return rows


async def load(
    driver: Any,
    keys: Sequence[str],
    needs: Any,
    window: Window,
) -> tuple[dict[tuple[str, str], Stored], State]:
    """Stored answers for ``keys`` and the (locked) rows ``needs`` names, in one statement."""
    params = {
        "keys": list(keys),
        "tables": sorted(needs.tables),
        "rounds": sorted(needs.rounds),
        "bets": list(needs.bets),
        "closing": list(needs.closing),
        "players": list(needs.players),
        "accounts": list(needs.accounts),
    }
    state = State()
    width, owner = len(_ACCOUNT), len(_ACCOUNT) + len(_PLAYER)
    small: Sequence[Any] = (None,) * _SMALL
    for row in await _fetch(driver, LOAD, params):
        if row[0] is None:
            small = row[owner:]
            continue
        account = rows.account_from(row[:width], window)
        state.load_account(account)
        if account.player_id is not None:
            state.limits[account.account.id] = {}
            if row[width] is not None and row[width] not in state.players:
                state.players[row[width]] = rows.player_from(row[width:owner])
    found, tables, rounds_, bets_, players_, limits = small
    stored = {}
    for item in found or ():
        answer = rows.stored_from(item)
        stored[(answer.method, answer.key)] = answer
    for item in tables or ():
        state.tables[item[0]] = TableRow(item[0], item[1])
    for item in rounds_ or ():
        state.rounds[item[0]] = rows.round_from(item)
    for round_id in needs.closing:
        state.round_bets[round_id] = []
    for item in bets_ or ():
        bet = rows.bet_from(item)
        state.bets[bet.bet_id] = bet
        if bet.round_id in state.round_bets:
            state.round_bets[bet.round_id].append(bet)
    for item in players_ or ():
        if item[0] not in state.players:
            state.players[item[0]] = rows.player_from(item)
    for item in limits or ():
        account_id, limit = rows.limit_from(item)
        state.limits[account_id][(limit.kind, limit.period)] = limit
    return stored, state


async def write(driver: Any, state: State, now_us: int) -> None:
    """Everything the batch created or changed, in one statement."""
    parts: list[str] = []
    params: dict[str, str] = {}

    def insert(table: Table, names: Sequence[str], values: list[tuple[Any, ...]]) -> None:
        if not values:
            return
        tag = f"p{len(parts)}_"
        arrays, more = _unnest(table, names, values, tag)
        parts.append(
            f"w{len(parts)} AS (INSERT INTO {table.name} ({', '.join(names)})"
            f" SELECT * FROM unnest({arrays}))"
        )
        params.update(more)

    def update(
        table: Table, keys: Sequence[str], names: Sequence[str], values: list[tuple[Any, ...]]
    ) -> None:
        if not values:
            return
        tag = f"p{len(parts)}_"
        arrays, more = _unnest(table, names, values, tag)
        sets = ", ".join(f"{n} = v.{n}" for n in names if n not in keys)
        match = " AND ".join(f"t.{k} = v.{k}" for k in keys)
        parts.append(
            f"w{len(parts)} AS (UPDATE {table.name} AS t SET {sets}"
            f" FROM unnest({arrays}) AS v({', '.join(names)}) WHERE {match})"
        )
        params.update(more)

    new, changed = state.changed("player")
    insert(players, rows.PLAYER, [rows.player(state.players[k]) for k in new])
    update(players, ["player_id"], rows.PLAYER, [rows.player(state.players[k]) for k in changed])
    new, changed = state.changed("account")
    insert(accounts, rows.ACCOUNT, [rows.account(state.accounts[k]) for k in new])
    update(accounts, ["id"], rows.USAGE, [rows.usage(state.accounts[k]) for k in changed])
    new, changed = state.changed("table")
    insert(game_tables, rows.TABLE, [(k, state.tables[k].fencing_token) for k in new])
    update(
        game_tables,
        ["table_id"],
        rows.TABLE,
        [(k, state.tables[k].fencing_token) for k in changed],
    )
    new, changed = state.changed("round")
    insert(rounds, rows.ROUND, [rows.round_(state.rounds[k]) for k in new])
    update(rounds, ["round_id"], rows.ROUND, [rows.round_(state.rounds[k]) for k in changed])
    new, changed = state.changed("bet")
    insert(bets, rows.BET, [rows.bet(state.bets[k]) for k in new])
    update(bets, ["bet_id"], rows.BET_CLOSE, [rows.bet_close(state.bets[k]) for k in changed])
    insert(postings, rows.POSTING, state.postings)  # type: ignore[arg-type]
    new, changed = state.changed("limit")
    insert(money_limits, rows.LIMIT, [rows.limit(state, k) for k in new])
    update(
        money_limits,
        ["account_id", "kind", "period"],
        rows.LIMIT,
        [rows.limit(state, k) for k in changed],
    )
    insert(audit, rows.AUDIT, state.audits)  # type: ignore[arg-type]
    insert(idempotency, rows.STORED, [rows.stored(s, now_us) for s in state.stored])
    if parts:
        await _fetch(driver, "WITH " + ",\n".join(parts) + " SELECT 1", params)
