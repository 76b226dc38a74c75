"""`tui-collab-server` as an operator runs it: serve, token, schema, signals, and no leaks."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import jwt

from tests.support.peer import Peer
from tests.support.process import ServerProcess
from tests.support.roster import next_entry


def run_cli(*args: str, data_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    extra = ["--data-dir", str(data_dir)] if data_dir else []
    return subprocess.run(
        [sys.executable, "-m", "server.cli", *args, *extra],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_token_prints_only_a_jwt(tmp_path: Path) -> None:
    done = run_cli(
        "token",
        "--user",
        "alice",
        "--team",
        "core",
        "--name",
        "Alice",
        "--ttl",
        "90s",
        data_dir=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    secret = (tmp_path / "secret").read_text().strip()
    claims = jwt.decode(lines[0], secret, algorithms=["HS256"])
    assert (claims["sub"], claims["team"], claims["name"]) == ("alice", "core", "Alice")
    assert claims["exp"] - claims["iat"] == 90
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600


def test_token_rejects_bad_ttl_and_ids(tmp_path: Path) -> None:
    assert (
        run_cli(
            "token", "--user", "a", "--team", "t", "--ttl", "soon", data_dir=tmp_path
        ).returncode
        == 2
    )
    bad = run_cli("token", "--user", "a b", "--team", "t", data_dir=tmp_path)
    assert bad.returncode == 2
    assert bad.stdout == ""


def test_schema_prints_both_directions() -> None:
    done = run_cli("schema")
    assert done.returncode == 0
    schema = json.loads(done.stdout)
    client = json.dumps(schema["client_to_server"])
    server = json.dumps(schema["server_to_client"])
    for kind in ("hello", "presence.set", "board.join", "cursor.move", "cell.set", "auth.refresh"):
        assert f'"{kind}"' in client
    for kind in ("welcome", "board.state", "cursors", "cell.changed", "ack", "error"):
        assert f'"{kind}"' in server


def test_open_auth_on_public_host_exits_with_a_reason(tmp_path: Path) -> None:
    done = run_cli("serve", "--host", "0.0.0.0", "--auth", "open", "--port", "0", data_dir=tmp_path)
    assert done.returncode == 2
    assert "loopback" in done.stderr


async def test_serve_prints_listening_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", "--log-level", "debug")
    try:
        url = server.start()
        assert url.startswith("ws://127.0.0.1:")
        assert url.endswith("/ws")
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz") as reply:
            health = json.loads(reply.read())
        assert health["status"] == "ok"

        secret_token = run_cli(
            "token", "--user", "alice", "--team", "core", data_dir=tmp_path / "data"
        ).stdout.strip()
        peer = await Peer.join(url, secret_token, header=True)
        await Peer.join(url, secret_token)
        refused = await Peer.open(url)
        await refused.send({"type": "hello", "v": 1, "token": secret_token + "x"})
        await refused.closed()
        request = urllib.request.Request(
            f"http://127.0.0.1:{server.port}/api/presence",
            headers={"Authorization": f"Bearer {secret_token}"},
        )
        with urllib.request.urlopen(request) as reply:
            presence = json.loads(reply.read())
        assert presence["team"] == "core"
        assert [m["user"] for m in presence["members"]] == ["alice"]

        assert server.terminate() == 0
        assert await peer.closed() == 1001
        output = server.stdout_rest() + server.log()
        assert secret_token not in output
        assert secret_token.split(".")[2] not in output  # not even the signature
        assert "connected" in output  # the log is there, only the token is not
    finally:
        server.stop()


async def test_who_prints_the_teams_presence(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data")
    try:
        url = server.start()
        alice_token = run_cli(
            "token",
            "--user",
            "alice",
            "--team",
            "core",
            "--name",
            "Alice Ng",
            data_dir=tmp_path / "data",
        ).stdout.strip()
        bob_token = run_cli(
            "token", "--user", "bob", "--team", "core", data_dir=tmp_path / "data"
        ).stdout.strip()
        alice = await Peer.join(url, alice_token)
        await alice.send(
            {
                "type": "presence.set",
                "status": "busy",
                "activity": {"kind": "editing", "board": "plan", "detail": "Q3"},
            }
        )
        bob = await Peer.join(url, bob_token)
        await bob.close()
        await next_entry(alice, "presence", user="bob", status="offline")

        def who(*extra: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "tui_collab.cli", "who", "--server", url, *extra],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )

        table = who("--token", alice_token)
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert lines[0].split() == ["STATUS", "NAME", "USER", "ACTIVITY", "LAST", "SEEN"]
        assert lines[1].split()[:5] == ["busy", "Alice", "Ng", "alice", "editing"]
        assert "plan: Q3" in lines[1]
        assert lines[2].split()[:3] == ["offline", "bob", "bob"]
        assert "UTC" in lines[2]
        as_json = json.loads(who("--token", alice_token, "--json").stdout)
        assert [m["user"] for m in as_json["members"]] == ["alice", "bob"]
        refused = who("--token", "forged")
        assert refused.returncode == 1
        assert "401" in refused.stderr
        await alice.close()
    finally:
        server.stop()


def test_uvloop_without_uvloop_says_how_to_get_it(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("uvloop") is not None:
        done = run_cli("serve", "--loop", "nope", data_dir=tmp_path)
        assert done.returncode == 2  # argparse refuses unknown loops either way
        return
    done = run_cli("serve", "--loop", "uvloop", "--port", "0", data_dir=tmp_path)
    assert done.returncode != 0
    assert "pip install uvloop" in done.stderr
