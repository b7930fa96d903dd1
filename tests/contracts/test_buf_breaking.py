"""The Protobuf contracts are lint-clean, formatted, and guarded by `buf breaking`.

The breaking tests copy `proto/` and `buf.yaml` to a temporary directory, damage the copy
the way a careless edit would (a deleted field, a renumbered field) and check that
`buf breaking <copy> --against <repo>` refuses it and names the field, so the CI gate on
released v1 contracts really bites.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUF = REPO / "node_modules" / ".bin" / "buf"
TABLE_EVENT = Path("proto/casino/common/v1/table_event.proto")


def _buf() -> Path:
    """Return the repo's buf binary, failing (never skipping) when it is not installed."""
    if not BUF.is_file():
        pytest.fail(
            f"buf not found at {BUF}; install it with `npm ci` (or `make install`) in {REPO}",
            pytrace=False,
        )
    return BUF


def _run_buf(args: list[str], cwd: Path, cache: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BUF_CACHE_DIR": str(cache)}
    return subprocess.run(
        [str(_buf()), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def _copy_contracts(tmp_path: Path) -> Path:
    copy = tmp_path / "contracts"
    copy.mkdir()
    shutil.copy2(REPO / "buf.yaml", copy / "buf.yaml")
    shutil.copytree(REPO / "proto", copy / "proto")
    return copy


def _replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    count = text.count(old)
    assert count == 1, f"expected {old!r} exactly once in {path}, found {count}: update this test"
    path.write_text(text.replace(old, new), encoding="utf-8")


def _breaking(copy: Path, tmp_path: Path) -> tuple[int, str, list[dict[str, object]]]:
    result = _run_buf(
        ["breaking", str(copy), "--against", str(REPO), "--error-format=json"],
        cwd=copy,
        cache=tmp_path / "buf-cache",
    )
    output = result.stdout + result.stderr
    findings = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.returncode, output, findings


def test_unmodified_copy_is_not_breaking(tmp_path: Path) -> None:
    copy = _copy_contracts(tmp_path)

    code, output, findings = _breaking(copy, tmp_path)

    assert code == 0, f"buf breaking failed on an unmodified copy:\n{output}"
    assert findings == []


def test_deleting_a_field_is_breaking(tmp_path: Path) -> None:
    copy = _copy_contracts(tmp_path)
    _replace_once(copy / TABLE_EVENT, "  int64 media_timestamp_us = 5;\n", "")

    code, output, findings = _breaking(copy, tmp_path)

    assert code != 0, f"buf breaking accepted a deleted field:\n{output}"
    assert "media_timestamp_us" in output, output
    deleted = [f for f in findings if f.get("type") == "FIELD_NO_DELETE"]
    assert deleted, f"expected a FIELD_NO_DELETE finding:\n{output}"
    assert any("media_timestamp_us" in str(f.get("message")) for f in deleted), output
    assert all(str(f.get("path", "")).endswith("table_event.proto") for f in deleted), output


def test_renumbering_a_field_is_breaking(tmp_path: Path) -> None:
    copy = _copy_contracts(tmp_path)
    _replace_once(copy / TABLE_EVENT, "  uint64 sequence = 3;\n", "  uint64 sequence = 8;\n")

    code, output, findings = _breaking(copy, tmp_path)

    assert code != 0, f"buf breaking accepted a renumbered field:\n{output}"
    assert "sequence" in output, output
    messages = [str(f.get("message")) for f in findings]
    assert any('"3"' in m and '"sequence"' in m for m in messages), output


def test_buf_lint_is_clean(tmp_path: Path) -> None:
    result = _run_buf(["lint"], cwd=REPO, cache=tmp_path / "buf-cache")

    assert result.returncode == 0, f"buf lint:\n{result.stdout}{result.stderr}"


def test_buf_format_is_applied(tmp_path: Path) -> None:
    result = _run_buf(["format", "--diff", "--exit-code"], cwd=REPO, cache=tmp_path / "buf-cache")

    assert result.returncode == 0, (
        "proto files are not formatted; run `node_modules/.bin/buf format -w`:\n"
        f"{result.stdout}{result.stderr}"
    )
