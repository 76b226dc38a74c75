"""deploy/: the Dockerfile, the compose file, HAProxy's config and the systemd unit agree
with the server they run. No container runtime is needed: every command and variable
they give the server is parsed by the server's own parser, and the image's HEALTHCHECK
is run against a real server.

No YAML library is a dependency, so the compose file is read as text: its commands are
flow sequences (JSON arrays), and the few keys checked are found by their indentation."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from server.app import CollabServer
from server.auth import SECRET_ENV
from server.cli import build_parser
from tui_collab.envflags import resolve_env

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DOCKERFILE = (DEPLOY / "Dockerfile").read_text()
COMPOSE = (DEPLOY / "compose.yaml").read_text()
HAPROXY = (DEPLOY / "haproxy.cfg").read_text()
UNIT = (DEPLOY / "tui-collab-server.service").read_text()
SECRET = "s" * 64


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each instruction, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    lines = [line.strip() for line in joined.splitlines()]
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (line.partition(" ") for line in lines)
        if word and not word.startswith("#")
    ]


def last_stage(dockerfile: str) -> list[tuple[str, str]]:
    steps = instructions(dockerfile)
    start = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[start:]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in last_stage(DOCKERFILE):
        if word == "ENV":
            for pair in rest.split():
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def block(text: str, key: str) -> list[str]:
    """The lines nested under the first `key:` line (deeper indented), comments dropped."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{key}:"))
    indent = len(lines[start]) - len(lines[start].lstrip())
    nested = []
    for line in lines[start + 1 :]:
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        if line.strip() and not line.strip().startswith("#"):
            nested.append(line.strip())
    return nested


def compose_node_env() -> dict[str, str]:
    env = {}
    for line in block(COMPOSE, "environment"):
        key, _, value = line.partition(":")
        env[key.strip()] = value.strip().strip('"')
    return env


def compose_command() -> list[str]:
    (line,) = [line for line in block(COMPOSE, "x-node") if line.startswith("command:")]
    command: list[str] = json.loads(line.removeprefix("command:"))
    return command


def unit_exec_start() -> list[str]:
    (line,) = [line for line in UNIT.splitlines() if line.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


def unit_env() -> dict[str, str]:
    lines = [line for line in UNIT.splitlines() if line.startswith("Environment=")]
    return dict(line.removeprefix("Environment=").split("=", 1) for line in lines)


def serve_variables() -> set[str]:
    """Every variable `tui-collab-server serve` reads: one per flag, and the secret."""
    commands = next(
        action
        for action in build_parser({})._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    shown = " ".join(action.help or "" for action in commands.choices["serve"]._actions)
    return set(re.findall(r"\[env (TUI_COLLAB_\w+)\]", shown)) | {SECRET_ENV}


@pytest.mark.parametrize(
    ("where", "env", "argv"),
    [
        ("Dockerfile", dockerfile_env, lambda: ["serve"]),
        ("compose.yaml", compose_node_env, compose_command),
        ("systemd unit", unit_env, lambda: unit_exec_start()[1:]),
    ],
)
def test_every_variable_and_flag_given_is_one_the_server_reads(
    where: str, env: object, argv: object
) -> None:
    assert callable(env)
    assert callable(argv)
    variables: dict[str, str] = env()
    unknown = set(variables) - serve_variables() - {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"}
    assert not unknown, f"{where} sets variables the server does not read: {unknown}"
    environ = {key: SECRET if key == SECRET_ENV else value for key, value in variables.items()}
    args = build_parser(environ).parse_args(argv())
    resolve_env(args)  # a bad value fails here, naming the variable
    assert args.command == "serve"
    assert args.log_format == "json"
    assert args.drain == 6.0


def test_the_image_runs_as_an_unprivileged_user_with_a_healthcheck() -> None:
    stage = last_stage(DOCKERFILE)
    words = [word for word, _ in stage]
    assert all("-slim" in rest for word, rest in instructions(DOCKERFILE) if word == "FROM")
    (user,) = [rest for word, rest in stage if word == "USER"]
    assert user.split(":")[0] not in ("0", "root")
    assert words.index("USER") > max(i for i, word in enumerate(words) if word == "RUN")
    assert ("STOPSIGNAL", "SIGTERM") in stage
    entrypoint = json.loads(dict(stage)["ENTRYPOINT"])
    assert entrypoint + json.loads(dict(stage)["CMD"]) == ["tui-collab-server", "serve"]
    assert dockerfile_env()["TUI_COLLAB_HOST"] == "0.0.0.0"  # in its container


def healthcheck_command() -> list[str]:
    (rest,) = [rest for word, rest in last_stage(DOCKERFILE) if word == "HEALTHCHECK"]
    command: list[str] = json.loads(rest.split(" CMD ", 1)[1])
    assert command[0] == "python"
    return [sys.executable, *command[1:]]


async def test_the_image_healthcheck_passes_on_a_live_server_and_fails_without(
    server: CollabServer, tmp_path: Path
) -> None:
    def check(port: int) -> int:
        result = subprocess.run(
            healthcheck_command(),
            env={"TUI_COLLAB_PORT": str(port)},
            capture_output=True,
            timeout=10,
            check=False,
        )
        return result.returncode

    assert await asyncio.to_thread(check, server.port) == 0
    port = server.port
    await server.stop()
    assert await asyncio.to_thread(check, port) != 0


def test_the_proxy_checks_readiness_and_the_nodes_trust_only_the_proxy() -> None:
    assert "option httpchk GET /readyz" in HAPROXY
    # A draining node must fail enough checks to leave the rotation before it closes.
    (inter, fall) = re.findall(r"default-server inter (\d+)s fall (\d+)", HAPROXY)[0]
    assert int(inter) * int(fall) < float(compose_node_env()["TUI_COLLAB_DRAIN"])
    assert "option forwardfor" in HAPROXY
    servers = re.findall(r"^\s*server (\w+) (\w+):(\d+) check$", HAPROXY, re.MULTILINE)
    port = dockerfile_env()["TUI_COLLAB_PORT"]
    assert servers == [("node1", "node1", port), ("node2", "node2", port)]
    services = re.findall(r"^  (\w+):$", COMPOSE.split("\nservices:\n", 1)[1], re.MULTILINE)
    assert services[:4] == ["redis", "node1", "node2", "proxy"]
    (proxy_ip,) = re.findall(r"ipv4_address: ([\d.]+)", COMPOSE)
    args = build_parser({}).parse_args(compose_command())
    assert args.forwarded_allow_ips == (proxy_ip,)
    assert args.redis == "redis://redis:6379/0"
    (subnet,) = re.findall(r"subnet: ([\d./]+)", COMPOSE)
    assert ipaddress.ip_address(proxy_ip) in ipaddress.ip_network(subnet)
