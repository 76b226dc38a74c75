"""The reconnect policy on its own: which failures end the client, and how long it waits."""

import random

import pytest

from tui_collab.backoff import Backoff
from tui_collab.protocol import CloseCode
from tui_collab.retry import (
    TLS_FAILURE,
    FinalReason,
    GiveUp,
    RenewToken,
    RetryPolicy,
    Wait,
    close_reason,
    fatal_reason,
)

URL = "ws://collab.example:9001/ws"


def policy(max_attempts: int | None = None, urls: list[str] | None = None) -> RetryPolicy:
    return RetryPolicy(urls or [URL], Backoff(rng=random.Random(7)), max_attempts)


@pytest.mark.parametrize(
    ("code", "reason", "fatal"),
    [
        (CloseCode.AUTH_FAILED, "token expired", FinalReason.UNAUTHORIZED),
        (None, "HTTP 401", FinalReason.UNAUTHORIZED),
        (CloseCode.UNSUPPORTED_VERSION, "v2 only", FinalReason.UNSUPPORTED_VERSION),
        (None, "InvalidURI: ftp://x isn't a valid URI", FinalReason.INVALID_URL),
        (None, f"{TLS_FAILURE} h:1: self-signed certificate", FinalReason.TLS),
        (1006, "connection lost", None),
        (None, "HTTP 503", None),
        (CloseCode.RATE_LIMITED, "rate limited", None),
        (CloseCode.TRY_AGAIN_LATER, "server busy", None),
    ],
)
def test_which_failures_are_final(code: int | None, reason: str, fatal: FinalReason | None) -> None:
    assert fatal_reason(code, reason) == fatal


@pytest.mark.parametrize(
    ("code", "reason", "words"),
    [
        (1006, None, "connection lost"),
        (None, "", "connection lost"),
        (CloseCode.TRY_AGAIN_LATER, "", "server busy"),
        (4999, None, "closed with 4999"),
        (1001, "restarting", "restarting"),
    ],
)
def test_close_reason_prefers_the_servers_words(
    code: int | None, reason: str | None, words: str
) -> None:
    assert close_reason(code, reason) == words


def test_a_refused_token_gives_up_with_a_line_for_a_person() -> None:
    decision = policy().after(False, CloseCode.AUTH_FAILED, "token expired")
    assert decision == GiveUp(
        FinalReason.UNAUTHORIZED, "collab.example:9001 refused the token (token expired)"
    )
    assert isinstance(decision, GiveUp)
    assert decision.fatal


def test_a_refused_token_is_renewed_once_when_a_provider_may_help() -> None:
    retry = policy()
    assert retry.after(False, None, "HTTP 401", may_renew_token=True) == RenewToken()
    assert retry.failures == 0  # asking for a token is not a failure
    decision = retry.after(False, None, "HTTP 401", may_renew_token=False)
    assert isinstance(decision, GiveUp)
    assert decision.reason == FinalReason.UNAUTHORIZED


@pytest.mark.parametrize(
    ("reason", "fatal", "detail"),
    [
        (
            f"{TLS_FAILURE} h:1: expired",
            FinalReason.TLS,
            f"{TLS_FAILURE} h:1: expired (trust the server's CA with --cafile or SSL_CERT_FILE)",
        ),
        (
            "InvalidURI: bad",
            FinalReason.INVALID_URL,
            f"{URL} is not a valid ws:// or wss:// URL (InvalidURI: bad)",
        ),
    ],
)
def test_other_final_failures(reason: str, fatal: FinalReason, detail: str) -> None:
    assert policy().after(False, None, reason, may_renew_token=True) == GiveUp(fatal, detail)


def test_another_protocol_version_says_update() -> None:
    decision = policy().after(True, CloseCode.UNSUPPORTED_VERSION, "")
    assert decision == GiveUp(
        FinalReason.UNSUPPORTED_VERSION,
        "collab.example:9001 speaks another protocol version: update tui-collab",
    )


def test_failures_count_up_and_back_off_within_the_ceiling() -> None:
    retry = policy()
    for failures in range(1, 8):
        decision = retry.after(False, 1006, "connection lost")
        assert isinstance(decision, Wait)
        assert decision.failures == failures
        assert 0.0 <= decision.delay_s <= retry.backoff.ceiling(failures)


def test_a_welcome_starts_the_count_again() -> None:
    retry = policy()
    for _ in range(3):
        retry.after(False, 1006, "connection lost")
    decision = retry.after(True, 1006, "connection lost")
    assert isinstance(decision, Wait)
    assert decision.failures == 1


def test_gives_up_after_max_attempts_failures_in_a_row() -> None:
    retry = policy(max_attempts=2)
    assert isinstance(retry.after(False, None, "OSError: refused"), Wait)
    assert isinstance(retry.after(False, None, "OSError: refused"), Wait)
    decision = retry.after(False, None, "OSError: refused")
    assert decision == GiveUp(
        FinalReason.GAVE_UP, f"gave up on {URL} after 3 attempts: OSError: refused"
    )
    assert not decision.fatal


@pytest.mark.parametrize(
    ("code", "reason"), [(CloseCode.RATE_LIMITED, "rate limited"), (None, "HTTP 503")]
)
def test_slow_down_waits_the_longest_backoff(code: int | None, reason: str) -> None:
    retry = policy()
    decision = retry.after(True, code, reason)
    assert decision == Wait(retry.backoff.cap_s, 1)


def test_a_server_that_cannot_be_reached_moves_on_to_the_next() -> None:
    retry = policy(urls=["ws://a/ws", "ws://b/ws"])
    assert retry.url == "ws://a/ws"
    retry.after(False, None, "OSError: refused")
    assert retry.url == "ws://b/ws"
    retry.after(True, 1006, "connection lost")  # welcomed, then lost: same server again
    assert retry.url == "ws://b/ws"
    retry.after(False, None, "OSError: refused")
    assert retry.url == "ws://a/ws"
