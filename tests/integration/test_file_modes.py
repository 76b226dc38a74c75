"""Private files: the data dir is 0700, databases, the secret and logs 0600, whatever
the umask; an existing wider data dir is warned about (once) and left as it is; a
secret file others may read, or one too short, stops the server with one line.

Everything runs on real files: the server and the outbox in-process, the commands as
subprocesses, each with a permissive umask (0o022) set for the test.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.auth import load_secret
from server.startup import check_data_dir
from server.store.sqlite import DB_FILE
from tests.conftest import StartServer, token
from tests.support.peer import Peer
from tui_collab.outbox import FILE_NAME, Outbox

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")

PROMPTLY_S = 15.0


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TUI_COLLAB_")}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=PROMPTLY_S,
        check=False,
    )


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stdout == ""
    return done.stderr.rstrip("\n")


# --- modes of what is created ---------------------------------------------------------


async def test_the_server_makes_its_dir_0700_and_its_files_0600(
    start_server: StartServer, tmp_path: Path
) -> None:
    data = tmp_path / "fresh" / "data"
    load_secret(data)
    server = await start_server(data_dir=data)
    peer = await Peer.join(server.url, token("ann", "core"))  # writes: -wal and -shm exist
    assert mode(data) == 0o700
    assert mode(data / "secret") == 0o600
    for name in (DB_FILE, f"{DB_FILE}-wal", f"{DB_FILE}-shm"):
        assert mode(data / name) == 0o600, name
    await peer.close()


def test_the_outbox_is_0600(tmp_path: Path) -> None:
    outbox = Outbox.in_dir(tmp_path / "app", "ws://127.0.0.1:1/ws", "core", "ann")
    try:
        outbox.client_id()
        assert mode(tmp_path / "app") == 0o700
        for name in (FILE_NAME, f"{FILE_NAME}-wal", f"{FILE_NAME}-shm"):
            assert mode(tmp_path / "app" / name) == 0o600, name
    finally:
        outbox.close()


def test_the_apps_log_is_0600_and_a_wide_dir_is_warned_about_in_it(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    args = ("--server", "ws://127.0.0.1:9/ws", "--token-command", "exit 4", "--data-dir")
    assert "token command" in one_line(run("tui_collab.cli", *args, str(fresh)))
    assert mode(fresh) == 0o700
    assert mode(fresh / "tui-collab.log") == 0o600

    wide = tmp_path / "wide"
    wide.mkdir(mode=0o755)
    one_line(run("tui_collab.cli", *args, str(wide)))  # the warning is not on the screen
    assert mode(wide) == 0o755  # the operator's dir is left alone
    log = (wide / "tui-collab.log").read_text()
    assert log.count(f"data dir {wide} has mode 0755") == 1


def test_an_existing_wider_data_dir_is_warned_about_once_and_left_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "shared"
    path.mkdir()
    path.chmod(0o750)
    with caplog.at_level(logging.WARNING, logger="server.startup"):
        check_data_dir(path)
        check_data_dir(path)
    warnings = [r.getMessage() for r in caplog.records if r.name == "server.startup"]
    assert warnings == [
        f"data dir {path} has mode 0750, so other users may read its files: run chmod 700 "
        f"{path} (new data dirs are made 0700)"
    ]
    assert mode(path) == 0o750


def test_a_0700_data_dir_gives_no_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "private"
    path.mkdir(mode=0o700)
    with caplog.at_level(logging.WARNING, logger="server.startup"):
        check_data_dir(path)
    assert not [r for r in caplog.records if r.name == "server.startup"]


# --- the secret file ------------------------------------------------------------------


def _secret(tmp_path: Path, text: str, file_mode: int) -> Path:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "secret").write_text(text)
    (data / "secret").chmod(file_mode)
    return data


@pytest.mark.parametrize("file_mode", [0o644, 0o640, 0o604, 0o620], ids=oct)
def test_a_secret_others_may_use_is_refused(tmp_path: Path, file_mode: int) -> None:
    data = _secret(tmp_path, "s" * 64, file_mode)
    path = data / "secret"
    line = one_line(
        run("server.cli", "token", "--user", "a", "--team", "t", "--data-dir", str(data))
    )
    assert line == (
        f"tui-collab-server token: the signing secret {path} has mode {file_mode:04o}, "
        f"open to other users: run chmod 600 {path}"
    )


def test_a_short_secret_is_refused(tmp_path: Path) -> None:
    data = _secret(tmp_path, "abc\n", 0o600)
    path = data / "secret"
    line = one_line(
        run("server.cli", "token", "--user", "a", "--team", "t", "--data-dir", str(data))
    )
    assert line == (
        f"tui-collab-server token: the signing secret {path} is too short (3 bytes, at "
        "least 32): delete it and a new one is made (tokens signed with the old secret "
        "stop working)"
    )


def test_serve_refuses_a_group_readable_secret(tmp_path: Path) -> None:
    data = _secret(tmp_path, "s" * 64, 0o640)
    line = one_line(run("server.cli", "serve", "--port", "0", "--data-dir", str(data)))
    assert line.startswith(f"tui-collab-server: the signing secret {data / 'secret'} has mode")


def test_a_secret_of_32_bytes_in_a_0600_file_is_accepted(tmp_path: Path) -> None:
    data = _secret(tmp_path, "s" * 32, 0o600)
    assert load_secret(data) == "s" * 32
