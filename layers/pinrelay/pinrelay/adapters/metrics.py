"""CloudWatch EMF metrics through Powertools, one EMF document per (source, event_name).

Ingest counts what it answered (accepted, duplicate, rejected, not queued); the sender counts
what Pinterest took (delivered, rejected) and the match keys of the delivered events, once per
batch rather than once per request: for webhooks, one metrics line per request would cost more
in CloudWatch Logs than the Lambda time (docs/cost-and-speed.md).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping

from pinrelay.models import EVENT_NAMES, EventResult

STATUS_METRICS = {"accepted": "EventsAccepted", "duplicate": "EventsDuplicate", "rejected": "EventsRejected", "error": "EventsNotQueued"}


def ingest_counts(results: Iterable[EventResult]) -> dict[str, Counter]:
    """Counts per event_name, one per status (only the statuses that occurred); events withheld
    by the consent policy are not among them (``withheld_counts``)."""
    groups: dict[str, Counter] = defaultdict(Counter)
    for result in results:
        if result.status == "withheld":
            continue
        name = result.event_name if result.event_name in EVENT_NAMES else "invalid"
        groups[name][STATUS_METRICS[result.status]] += 1
    return groups


def emit_document(dimensions: Iterable[tuple[str, str]], values: Iterable[tuple[str, str, float]]) -> None:
    """One EMF document: its dimensions (name, value) and its metrics (name, unit, value)."""
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    metrics = EphemeralMetrics()
    for name, value in dimensions:
        metrics.add_dimension(name=name, value=value)
    for name, unit, value in values:
        metrics.add_metric(name=name, unit=MetricUnit(unit), value=value)
    metrics.flush_metrics()


def _emit(source: str, event_name: str, counts: Mapping[str, int]) -> None:
    emit_document((("source", source), ("event_name", event_name)),
                  ((name, "Count", value) for name, value in counts.items()))


def withheld_counts(results: Iterable[EventResult]) -> Counter:
    """Events withheld by the consent policy, per reason code (``consent``)."""
    return Counter(result.withheld for result in results if result.status == "withheld" and result.withheld)


def emit_ingest_metrics(results: Iterable[EventResult], source: str) -> None:
    """What ingest answered, except what went to the queue to be sent (the sender counts that);
    withheld events as ``EventsFiltered`` with their reason, beside the orders filtered as not sales."""
    results = list(results)
    for event_name, counts in ingest_counts(results).items():
        _emit(source, event_name, counts)
    for reason, count in withheld_counts(results).items():
        emit_filtered_metric(source, reason, count)


def emit_delivery_metrics(outcomes: Mapping[tuple[str, str], Mapping[str, int]]) -> None:
    """The sender's per (source, event_name) counts (``SendReport.outcomes``): EventsDelivered,
    EventsRejectedByPinterest, EventsDuplicate, EventsUncertain, EventsNotSent, MatchKey_<key>."""
    for (source, event_name), counts in outcomes.items():
        name = event_name if event_name in EVENT_NAMES else "invalid"
        _emit(source, name, counts)


def emit_not_sent_metrics(reasons: Mapping[str, int]) -> None:
    """``EventsNotSent`` per ``reason`` (``too_old``: alarmed; the codes ingest withholds events
    with): events the sender recorded ``not_sent`` and never posted."""
    for reason, count in reasons.items():
        emit_document((("reason", reason),), (("EventsNotSent", "Count", count),))


def emit_filtered_metric(source: str, reason: str, count: int = 1) -> None:
    """``EventsFiltered`` per source and reason: orders the merchant's rules say are not
    conversions (cancelled, voided, test_order, source_name, tag) and events the consent policy
    withholds (consent): "why didn't order #1042 reach Pinterest?"."""
    emit_document((("source", source), ("reason", reason)), (("EventsFiltered", "Count", count),))


def emit_unlisted_shops_metric(source: str) -> None:
    """``UnlistedShops`` per source: a second shop's webhook reached the default account unscoped,
    as no shop list is set for a platform (``pinrelay.accounts.DefaultShopsSeen``), once per container."""
    emit_document((("service", "pinrelay"), ("source", source)), (("UnlistedShops", "Count", 1),))
