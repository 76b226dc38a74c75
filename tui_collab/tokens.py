"""When a token runs out, read on the client side, without the server's secret.

The client never trusts what it reads here: it only uses `iat` and `exp` to ask its
token provider for a new token before the server would close the connection (4001).
"""

from __future__ import annotations

import functools
import time

import jwt


def _claims(token: str) -> dict[str, object] | None:
    """The token's claims, read without checking its signature; None if not a JWT."""
    try:
        claims: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    return claims


def token_identity(token: str) -> tuple[str, str] | None:
    """The (user, team) a token names, read without its secret: only to key the outbox."""
    claims = _claims(token)
    if claims is None:
        return None
    user, team = claims.get("sub"), claims.get("team")
    if isinstance(user, str) and isinstance(team, str):
        return user, team
    return None


def token_lifetime(token: str) -> tuple[float, float] | None:
    """The token's (`iat`, `exp`) as Unix times; None without `exp` or if not a JWT.

    Without `iat` the issue time is taken as now: the life left is all that is known.
    """
    claims = _claims(token)
    if claims is None:
        return None
    expiry, issued = claims.get("exp"), claims.get("iat")
    if not isinstance(expiry, int | float):
        return None
    if not isinstance(issued, int | float):
        issued = time.time()
    return float(issued), float(expiry)


@functools.lru_cache(maxsize=4)
def token_expiry(token: str) -> float | None:
    """The token's `exp` as a Unix time; None without one or if not a JWT.

    Cached: the status bar asks every second, and a token's `exp` never changes.
    """
    lifetime = token_lifetime(token)
    return None if lifetime is None else lifetime[1]
