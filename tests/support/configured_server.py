"""A server subprocess built from `ServerConfig` fields, for settings with no CLI flag.

`python -m tests.support.configured_server '{"data_dir": ..., ...}'` serves like
`tui-collab-server serve` (same listening line, SIGTERM stops it); `ConfiguredServer`
starts it and is otherwise a `ServerProcess` (kill, stop, log).
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from server.app import CollabServer
from server.config import ServerConfig
from server.logs import configure as configure_logging
from tests.support.process import LISTENING, ServerProcess

ROOT = Path(__file__).resolve().parents[2]


class ConfiguredServer(ServerProcess):
    """A server subprocess on `data_dir` with these `ServerConfig` fields."""

    def __init__(self, data_dir: Path, **settings: Any) -> None:
        super().__init__(data_dir)
        self.settings = settings

    def start(self, port: int = 0, timeout: float = 15.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        settings = {"data_dir": str(self.data_dir), "port": port, **self.settings}
        with self.stderr_path.open("a") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.support.configured_server", json.dumps(settings)],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=self.env,
                cwd=ROOT,
            )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"server exited early: {self.log()}")
            match = LISTENING.match(line.strip())
            if match:
                self.url = match.group(1)
                return self.url
        raise TimeoutError("server did not print its listening line")


async def _serve(config: ServerConfig) -> None:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with CollabServer(config) as server:
        print(f"listening on {server.url}", flush=True)
        await stop.wait()


def main(argv: list[str]) -> None:
    settings = json.loads(argv[0])
    settings["data_dir"] = Path(settings["data_dir"])
    configure_logging("info")
    asyncio.run(_serve(ServerConfig(**settings)))


if __name__ == "__main__":
    main(sys.argv[1:])
