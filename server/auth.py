"""Tokens: HS256 JWTs minted by `tui-collab-server token`, verified on every connection."""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import jwt
from pydantic import TypeAdapter, ValidationError

from server.startup import StartupError, check_data_dir, read_secret_file
from tui_collab.protocol import IDENTIFIER_ADAPTER, DisplayName

logger = logging.getLogger(__name__)

ALGORITHM: Final = "HS256"
SECRET_ENV: Final = "TUI_COLLAB_SECRET"  # noqa: S105 (a variable name)
SECRET_FILE: Final = "secret"  # noqa: S105 (a file name)
_NAME: Final[TypeAdapter[str]] = TypeAdapter(DisplayName)
_TTL_RE: Final = re.compile(r"^(\d+)([smhdw])$")
_TTL_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_EXP: Final = 253_402_300_799
"""The last second of year 9999: a later `exp` is out of range, not a long life."""


class AuthError(Exception):
    """A token that cannot be trusted; the message is safe to log and to send."""


class MalformedHeader(AuthError):
    """An `Authorization` header that cannot be read at all (given twice): HTTP 400."""


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a connection speaks for, after the token (or open-mode hello) was checked."""

    user: str
    team: str
    name: str
    expires_at: float | None = None


def parse_ttl(text: str) -> int:
    """Parse `90s`, `15m`, `2h`, `7d` or `1w` into seconds."""
    match = _TTL_RE.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"invalid ttl {text!r}: use a number and one of s, m, h, d, w (e.g. 7d)")
    return int(match.group(1)) * _TTL_UNITS[match.group(2)]


def format_ttl(seconds: int) -> str:
    """`seconds` as `parse_ttl` reads it, in the largest unit up to days: 604800 is 7d."""
    for unit in "dhm":
        if seconds % _TTL_UNITS[unit] == 0:
            return f"{seconds // _TTL_UNITS[unit]}{unit}"
    return f"{seconds}s"


def load_secret(data_dir: Path) -> str:
    """The signing secret: from the environment, else a 0600 file made once in the data dir.

    A data dir or secret file that cannot be used raises `StartupError`.
    """
    from_env = os.environ.get(SECRET_ENV)
    if from_env:
        if len(from_env) < 32:
            raise ValueError(f"{SECRET_ENV} must be at least 32 characters")
        return from_env
    path = data_dir / SECRET_FILE
    check_data_dir(data_dir)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_secret_file(path)
    except OSError as exc:
        raise StartupError(
            f"cannot create the signing secret {path} ({exc.strerror}): pass --data-dir a "
            "directory this user can write to, or set TUI_COLLAB_SECRET"
        ) from exc
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    logger.info("created signing secret at %s", path)
    return read_secret_file(path)


def mint_token(secret: str, user: str, team: str, name: str | None, ttl_s: int) -> str:
    """A signed token for `user` in `team`, valid for `ttl_s` seconds."""
    IDENTIFIER_ADAPTER.validate_python(user)
    IDENTIFIER_ADAPTER.validate_python(team)
    now = int(time.time())
    claims: dict[str, object] = {"sub": user, "team": team, "iat": now, "exp": now + ttl_s}
    if name is not None:
        claims["name"] = _NAME.validate_python(name)
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(secret: str, token: str) -> Identity:
    """Check signature, algorithm and expiry; raise `AuthError` with a reason safe to show."""
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "team"]}
        )
    except jwt.ExpiredSignatureError:
        raise AuthError("token expired") from None
    except (jwt.InvalidTokenError, ArithmeticError, RecursionError, ValueError, TypeError):
        # The library's own checks raise these for numbers out of a float's or an int's
        # range, and JSON nested too deep: a bad token, never a server error.
        raise AuthError("invalid token") from None
    try:
        user = IDENTIFIER_ADAPTER.validate_python(claims["sub"], strict=True)
        team = IDENTIFIER_ADAPTER.validate_python(claims["team"], strict=True)
        name = claims.get("name")
        name = user if name is None else _NAME.validate_python(name, strict=True)
        expires_at = float(claims["exp"])
        if not 0 < expires_at <= MAX_EXP:
            raise ValueError("exp out of range")
    except (ValidationError, ArithmeticError, TypeError, ValueError):
        raise AuthError("token claims are malformed") from None
    return Identity(user=user, team=team, name=name, expires_at=expires_at)


class TokenVerifier:
    """Checks a token against the server's signing secret; without one (open mode with
    no secret) every token is refused."""

    __slots__ = ("_secret",)

    def __init__(self, secret: str | None) -> None:
        self._secret = secret

    def verify(self, token: str) -> Identity:
        """The token's identity; `AuthError` with a reason safe to show if it is not good."""
        if not token:
            raise AuthError("missing token")
        if self._secret is None:
            raise AuthError("this server does not accept tokens")
        return verify_token(self._secret, token)


def authorization(values: list[str]) -> str | None:
    """The one `Authorization` header of a request, given all its values; a request
    with more than one is malformed (which would the server believe?)."""
    if len(values) > 1:
        raise MalformedHeader("more than one Authorization header")
    return values[0] if values else None


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header, or None when there is none."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return ""
    return value.strip()
