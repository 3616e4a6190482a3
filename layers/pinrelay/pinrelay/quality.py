"""Pinterest's Event Quality Score (EQS) of an ad account, and what pinrelay can do about it.
No AWS imports (the HTTP call: adapters/pinterest_eqs.py; the metrics: adapters/quality_metrics.py).

``GET /v5/ad_accounts/{id}/conversion_eqs?lookback_period=1d|14d`` answers a list, one score per
ingestion source (``CONVERSIONS_API``, ``TAG``, ...) and source platform (``WEB``, ...)::

    [{"ingestion_source": "CONVERSIONS_API", "source_platform": "WEB", "lookback_period": "1d",
      "overall_status": "FAIR",                       # NEEDS_IMPROVEMENT | FAIR | GOOD
      "quality_components": {                          # component -> event type -> details
        "hashed_email": {"checkout": {"coverage": 97.5, "issues": [{"id": .., "name": .., "reason": ..}]}},
        "external_event_id": {"checkout": {"coverage": 100, "overlap": 42.0}}, ...}}]

``coverage`` is the percentage (0-100, Pinterest's own unit) of the events of that type that
carry the parameter; ``overlap``, for ``external_event_id`` only, the percentage of events that
the tag and the API both sent with the same ``event_id``: whether deduplication against the
browser tag works.

Pinterest documents its components (the schema's ``QualityComponents``), not the ids of its
issues. So the advice table below is keyed by component: what pinrelay can do to raise that
component's coverage (docs/sources.md, "Match quality"), refined when an issue speaks of hashing
or deduplication; a component this module does not know gets a general answer. Unknown fields,
components and statuses are kept rather than refused: a monitor must not break when Pinterest
adds one. `pinrelay quality` shows them; only the names Pinterest documents become metrics.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from pinrelay.models import EVENT_NAMES

LOOKBACK_PERIODS = ("1d", "14d")
INGESTION_SOURCES = ("TAG", "MMP", "FILE_UPLOAD", "CONVERSIONS_API", "NATIVE")
SOURCE_PLATFORMS = ("WEB", "MOBILE", "MOBILE_ANDROID", "MOBILE_IOS", "OFFLINE", "PINTEREST_WEB", "PINTEREST_ANDROID",
                    "PINTEREST_IOS", "POINT_OF_SALE")
# the overall status as a number for a metric: higher is better, and no value is ever 0
STATUS_VALUES = {"NEEDS_IMPROVEMENT": 1, "FAIR": 2, "GOOD": 3}
DEDUP_COMPONENT = "external_event_id"
# the components Pinterest documents (openapi-eqs-5.23.yaml, QualityComponents; a contract test keeps
# them equal): only these become metrics
DOCUMENTED_COMPONENTS = frozenset({
    "advertiser_external_id", "click_id_epik", "external_event_id", "hashed_email", "hashed_maid", "ip_address",
    "order_id", "order_value", "product_id", "source_url", "user_agent",
})
# below this a row is shown with advice even when Pinterest lists no issue for it
LOW_PERCENT = 50.0


class EqsUnreadable(ValueError):
    """Pinterest's answer is not the documented list of scores."""


