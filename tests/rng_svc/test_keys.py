"""Key providers: a software key file and a PKCS#11 key in SoftHSM2."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pkcs11
import pytest
from pkcs11 import Attribute, ObjectClass

from rng_svc.keys import (
    KeyUnavailable,
    Pkcs11Config,
    Pkcs11Key,
    SoftwareKey,
    key_id_of,
    load_public_key,
    provision_pkcs11_key,
    public_pem,
    verify_signature,
)
from tests.rng_svc.conftest import PIN, SoftHsm

MESSAGE = bytes.fromhex("3cabfd4b246e42502ce45cc33b4e231dd074567a26059be6765425c1682dd2c8")


async def test_a_software_key_is_generated_once_and_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "rng.pem"
    key = SoftwareKey.generate(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        SoftwareKey.generate(path)
    loaded = SoftwareKey.load(path)
    assert (loaded.key_id, loaded.public_key) == (key.key_id, key.public_key)
    signature = await loaded.sign(MESSAGE)
    assert verify_signature(key.public_key, signature, MESSAGE)
    assert not verify_signature(key.public_key, signature, MESSAGE[:-1] + b"\x00")
    assert len(await key.random_bytes(32)) == 32


def test_a_bad_key_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(KeyUnavailable, match="cannot load"):
        SoftwareKey.load(tmp_path / "missing.pem")
    (tmp_path / "junk.pem").write_text("not a key")
    with pytest.raises(KeyUnavailable):
        SoftwareKey.load(tmp_path / "junk.pem")


def test_public_keys_load_from_pem_hex_or_raw(tmp_path: Path) -> None:
    key = SoftwareKey.generate(tmp_path / "k.pem")
    raw = key.public_key
    assert load_public_key(public_pem(raw).encode()) == raw
    assert load_public_key(raw.hex().encode() + b"\n") == raw
    assert load_public_key(raw) == raw
    assert key_id_of(raw) == key.key_id and len(key.key_id) == 32
    with pytest.raises(ValueError):
        load_public_key(b"abc")


async def test_a_pkcs11_key_signs_inside_the_token(softhsm: SoftHsm) -> None:
    config = softhsm.config("casino-test", "rng-test")
    public = provision_pkcs11_key(config)
    assert provision_pkcs11_key(config) == public  # provisioning twice keeps the first key
    key = Pkcs11Key(config)
    try:
        assert key.public_key == public and key.key_id == key_id_of(public)
        signatures = await asyncio.gather(*(key.sign(MESSAGE[:-1] + bytes([i])) for i in range(50)))
        for i, signature in enumerate(signatures):
            assert verify_signature(public, signature, MESSAGE[:-1] + bytes([i]))
        seeds = {await key.random_bytes(32) for _ in range(20)}
        assert len(seeds) == 20 and all(len(s) == 32 for s in seeds)
    finally:
        key.close()


def test_the_hsm_private_key_cannot_leave_the_token(softhsm: SoftHsm) -> None:
    config = softhsm.config("casino-test", "rng-test")
    provision_pkcs11_key(config)
    token = pkcs11.lib(config.module).get_token(token_label="casino-test")
    with token.open(user_pin=PIN) as session:
        private = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label="rng-test")
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.EXTRACTABLE] is False
        assert private[Attribute.TOKEN] is True


def test_pkcs11_misconfiguration_is_reported(softhsm: SoftHsm, tmp_path: Path) -> None:
    provision_pkcs11_key(softhsm.config("casino-pin", "rng-pin"))
    with pytest.raises(KeyUnavailable, match="wrong PIN"):
        Pkcs11Key(softhsm.config("casino-pin", "rng-pin", pin="0000"))
    with pytest.raises(KeyUnavailable, match="no PKCS#11 token"):
        Pkcs11Key(softhsm.config("no-such-token", "rng-test"))
    with pytest.raises(KeyUnavailable, match="found 0"):
        Pkcs11Key(softhsm.config("casino-test", "no-such-key"))
    missing = Pkcs11Config(os.fspath(tmp_path / "nothing.so"), "casino-test", PIN, "rng-test")
    with pytest.raises(KeyUnavailable, match="module"):
        Pkcs11Key(missing)
