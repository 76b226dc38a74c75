"""`tui-collab` that cannot start says so in one line, exits non-zero, and never hangs.

Every case runs the real command in a process of its own, with no terminal: each
failure is found before the screen would open.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest
import trustme

from tests.conftest import StartServer, token

DEADLINE_S = 15.0


async def run_app(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, float]:
    """Run `tui-collab ARGS`; return its exit status, its stderr and how long it took."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tui_collab.cli",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    async with asyncio.timeout(DEADLINE_S):
        out, err = await process.communicate()
    assert process.returncode is not None
    assert out == b""
    return process.returncode, err.decode(), time.monotonic() - started


def one_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("tui-collab: ")
    return lines[0]


async def test_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.write_text("not a directory")
    code, err, _ = await run_app("--data-dir", str(data))
    assert code == 1
    assert f"data dir {data} is not a directory" in one_line(err)


async def test_a_data_dir_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    data = tmp_path / "file" / "data"
    code, err, _ = await run_app("--data-dir", str(data))
    assert code == 1
    assert f"cannot create data dir {data}" in one_line(err)


async def test_a_corrupt_database_is_named_and_left_untouched(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    database = data / "tui-collab.sqlite3"
    database.write_bytes(b"SQLite format 3\x00" + b"\xde\xad" * 2048)
    before = database.read_bytes()
    code, err, took = await run_app("--data-dir", str(data), "--port", "0")
    line = one_line(err)
    assert code == 1
    assert str(database) in line
    assert ".backup" in line
    assert database.read_bytes() == before
    assert took < DEADLINE_S


async def test_a_refused_token_exits_non_zero_and_says_how_to_get_one(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server()
    code, err, _ = await run_app(
        "--server", server.url, "--token", "not-a-token", "--data-dir", str(tmp_path)
    )
    line = one_line(err)
    assert code == 1
    assert "refused the token" in line
    assert "tui-collab-server token" in line


async def test_a_token_command_that_fails(tmp_path: Path) -> None:
    code, err, _ = await run_app(
        "--server",
        "ws://127.0.0.1:9/ws",
        "--token-command",
        "echo 'vault is sealed' >&2; exit 4",
        "--data-dir",
        str(tmp_path),
    )
    assert code == 1
    assert "the token command exited with status 4: vault is sealed" in one_line(err)


async def test_a_certificate_that_does_not_verify(
    start_server: StartServer, tmp_path: Path
) -> None:
    ca = trustme.CA()
    pem = tmp_path / "wrong.pem"
    ca.issue_cert("collab.example.org").private_key_and_cert_chain_pem.write_to_path(str(pem))
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    server = await start_server(certfile=pem)
    code, err, _ = await run_app(
        "--server",
        server.url,
        "--token",
        token("alice", "core"),
        "--data-dir",
        str(tmp_path / "data"),
        env={"SSL_CERT_FILE": str(bundle)},
    )
    assert code == 1
    assert "cannot verify the certificate of 127.0.0.1" in one_line(err)


async def test_a_cafile_that_is_not_a_certificate(tmp_path: Path) -> None:
    cafile = tmp_path / "ca.pem"
    cafile.write_text("hello")
    code, err, _ = await run_app(
        "--server", "wss://127.0.0.1:9/ws", "--cafile", str(cafile), "--data-dir", str(tmp_path)
    )
    assert code == 1
    assert f"cannot use CA file {cafile}" in one_line(err)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("TUI_COLLAB_PORT", "abc", "TUI_COLLAB_PORT=abc: invalid port"),
        ("TUI_COLLAB_PORT", "70000", "TUI_COLLAB_PORT=70000: invalid port"),
        ("TUI_COLLAB_DEMO", "maybe", "TUI_COLLAB_DEMO=maybe: invalid boolean value"),
        ("TUI_COLLAB_DEBUG", "2", "TUI_COLLAB_DEBUG=2: invalid boolean value"),
    ],
)
async def test_a_bad_environment_variable_is_named(
    tmp_path: Path, variable: str, value: str, says: str
) -> None:
    code, err, _ = await run_app("--data-dir", str(tmp_path), env={variable: value})
    assert code == 2
    assert says in one_line(err)
