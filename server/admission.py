"""Who may connect: the connection caps and the connect rate, decided without I/O.

`Admission` counts what the caps are about (sockets upgraded without a token, per IP;
connection slots per user) and answers each request with None (admit) or a `Refusal`
that says how to refuse: the HTTP status before the upgrade, or the close code and
error after a hello. The server does the I/O (the response, the audit line, the
metric); the decisions, and the counts they rest on, are all here.

Every check and the count that goes with it is one synchronous step, never split by
an await: however many handshakes run at once, none passes a cap.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from http import HTTPStatus
from typing import ClassVar, Final, Generic, TypeVar

from server.auth import AuthError, Identity, TokenVerifier
from server.limits import ConnectRate, count_down
from tui_collab.protocol import CloseCode, ErrorCode, Hello

C = TypeVar("C", bound=Hashable)
"""A connection: anything hashable that can be weakly referenced."""

GLOBAL: Final = "global"
UNAUTHENTICATED_PER_IP: Final = "unauthenticated_per_ip"
PER_USER: Final = "per_user"
CONNECT_RATE: Final = "connect_rate"
UPGRADING: Final = "upgrading"
UPGRADING_PER_IP: Final = "upgrading_per_ip"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A connection over a cap, and how to say so at either stage."""

    cap: str
    """The cap's name, as counted in `refused_connections_total` and audited."""
    hello_message: str = ""
    """What the `error` frame says when the refusal comes after a hello."""

    status: ClassVar[HTTPStatus] = HTTPStatus.SERVICE_UNAVAILABLE
    close_code: ClassVar[int] = CloseCode.TRY_AGAIN_LATER
    error_code: ClassVar[ErrorCode] = ErrorCode.RATE_LIMITED

    @property
    def http_message(self) -> str:
        return f"over the {self.cap} connection cap"


@dataclass(frozen=True, slots=True)
class HelloRefusal:
    """A hello that does not say who it is: an `unauthorized` error, then close 4001."""

    message: str
    audit_reason: str | None = None
    """Set for a failed authentication (audited); None for a malformed open-mode hello."""
    warn: bool = False
    """Whether the server log says so too (a token that did not verify)."""

    close_code: ClassVar[int] = CloseCode.AUTH_FAILED
    error_code: ClassVar[ErrorCode] = ErrorCode.UNAUTHORIZED


def hello_identity(
    hello: Hello, open_mode: bool, verifier: TokenVerifier
) -> Identity | HelloRefusal:
    """Who a hello speaks for, when no `Authorization` header said so before it: in
    open mode the names it gives, unless it brings a token; else its token's."""
    if open_mode and hello.token is None:
        if hello.user is None or hello.team is None:
            return HelloRefusal("open mode: hello needs user and team")
        return Identity(user=hello.user, team=hello.team, name=hello.name or hello.user)
    if hello.token is None:
        return HelloRefusal("a token is required", audit_reason="no token")
    try:
        return verifier.verify(hello.token)
    except AuthError as exc:
        return HelloRefusal(str(exc), audit_reason=str(exc), warn=True)


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    max_connections: int
    max_unauthenticated_per_ip: int
    max_connections_per_user: int


