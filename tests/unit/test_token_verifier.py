"""TokenVerifier: the one place a token becomes an identity (upgrade, hello, refresh)."""

from __future__ import annotations

import pytest

from server.auth import AuthError, Identity, TokenVerifier, mint_token

SECRET = "k" * 32


def test_a_good_token_gives_its_identity() -> None:
    identity = TokenVerifier(SECRET).verify(mint_token(SECRET, "ada", "core", "Ada L", 60))
    assert (identity.user, identity.team, identity.name) == ("ada", "core", "Ada L")
    assert isinstance(identity, Identity)
    assert identity.expires_at is not None


@pytest.mark.parametrize(
    ("secret", "token", "reason"),
    [
        (SECRET, "", "missing token"),
        (None, "anything", "this server does not accept tokens"),
        (SECRET, mint_token("x" * 32, "ada", "core", None, 60), "invalid token"),
    ],
    # The minted token changes every second; ids that do not keep test runners that
    # collect in several processes (pytest-xdist) agreeing on the names.
    ids=["empty", "no secret", "signed elsewhere"],
)
def test_a_token_that_cannot_be_trusted_says_why(
    secret: str | None, token: str, reason: str
) -> None:
    with pytest.raises(AuthError, match=f"^{reason}$"):
        TokenVerifier(secret).verify(token)
