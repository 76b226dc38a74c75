"""Tokens that renew themselves: `--token-command` and `--token-file` in a running app."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import jwt
import pytest

from tests.conftest import SECRET, StartServer
from tests.tui.conftest import wait_for
from tui_collab.app import CollabApp
from tui_collab.client import CollabClient
from tui_collab.events import Connected
from tui_collab.token_source import (
    TokenSourceError,
    command_provider,
    file_provider,
    run_token_command,
)


def nearly_expired(life_s: int, left_s: int) -> str:
    """A token of `life_s` seconds issued long enough ago that only `left_s` are left."""
    now = int(time.time())
    claims = {"sub": "alice", "team": "core", "iat": now - (life_s - left_s), "exp": now + left_s}
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def test_token_command_renews_a_20_s_token_without_reconnecting(
    start_server: StartServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await start_server()
    monkeypatch.setenv("TUI_COLLAB_SECRET", SECRET)  # what the helper signs with
    mint = ["token", "--user", "alice", "--team", "core", "--ttl", "20s"]
    command = shlex.join([sys.executable, "-m", "server.cli", *mint, "--data-dir", str(tmp_path)])
    first = nearly_expired(life_s=20, left_s=6)  # renewed 4 s before exp: in 2 s
    client = CollabClient(server.url, token=first, token_provider=command_provider(command))
    app = CollabApp(client, board="plan")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None)
        state = client.state
        assert isinstance(state, Connected)
        first_expiry = client.token_expires_at
        assert first_expiry is not None
        await wait_for(pilot, lambda: (client.token_expires_at or 0) > first_expiry + 10, 15)
        # Past the first token's expiry the connection is still the same one.
        await wait_for(pilot, lambda: time.time() > first_expiry + 0.5, 10)
        await pilot.pause(0.3)  # a delay is the point: no reconnect may happen within it
        assert client.state == state
        assert client.attempts == 1
        await client.set_cell("plan", 0, 0, "still here")


async def test_token_file_is_reread_when_a_fresh_token_is_needed(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first\n")
    provide = file_provider(path)
    assert await provide() == "first"
    path.write_text("\n  second  \n")
    assert await provide() == "second"
    path.unlink()
    with pytest.raises(TokenSourceError, match=f"cannot read the token file {path}"):
        await provide()


async def test_a_failing_token_command_says_why_in_one_line() -> None:
    with pytest.raises(TokenSourceError, match=r"exited with status 3: no vault session"):
        await run_token_command("echo 'no vault session' >&2; exit 3")
    with pytest.raises(TokenSourceError, match="gave no token"):
        await run_token_command("true")
    with pytest.raises(TokenSourceError, match=r"did not finish within 0\.2 s"):
        await run_token_command("sleep 5", timeout_s=0.2)
