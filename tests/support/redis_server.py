"""A real `redis-server` on a free loopback port, for the Redis store and scale-out tests.

Persistence is append-only with `appendfsync always`, so a reply means the write is on
disk: `kill()` followed by `restart()` is a crash test, not a clean shutdown.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BINARY = "redis-server"


def redis_server_path() -> str | None:
    """The `redis-server` binary on PATH, or None when it is not installed."""
    return shutil.which(BINARY)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(port: int, line: bytes, timeout: float = 0.5) -> bytes:
    """Send one inline command and return the first reply line (no client library needed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(line + b"\r\n")
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply.strip()


class RedisServer:
    """One `redis-server` process in its own temporary directory.

    `restart()` reuses the port and the directory, so clients holding the old URL reconnect
    to a server that reloaded the append-only file.
    """

    def __init__(self, directory: Path | None = None) -> None:
        binary = redis_server_path()
        if binary is None:
            raise FileNotFoundError("redis-server not installed: apt-get install redis-server")
        self.binary = binary
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tc-redis-")
            directory = Path(self._tmp.name)
        self.dir = directory
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.dir / "redis.log"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start on a free port (or the previous one after `stop`/`kill`); wait for PING."""
        self.dir.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self.port else 5
        for _ in range(attempts):
            port = self.port or _free_port()
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--protected-mode",
                    "no",
                    "--save",
                    "",
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    "always",
                    "--dir",
                    str(self.dir),
                    "--logfile",
                    str(self.log_path),
                    "--daemonize",
                    "no",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._wait_ready(port, timeout):
                self.port = port
                return self
            # Most likely another process took the port between probe and bind: try again.
            self._reap()
        raise RuntimeError(f"redis-server did not start: {self.log()}")

    def _wait_ready(self, port: int, timeout: float) -> bool:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            with contextlib.suppress(OSError):
                # While the AOF loads the server answers -LOADING, not +PONG.
                if _command(port, b"PING") == b"+PONG":
                    return True
            time.sleep(0.002)
        return False

    def _reap(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        """A clean SHUTDOWN (the AOF is flushed and closed); SIGTERM if it does not answer.

        SHUTDOWN returns in milliseconds; SIGTERM is only noticed on the next server tick.
        """
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(OSError):
                _command(self.port, b"SHUTDOWN")
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        self._reap()

    def restart(self, *, crash: bool = False) -> None:
        """Stop (or kill, with `crash`) and start again on the same port and directory."""
        self.kill() if crash else self.stop()
        self.start()

    def flush(self) -> None:
        """FLUSHALL: a clean slate for the next test on a shared server."""
        if _command(self.port, b"FLUSHALL") != b"+OK":
            raise RuntimeError("FLUSHALL failed")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def close(self) -> None:
        """Kill the server (its data is about to go) and delete its directory."""
        self.kill()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
