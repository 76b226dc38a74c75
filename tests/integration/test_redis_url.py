"""A Redis password never reaches a log line or an error, in any form of the URL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from server.store.redis import without_password

SECRET = "hunter2-s3cret"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2-s3cret@10.0.0.1:6379/0", "redis://:***@10.0.0.1:6379/0"),
        ("redis://app:hunter2-s3cret@cache/1", "redis://app:***@cache/1"),
        ("rediss://app:hunter2-s3cret@cache:6380/0", "rediss://app:***@cache:6380/0"),
        ("redis://cache:6379/0?password=hunter2-s3cret", "redis://cache:6379/0?password=***"),
        (
            "redis://cache/0?db=1&password=hunter2-s3cret&username=app",
            "redis://cache/0?db=1&password=***&username=app",
        ),
        ("redis://cache/0?PASSWORD=hunter2-s3cret", "redis://cache/0?PASSWORD=***"),
        ("unix://:hunter2-s3cret@/run/redis.sock?db=0", "unix://:***@/run/redis.sock?db=0"),
        (
            "unix:///run/redis.sock?db=0&password=hunter2-s3cret",
            "unix:///run/redis.sock?db=0&password=***",
        ),
        ("redis://a:hunter2-s3cret@x@cache/0", "redis://a:***@cache/0"),  # an @ in it
        ("redis://:hunter2-s3cret@cache:notaport/0", "redis://:***@cache:notaport/0"),
        ("redis://[::1:6379/0?password=hunter2-s3cret", "(a Redis URL that cannot be parsed)"),
        ("redis://app@cache/0", "redis://app@cache/0"),  # a user name is not a secret
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_every_form_of_password_is_masked(url: str, shown: str) -> None:
    assert without_password(url) == shown
    assert SECRET not in without_password(url)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_a_failed_start_never_shows_the_password(tmp_path: object, debug: bool) -> None:
    """The real command, against a port where no Redis listens: even --debug's held
    log lines and traceback keep the password out."""
    url = f"redis://127.0.0.1:{free_port()}/0?password={SECRET}"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TUI_COLLAB_")}
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--auth", "open", "--port", "0"]
        + ["--data-dir", str(tmp_path), "--redis", url]
        + (["--debug"] if debug else []),
        capture_output=True,
        text=True,
        env=environ,
        timeout=20,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "password=***" in done.stderr
    assert SECRET not in done.stderr + done.stdout
