"""Fixtures: a real server on a free loopback port, on a real SQLite file."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from server.app import CollabServer
from server.auth import mint_token
from server.config import ServerConfig

settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

SECRET = "test-secret-" + "x" * 60


TEST_ORDERS = frozenset({"TUI_COLLAB_WEB_SCREENSHOT"})
"""Variables that tell a test what to write, not settings of the code under test."""


@pytest.fixture(autouse=True, scope="session")
def _no_personal_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep a developer's own config file and TUI_COLLAB_* variables out of every test:
    the CLIs the tests start read them, and a result must not depend on whose machine."""
    saved = dict(os.environ)
    personal = [n for n in os.environ if n.startswith("TUI_COLLAB_") and n not in TEST_ORDERS]
    for name in personal:
        del os.environ[name]
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("xdg-config"))
    yield
    os.environ.clear()
    os.environ.update(saved)


def fast_config(data_dir: Path, **overrides: Any) -> ServerConfig:
    """Production defaults with timers shrunk so tests run in milliseconds, not seconds."""
    base = ServerConfig(
        data_dir=data_dir,
        port=0,
        secret=SECRET,
        hello_timeout_s=2.0,
        ping_interval_s=5.0,
        ping_timeout_s=5.0,
        offline_grace_s=0.3,
        close_timeout_s=0.5,
        # Tests pipeline hundreds of messages per socket; the limiter has its own tests.
        rate_per_s=1_000_000,
        burst=1_000_000,
    )
    return dataclasses.replace(base, **overrides)


def token(user: str, team: str, name: str | None = None, ttl_s: int = 3600) -> str:
    return mint_token(SECRET, user, team, name, ttl_s)


StartServer = Callable[..., Awaitable[CollabServer]]


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[StartServer]:
    """Start servers on demand (same data dir unless told); all are stopped at teardown."""
    running: list[CollabServer] = []

    async def start(data_dir: Path | None = None, **overrides: Any) -> CollabServer:
        server = CollabServer(fast_config(data_dir or tmp_path / "data", **overrides))
        await server.start()
        running.append(server)
        return server

    yield start
    for server in running:
        if server._server is not None:
            await server.stop()


@pytest.fixture
async def server(start_server: StartServer) -> CollabServer:
    return await start_server()


# --- a real redis-server, for the Redis store and scale-out tests ---------------------------
from tests.support.redis_server import RedisServer, redis_server_path  # noqa: E402

REDIS_MISSING = "redis-server not installed: apt-get install redis-server"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own (about 10 ms to start): kill or restart it freely.

    Its directory (AOF and log) is under the test's tmp_path, so it is kept for a look
    after a failure.
    """
    if redis_server_path() is None:
        pytest.skip(REDIS_MISSING)
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.close()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url
