"""Members are stored without holding up a hello, and found again after a restart.

A real server on a loopback port with a real SQLite file, stopped and started again:
what the member list says then comes only from the store. The user row must be written
before the user's first presence row (a foreign key), and a name that changed must be
written again even though a repeated one is not.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from server.store.sqlite import DB_FILE
from tests.conftest import StartServer, token
from tests.support.peer import Peer


async def test_a_new_member_and_a_new_name_are_in_the_member_list_after_a_restart(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = await start_server()
    for name in ("Ada", "Ada", "Ada L."):
        peer = await Peer.join(server.url, token("ada", "core", name))
        await peer.close()
    first = await Peer.join(server.url, token("bob", "core", "Bob"))
    await first.close()
    await server.stop()

    restarted = await start_server()
    watcher = await Peer.join(restarted.url, token("cy", "core", "Cy"))
    members = {m["user"]: m for m in watcher.welcome["members"]}
    assert members["ada"]["name"] == "Ada L."
    assert members["bob"]["name"] == "Bob"
    for user in ("ada", "bob"):
        assert members[user]["status"] == "offline"
        assert members[user].get("last_seen"), members[user]  # the presence row is there
    await watcher.close()
    await restarted.stop()

    db = sqlite3.connect(tmp_path / "data" / DB_FILE)
    try:
        rows = db.execute("SELECT id, name FROM users ORDER BY id").fetchall()
        presence = {u for (u,) in db.execute("SELECT user FROM user_presence")}
    finally:
        db.close()
    assert rows == [("ada", "Ada L."), ("bob", "Bob"), ("cy", "Cy")]
    assert presence == {"ada", "bob", "cy"}
