"""pinrelay.quality: Pinterest's Event Quality Score parsed, turned into advice and into metrics.

The answer below has the shape of Pinterest's own example (developers.pinterest.com, "Get event
quality scores for conversions": an overall_status FAIR and ip_address covering add_to_cart,
view_category, lead, checkout, signup and page_visit at 100), completed with the other parts the
schema has (issues, external_event_id's overlap, a TAG score); the schema excerpt has no example of
its own. tests/contract/test_pinterest_schema.py checks every score against the schema's
EventQualityScore."""

from __future__ import annotations

import copy

import pytest

from pinrelay.quality import (
    COMPONENT_ADVICE,
    FALLBACK_ADVICE,
    TAG_ADVICE,
    EqsUnreadable,
    QualityIssue,
    advice,
    metric_points,
    parse_eqs,
    rows,
    unlisted_names,
)

MISSING_EXTERNAL_ID = {"id": "MISSING_ADVERTISER_EXTERNAL_ID", "name": "Missing external ID",
                       "reason": "Most checkout events have no external ID."}
ANSWER = [
    {
        "ingestion_source": "CONVERSIONS_API",
        "source_platform": "WEB",
        "lookback_period": "14d",
        "overall_status": "FAIR",
        "quality_components": {
            "ip_address": {name: {"coverage": 100} for name in
                           ("add_to_cart", "view_category", "lead", "checkout", "signup", "page_visit")},
            "hashed_email": {"checkout": {"coverage": 97.25, "issues": []}},
            "advertiser_external_id": {"checkout": {"coverage": 12, "issues": [MISSING_EXTERNAL_ID]}},
            "external_event_id": {"checkout": {"coverage": 100, "overlap": 41.5}, "lead": {"coverage": 100, "overlap": 88}},
        },
    },
    {
        "ingestion_source": "TAG",
        "source_platform": "WEB",
        "lookback_period": "14d",
        "overall_status": "GOOD",
        "quality_components": {
            "hashed_email": {"checkout": {"coverage": 20}},
            "external_event_id": {"checkout": {"coverage": 100, "overlap": 41.5}},
        },
    },
]


def test_a_schema_shaped_answer_parses_into_plain_objects():
    api, tag = parse_eqs(ANSWER)
    assert (api.ingestion_source, api.source_platform, api.lookback_period, api.overall_status) == (
        "CONVERSIONS_API", "WEB", "14d", "FAIR")
    assert api.status_value == 2 and tag.status_value == 3
    assert api.quality_components["ip_address"]["lead"].coverage == 100.0
    assert api.quality_components["hashed_email"]["checkout"].coverage == 97.25
    (issue,) = api.quality_components["advertiser_external_id"]["checkout"].issues
    assert issue == QualityIssue(**MISSING_EXTERNAL_ID)
    assert api.overlap("checkout") == 41.5 and api.overlap("page_visit") is None


def test_unknown_statuses_components_and_fields_are_kept_and_nulls_tolerated():
    answer = copy.deepcopy(ANSWER[:1])
    answer[0]["overall_status"] = "EXCELLENT"  # not (yet) in the enum
    answer[0]["new_field"] = 1
    answer[0]["quality_components"]["hashed_phone"] = {"checkout": {"coverage": 5, "issues": None, "extra": "x"}}
    answer[0]["quality_components"]["order_id"] = None
    (score,) = parse_eqs(answer)
    assert score.status_value is None
    assert score.quality_components["hashed_phone"]["checkout"].issues == ()
    assert "order_id" not in score.quality_components


@pytest.mark.parametrize(("payload", "says"), [
    ({"code": 2, "message": "x"}, "expected a list of scores, got dict"),
    ([{"ingestion_source": "TAG"}], "first at [0.source_platform]: Field required"),
    ([{**ANSWER[0], "quality_components": {"ip_address": {"checkout": {"coverage": "lots"}}}}],
     "first at [0.quality_components.ip_address.checkout.coverage]"),
])
def test_an_answer_that_is_not_the_documented_list_is_refused_saying_where(payload, says):
    with pytest.raises(EqsUnreadable, match=r".*") as raised:
        parse_eqs(payload)
    assert says in str(raised.value)


def test_the_tags_components_are_the_browsers_but_the_overlap_takes_both_sides():
    assert advice("hashed_email", None, "TAG") == TAG_ADVICE
    assert advice("external_event_id", None, "TAG") == COMPONENT_ADVICE["external_event_id"]
    assert advice("hashed_email", None, "FILE_UPLOAD") == FALLBACK_ADVICE


