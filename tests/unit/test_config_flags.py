"""`serve`'s flags come from `ServerConfig`'s fields: one default each, named once."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from server.auth import format_ttl, parse_ttl
from server.cli import build_parser, config_flags
from server.config import FLAG, ServerConfig
from tui_collab.envflags import resolve_env

# What operators' scripts and unit files use; a change here is a change of interface.
FLAGS = {
    "host": "host",
    "port": "port",
    "auth": "auth",
    "allowed-origin": "allowed_origins",
    "certfile": "certfile",
    "keyfile": "keyfile",
    "durability": "durability",
    "rate": "rate_per_s",
    "burst": "burst",
    "cell-rate": "cell_ops_per_s",
    "cell-burst": "cell_ops_burst",
    "hello-timeout": "hello_timeout_s",
    "ping-interval": "ping_interval_s",
    "ping-timeout": "ping_timeout_s",
    "offline-grace": "offline_grace_s",
    "drain": "drain_s",
    "max-connections-per-user": "max_connections_per_user",
    "max-connections": "max_connections",
    "connect-rate": "connects_per_user_s",
    "connect-burst": "connect_burst",
    "max-unauthenticated-per-ip": "max_unauthenticated_per_ip",
    "max-upgrading-per-ip": "max_upgrading_per_ip",
    "max-upgrading": "max_upgrading",
    "upgrade-timeout": "upgrade_timeout_s",
    "forwarded-allow-ips": "forwarded_allow_ips",
    "max-board-participants": "max_board_participants",
    "max-boards-per-team": "max_boards_per_team",
    "max-cells-per-board": "max_cells_per_board",
    "notes-max-bytes": "notes_max_bytes",
    "notes-update-max-bytes": "notes_update_max_bytes",
    "send-high-water": "send_high_water_bytes",
    "slow-close-after": "slow_close_after_s",
    "redis": "redis_url",
    "node-ttl": "node_ttl_s",
    "presence-heartbeat": "presence_heartbeat_s",
    "session-retention": "session_retention_s",
    "sessions-per-user": "sessions_per_user",
}
NOT_CONFIG_FIELDS = ("data-dir", "loop", "log-level", "log-format", "debug")
NOT_FLAGS = ("secret", "node", "cursor_interval_s", "slow_close_grace_s", "send_hard_cap_bytes")


def _serve() -> argparse.ArgumentParser:
    commands = next(
        a for a in build_parser({})._actions if isinstance(a, argparse._SubParsersAction)
    )
    parser: argparse.ArgumentParser = commands.choices["serve"]
    return parser


def test_every_flag_default_is_the_config_default(tmp_path: Path) -> None:
    args = build_parser({}).parse_args(["serve"])
    resolve_env(args)
    defaults = ServerConfig(data_dir=tmp_path, secret="s")
    for item, meta in config_flags():
        value = getattr(args, meta.name.replace("-", "_"))
        if item.name == "allowed_origins":
            value = tuple(value)
        assert value == item.default == getattr(defaults, item.name), meta.name


def test_the_flags_and_their_variables_are_the_documented_ones() -> None:
    assert {meta.name: item.name for item, meta in config_flags()} == FLAGS
    for _, meta in config_flags():
        assert meta.env == "TUI_COLLAB_" + meta.name.upper().replace("-", "_")
    text = _serve().format_help()
    for name in [*FLAGS, *NOT_CONFIG_FIELDS]:
        assert f"--{name}" in text
        assert "TUI_COLLAB_" + name.upper().replace("-", "_") in text.replace("\n", "")


def test_fields_only_tests_shrink_are_not_flags() -> None:
    for name in (
        "secret",
        "node",
        "cursor_interval_s",
        "slow_close_grace_s",
        "send_hard_cap_bytes",
    ):
        field = next(f for f in dataclasses.fields(ServerConfig) if f.name == name)
        assert FLAG not in field.metadata


@pytest.mark.parametrize("seconds", [1, 59, 60, 90, 3_600, 86_400, 604_800, 1_209_600, 90_061])
def test_a_shown_duration_reads_back(seconds: int) -> None:
    assert parse_ttl(format_ttl(seconds)) == seconds


@pytest.mark.parametrize(
    ("flag", "shown"),
    [
        ("--port", "(default 9001)"),
        ("--offline-grace", "(default 10)"),
        ("--session-retention", "(default 7d)"),
        ("--sessions-per-user", "(default 200)"),
        ("--send-high-water", "(default 262144)"),
        ("--presence-heartbeat", "(default 30; 0 turns it off)"),
    ],
)
def test_help_shows_the_config_default(flag: str, shown: str) -> None:
    action = next(a for a in _serve()._actions if flag in a.option_strings)
    assert action.help is not None
    assert shown in action.help


def test_the_backlog_policy_defaults_are_the_configs(tmp_path: Path) -> None:
    # Written twice: server/outbound.py sits below the config and is kept out of the CLI's
    # imports (it loads websockets and prometheus), so this test keeps the two in step.
    from server.outbound import BacklogPolicy

    config, policy = ServerConfig(data_dir=tmp_path, secret="s"), BacklogPolicy()
    assert (policy.high_water, policy.hard_cap) == (
        config.send_high_water_bytes,
        config.send_hard_cap_bytes,
    )
    assert (policy.close_after_s, policy.close_grace_s) == (
        config.slow_close_after_s,
        config.slow_close_grace_s,
    )
