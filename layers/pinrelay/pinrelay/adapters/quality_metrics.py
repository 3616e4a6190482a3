"""The event quality metrics as CloudWatch EMF through Powertools: one EMF document per set of
dimensions (namespace POWERTOOLS_METRICS_NAMESPACE, plus the service dimension)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from pinrelay.quality import MetricPoint


def emit_quality_metrics(points: Iterable[MetricPoint]) -> int:
    """Write the points; return how many EMF documents were written."""
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    groups: dict[tuple[tuple[str, str], ...], list[MetricPoint]] = defaultdict(list)
    for point in points:
        groups[point.dimensions].append(point)
    for dimensions, group in groups.items():
        metrics = EphemeralMetrics()
        for name, value in dimensions:
            metrics.add_dimension(name=name, value=value)
        for point in group:
            metrics.add_metric(name=point.name, unit=MetricUnit(point.unit), value=point.value)
        metrics.flush_metrics()
    return len(groups)
