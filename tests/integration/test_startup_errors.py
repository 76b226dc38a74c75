"""A server that cannot start says why in one line, at once, and exits non-zero.

Each test runs the real command as a subprocess on real files and sockets, and checks
the whole of stderr: exactly one line, no traceback, and the process gone within the
subprocess timeout.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from server.startup import StartupError, check_data_dir
from server.store.migrations import LATEST
from server.store.sqlite import DB_FILE

PROG = "tui-collab-server"
PROMPTLY_S = 10.0
"""Generous for a loaded machine: a start-up failure takes about a second here."""


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The command with no TUI_COLLAB_* variables but those given."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TUI_COLLAB_")}
    environ.update(env or {})
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=PROMPTLY_S,
        check=False,
    )
    assert time.monotonic() - started < PROMPTLY_S
    return done


def one_line(done: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The only line on stderr, after checking the exit code and that nothing else came."""
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.endswith("\n")
    assert done.stdout == ""
    return done.stderr.rstrip("\n")


def serve(data_dir: Path, *args: str) -> str:
    return one_line(run("serve", "--port", "0", "--data-dir", str(data_dir), *args))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- the data dir ---------------------------------------------------------------------


def test_token_with_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_text("not a directory")
    line = one_line(run("token", "--user", "a", "--team", "t", "--data-dir", str(path)))
    assert line == (
        f"{PROG} token: data dir {path} is not a directory: pass --data-dir a directory "
        "(or move that file away)"
    )


