"""The event quality metrics as CloudWatch EMF through Powertools: one EMF document per set of
dimensions (namespace POWERTOOLS_METRICS_NAMESPACE, plus the service dimension)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from pinrelay.adapters.metrics import emit_document
from pinrelay.quality import MetricPoint


def emit_quality_metrics(points: Iterable[MetricPoint]) -> int:
    """Write the points; return how many EMF documents were written."""
    groups: dict[tuple[tuple[str, str], ...], list[MetricPoint]] = defaultdict(list)
    for point in points:
        groups[point.dimensions].append(point)
    for dimensions, group in groups.items():
        emit_document(dimensions, ((point.name, point.unit, point.value) for point in group))
    return len(groups)
