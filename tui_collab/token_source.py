"""Where a long-running client gets fresh tokens: a command, or a file it rereads.

Like git's credential helpers, `--token-command` runs a command of the user's choosing
whenever a token is needed (before the current one expires, and after the server
refused one) and uses what it prints. `--token-file` rereads a file that something
else keeps fresh (a sidecar, a cron job, a secrets mount).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path
from typing import Final

from tui_collab.client import TokenProvider
from tui_collab.protocol import printable

COMMAND_TIMEOUT_S: Final = 30.0
"""A token command that takes longer is stopped: a hung helper must not hang the app."""


class TokenSourceError(Exception):
    """No token could be had; the message is one line for a person."""


async def run_token_command(command: str, timeout_s: float = COMMAND_TIMEOUT_S) -> str:
    """Run `command` in the shell and return the token it prints (its first line)."""
    process = await asyncio.create_subprocess_shell(
        command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group, so a timeout stops its children too
    )
    try:
        async with asyncio.timeout(timeout_s):
            out, err = await process.communicate()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        raise TokenSourceError(f"the token command did not finish within {timeout_s:g} s") from None
    if process.returncode != 0:
        said = _last_line(err.decode(errors="replace"))
        raise TokenSourceError(
            f"the token command exited with status {process.returncode}"
            + (f": {said}" if said else "")
        )
    return _token_from(out.decode(errors="replace"), "the token command")


def command_provider(command: str) -> TokenProvider:
    async def provide() -> str:
        return await run_token_command(command)

    return provide


def file_provider(path: Path) -> TokenProvider:
    async def provide() -> str:
        try:
            text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        except OSError as exc:
            raise TokenSourceError(f"cannot read the token file {path}: {exc.strerror}") from exc
        return _token_from(text, f"the token file {path}")

    return provide


def _token_from(text: str, source: str) -> str:
    for line in text.splitlines():
        token = line.strip()
        if token:
            if any(char.isspace() for char in token):
                raise TokenSourceError(f"{source} gave a line with spaces, not a token")
            return token
    raise TokenSourceError(f"{source} gave no token (empty output)")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return printable(lines[-1], 160) if lines else ""
