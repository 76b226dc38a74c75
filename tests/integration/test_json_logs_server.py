"""`tui-collab-server serve --log-format json`: every line on stderr is one JSON object,
at debug level too (where websockets logs frames and headers), with no token in any."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from server.auth import load_secret, mint_token
from tests.support.peer import Peer
from tests.support.process import ServerProcess


async def test_json_logs_are_one_object_a_line_without_tokens(tmp_path: Path) -> None:
    process = ServerProcess(tmp_path / "data", "--log-format", "json", "--log-level", "debug")
    await asyncio.to_thread(process.start)
    try:
        secret = load_secret(process.data_dir)
        token = mint_token(secret, "alice", "core", None, 60)
        alice = await Peer.join(process.url, token)
        bob = await Peer.join(process.url, token, header=True)
        forged = mint_token("f" * 64, "mallory", "core", None, 60)
        refused = await Peer.join_raw(process.url, {"type": "hello", "v": 1, "token": forged})
        await refused.next("error")
        for peer in (alice, bob, refused):
            await peer.close()
        assert await asyncio.to_thread(process.terminate) == 0
    finally:
        process.stop()

    lines = process.log().splitlines()
    entries = [json.loads(line) for line in lines]  # each line alone is one object
    assert all(isinstance(entry, dict) for entry in entries)
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    assert {entry["level"] for entry in entries} >= {"DEBUG", "INFO", "WARNING"}
    assert any(entry["logger"].startswith("websockets") for entry in entries)
    messages = [entry["message"] for entry in entries]
    assert any(m.startswith("connected ") and "user=alice" in m for m in messages)
    assert "server stopped" in messages
    (audit,) = [entry["audit"] for entry in entries if entry["logger"] == "tui_collab.audit"]
    assert audit["event"] == "auth_failed"
    assert audit["stage"] == "hello"
    log = process.log()
    assert "[redacted]" in log  # the tokens were logged (frames, headers), and scrubbed
    for secret_part in (token, token.split(".")[1], forged, forged.split(".")[1]):
        assert secret_part not in log
