"""TLS with a throwaway CA: wss:// works end to end, plain ws:// to the TLS port fails cleanly."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
import trustme
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage

from tests.conftest import StartServer, token
from tui_collab.client import CollabClient


@pytest.fixture
def ca_and_cert(tmp_path: Path) -> tuple[trustme.CA, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    pem = tmp_path / "server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    return ca, pem


async def test_wss_works_and_plain_ws_fails_cleanly(
    start_server: StartServer, ca_and_cert: tuple[trustme.CA, Path]
) -> None:
    ca, pem = ca_and_cert
    server = await start_server(certfile=pem)
    assert server.url.startswith("wss://")
    trust = ssl.create_default_context()
    ca.configure_trust(trust)
    async with CollabClient(server.url, token=token("alice", "core"), ssl_context=trust) as alice:
        await alice.create_board("Plan", 3, 3, board="plan")
        await alice.join("plan")
        assert (await alice.set_cell("plan", 0, 0, "over tls")).applied

    plain = server.url.replace("wss://", "ws://")
    with pytest.raises((InvalidMessage, ConnectionError, OSError)):
        await connect(plain, open_timeout=3)

    untrusted = CollabClient(server.url, token=token("bob", "core"), max_attempts=1)
    with pytest.raises(ConnectionError):
        await untrusted.__aenter__()  # the system store does not know this CA

    async with CollabClient(server.url, token=token("carol", "core"), ssl_context=trust):
        pass  # the server is still serving after both failures
