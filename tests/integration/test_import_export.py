"""`tui-collab export` and `import` against a real server.

The command runs in a thread (`cli.main`, its own event loop) while the server runs on
the test's loop: the same code as the installed command, without a process start.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import StartServer, token
from tests.support.peer import Peer
from tui_collab import cli
from tui_collab.client import CollabClient

OPEN: dict[str, Any] = {"auth": "open", "secret": None}
SEED = [
    (0, 0, "name"),
    (1, 0, "note, with a comma"),
    (3, 0, 'say "hi"'),
    (0, 1, "ünïcode 😀"),
    (2, 3, "last row"),
    (4, 2, "'quoted'"),
]


async def run(
    capsys: pytest.CaptureFixture[str], url: str, *args: str, token: str | None = None
) -> tuple[int, str, str]:
    """Run `tui-collab ARGS --server URL` as alice (open mode, or with `token`);
    return (status, stdout, stderr)."""
    capsys.readouterr()
    who = ["--token", token] if token else ["--user", "alice", "--team", "core"]
    argv = [*args, "--server", url, *who]
    status = await asyncio.to_thread(cli.main, argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


async def _seeded(url: str, token: str | None = None) -> None:
    who: dict[str, Any] = {"token": token} if token else {"user": "bob", "team": "core"}
    async with CollabClient(url, **who) as bob:
        await bob.create_board("Source", 8, 6, board="src")
        await bob.join("src")
        await bob.set_cells("src", SEED)


async def _version(url: str, board: str) -> int:
    """The board's version as a fresh joiner is told it (0: never written)."""
    peer = await Peer.join(url, user="eve", team="core")
    await peer.send({"type": "board.join", "board": board, "id": "j"})
    state = await peer.next("board.state")
    await peer.close()
    return int(state["version"])


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
async def test_export_import_export_gives_the_same_file(
    start_server: StartServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    server = await start_server(**OPEN)
    await _seeded(server.url)
    first, second = tmp_path / f"first.{fmt}", tmp_path / f"second.{fmt}"
    assert (await run(capsys, server.url, "export", "src", "-o", str(first)))[0] == 0
    lines = first.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4  # rows 1-4: the last non-empty one
    status, out, err = await run(capsys, server.url, "import", "copy", str(first), "--create")
    assert (status, err) == (0, "")
    assert out == "imported 6 cells into copy at A1\n"
    assert (await run(capsys, server.url, "export", "copy", "-o", str(second)))[0] == 0
    assert second.read_bytes() == first.read_bytes()


async def test_a_json_export_imports_into_another_board(
    start_server: StartServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await start_server()  # token auth: the flags the app takes
    key = token("alice", "core")
    exported = tmp_path / "src.json"
    await _seeded(server.url, token=token("bob", "core"))
    status, _, err = await run(capsys, server.url, "export", "src", "-o", str(exported), token=key)
    assert (status, err) == (0, "")
    status, out, _ = await run(
        capsys, server.url, "import", "copy", str(exported), "--create", token=key
    )
    assert (status, out) == (0, "imported 6 cells into copy at A1\n")
    original = await run(capsys, server.url, "export", "src", "--format", "csv", token=key)
    copied = await run(capsys, server.url, "export", "copy", "--format", "csv", token=key)
    assert copied[1] == original[1] != ""


async def test_import_at_an_anchor_and_json_export(
    start_server: StartServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await start_server(**OPEN)
    await _seeded(server.url)
    source = tmp_path / "in.csv"
    source.write_text("a,,c\n,e\n", encoding="utf-8")
    status, out, _ = await run(capsys, server.url, "import", "src", str(source), "--at", "B4")
    assert status == 0
    assert out == "imported 3 cells into src at B4\n"
    status, out, _ = await run(capsys, server.url, "export", "src", "--format", "json")
    document = json.loads(out)
    cells = {cell["cell"]: cell for cell in document["cells"]}
    assert cells["B4"]["value"] == "a"
    assert cells["C4"]["value"] == "last row"  # the empty field left it alone
    assert cells["D4"]["value"] == "c"
    assert cells["C5"]["value"] == "e"
    assert cells["B4"]["by"] == "alice"
    assert cells["B4"]["at"].endswith("Z")
    assert (document["board"], document["width"], document["height"]) == ("src", 8, 6)


async def test_a_control_character_refuses_the_file_and_sends_nothing(
    start_server: StartServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await start_server(**OPEN)
    async with CollabClient(server.url, user="bob", team="core") as bob:
        await bob.create_board("Plan", 8, 8, board="plan")
    bad = tmp_path / "bad.csv"
    bad.write_text("ok,fine\nstill,ok\nx,bell\x07\n", encoding="utf-8")
    status, out, err = await run(capsys, server.url, "import", "plan", str(bad))
    assert status == 1
    assert out == ""
    assert err == (
        "tui-collab import: row 3, column 2: contains the control character U+0007, "
        "which a cell cannot hold\n"
    )
    assert await _version(server.url, "plan") == 0  # not one cell was written


async def test_cells_outside_the_board_refuse_the_file(
    start_server: StartServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await start_server(**OPEN)
    async with CollabClient(server.url, user="bob", team="core") as bob:
        await bob.create_board("Plan", 4, 3, board="plan")
    wide = tmp_path / "wide.tsv"
    wide.write_text("a\tb\tc\n", encoding="utf-8")
    status, _, err = await run(capsys, server.url, "import", "plan", str(wide), "--at", "C3")
    assert status == 1
    assert err.startswith(
        "tui-collab import: 1 cell falls outside board plan (4 columns A-D, 3 rows): "
        "row 1, column 3 would land on E3"
    )
    assert err.count("\n") == 1
    assert await _version(server.url, "plan") == 0
    status, _, err = await run(capsys, server.url, "import", "nowhere", str(wide))
    assert status == 1
    assert "team core has no board 'nowhere'" in err
    assert "--create" in err
    status, _, err = await run(capsys, server.url, "export", "nowhere")
    assert status == 1
    assert "no board 'nowhere'" in err
