"""Tokens and secrets."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from server.auth import (
    AuthError,
    MalformedHeader,
    authorization,
    bearer_token,
    load_secret,
    mint_token,
    parse_ttl,
    verify_token,
)
from server.logs import redact

SECRET = "s" * 64


def test_minted_token_verifies() -> None:
    identity = verify_token(SECRET, mint_token(SECRET, "alice", "core", "Alice", 60))
    assert (identity.user, identity.team, identity.name) == ("alice", "core", "Alice")
    assert identity.expires_at is not None
    assert identity.expires_at > time.time()


def test_name_defaults_to_user_id() -> None:
    assert verify_token(SECRET, mint_token(SECRET, "bob", "core", None, 60)).name == "bob"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"sub": "a", "team": "t", "exp": 1}, "token expired"),
        ({"sub": "a", "exp": 2**40}, "invalid token"),
        ({"sub": 5, "team": "t", "exp": 2**40}, "invalid token"),
        ({"sub": "a", "team": ["t"], "exp": 2**40}, "token claims are malformed"),
        ({"sub": "a", "team": "t", "exp": 2**40, "name": "\x1b[2J"}, "token claims are malformed"),
        (
            {"sub": "a", "team": "t", "exp": 2**40, "name": "Bob\u202e"},
            "token claims are malformed",
        ),
        (
            {"sub": "a", "team": "t", "exp": 2**40, "name": "B\u200bob"},
            "token claims are malformed",
        ),
        ({"sub": "a", "team": "t", "exp": 10**30}, "token claims are malformed"),
        ({"sub": "a", "team": "t", "exp": 10**400}, "token claims are malformed"),
        ({"sub": "a", "team": "t", "exp": 2**40, "iat": 10**400}, "invalid token"),
    ],
)
def test_bad_claims_are_refused(claims: dict[str, object], reason: str) -> None:
    with pytest.raises(AuthError, match=reason):
        verify_token(SECRET, jwt.encode(claims, SECRET, algorithm="HS256"))


def test_alg_none_is_refused() -> None:
    no_key: Any = None  # alg "none" takes no key; PyJWT's types do not say so
    forged = jwt.encode({"sub": "a", "team": "t", "exp": 2**40}, no_key, algorithm="none")
    with pytest.raises(AuthError):
        verify_token(SECRET, forged)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("7d", 604800), ("1w", 604800)]
)
def test_ttl(text: str, seconds: int) -> None:
    assert parse_ttl(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "0s", "-1h", "1y", "1.5h", "h"])
def test_bad_ttl(text: str) -> None:
    with pytest.raises(ValueError, match="ttl"):
        parse_ttl(text)


def test_secret_file_is_made_once_and_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TUI_COLLAB_SECRET", raising=False)
    first = load_secret(tmp_path / "d")
    assert load_secret(tmp_path / "d") == first
    assert len(first) == 64
    assert os.stat(tmp_path / "d" / "secret").st_mode & 0o777 == 0o600


def test_secret_from_environment_must_be_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TUI_COLLAB_SECRET", "short")
    with pytest.raises(ValueError, match="32"):
        load_secret(tmp_path)
    monkeypatch.setenv("TUI_COLLAB_SECRET", "k" * 40)
    assert load_secret(tmp_path) == "k" * 40
    assert not (tmp_path / "secret").exists()


def test_bearer_header_parsing() -> None:
    assert bearer_token(None) is None
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") == ""
    assert bearer_token("Bearer") == ""


def test_redaction_removes_tokens_from_log_text() -> None:
    token = mint_token(SECRET, "alice", "core", None, 60)
    for line in (
        f"> Authorization: Bearer {token}",
        f'< TEXT \'{{"type":"hello","v":1,"token":"{token}"}}\' [120 bytes]',
        f"token={token}",
    ):
        cleaned = redact(line)
        assert token not in cleaned
        assert token.split(".")[2] not in cleaned
        assert "[redacted]" in cleaned


def test_a_repeated_authorization_header_is_malformed() -> None:
    assert authorization([]) is None
    assert authorization(["Bearer x"]) == "Bearer x"
    with pytest.raises(MalformedHeader, match="more than one Authorization header"):
        authorization(["Bearer x", "Bearer y"])
