"""GET /readyz: 200 while the store answers (SQLite, Redis); 503 while it does not, with
the reason. /healthz stays 200: the process is alive, and a restart would not help."""

from __future__ import annotations

from server.app import CollabServer
from server.store.sqlite import SQLiteStore
from tests.conftest import StartServer
from tests.support.http_json import get_json as get
from tests.support.redis_server import RedisServer
from tests.support.waiting import eventually


async def test_readyz_is_503_while_the_sqlite_file_is_gone(server: CollabServer) -> None:
    store = server.store
    assert isinstance(store, SQLiteStore)
    assert await get(server.port, "/readyz") == (200, {"status": "ok", "node": server.node})

    moved = store.path.with_name("elsewhere.sqlite3")
    store.path.rename(moved)
    status, body = await get(server.port, "/readyz")
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["reason"] == f"database {store.path}: unable to open database file"
    assert (await get(server.port, "/healthz"))[0] == 200  # alive: a restart would not help

    moved.rename(store.path)
    assert (await get(server.port, "/readyz"))[0] == 200


async def test_readyz_is_503_for_a_database_that_is_not_the_one_opened(
    server: CollabServer,
) -> None:
    store = server.store
    assert isinstance(store, SQLiteStore)
    moved = store.path.with_name("kept.sqlite3")
    store.path.rename(moved)
    other = SQLiteStore(store.path.parent)  # a fresh file in its place: another epoch
    await other.open()
    await other.close()
    status, body = await get(server.port, "/readyz")
    assert status == 503
    assert body["reason"] == (
        f"database {store.path} is not the one this server opened (epoch changed)"
    )


async def test_readyz_is_503_while_redis_is_down(
    start_server: StartServer, redis_server: RedisServer
) -> None:
    server = await start_server(redis_url=redis_server.url)
    assert (await get(server.port, "/readyz"))[0] == 200

    redis_server.stop()
    status, body = await get(server.port, "/readyz")
    assert status == 503
    assert body["status"] == "unavailable"
    assert body["reason"].startswith(f"redis at {redis_server.url}: ")
    assert (await get(server.port, "/healthz"))[0] == 200

    redis_server.start()  # the same port: the pool reconnects by itself
    await eventually(
        lambda: _ready(server.port), timeout=10, what="/readyz ok after Redis came back"
    )


async def _ready(port: int) -> bool:
    return (await get(port, "/readyz"))[0] == 200
