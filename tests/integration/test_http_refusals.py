"""Plain HTTP that no endpoint should read is refused with a status and an audit line,
never a traceback: open mode's endpoints answer only for loopback Hosts and allowed
Origins (a DNS-rebinding page must not read presence), a repeated `Authorization`
header is a 400, and a token whose `exp` is out of range is a 401 (or 4001 at hello).

Requests are written byte for byte on a real socket, so headers can be repeated and
`Host` can be anything; the servers are real, in-process.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
from typing import Any

import jwt
import pytest

from server.app import CollabServer
from tests.conftest import SECRET, StartServer, token
from tests.support.peer import Peer
from tests.support.refusals import audit_lines


async def http(port: int, path: str, *headers: tuple[str, str], host: str | None = None) -> int:
    """Send one GET with exactly these headers; return the status code."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}"]
    lines += [f"{name}: {value}" for name, value in headers]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        async with asyncio.timeout(5):
            status_line = await reader.readline()
    finally:
        writer.close()
    return int(status_line.split()[1])


@pytest.fixture(autouse=True)
def _audit(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "tui_collab.audit")


async def open_server(start_server: StartServer, **overrides: Any) -> CollabServer:
    return await start_server(auth="open", secret=None, **overrides)


ENDPOINTS = ["/healthz", "/metrics", "/api/presence?team=core"]


# --- open mode: Host and Origin -------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
async def test_open_mode_refuses_a_rebound_host(
    start_server: StartServer, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    server = await open_server(start_server)
    port = server.port
    assert await http(port, path, host=f"attacker.example:{port}") == 403
    assert audit_lines(caplog) == [
        f"event=http_refused ip=127.0.0.1 status=403 reason=host host=attacker.example:{port}"
    ]
    for loopback in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"):
        assert await http(port, path, host=loopback) == 200, loopback
    assert len(audit_lines(caplog)) == 1


async def test_open_mode_refuses_another_port_a_missing_host_and_two_hosts(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await open_server(start_server)
    port = server.port
    assert await http(port, "/healthz", host=f"127.0.0.1:{port + 1}") == 403
    assert await http(port, "/healthz", host="127.0.0.1") == 403  # port 80 implied
    assert await http(port, "/healthz", ("Host", f"evil.example:{port}")) == 403
    assert [line.split(" reason=")[1].split()[0] for line in audit_lines(caplog)] == ["host"] * 3


async def test_open_mode_refuses_an_origin_not_allowed(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await open_server(start_server, allowed_origins=("http://localhost:5173",))
    port = server.port
    for path in ENDPOINTS:
        assert await http(port, path, ("Origin", "http://attacker.example")) == 403
        assert await http(port, path, ("Origin", "http://localhost:5173")) == 200
        assert await http(port, path, ("Origin", "null")) == 403
    lines = audit_lines(caplog)
    assert len(lines) == 6
    assert lines[0] == (
        "event=http_refused ip=127.0.0.1 status=403 reason=origin origin=http://attacker.example"
    )


async def test_open_mode_upgrade_is_unchanged_for_loopback_clients(
    start_server: StartServer,
) -> None:
    server = await open_server(start_server)
    peer = await Peer.join(server.url, user="ann", team="core")
    await peer.close()


async def test_token_mode_answers_any_host(start_server: StartServer) -> None:
    """A token server is meant to be reached by name, behind proxies: no Host rule."""
    server = await start_server()
    assert await http(server.port, "/healthz", host="collab.example.com") == 200


# --- malformed headers and out-of-range claims ----------------------------------------


@pytest.mark.parametrize("path", ["/ws", "/api/presence", "/healthz"])
async def test_a_repeated_authorization_header_is_a_400(
    start_server: StartServer, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    server = await start_server()
    bearer = ("Authorization", f"Bearer {token('ann', 'core')}")
    upgrade = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", base64.b64encode(b"0123456789abcdef").decode()),
        ("Sec-WebSocket-Version", "13"),
    ]
    assert await http(server.port, path, *upgrade, bearer, bearer) == 400
    assert audit_lines(caplog) == ["event=http_refused ip=127.0.0.1 status=400 reason=header"]
    # The server is fine: the same request with one header gets in.
    peer = await Peer.join(server.url, token("ann", "core"), header=True)
    await peer.close()


def signed(payload: str) -> str:
    """A token signed with the test secret whose payload is this exact JSON text (so
    numbers no JSON library would write, such as 1e400, can be sent)."""

    def part(raw: bytes) -> bytes:
        return base64.urlsafe_b64encode(raw).rstrip(b"=")

    head = part(b'{"alg":"HS256","typ":"JWT"}') + b"." + part(payload.encode())
    mac = hmac.new(SECRET.encode(), head, hashlib.sha256).digest()
    return (head + b"." + part(mac)).decode()


OUT_OF_RANGE = {
    "exp 1e400": signed('{"sub":"ann","team":"core","exp":1e400}'),
    "exp 10**30": jwt.encode({"sub": "ann", "team": "core", "exp": 10**30}, SECRET),
    "exp 10**400": jwt.encode({"sub": "ann", "team": "core", "exp": 10**400}, SECRET),
    "iat 10**400": jwt.encode(
        {"sub": "ann", "team": "core", "exp": 4_000_000_000, "iat": 10**400}, SECRET
    ),
}


@pytest.mark.parametrize("forged", OUT_OF_RANGE.values(), ids=OUT_OF_RANGE.keys())
async def test_an_out_of_range_claim_is_a_401_at_the_upgrade_and_4001_at_hello(
    start_server: StartServer, caplog: pytest.LogCaptureFixture, forged: str
) -> None:
    server = await start_server()
    status = await http(
        server.port,
        "/ws",
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", base64.b64encode(b"0123456789abcdef").decode()),
        ("Sec-WebSocket-Version", "13"),
        ("Authorization", f"Bearer {forged}"),
    )
    assert status == 401
    assert await http(server.port, "/api/presence", ("Authorization", f"Bearer {forged}")) == 401

    peer = await Peer.join_raw(server.url, {"type": "hello", "v": 1, "token": forged})
    error = await peer.next("error")
    assert error["code"] == "unauthorized"
    assert await peer.closed() == 4001

    lines = audit_lines(caplog)
    assert [line.split(" stage=")[1].split()[0] for line in lines] == [
        "upgrade",
        "http",
        "hello",
    ]
    assert all(line.startswith("event=auth_failed ip=127.0.0.1 ") for line in lines)
    assert all(
        line.endswith(("reason=token_claims_are_malformed", "reason=invalid_token"))
        for line in lines
    )
    # Still serving.
    ok = await Peer.join(server.url, token("ann", "core"))
    await ok.close()
