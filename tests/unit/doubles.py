"""Test doubles for the server's core: a clock moved by hand, recording peers."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from server.peer import Peer


class ManualClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingPeer:
    """A client connection that keeps what was sent to it and how it was ended."""

    def __init__(self, address: str = "10.0.0.1") -> None:
        self._address = address
        self.frames: list[dict[str, Any]] = []
        self.ended: tuple[int, str] | None = None

    @property
    def address(self) -> str:
        return self._address

    def end(self, code: int, reason: str) -> None:
        if self.ended is None:
            self.ended = (code, reason)

    def types(self) -> list[str]:
        return [str(frame["type"]) for frame in self.frames]

    def take(self) -> list[dict[str, Any]]:
        """The frames received since the last take."""
        frames, self.frames = self.frames, []
        return frames


class RecordingSender:
    """Delivers each frame at once to recording peers, decoded."""

    def __init__(self) -> None:
        self.closing: set[Peer] = set()

    def send(
        self, targets: Iterable[Peer], frame: str | bytes, *, coalescible: bool = False
    ) -> None:
        decoded = json.loads(frame)
        for target in targets:
            assert isinstance(target, RecordingPeer)
            target.frames.append(decoded)

    def is_closing(self, peer: Peer) -> bool:
        return peer in self.closing
