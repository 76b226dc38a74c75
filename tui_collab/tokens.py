"""When a token runs out, read on the client side, without the server's secret.

The client never trusts what it reads here: it only uses `exp` to ask its token
provider for a new token before the server would close the connection (4001).
"""

from __future__ import annotations

import jwt


def token_expiry(token: str) -> float | None:
    """The token's `exp` as a Unix time, or None if it has none or is not a JWT."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    expiry = claims.get("exp")
    return float(expiry) if isinstance(expiry, int | float) else None
