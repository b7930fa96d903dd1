"""Wires the RNG service: settings, servicers, lifecycle."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from casino.rng.v1 import rng_service_pb2, rng_service_pb2_grpc
from casino_kit.logs import get_logger
from casino_kit.server import ServerSettings, Servicer, ServiceSpec
from casino_kit.settings import SettingsError
from casino_kit.sql import create_engine, database_url, migrate
from rng_svc import keys
from rng_svc.operations import Operations
from rng_svc.server import RngServicer

log = get_logger(__name__)

DEV_KEY_FILE = "rng_signing_key.pem"


@dataclass(frozen=True)
class Settings:
    """``CASINO_*`` variables. With ``CASINO_RNG_PKCS11_MODULE`` set the key lives in that HSM;
    otherwise ``CASINO_RNG_KEY_FILE`` holds it; with neither, a development key is made in the
    data dir on first start."""

    server: ServerSettings
    database_url: str = ""
    rng_key_file: Path | None = None
    rng_pkcs11_module: str = ""
    rng_pkcs11_token_label: str = ""
    rng_pkcs11_pin: str = ""
    rng_pkcs11_key_label: str = ""


def open_key_provider(settings: Settings, *, create: bool = True) -> keys.KeyProvider:
    """The configured signer. Only the development default is ever created, never a
    configured key file or an HSM key (those are provisioned by operators)."""
    if settings.rng_pkcs11_module:
        missing = [
            f"CASINO_RNG_PKCS11_{name.upper()}"
            for name in ("token_label", "pin", "key_label")
            if not getattr(settings, f"rng_pkcs11_{name}")
        ]
        if missing:
            raise SettingsError("CASINO_RNG_PKCS11_MODULE is set but not " + ", ".join(missing))
        return keys.Pkcs11Key(
            keys.Pkcs11Config(
                module=settings.rng_pkcs11_module,
                token_label=settings.rng_pkcs11_token_label,
                pin=settings.rng_pkcs11_pin,
                key_label=settings.rng_pkcs11_key_label,
            )
        )
    if settings.rng_key_file is not None:
        return keys.SoftwareKey.load(settings.rng_key_file)
    path = settings.server.data_dir / DEV_KEY_FILE
    if path.exists() or not create:
        return keys.SoftwareKey.load(path)
    key = keys.SoftwareKey.generate(path)
    log.warning(
        "generated a development signing key; in production set CASINO_RNG_KEY_FILE or "
        "CASINO_RNG_PKCS11_*",
        path=str(path),
        key_id=key.key_id,
    )
    return key


class Runtime:
    """What exists only between start and stop: the engine, the signer, the operations."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine: AsyncEngine | None = None
        self.signer: keys.KeyProvider | None = None
        self._operations: Operations | None = None

    @property
    def operations(self) -> Operations:
        if self._operations is None:
            raise RuntimeError("the RNG service is not started")
        return self._operations

    async def start(self) -> None:
        if self._operations is not None:
            return
        settings = self.settings
        url = database_url(settings.database_url, settings.server.data_dir, "rng")
        self.engine = create_engine(url)
        await migrate(self.engine, "rng_svc")
        self.signer = open_key_provider(settings)
        operations = Operations(self.engine, self.signer)
        await operations.register_key()
        self._operations = operations
        provider = type(self.signer).__name__
        log.info("signing key ready", key_id=self.signer.key_id, provider=provider)

    async def stop(self) -> None:
        self._operations = None
        if self.signer is not None:
            self.signer.close()
            self.signer = None
        if self.engine is not None:
            await self.engine.dispose()
            self.engine = None


def build(settings: Settings) -> ServiceSpec:
    runtime = Runtime(settings)
    return ServiceSpec(
        name="rng_svc",
        servicers=[
            Servicer(
                rng_service_pb2.DESCRIPTOR.services_by_name["RngService"],
                RngServicer(lambda: runtime.operations),
                rng_service_pb2_grpc.add_RngServiceServicer_to_server,
            )
        ],
        on_start=runtime.start,
        on_stop=runtime.stop,
    )