class Admission(Generic[C]):
    """The caps on connections and the slots they hold (no I/O, no clock of its own)."""

    def __init__(self, limits: AdmissionLimits, connect_rate: ConnectRate) -> None:
        self.limits = limits
        self._connect_rate = connect_rate
        # Sockets upgraded without a bearer header, until they say hello: one IP may not
        # hold many of them (each costs memory and a hello timeout).
        self._unauthenticated: dict[str, weakref.WeakSet[C]] = {}
        # Connection slots per (team, user), reserved in the same step as the cap is
        # checked and given back when the socket ends.
        self._user_slots: dict[tuple[str, str], int] = {}
        self._slot_holders: dict[C, tuple[str, str]] = {}

    def upgrade(
        self, connection: C, ip: str, open_connections: int, has_token: bool
    ) -> Refusal | None:
        """May `connection` (one of `open_connections` sockets) upgrade to a WebSocket?

        Without a bearer token it is admitted to wait for its hello, counted against
        its IP. With one, the caller verifies the token next and then takes one of the
        user's slots (`take_slot`).
        """
        if open_connections >= self.limits.max_connections:
            return Refusal(GLOBAL)
        if has_token:
            return None
        waiting = self._unauthenticated.setdefault(ip, weakref.WeakSet())
        if len(waiting) >= self.limits.max_unauthenticated_per_ip:
            return Refusal(UNAUTHENTICATED_PER_IP)
        waiting.add(connection)
        return None

    def take_slot(self, connection: C, identity: Identity) -> Refusal | None:
        """Reserve one of the user's connection slots for `connection`, or refuse.

        A connection holds at most one slot, its own until `release`.
        """
        if connection in self._slot_holders:
            return None
        key = (identity.team, identity.user)
        held = self._user_slots.get(key, 0)
        if held >= self.limits.max_connections_per_user:
            limit = self.limits.max_connections_per_user
            return Refusal(PER_USER, f"{identity.user} already has {limit} connections")
        if not self._connect_rate.allow(identity.team, identity.user):
            return Refusal(CONNECT_RATE, f"{identity.user} is opening connections too fast")
        self._user_slots[key] = held + 1
        self._slot_holders[connection] = key
        return None

    def said_hello(self, connection: C, ip: str) -> None:
        """`connection`'s handshake is over (whichever way): it no longer waits on `ip`."""
        waiting = self._unauthenticated.get(ip)
        if waiting is not None:
            waiting.discard(connection)
            if not waiting:
                del self._unauthenticated[ip]

    def release(self, connection: C) -> None:
        """`connection` ended: give its slot back (if it held one)."""
        key = self._slot_holders.pop(connection, None)
        if key is None:
            return
        count_down(self._user_slots, key)

    def held_slots(self) -> dict[tuple[str, str], int]:
        """Every user's slots held now, by (team, user)."""
        return dict(self._user_slots)

    def slots(self, team: str, user: str) -> int:
        """The slots `user` of `team` holds now."""
        return self._user_slots.get((team, user), 0)

    def waiting(self, ip: str) -> int:
        """Sockets from `ip` upgraded without a token and still to say hello."""
        return len(self._unauthenticated.get(ip, ()))


class UpgradeGuard(Generic[C]):
    """Counts sockets in the HTTP phase, per IP and in total, and says when one is over.

    `admit` and `leave` are synchronous and each socket is counted at most once, so the
    counts cannot drift whatever order sockets open and end in. Trusted proxies carry
    many clients on one address: they are held to the total only.
    """

    def __init__(
        self, per_ip: int, total: int, exempt: Callable[[str], bool] = lambda ip: False
    ) -> None:
        self.per_ip = per_ip
        self.total = total
        self._exempt = exempt
        self._by_ip: dict[str, int] = {}
        self._counted: dict[C, str] = {}

    def __len__(self) -> int:
        return len(self._counted)

    def connections(self) -> list[C]:
        """The sockets in the HTTP phase now (to drop them at shutdown)."""
        return list(self._counted)

    def admit(self, connection: C, ip: str) -> Refusal | None:
        """Count `connection` from `ip`; or refuse it (drop it unread), counting nothing."""
        if len(self._counted) >= self.total:
            return Refusal(UPGRADING)
        held = self._by_ip.get(ip, 0)
        if held >= self.per_ip and not self._exempt(ip):
            return Refusal(UPGRADING_PER_IP)
        self._by_ip[ip] = held + 1
        self._counted[connection] = ip
        return None

    def leave(self, connection: C) -> None:
        """`connection` left the HTTP phase (or never was counted): give its place back."""
        ip = self._counted.pop(connection, None)
        if ip is None:
            return
        count_down(self._by_ip, ip)