def test_serve_with_a_data_dir_that_cannot_be_created(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    line = serve(blocker / "data")
    assert line.startswith(f"{PROG}: cannot create data dir {blocker / 'data'} (not a directory)")
    assert "--data-dir" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_serve_with_a_data_dir_that_is_not_writable(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.mkdir(mode=0o500)
    try:
        line = serve(path)
    finally:
        path.chmod(0o700)
    assert line.startswith(f"{PROG}: data dir {path} is not writable by this user")


def test_check_data_dir_refuses_one_it_cannot_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same check in-process, where it runs as root too (root may write anywhere)."""
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(StartupError) as failed:
        check_data_dir(tmp_path)
    assert str(failed.value) == (
        f"data dir {tmp_path} is not writable by this user: fix its permissions, or pass "
        "--data-dir a directory this user can write to"
    )


# --- the database ---------------------------------------------------------------------


def _database(tmp_path: Path) -> Path:
    """A real database, of an older schema, with enough rows for several pages."""
    path = tmp_path / "data" / DB_FILE
    path.parent.mkdir()
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.executemany("INSERT INTO notes VALUES (?)", [("x" * 200,)] * 200)
    return path


def test_a_file_that_is_not_a_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "data" / DB_FILE
    path.parent.mkdir()
    path.write_bytes(b"this was never a database\n" * 400)
    before = path.read_bytes()
    line = serve(path.parent)
    assert line == (
        f"{PROG}: database {path} is damaged (file is not a database) and was left untouched: "
        "move it and any -wal and -shm files next to it aside, then copy your latest backup "
        f'to {path} (backups are made with sqlite3 tui-collab.sqlite3 ".backup copy.sqlite3")'
    )
    assert path.read_bytes() == before


def test_a_database_with_a_damaged_page_is_refused_untouched(tmp_path: Path) -> None:
    path = _database(tmp_path)
    damaged = bytearray(path.read_bytes())
    page = 4096
    damaged[2 * page : 2 * page + 512] = b"\xff" * 512  # the third page's b-tree header
    path.write_bytes(bytes(damaged))
    line = serve(path.parent)
    assert line.startswith(f"{PROG}: database {path} is damaged (")
    assert ".backup copy.sqlite3" in line
    assert path.read_bytes() == bytes(damaged)


def test_a_database_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    path = _database(tmp_path)
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={LATEST + 1}")
    before = path.read_bytes()
    line = serve(path.parent)
    assert line == (
        f"{PROG}: database {path} has schema version {LATEST + 1} but this server knows up "
        f"to {LATEST}: it was written by a newer tui-collab-server; upgrade, or restore a "
        "backup made by this version"
    )
    assert path.read_bytes() == before


# --- the port -------------------------------------------------------------------------


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_port_in_use_exits_at_once(tmp_path: Path, taken_port: int) -> None:
    line = one_line(run("serve", "--port", str(taken_port), "--data-dir", str(tmp_path)))
    assert line == (
        f"{PROG}: cannot listen on 127.0.0.1:{taken_port}: the address is already in use: "
        "stop whatever listens there, or pass --port another port (0 picks a free one)"
    )


def test_debug_adds_the_traceback_and_the_held_log(tmp_path: Path, taken_port: int) -> None:
    done = run("serve", "--port", str(taken_port), "--data-dir", str(tmp_path), "--debug")
    assert done.returncode == 1
    assert "Traceback" in done.stderr
    assert "store migrated to schema version" in done.stderr  # held back without --debug
    assert done.stderr.splitlines()[-1].startswith(f"{PROG}: cannot listen on 127.0.0.1:")


# --- TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def test_a_missing_certificate(tmp_path: Path) -> None:
    missing = tmp_path / "server.pem"
    line = serve(tmp_path / "data", "--certfile", str(missing))
    assert line == (
        f"{PROG}: TLS certificate {missing} does not exist: pass --certfile the PEM file of "
        "the certificate"
    )


def test_a_certificate_that_is_not_pem(tmp_path: Path) -> None:
    cert = tmp_path / "server.pem"
    cert.write_bytes(b"\x30\x82\x01\x0a not PEM")
    line = serve(tmp_path / "data", "--certfile", str(cert))
    assert line.startswith(f"{PROG}: TLS certificate {cert} is not a PEM certificate")


def test_a_key_that_does_not_match(tmp_path: Path, ca: trustme.CA) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.issue_cert("localhost").cert_chain_pems[0].write_to_path(str(cert))
    ca.issue_cert("localhost").private_key_pem.write_to_path(str(key))
    line = serve(tmp_path / "data", "--certfile", str(cert), "--keyfile", str(key))
    assert line == (
        f"{PROG}: cannot use TLS certificate {cert} with key {key}: the key does not belong "
        "to the certificate: pass the certificate and its own key"
    )


# --- Redis ----------------------------------------------------------------------------


def test_redis_where_nothing_listens(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    line = serve(tmp_path / "data", "--redis", url)
    assert line == (
        f"{PROG}: cannot reach Redis at {url} (connection refused): start Redis there, or "
        "pass --redis the URL of one that runs"
    )


@pytest.fixture
def refusing_redis() -> Iterator[int]:
    """A port that answers every Redis command with NOAUTH, like a Redis with a password."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def answer(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(b"-NOAUTH Authentication required.\r\n" * data.count(b"*"))

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        listener.close()


def test_redis_that_refuses_us(tmp_path: Path, refusing_redis: int) -> None:
    line = serve(tmp_path / "data", "--redis", f"redis://:wrong@127.0.0.1:{refusing_redis}/0")
    assert line.startswith(f"{PROG}: Redis at redis://:***@127.0.0.1:{refusing_redis}/0 refused")
    assert "wrong" not in line


# --- environment variables ------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("TUI_COLLAB_PORT", "abc", "invalid port value"),
        ("TUI_COLLAB_PORT", "70000", "invalid port 70000: use 0 to 65535"),
        ("TUI_COLLAB_RATE", "fast", "invalid int value"),
        ("TUI_COLLAB_PING_INTERVAL", "soon", "invalid float value"),
        ("TUI_COLLAB_AUTH", "bogus", "invalid choice (choose from token, open)"),
        (
            "TUI_COLLAB_LOG_LEVEL",
            "loud",
            "invalid choice (choose from debug, info, warning, error)",
        ),
        ("TUI_COLLAB_DEBUG", "maybe", "invalid boolean value (use 1 or 0)"),
        (
            "TUI_COLLAB_SESSION_RETENTION",
            "forever",
            "invalid duration 'forever': use a number and one of s, m, h, d, w (e.g. 7d)",
        ),
    ],
)
def test_a_bad_variable_exits_2_naming_it(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    done = run("serve", "--data-dir", str(tmp_path), env={variable: value})
    assert one_line(done, code=2) == f"{PROG}: {variable}={value}: {message}"


def test_a_variable_is_judged_like_its_flag(tmp_path: Path) -> None:
    flag = run("serve", "--data-dir", str(tmp_path), "--auth", "bogus")
    assert flag.returncode == 2
    assert "invalid choice: 'bogus'" in flag.stderr
    # A flag given on the command line wins over its variable, which is then not judged;
    # nor are the variables of another subcommand.
    with_env = run(
        "token",
        "--user",
        "a",
        "--team",
        "t",
        "--data-dir",
        str(tmp_path),
        env={"TUI_COLLAB_PORT": "abc", "TUI_COLLAB_DATA_DIR": "/nonexistent/x"},
    )
    assert with_env.returncode == 0, with_env.stderr  # token has no --port


def test_path_variables_name_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    line = one_line(run("serve", "--port", "0", env={"TUI_COLLAB_DATA_DIR": str(blocker)}))
    assert line.startswith(f"{PROG}: data dir {blocker} is not a directory")
    missing = tmp_path / "cert.pem"
    line = one_line(
        run(
            "serve",
            "--port",
            "0",
            env={
                "TUI_COLLAB_DATA_DIR": str(tmp_path / "data"),
                "TUI_COLLAB_CERTFILE": str(missing),
            },
        )
    )
    assert line.startswith(f"{PROG}: TLS certificate {missing} does not exist")


def test_help_names_the_variables() -> None:
    done = run("serve", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for variable in (
        "TUI_COLLAB_PORT",
        "TUI_COLLAB_AUTH",
        "TUI_COLLAB_DATA_DIR",
        "TUI_COLLAB_DEBUG",
    ):
        assert f"[env {variable}]" in text
