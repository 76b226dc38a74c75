"""One hostile run against a real server process, with a well-behaved probe watching.

Shared by the hostile-client test (which checks that nothing breaks) and
`bench.hostile` (which measures what the attack costs the well-behaved clients).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from server.auth import load_secret, mint_token
from tests.support.process import ServerProcess

REPO = Path(__file__).resolve().parents[2]
PROBE_RATE = 100
"""Cell edits a second by the well-behaved writer."""


def start_probe(url: str, secret: str, tag: str) -> subprocess.Popen[str]:
    probe = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.latency_probe",
            url,
            mint_token(secret, f"{tag}-w", "core", None, 3600),
            mint_token(secret, f"{tag}-r", "core", None, 3600),
            "grid",
            str(PROBE_RATE),
        ],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert probe.stdout is not None
    assert probe.stdout.readline().strip() == "ready"
    return probe


def finish_probe(probe: subprocess.Popen[str]) -> dict[str, Any]:
    out, _ = probe.communicate(timeout=30)
    return dict(json.loads(out.strip().splitlines()[-1]))


@dataclass
class AttackResult:
    findings: dict[str, Any]
    calm: dict[str, Any] | None
    under_attack: dict[str, Any]
    attack_s: float
    healthy: bool
    server_log: str


HANDLE_EVERYTHING_RATE = 1000
"""Ten times the default rate: refused frames cost ten tokens each, and the test wants
every hostile frame to reach the handlers rather than be dropped after parsing."""


def start_server(data_dir: Path, rate: int) -> ServerProcess:
    server = ServerProcess(data_dir, "--rate", str(rate), "--burst", str(2 * rate))
    server.start()
    return server


async def _make_board(url: str, secret: str) -> None:
    owner = mint_token(secret, "owner", "core", None, 3600)
    async with connect(url, additional_headers={"Authorization": f"Bearer {owner}"}) as ws:
        await ws.send(json.dumps({"type": "hello", "v": 1}))
        await ws.recv()
        await ws.send(
            json.dumps(
                {
                    "type": "board.create",
                    "id": "c",
                    "board": "grid",
                    "title": "Grid",
                    "width": 16,
                    "height": 16,
                }
            )
        )
        while json.loads(await ws.recv()).get("type") != "ack":
            pass


def _healthy(url: str) -> bool:
    health = url.replace("ws://", "http://").replace("/ws", "/healthz")
    with urllib.request.urlopen(health) as response:
        return bool(json.loads(response.read())["status"] == "ok")


def run_attack(
    data_dir: Path, examples: int, calm_s: float | None, rate: int = HANDLE_EVERYTHING_RATE
) -> AttackResult:
    """Start a server; optionally time the probe alone for `calm_s`; then attack."""
    server = start_server(data_dir, rate)
    try:
        secret = load_secret(data_dir)
        asyncio.run(_make_board(server.url, secret))
        calm = None
        if calm_s is not None:
            probe = start_probe(server.url, secret, "calm")
            time.sleep(calm_s)
            calm = finish_probe(probe)
        attacker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.hostile",
                server.url,
                mint_token(secret, "mallory", "core", None, 3600),
                str(server.port),
                str(examples),
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # The attacker's CPU is not the server's: on a two-core machine a third busy
            # process would delay the server and the probe alike.
            preexec_fn=lambda: os.nice(19),
        )
        assert attacker.stdout is not None
        ready = attacker.stdout.readline()  # frames generated, nothing sent yet
        assert ready.startswith("ready"), ready
        probe = start_probe(server.url, secret, "busy")
        started = time.monotonic()
        out, err = attacker.communicate("go\n", timeout=240)
        attack_s = time.monotonic() - started
        under_attack = finish_probe(probe)
        assert attacker.returncode == 0, err[-3000:]
        findings = json.loads(out.strip().splitlines()[-1])
        return AttackResult(
            findings, calm, under_attack, attack_s, _healthy(server.url), server.log()
        )
    finally:
        server.stop()
