"""Run `tui-collab-server` as a real subprocess, the way an operator would."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

LISTENING = re.compile(r"^listening on (ws://\S+)$")


class ServerProcess:
    """A server subprocess on a data dir; `url` is known once it printed its listening line."""

    def __init__(self, data_dir: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.args = args
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.stderr_path = data_dir.parent / f"{data_dir.name}-server.log"

    def start(self, port: int = 0, timeout: float = 15.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        stderr = self.stderr_path.open("a")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "server.cli",
                "serve",
                "--port",
                str(port),
                "--data-dir",
                str(self.data_dir),
                "--rate",  # tests pipeline far more than a person sends
                "1000000",
                "--burst",
                "1000000",
                *self.args,
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=self.env,
        )
        stderr.close()
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

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/")[0])

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def terminate(self, timeout: float = 10.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stdout_rest(self) -> str:
        assert self.proc is not None
        assert self.proc.stdout is not None
        return self.proc.stdout.read()

    def log(self) -> str:
        return self.stderr_path.read_text() if self.stderr_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
