"""Who may connect, decided without sockets: caps, the connect rate, slots."""

from __future__ import annotations

import gc
import json
from http import HTTPStatus

from server.admission import (
    Admission,
    AdmissionLimits,
    HelloRefusal,
    Refusal,
    UpgradeGuard,
    hello_identity,
)
from server.auth import Identity, TokenVerifier, mint_token
from server.limits import ConnectRate
from tests.unit.doubles import ManualClock
from tui_collab.protocol import PROTOCOL_VERSION, CloseCode, ErrorCode, Hello, decode

ADA = Identity(user="ada", team="core", name="Ada")
SECRET = "k" * 32


class Conn:
    """Stands for a connection: hashable and weakly referenced, like a socket."""


def _admission(
    clock: ManualClock,
    *,
    total: int = 100,
    unauthenticated: int = 2,
    per_user: int = 2,
    rate: float = 100,
    burst: float = 100,
) -> Admission[Conn]:
    return Admission(
        AdmissionLimits(
            max_connections=total,
            max_unauthenticated_per_ip=unauthenticated,
            max_connections_per_user=per_user,
        ),
        ConnectRate(rate, burst, clock),
    )


def test_a_refusal_says_how_to_refuse_before_and_after_the_upgrade() -> None:
    refusal = Refusal("per_user", "ada already has 2 connections")
    assert refusal.status == HTTPStatus.SERVICE_UNAVAILABLE
    assert refusal.http_message == "over the per_user connection cap"
    assert refusal.close_code == CloseCode.TRY_AGAIN_LATER
    assert refusal.error_code == ErrorCode.RATE_LIMITED


def test_the_global_cap_comes_first_with_or_without_a_token() -> None:
    admission = _admission(ManualClock(), total=3)
    assert admission.upgrade(Conn(), "10.0.0.1", 3, has_token=True) == Refusal("global")
    assert admission.upgrade(Conn(), "10.0.0.1", 3, has_token=False) == Refusal("global")
    assert admission.upgrade(Conn(), "10.0.0.1", 2, has_token=False) is None


def test_sockets_without_a_token_are_capped_per_ip_until_they_say_hello() -> None:
    admission = _admission(ManualClock(), unauthenticated=2)
    first, second = Conn(), Conn()
    assert admission.upgrade(first, "10.0.0.1", 0, has_token=False) is None
    assert admission.upgrade(second, "10.0.0.1", 0, has_token=False) is None
    refused = admission.upgrade(Conn(), "10.0.0.1", 0, has_token=False)
    assert refused == Refusal("unauthenticated_per_ip")
    assert admission.upgrade(Conn(), "10.0.0.2", 0, has_token=False) is None  # other IP
    admission.said_hello(first, "10.0.0.1")
    assert admission.waiting("10.0.0.1") == 1
    assert admission.upgrade(Conn(), "10.0.0.1", 0, has_token=False) is None


def test_a_waiting_socket_that_is_gone_no_longer_counts() -> None:
    admission = _admission(ManualClock(), unauthenticated=1)
    conn = Conn()
    assert admission.upgrade(conn, "10.0.0.1", 0, has_token=False) is None
    del conn
    gc.collect()
    assert admission.upgrade(Conn(), "10.0.0.1", 0, has_token=False) is None


def test_a_token_defers_to_the_users_slots() -> None:
    admission = _admission(ManualClock(), unauthenticated=0)
    assert admission.upgrade(Conn(), "10.0.0.1", 0, has_token=True) is None
    assert admission.waiting("10.0.0.1") == 0


def test_slots_per_user_are_taken_once_per_connection_and_given_back() -> None:
    admission = _admission(ManualClock(), per_user=2)
    a, b = Conn(), Conn()
    assert admission.take_slot(a, ADA) is None
    assert admission.take_slot(a, ADA) is None  # the same connection: still one slot
    assert admission.take_slot(b, ADA) is None
    refused = admission.take_slot(Conn(), ADA)
    assert refused == Refusal("per_user", "ada already has 2 connections")
    other = Identity(user="ada", team="rivals", name="Ada")
    assert admission.take_slot(Conn(), other) is None  # per team and user
    admission.release(a)
    admission.release(a)  # a second release changes nothing
    assert admission.slots("core", "ada") == 1
    assert admission.take_slot(Conn(), ADA) is None
    admission.release(Conn())  # never held one
    assert admission.slots("core", "ada") == 2


