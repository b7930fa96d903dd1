"""``casino verify``: re-check the RNG audit log, or one round, straight from the database.

It needs no running service. Records come from the RNG database (``--database-url``, else
``CASINO_DATABASE_URL``, else the embedded SQLite file in the data dir); signatures are
checked against public keys given with ``--public-key`` (PEM or hex files, as published by
GetPublicKey), else against the key the RNG service is configured with. Keys registered
in the database itself are never trusted: whoever could rewrite the log could rewrite them.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from casino_kit.settings import SettingsError, load
from casino_kit.sql import create_engine, database_url
from rng_svc import fairness, store
from rng_svc.app import Settings, open_key_provider
from rng_svc.keys import KeyUnavailable, key_id_of, load_public_key
from rng_svc.verify import ChainVerifier, verify_round

OK, FAILED, UNUSABLE = 0, 1, 2


class Unusable(RuntimeError):
    """The check could not run (no database, no key): not a verdict on the log."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = commands.add_parser("verify", help="verify the RNG audit log or one round")
    checks = verify.add_subparsers(dest="check", required=True, metavar="CHECK")
    audit = checks.add_parser("audit", help="re-check every hash, link, signature and seed")
    round_ = checks.add_parser("round", help="re-derive one round's outcome from its seeds")
    round_.add_argument("round_id", help="the round id")
    for parser in (audit, round_):
        parser.add_argument("--database-url", help="the RNG database (SQLAlchemy async URL)")
        parser.add_argument("--data-dir", type=Path, help="the data dir of the embedded default")
        parser.add_argument(
            "--public-key",
            type=Path,
            action="append",
            default=[],
            metavar="FILE",
            help="a trusted public key (PEM or hex); repeat for retired keys",
        )


def _settings(args: argparse.Namespace) -> Settings:
    settings = load(Settings)
    if args.data_dir is not None:
        server = dataclasses.replace(settings.server, data_dir=args.data_dir)
        settings = dataclasses.replace(settings, server=server)
    if args.database_url:
        settings = dataclasses.replace(settings, database_url=args.database_url)
    return settings


def _engine(settings: Settings) -> AsyncEngine:
    if not settings.database_url:
        path = settings.server.data_dir / "rng.db"
        if not path.exists():
            raise Unusable(f"no RNG database at {path} (give --database-url or --data-dir)")
    return create_engine(database_url(settings.database_url, settings.server.data_dir, "rng"))


def _trusted_keys(args: argparse.Namespace, settings: Settings) -> dict[str, bytes]:
    if args.public_key:
        trusted = {}
        for path in args.public_key:
            try:
                raw = load_public_key(path.read_bytes())
            except (OSError, ValueError) as error:
                raise Unusable(f"cannot read public key {path}: {error}") from error
            trusted[key_id_of(raw)] = raw
        return trusted
    try:
        provider = open_key_provider(settings, create=False)
    except KeyUnavailable as error:
        raise Unusable(f"{error} (or give --public-key)") from error
    try:
        return {provider.key_id: provider.public_key}
    finally:
        provider.close()


async def _audit(engine: AsyncEngine, trusted: dict[str, bytes]) -> int:
    verifier = ChainVerifier(trusted)
    async with engine.connect() as connection:
        async for record in store.records(connection):
            if not verifier.feed(record):
                break
        missing = await store.drawn_rounds_without_record(connection)
    verdict = verifier.verdict()
    if verdict.bad is not None:
        print(f"audit log FAILED at {verdict.bad}")
        print(f"  {verdict.checked} record(s) before it verified")
        return FAILED
    if missing:
        print(f"audit log FAILED: {len(missing)} drawn round(s) have no record: {missing[:5]}")
        return FAILED
    print(
        f"audit log OK: {verdict.checked} record(s), {verdict.revealed} revealed and re-derived; "
        f"head {verdict.last_hash}; trusted keys {', '.join(sorted(trusted))}"
    )
    return OK


async def _round(engine: AsyncEngine, trusted: dict[str, bytes], round_id: str) -> int:
    async with engine.connect() as connection:
        record = await store.record_by_round(connection, round_id)
    if record is None:
        print(f"round {round_id}: no outcome record")
        return FAILED
    verdict = verify_round(record, trusted)
    if verdict.bad is not None:
        print(f"round {round_id} FAILED: {verdict.bad}")
        return FAILED
    if not verdict.revealed:
        print(
            f"round {round_id}: record #{record.sequence} is signed and intact, but its seed is "
            "not revealed yet, so the outcome cannot be re-derived"
        )
        return FAILED
    draw = fairness.parse_draw(record.draw)
    print(
        f"round {round_id} OK: seed matches commitment {record.commitment}; {draw.text()} "
        f"re-derived to {record.outcome}; record #{record.sequence} signed by {record.key_id}"
    )
    return OK


async def _run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    trusted = _trusted_keys(args, settings)
    engine = _engine(settings)
    try:
        if args.check == "audit":
            return await _audit(engine, trusted)
        return await _round(engine, trusted, args.round_id)
    finally:
        await engine.dispose()


def run(args: argparse.Namespace) -> int:
    """Exit status: 0 verified, 1 a check failed (the output names the record), 2 unusable."""
    try:
        return asyncio.run(_run(args))
    except (Unusable, SettingsError) as error:
        print(f"casino verify: {error}")
        return UNUSABLE
