"""Behind a proxy: per-IP caps and audit lines use the client address the proxy names,
if (and only if) the proxy is trusted with --forwarded-allow-ips."""

from __future__ import annotations

import logging
import socket

import pytest

from tests.conftest import StartServer, token
from tests.support.peer import Peer
from tests.support.refusals import audit_lines, refused_status
from tests.support.waiting import eventually


def forwarded(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def test_behind_a_trusted_proxy_the_unauthenticated_cap_is_per_client(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server(forwarded_allow_ips=("127.0.0.1",), max_unauthenticated_per_ip=2)
    # Two idle sockets of one client (one forging an address on the left: ignored).
    idle = [
        await Peer.open(server.url, headers=forwarded("203.0.113.5")),
        await Peer.open(server.url, headers=forwarded("198.51.100.1, 203.0.113.5")),
    ]
    with caplog.at_level(logging.WARNING, "tui_collab.audit"):
        assert await refused_status(server.url, forwarded("203.0.113.5")) == 503
        # Other clients of the same proxy still get in, and say hello with their token.
        other = await _hello_via(server.url, "203.0.113.6", token("ada", "core"))
        forged = token("bob", "core")[:-4] + "AAAA"
        bad = await Peer.open(server.url, headers=forwarded("203.0.113.7"))
        await bad.send({"type": "hello", "v": 1, "token": forged})
        assert await bad.closed() == 4001
    lines = audit_lines(caplog)
    assert any("cap=unauthenticated_per_ip" in line and "ip=203.0.113.5" in line for line in lines)
    assert any("event=auth_failed" in line and "ip=203.0.113.7" in line for line in lines)
    assert not any("ip=127.0.0.1" in line for line in lines)
    for peer in [*idle, other]:
        await peer.close()


async def _hello_via(url: str, client: str, hello_token: str) -> Peer:
    peer = await Peer.open(url, headers=forwarded(client))
    await peer.send({"type": "hello", "v": 1, "token": hello_token})
    peer.welcome = await peer.next("welcome")
    return peer


async def test_from_an_untrusted_proxy_the_header_is_ignored(
    start_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = await start_server(max_unauthenticated_per_ip=2)  # trusts no proxy
    idle = [
        await Peer.open(server.url, headers=forwarded("203.0.113.5")),
        await Peer.open(server.url, headers=forwarded("203.0.113.6")),
    ]
    with caplog.at_level(logging.WARNING, "tui_collab.audit"):
        # A third address in the header does not buy a third socket.
        assert await refused_status(server.url, forwarded("203.0.113.7")) == 503
    lines = audit_lines(caplog)
    assert any("cap=unauthenticated_per_ip" in line and "ip=127.0.0.1" in line for line in lines)
    assert not any("203.0.113" in line for line in lines)
    for peer in idle:
        await peer.close()


async def test_a_trusted_proxy_is_held_to_the_total_upgrade_cap_not_the_per_ip_one(
    start_server: StartServer,
) -> None:
    server = await start_server(
        forwarded_allow_ips=("127.0.0.2",), max_upgrading_per_ip=3, max_upgrading=100
    )
    sockets = []
    try:
        for source in ("127.0.0.2", "127.0.0.3"):
            for _ in range(5):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.bind((source, 0))
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", server.port))
                sockets.append(sock)
        await eventually(lambda: len(server.upgrades) >= 5 + 3, what="the sockets upgrading")
        assert len(server.upgrades) == 5 + 3
    finally:
        for sock in sockets:
            sock.close()