def test_the_connect_rate_refuses_a_tight_reconnect_loop_until_it_refills() -> None:
    clock = ManualClock()
    admission = _admission(clock, per_user=10, rate=1, burst=2)
    held = [Conn() for _ in range(3)]
    assert admission.take_slot(held[0], ADA) is None
    assert admission.take_slot(held[1], ADA) is None
    refused = admission.take_slot(held[2], ADA)
    assert refused == Refusal("connect_rate", "ada is opening connections too fast")
    assert admission.slots("core", "ada") == 2  # a refusal holds no slot
    clock.advance(1)
    assert admission.take_slot(held[2], ADA) is None


def test_the_user_cap_is_checked_before_the_rate_so_a_full_user_spends_no_tokens() -> None:
    clock = ManualClock()
    admission = _admission(clock, per_user=1, rate=1, burst=2)
    first = Conn()
    assert admission.take_slot(first, ADA) is None
    for _ in range(5):
        refused = admission.take_slot(Conn(), ADA)
        assert refused is not None
        assert refused.cap == "per_user"
    admission.release(first)
    assert admission.take_slot(Conn(), ADA) is None  # the second token was never spent


def test_sockets_in_the_http_phase_are_capped_per_ip_and_in_total() -> None:
    guard: UpgradeGuard[Conn] = UpgradeGuard(per_ip=2, total=3)
    a, b, c = Conn(), Conn(), Conn()
    assert guard.admit(a, "10.0.0.1") is None
    assert guard.admit(b, "10.0.0.1") is None
    assert guard.admit(Conn(), "10.0.0.1") == Refusal("upgrading_per_ip")
    assert guard.admit(c, "10.0.0.2") is None
    assert guard.admit(Conn(), "10.0.0.3") == Refusal("upgrading")
    assert len(guard) == 3
    guard.leave(a)
    guard.leave(a)  # counted once, given back once
    guard.leave(Conn())  # never counted
    assert sorted(map(id, guard.connections())) == sorted(map(id, [b, c]))
    assert guard.admit(Conn(), "10.0.0.1") is None


def test_a_trusted_proxy_is_held_to_the_total_only() -> None:
    guard: UpgradeGuard[Conn] = UpgradeGuard(per_ip=1, total=3, exempt=lambda ip: ip == "10.9.9.9")
    assert [guard.admit(Conn(), "10.9.9.9") for _ in range(4)] == [
        None,
        None,
        None,
        Refusal("upgrading"),
    ]


def _hello(**fields: object) -> Hello:
    message = decode(json.dumps({"type": "hello", "v": PROTOCOL_VERSION, **fields}))
    assert isinstance(message, Hello)
    return message


def test_open_mode_takes_the_names_a_hello_gives_unless_it_brings_a_token() -> None:
    verifier = TokenVerifier(SECRET)
    assert hello_identity(_hello(user="ada", team="core"), True, verifier) == Identity(
        user="ada", team="core", name="ada"
    )
    refused = hello_identity(_hello(user="ada"), True, verifier)
    assert refused == HelloRefusal("open mode: hello needs user and team")
    token = mint_token(SECRET, "bob", "core", "Bob", 60)
    identity = hello_identity(_hello(user="ada", team="core", token=token), True, verifier)
    assert isinstance(identity, Identity)
    assert identity.user == "bob"


def test_with_tokens_a_hello_needs_one_that_verifies() -> None:
    verifier = TokenVerifier(SECRET)
    refused = hello_identity(_hello(user="ada", team="core"), False, verifier)
    assert refused == HelloRefusal("a token is required", audit_reason="no token")
    bad = mint_token("x" * 32, "ada", "core", None, 60)
    refused = hello_identity(_hello(token=bad), False, verifier)
    assert refused == HelloRefusal("invalid token", audit_reason="invalid token", warn=True)
    assert refused.close_code == CloseCode.AUTH_FAILED
    assert refused.error_code == ErrorCode.UNAUTHORIZED
    good = mint_token(SECRET, "ada", "core", "Ada", 60)
    identity = hello_identity(_hello(token=good), False, verifier)
    assert isinstance(identity, Identity)
    assert (identity.user, identity.team, identity.name) == ("ada", "core", "Ada")
