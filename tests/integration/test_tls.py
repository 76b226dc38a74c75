"""TLS with a throwaway CA: wss:// works end to end, with the system's trust store by
default; a certificate that does not verify is one final line; plain ws:// fails cleanly."""

from __future__ import annotations

import asyncio
import ssl
import sys
from pathlib import Path

import pytest
import trustme
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage

from tests.conftest import StartServer, token
from tests.tui.conftest import wait_for
from tui_collab.app import CollabApp
from tui_collab.backoff import Backoff
from tui_collab.client import CollabClient
from tui_collab.events import Closed, Connected


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


# --- the system's trust store: no --cafile, no ssl_context --------------------------------


@pytest.fixture
def system_trusts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca_and_cert: tuple[trustme.CA, Path]
) -> trustme.CA:
    """Make the test CA the system's: OpenSSL reads SSL_CERT_FILE for its default paths."""
    ca, _ = ca_and_cert
    bundle = tmp_path / "system-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return ca


async def test_client_trusts_the_system_store_for_wss(
    start_server: StartServer, ca_and_cert: tuple[trustme.CA, Path], system_trusts: trustme.CA
) -> None:
    _, pem = ca_and_cert
    server = await start_server(certfile=pem)
    async with CollabClient(server.url, token=token("alice", "core")) as alice:
        await alice.create_board("Plan", 3, 3, board="plan")
        await alice.join("plan")
        assert (await alice.set_cell("plan", 0, 0, "system CA")).applied


async def test_a_certificate_for_another_host_is_one_final_line(
    start_server: StartServer, tmp_path: Path, system_trusts: trustme.CA
) -> None:
    wrong = tmp_path / "wrong.pem"
    system_trusts.issue_cert("collab.example.org").private_key_and_cert_chain_pem.write_to_path(
        str(wrong)
    )
    server = await start_server(certfile=wrong)
    client = CollabClient(
        server.url, token=token("alice", "core"), backoff=Backoff(base_s=0.01, cap_s=0.02)
    )
    with pytest.raises(ConnectionError, match="cannot verify the certificate"):
        async with client:
            pass
    assert client.attempts == 1  # retrying a verification failure is pointless
    state = client.state
    assert isinstance(state, Closed)
    assert state.reason == "tls"
    host = server.url.removeprefix("wss://").removesuffix("/ws")
    assert f"cannot verify the certificate of {host}" in state.detail
    assert "mismatch" in state.detail
    assert "\n" not in state.detail


async def test_the_app_connects_over_wss_with_no_cafile(
    start_server: StartServer, ca_and_cert: tuple[trustme.CA, Path], system_trusts: trustme.CA
) -> None:
    _, pem = ca_and_cert
    server = await start_server(certfile=pem)
    app = CollabApp(CollabClient(server.url, token=token("alice", "core", "Alice")), board="plan")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.grid.mirror is not None, timeout=10)
        assert isinstance(app.client.state, Connected)
        assert app.client.state.url.startswith("wss://")


async def _who(url: str, *extra: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tui_collab.cli",
        "who",
        "--server",
        url,
        "--token",
        token("alice", "core"),
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(20):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_who_trusts_the_system_store_and_names_a_bad_certificate(
    start_server: StartServer,
    ca_and_cert: tuple[trustme.CA, Path],
    tmp_path: Path,
    system_trusts: trustme.CA,
) -> None:
    _, pem = ca_and_cert
    good = await start_server(certfile=pem)
    code, out, err = await _who(good.url)
    assert (code, err) == (0, "")
    assert out.startswith("STATUS")

    wrong = tmp_path / "wrong.pem"
    system_trusts.issue_cert("collab.example.org").private_key_and_cert_chain_pem.write_to_path(
        str(wrong)
    )
    bad = await start_server(data_dir=tmp_path / "other", certfile=wrong)
    code, out, err = await _who(bad.url)
    assert code == 1
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert "cannot verify the certificate of 127.0.0.1" in err
    assert "Traceback" not in err