def test_rows_flag_issues_low_coverage_of_the_api_and_low_overlap():
    api, tag = parse_eqs(ANSWER)
    flagged = {(row.component, row.event_name) for row in rows(api) if row.needs_attention}
    assert flagged == {("advertiser_external_id", "checkout"), ("external_event_id", "checkout")}
    # the tag's own 20 % e-mail coverage is the browser's business; its overlap is shared
    assert {(row.component, row.event_name) for row in rows(tag) if row.needs_attention} == {("external_event_id", "checkout")}
    (row,) = [row for row in rows(api) if row.component == "advertiser_external_id"]
    assert row.advice() == [COMPONENT_ADVICE["advertiser_external_id"]]


def test_metrics_status_per_source_coverage_of_the_api_and_overlap_per_event():
    points = metric_points(parse_eqs(ANSWER))
    by_name: dict[str, list] = {}
    for point in points:
        by_name.setdefault(point.name, []).append(point)
    assert {(p.value, p.dimensions) for p in by_name["EventQualityStatus"]} == {
        (2, (("ingestion_source", "CONVERSIONS_API"),)), (3, (("ingestion_source", "TAG"),))}
    coverage = {dict(p.dimensions)["component"] + "/" + dict(p.dimensions)["event_name"]: p.value
                for p in by_name["EventQualityCoverage"]}
    assert len(coverage) == 6 + 1 + 1 + 2 and coverage["advertiser_external_id/checkout"] == 12
    assert all(dict(p.dimensions)["ingestion_source"] == "CONVERSIONS_API" and p.unit == "Percent"
               for p in by_name["EventQualityCoverage"])  # the tag's coverage is not a (billed) metric
    overlaps = {(dict(p.dimensions)["ingestion_source"], dict(p.dimensions)["event_name"]): p.value
                for p in by_name["EventIdOverlap"]}
    assert overlaps == {("CONVERSIONS_API", "checkout"): 41.5, ("CONVERSIONS_API", "lead"): 88, ("TAG", "checkout"): 41.5}
    checkout = next(p for p in by_name["EventIdOverlap"] if dict(p.dimensions)["event_name"] == "checkout")
    assert checkout.dimensions == (("ingestion_source", "CONVERSIONS_API"), ("source_platform", "WEB"), ("event_name", "checkout"))


def test_the_status_metric_is_the_worst_of_the_platforms_and_unknown_statuses_write_none():
    web, offline, unknown = (copy.deepcopy(ANSWER[0]) for _ in range(3))
    offline.update(source_platform="OFFLINE", overall_status="NEEDS_IMPROVEMENT")
    unknown.update(source_platform="MOBILE", overall_status="SOMETHING_ELSE")
    statuses = [p for p in metric_points(parse_eqs([web, offline, unknown])) if p.name == "EventQualityStatus"]
    assert [(p.value, p.dimensions) for p in statuses] == [(1, (("ingestion_source", "CONVERSIONS_API"),))]


def test_only_names_pinterest_documents_become_metric_dimensions():
    """Each other name would be a custom metric of its own, billed: they are shown, never metrics."""
    api = copy.deepcopy(ANSWER[0])
    api["quality_components"]["invented"] = {"checkout": {"coverage": 1}}
    api["quality_components"]["hashed_email"]["not_an_event"] = {"coverage": 1}
    elsewhere = {**copy.deepcopy(ANSWER[0]), "source_platform": "NEW_PLATFORM", "ingestion_source": "NEW_SOURCE"}
    scores = parse_eqs([api, ANSWER[1], elsewhere])
    assert metric_points(scores) == metric_points(parse_eqs(ANSWER))
    assert ("invented", "checkout") in {(row.component, row.event_name) for row in rows(scores[0])}  # still shown
    assert unlisted_names(scores) == (3, ["component invented", "event not_an_event",
                                          "ingestion_source/source_platform NEW_SOURCE/NEW_PLATFORM"])
    many = parse_eqs([{**ANSWER[0], "quality_components": {f"c{n:03}" + "x" * 100: {"checkout": {"coverage": 1}} for n in range(50)}}])
    count, some = unlisted_names(many)
    assert count == 50 and len(some) == 20 and all(len(name) == 60 for name in some)
