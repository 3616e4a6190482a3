"""What pinrelay makes, against Pinterest's own OpenAPI: the excerpt the Pinterest stand-in
validates with (``pinrelay_local.pinterest_standin``). Events made of Shopify checkouts and carts,
of WooCommerce orders, and the ``pinrelay verify`` test event are valid ConversionEvents; the
Event Quality Scores pinrelay.quality is tested with are valid EventQualityScores, and every
quality component the schema documents has advice."""

import hashlib
import time

import pytest

from pinrelay.quality import (
    COMPONENT_ADVICE,
    DOCUMENTED_COMPONENTS,
    FALLBACK_ADVICE,
    INGESTION_SOURCES,
    SOURCE_PLATFORMS,
    QualityIssue,
    advice,
)
from pinrelay.sources import shopify
from pinrelay.verify import VERIFY_EMAIL, new_event_id, synthetic_event
from pinrelay_local.pinterest_standin import (
    ConversionEventsValidator,
    EventQualityScoreValidator,
    check_event,
    default_eqs_scores,
)
from tests.conftest import shopify_order
from tests.unit.test_quality import ANSWER
from tests.unit.test_shopify_topics import CART, CHECKOUT
from tests.unit.test_woocommerce import checkout, woo_order


def test_events_match_pinterests_schema(now):
    cart = shopify_order(now, CART)
    cart["email"] = "jane@example.com"
    data = [
        shopify.checkout_to_event(shopify_order(now, CHECKOUT), now=now).event,
        shopify.cart_to_event(cart, now=now).event,
    ]
    assert ConversionEventsValidator().errors({"data": data}) == []


def test_event_matches_pinterests_schema(now):
    data = [checkout(woo_order(now), now).event]
    assert ConversionEventsValidator().errors({"data": data}) == []


def test_the_test_event_is_a_hashed_web_page_visit_pinterest_accepts():
    now = int(time.time())
    event_id = new_event_id()
    event = synthetic_event(now, event_id)
    assert event_id.startswith("pinrelay-verify-") and len(event_id) == len("pinrelay-verify-") + 32
    assert new_event_id() != event_id
    assert event == {"event_name": "page_visit", "action_source": "web", "event_id": event_id, "event_time": now,
                     "user_data": {"em": [hashlib.sha256(VERIFY_EMAIL.encode()).hexdigest()]}}
    assert VERIFY_EMAIL.endswith("@example.com")  # a reserved domain: no one's address
    assert ConversionEventsValidator().errors({"data": [event]}) == []
    assert check_event(event, now) is None


@pytest.fixture(scope="module")
def validator():
    return EventQualityScoreValidator()


def test_the_test_answer_and_the_stand_ins_default_are_valid_against_the_schema(validator):
    for score in ANSWER + default_eqs_scores():
        assert validator.errors(score) == []


def test_the_names_metrics_are_made_of_are_the_schemas(validator):
    """Only these become metric dimensions (pinrelay.quality.metric_points): the allow-list is the schema's."""
    schemas = validator.document["components"]["schemas"]
    assert set(schemas["QualityComponents"]["properties"]) == DOCUMENTED_COMPONENTS
    assert tuple(schemas["IngestionSourceOptions"]["enum"]) == INGESTION_SOURCES
    assert tuple(schemas["SourcePlatformOptions"]["enum"]) == SOURCE_PLATFORMS


def test_every_documented_component_has_advice_and_issues_about_hashing_or_dedup_get_theirs(validator):
    documented = set(validator.document["components"]["schemas"]["QualityComponents"]["properties"])
    assert documented == set(COMPONENT_ADVICE)
    assert "external_id" in advice("advertiser_external_id")
    assert "epik" in advice("click_id_epik") and "docs/browser-side.md" in advice("click_id_epik")
    assert "client_ip_address" in advice("ip_address") and "client_user_agent" in advice("user_agent")
    assert "same event_id" in advice("external_event_id")
    assert "em" in advice("hashed_email") and "ph with the country" in advice("hashed_email")
    hashing = QualityIssue(id="EM_NOT_HASHED_CORRECTLY", name="Email not hashed correctly", reason="...")
    assert "SHA-256" in advice("hashed_email", hashing) and advice("hashed_email", hashing) != advice("hashed_email")
    dedup = QualityIssue(id="LOW_DEDUP_RATE", name="Low deduplication", reason="...")
    assert advice("order_id", dedup) == COMPONENT_ADVICE["external_event_id"]
    other = QualityIssue(id="SOMETHING_NEW", name="Something new", reason="...")
    assert advice("advertiser_external_id", other) == COMPONENT_ADVICE["advertiser_external_id"]
    assert advice("a_component_from_the_future", other) == FALLBACK_ADVICE
