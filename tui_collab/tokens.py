"""When a token runs out, read on the client side, without the server's secret.

The client never trusts what it reads here: it only uses `iat` and `exp` to ask its
token provider for a new token before the server would close the connection (4001).
"""

from __future__ import annotations

import time

import jwt


def token_lifetime(token: str) -> tuple[float, float] | None:
    """The token's (`iat`, `exp`) as Unix times; None without `exp` or if not a JWT.

    Without `iat` the issue time is taken as now: the life left is all that is known.
    """
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    expiry, issued = claims.get("exp"), claims.get("iat")
    if not isinstance(expiry, int | float):
        return None
    if not isinstance(issued, int | float):
        issued = time.time()
    return float(issued), float(expiry)
