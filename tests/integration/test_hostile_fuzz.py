"""A hostile client sends over 10,000 random and mutated frames (hypothesis) while a
well-behaved pair of clients works on the same board.

It must show: the server stays up and healthy, every reply the hostile client gets is a
documented message, error code or close code, nothing is logged as a crash, and the
well-behaved clients see every one of their events. What the attack costs them in
latency is a speed figure, measured by `python -m bench.hostile`, not here.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.attack_run import PROBE_RATE, run_attack

EXAMPLES = 140  # 72 frames each: 10,080 frames


def test_a_hostile_client_cannot_crash_the_server_or_starve_a_good_one(tmp_path: Path) -> None:
    result = run_attack(tmp_path / "data", EXAMPLES, calm_s=None)
    findings = result.findings
    print(
        f"\nhostile: {findings['frames_sent']} frames in {result.attack_s:.1f} s, "
        f"{findings['half_handshakes']} half handshakes; replies {findings['replies']}; "
        f"closes {findings['closes']}; upgrades refused {findings['refused']}\n"
        f"well-behaved under attack: {result.under_attack}"
    )
    assert findings["frames_sent"] >= 10_000
    assert findings["violations"] == []
    assert findings["replies"].get("error:bad_request", 0) > 5_000  # frames were handled
    assert result.healthy
    assert "Traceback" not in result.server_log
    assert result.under_attack["missing"] == 0
    assert result.under_attack["received"] > PROBE_RATE * 3
