"""X-Forwarded-For is believed only from trusted proxies, read from the right."""

from __future__ import annotations

import pytest

from server.forwarded import TrustedProxies, parse_trusted


def test_by_default_no_proxy_is_trusted_and_the_header_is_ignored() -> None:
    proxies = TrustedProxies()
    assert not proxies
    assert proxies.client_ip("127.0.0.1", ["203.0.113.5"]) == "127.0.0.1"


def test_the_right_most_address_that_is_not_a_trusted_proxy_is_the_client() -> None:
    proxies = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])
    assert proxies.client_ip("127.0.0.1", ["203.0.113.5"]) == "203.0.113.5"
    # The client wrote the left part itself: a forged address there changes nothing.
    assert proxies.client_ip("127.0.0.1", ["198.51.100.1, 203.0.113.5"]) == "203.0.113.5"
    # Trusted hops (a proxy chain) are skipped, over several headers too.
    assert proxies.client_ip("10.1.2.3", ["203.0.113.5, 10.9.9.9", "127.0.0.1"]) == "203.0.113.5"
    # All trusted: the left-most hop.
    assert proxies.client_ip("127.0.0.1", ["10.0.0.7"]) == "10.0.0.7"
    # From an address that is not trusted the header is ignored.
    assert proxies.client_ip("192.0.2.9", ["203.0.113.5"]) == "192.0.2.9"


def test_a_value_that_is_not_an_address_stops_at_the_last_hop_that_was() -> None:
    proxies = TrustedProxies(["127.0.0.1", "10.0.0.0/8"])
    assert proxies.client_ip("127.0.0.1", ["unknown"]) == "127.0.0.1"
    assert proxies.client_ip("127.0.0.1", ["203.0.113.5:4000"]) == "127.0.0.1"
    assert proxies.client_ip("127.0.0.1", ["junk, 10.0.0.2"]) == "10.0.0.2"
    assert proxies.client_ip("127.0.0.1", [""]) == "127.0.0.1"


def test_ipv6_and_mapped_addresses() -> None:
    proxies = TrustedProxies(["::1", "127.0.0.1"])
    assert proxies.client_ip("::1", ["2001:db8::7"]) == "2001:db8::7"
    assert proxies.client_ip("::ffff:127.0.0.1", ["::ffff:203.0.113.5"]) == "203.0.113.5"


def test_star_trusts_every_address_so_the_left_most_is_the_client() -> None:
    # As uvicorn does: only for a server that nothing but the proxy can reach.
    proxies = TrustedProxies(["*"])
    assert proxies.trusts("192.0.2.1")
    assert proxies.client_ip("192.0.2.1", ["203.0.113.5, 198.51.100.1"]) == "203.0.113.5"


def test_entries_are_checked() -> None:
    assert parse_trusted([" 127.0.0.1", "10.0.0.0/8 ", "", "::1", "*"]) == (
        "127.0.0.1",
        "10.0.0.0/8",
        "::1",
        "*",
    )
    with pytest.raises(ValueError, match=r"not an IP address or network: 'proxy\.local'"):
        parse_trusted(["proxy.local"])


def test_the_flag_and_its_variable(capsys: pytest.CaptureFixture[str]) -> None:
    from server.cli import build_parser
    from tui_collab.envflags import resolve_env

    args = build_parser({}).parse_args(["serve"])
    assert args.forwarded_allow_ips == ()
    args = build_parser({}).parse_args(["serve", "--forwarded-allow-ips", "127.0.0.1,10.0.0.0/8"])
    assert args.forwarded_allow_ips == ("127.0.0.1", "10.0.0.0/8")
    environ = {"TUI_COLLAB_FORWARDED_ALLOW_IPS": "::1, 172.16.0.0/12"}
    args = build_parser(environ).parse_args(["serve"])
    resolve_env(args)
    assert args.forwarded_allow_ips == ("::1", "172.16.0.0/12")
    with pytest.raises(SystemExit):
        build_parser({}).parse_args(["serve", "--forwarded-allow-ips", "nginx"])
    assert "not an IP address or network: 'nginx'" in capsys.readouterr().err
