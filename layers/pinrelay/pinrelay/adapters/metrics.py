"""CloudWatch EMF metrics through Powertools, one EMF document per (source, event_name)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from pinrelay.models import EVENT_NAMES, EventResult

STATUS_METRICS = {"accepted": "EventsAccepted", "duplicate": "EventsDuplicate", "rejected": "EventsRejected", "error": "EventsNotQueued"}


def ingest_counts(results: Iterable[EventResult]) -> dict[str, Counter]:
    """Counts per event_name: one per status, and per match key of accepted events."""
    groups: dict[str, Counter] = defaultdict(Counter)
    for result in results:
        name = result.event_name if result.event_name in EVENT_NAMES else "invalid"
        counts = groups[name]
        counts[STATUS_METRICS[result.status]] += 1
        if result.status == "accepted":
            for key in result.match_keys or ():
                counts[f"MatchKey_{key}"] += 1
    return groups


def emit_ingest_metrics(results: Iterable[EventResult], source: str) -> None:
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    for event_name, counts in ingest_counts(results).items():
        metrics = EphemeralMetrics()
        metrics.add_dimension(name="source", value=source)
        metrics.add_dimension(name="event_name", value=event_name)
        for name, value in counts.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        metrics.flush_metrics()
