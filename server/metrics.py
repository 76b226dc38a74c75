"""Prometheus metrics for one server process (its own registry, so tests stay apart).

Besides the server's own: `tui_collab_build_info` (which release on which Python, for
telling nodes apart during an upgrade) and prometheus-client's `process_*` metrics (CPU,
memory, open files, start time; on Linux)."""

from __future__ import annotations

import platform
from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from tui_collab import __version__

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_SIZE_BUCKETS = (64, 256, 1024, 4096, 16384, 65536, 262144, 1048576)


def frame_type(frame: str | bytes) -> str:
    """The `type` of an encoded server frame; `encode` always writes it first."""
    if isinstance(frame, bytes):
        frame = frame[:64].decode(errors="ignore")
    if frame.startswith('{"type":"'):
        end = frame.find('"', 9)
        if end > 9:
            return frame[9:end]
    return "other"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        Info("tui_collab_build", "This server's release and Python", registry=r).info(
            {
                "version": __version__,
                "python": platform.python_version(),
                "implementation": platform.python_implementation(),
            }
        )
        ProcessCollector(registry=r)
        self.connections = Gauge("tui_collab_connections", "Open WebSocket sessions", registry=r)
        self.users_online = Gauge("tui_collab_users_online", "Users with a connection", registry=r)
        self.messages_in = Counter(
            "tui_collab_messages_in", "Client messages by type", ["type"], registry=r
        )
        self.messages_out = Counter(
            "tui_collab_messages_out",
            "Server frames sent, counted per recipient",
            ["type"],
            registry=r,
        )
        self.errors = Counter("tui_collab_errors", "Error replies by code", ["code"], registry=r)
        self.fanout_bytes = Histogram(
            "tui_collab_fanout_frame_bytes",
            "Size of each frame handed to fan-out",
            buckets=_SIZE_BUCKETS,
            registry=r,
        )
        self.cursor_flush = Histogram(
            "tui_collab_cursor_flush_seconds",
            "Time to build and fan out one cursors frame",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.store_commit = Histogram(
            "tui_collab_store_commit_seconds",
            "Time of one group commit",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.store_group = Histogram(
            "tui_collab_store_group_size",
            "Writes per group commit",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500),
            registry=r,
        )
        self.slow_consumers = Counter(
            "tui_collab_slow_consumer_drops",
            "Connections closed (1013) for a send backlog that stayed over the bound",
            registry=r,
        )
        self.shed = Counter(
            "tui_collab_shed_frames",
            "Cursor and typing frames skipped for a connection over its high-water mark",
            registry=r,
        )
        self.refused = Counter(
            "tui_collab_refused_connections",
            "Upgrades refused (503) or sessions refused at hello, by cap",
            ["cap"],
            registry=r,
        )
        self.rate_limited = Counter(
            "tui_collab_rate_limited", "Messages dropped by the rate limiter", registry=r
        )
        self.joins = Counter(
            "tui_collab_board_joins",
            "board.join requests answered with a board.state (its first part sent)",
            registry=r,
        )
        self.cells_encoded = Counter(
            "tui_collab_snapshot_cells_encoded",
            "Cells encoded into a board's kept snapshot (once per change, not per join)",
            registry=r,
        )
        self.dropped_closing = Counter(
            "tui_collab_dropped_while_closing",
            "Client frames read and dropped because their connection was being closed",
            registry=r,
        )
        self._in: dict[str, Counter] = {}
        self._out: dict[str, Counter] = {}

    def track(self, connections: Callable[[], int], users_online: Callable[[], int]) -> None:
        self.connections.set_function(connections)
        self.users_online.set_function(users_online)

    def received(self, kind: str) -> None:
        child = self._in.get(kind)
        if child is None:
            child = self._in[kind] = self.messages_in.labels(kind)
        child.inc()

    def sent(self, frame: str | bytes, recipients: int) -> None:
        kind = frame_type(frame)
        child = self._out.get(kind)
        if child is None:
            child = self._out[kind] = self.messages_out.labels(kind)
        child.inc(recipients)
        self.fanout_bytes.observe(len(frame))

    def committed(self, seconds: float, writes: int) -> None:
        self.store_commit.observe(seconds)
        self.store_group.observe(writes)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
