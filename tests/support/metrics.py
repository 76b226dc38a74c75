"""Read a server's metrics the way a scrape does, through its registry's public API."""

from __future__ import annotations

from server.metrics import Metrics


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    """The current value of sample `name` (a counter's `_total`), 0 if never touched."""
    value = metrics.registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value