class QualityIssue(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    name: str
    reason: str


class ComponentDetails(BaseModel):
    """One event type within one component."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    coverage: float
    issues: tuple[QualityIssue, ...] = ()
    overlap: float | None = None  # external_event_id only

    @field_validator("issues", mode="before")
    @classmethod
    def _no_issues(cls, value: object) -> object:
        return () if value is None else value


class EventQualityScore(BaseModel):
    """One score: an ingestion source on a source platform over a lookback period."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    ingestion_source: str
    source_platform: str
    lookback_period: str
    overall_status: str
    # component -> event type -> details (a component Pinterest sends as null is dropped)
    quality_components: dict[str, dict[str, ComponentDetails]] = Field(default_factory=dict)

    @field_validator("quality_components", mode="before")
    @classmethod
    def _drop_empty_components(cls, value: object) -> object:
        if isinstance(value, dict):
            return {name: events for name, events in value.items() if events is not None}
        return value

    @property
    def status_value(self) -> int | None:
        return STATUS_VALUES.get(self.overall_status)

    def overlap(self, event_name: str) -> float | None:
        """The share (%) of ``event_name`` events the tag and the API both sent with one event_id."""
        details = self.quality_components.get(DEDUP_COMPONENT, {}).get(event_name)
        return details.overlap if details is not None else None


_SCORES = TypeAdapter(list[EventQualityScore])


def parse_eqs(payload: Any) -> list[EventQualityScore]:
    """Pinterest's answer (parsed JSON) as scores; ``EqsUnreadable`` saying what is wrong."""
    if not isinstance(payload, list):
        raise EqsUnreadable(f"expected a list of scores, got {type(payload).__name__}")
    try:
        return _SCORES.validate_python(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise EqsUnreadable(f"{exc.error_count()} problem(s), first at [{where}]: {first['msg']}") from None


# --------------------------------------------------------------------------------------------
# What pinrelay can do about each component
# --------------------------------------------------------------------------------------------

COMPONENT_ADVICE: dict[str, str] = {
    "hashed_email": (
        "send the customer's e-mail as user_data.em on every event (raw: pinrelay normalises and hashes it); "
        "Shopify orders carry it only with protected customer data access (docs/sources.md); add ph with the country"
    ),
    "advertiser_external_id": (
        "send your customer id as user_data.external_id on every event (pinrelay hashes it); Shopify and "
        "WooCommerce orders of known customers carry it already"
    ),
    "click_id_epik": (
        "capture Pinterest's click id: install web/shopify-theme-epik.js so orders carry _epik (docs/browser-side.md), "
        "or send user_data.click_id from the _epik cookie or the epik URL parameter"
    ),
    "ip_address": (
        "send the shopper's browser IP as user_data.client_ip_address on web events (not your server's; Shopify: "
        "the order's browser_ip, WooCommerce: customer_ip_address)"
    ),
    "user_agent": (
        "send the shopper's browser User-Agent as user_data.client_user_agent on web events (Shopify: "
        "client_details.user_agent, WooCommerce: customer_user_agent)"
    ),
    DEDUP_COMPONENT: (
        "give the tag and pinrelay the same event_id for the same event: web/shopify-custom-pixel.js with "
        "EVENT_ID_TEMPLATE equal to SHOPIFY_EVENT_ID_TEMPLATE (docs/browser-side.md); from your backend, the id "
        "your tag sends"
    ),
    "hashed_maid": "app events only: send the device's advertising id as user_data.hashed_maids; web events have none",
    "order_id": "send custom_data.order_id (Shopify and WooCommerce orders carry it)",
    "order_value": "send custom_data.value and custom_data.currency (Shopify and WooCommerce orders carry them)",
    "product_id": (
        "send custom_data.content_ids with your catalog's item ids (Shopify: SHOPIFY_CONTENT_ID_FIELD, product_id, "
        "variant_id or sku, as your catalog)"
    ),
    "source_url": "send event_source_url, the page the event happened on",
}
FALLBACK_ADVICE = "pinrelay has no advice for this component: see Pinterest's reason and docs/sources.md, \"Match quality\""
# an issue whose id or name contains one of these words gets this advice first
ISSUE_ADVICE: tuple[tuple[tuple[str, ...], str], ...] = (
    (("hash",), "send the values raw (pinrelay normalises, then hashes) or as SHA-256 of the normalised value "
                "(docs/normalisation.md): a value hashed otherwise matches no one"),
    (("dedup", "duplicate", "overlap"), COMPONENT_ADVICE[DEDUP_COMPONENT]),
)


TAG_ADVICE = ("the tag's data comes from the browser, not from pinrelay: see docs/browser-side.md (pinrelay's pixel "
              "gives the tag no customer data; the API events carry it)")


def advice(component: str, issue: QualityIssue | None = None, ingestion_source: str = "CONVERSIONS_API") -> str:
    """What pinrelay (or you, through what you send it) can do about a component or one of its
    issues. Only the API's events are pinrelay's; of the other sources' components only the event
    id overlap (deduplication, which takes both sides) gets pinrelay's advice."""
    if ingestion_source != "CONVERSIONS_API" and component != DEDUP_COMPONENT:
        return TAG_ADVICE if ingestion_source == "TAG" else FALLBACK_ADVICE
    if issue is not None:
        words = f"{issue.id} {issue.name}".lower()
        for keywords, text in ISSUE_ADVICE:
            if any(keyword in words for keyword in keywords):
                return text
    return COMPONENT_ADVICE.get(component, FALLBACK_ADVICE)


# --------------------------------------------------------------------------------------------
# Rows: what `pinrelay quality` prints and the metrics are made of
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QualityRow:
    ingestion_source: str
    component: str
    event_name: str
    coverage: float
    overlap: float | None
    issues: tuple[QualityIssue, ...]

    @property
    def needs_attention(self) -> bool:
        """Pinterest lists an issue, or pinrelay could raise a low number: the API's coverage, or the
        event id overlap of either side (the tag's coverage is the browser's business)."""
        if self.issues:
            return True
        if self.overlap is not None and self.overlap < LOW_PERCENT:
            return True
        ours = self.ingestion_source == "CONVERSIONS_API" or self.component == DEDUP_COMPONENT
        return ours and self.coverage < LOW_PERCENT

    def advice(self) -> list[str]:
        """What can be done about this row (one line per distinct piece of advice)."""
        found = [advice(self.component, issue, self.ingestion_source) for issue in self.issues]
        found = found or [advice(self.component, None, self.ingestion_source)]
        return list(dict.fromkeys(found))


def rows(score: EventQualityScore) -> list[QualityRow]:
    """One row per component and event type, components in Pinterest's order, then event types by name."""
    return [
        QualityRow(score.ingestion_source, component, event_name, details.coverage, details.overlap, details.issues)
        for component, events in score.quality_components.items()
        for event_name, details in sorted(events.items())
    ]


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricPoint:
    name: str
    value: float
    unit: Literal["None", "Percent"]
    dimensions: tuple[tuple[str, str], ...]  # (name, value), the service dimension comes on top


def metric_points(scores: Iterable[EventQualityScore], coverage_sources: tuple[str, ...] = ("CONVERSIONS_API",)
                  ) -> list[MetricPoint]:
    """The CloudWatch metrics of a set of scores.

    * ``EventQualityStatus`` (1 NEEDS_IMPROVEMENT, 2 FAIR, 3 GOOD) per ingestion source: the worst
      of its platforms (what the status alarm reads for CONVERSIONS_API);
    * ``EventQualityCoverage`` (%) per ingestion source, platform, component and event name, for
      ``coverage_sources`` only (each combination is a custom metric, billed: the tag's coverage is
      the browser's, `pinrelay quality` shows it);
    * ``EventIdOverlap`` (%) per ingestion source, platform and event name (external_event_id).

    Every dimension value is one Pinterest documents: each other
    name an answer carries would be a custom metric of its own, billed (500 invented component
    names made 5,021 metrics in one run). `pinrelay quality` shows them all; ``unlisted_names``
    says which were left out.
    """
    points: list[MetricPoint] = []
    worst: dict[str, int] = {}
    for score in scores:
        if not _listed_score(score):
            continue
        if score.status_value is not None:
            source = score.ingestion_source
            worst[source] = min(worst.get(source, score.status_value), score.status_value)
        where = (("ingestion_source", score.ingestion_source), ("source_platform", score.source_platform))
        for row in rows(score):
            if not _listed_row(row):
                continue
            if score.ingestion_source in coverage_sources:
                points.append(MetricPoint("EventQualityCoverage", row.coverage, "Percent",
                                          where + (("component", row.component), ("event_name", row.event_name))))
            if row.component == DEDUP_COMPONENT and row.overlap is not None:
                points.append(MetricPoint("EventIdOverlap", row.overlap, "Percent", where + (("event_name", row.event_name),)))
    status_points = [MetricPoint("EventQualityStatus", value, "None", (("ingestion_source", source),))
                     for source, value in worst.items()]
    return status_points + points


def _listed_score(score: EventQualityScore) -> bool:
    return score.ingestion_source in INGESTION_SOURCES and score.source_platform in SOURCE_PLATFORMS


def _listed_row(row: QualityRow) -> bool:
    return row.component in DOCUMENTED_COMPONENTS and row.event_name in EVENT_NAMES


def unlisted_names(scores: Iterable[EventQualityScore], limit: int = 20) -> tuple[int, list[str]]:
    """The names in the scores that no metric is made of (not documented by Pinterest): how many,
    and the first ``limit`` of them (each cut to 60 characters), for a log line."""
    found: set[str] = set()
    for score in scores:
        if not _listed_score(score):
            found.add(f"ingestion_source/source_platform {score.ingestion_source}/{score.source_platform}")
            continue
        for row in rows(score):
            if row.component not in DOCUMENTED_COMPONENTS:
                found.add(f"component {row.component}")
            elif row.event_name not in EVENT_NAMES:
                found.add(f"event {row.event_name}")
    return len(found), [name[:60] for name in sorted(found)[:limit]]
